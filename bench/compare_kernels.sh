#!/usr/bin/env bash
# bench/compare_kernels.sh — layer by layer, how much faster is one build's convolution and FC
# kernels than another's (AVX-512 against AVX2, or two checkouts built side by side)? Runs each
# variant's bench/kernels on one layer at a time, the variants interleaved and their order
# rotated every round, so that the machine's drift (memory bandwidth, other tenants) hits all
# alike instead of whichever variant ran in a slow minute. Each pass keeps its best rep over
# the rounds, as bench/kernels --rounds does.
#
# Prints, per layer and pass, each variant's GFLOP/s and its speedup over the first variant, and
# per model and pass the whole-net figures (each shape weighted by its count). Writes one row per
# (layer, pass, variant) to <out>/compare_kernels.csv; bench/kernels's own rows and logs stay in
# <out>/compare_kernels.d/<run_id>/. Run from the repository root.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/compare_kernels.sh [options]

  --variants=LIST    build variants, comma-separated; the first is the baseline
                     (default: avx2,native)
  --model=NAME       resnet_v1_50, vgg_16 or all (default: all)
  --layer=LIST       bench/kernels's --layer: names, each exact or a substring (default: all)
  --rounds=N         visits of every layer per variant, order rotated each round (default: 2)
  --reps=N           bench/kernels --reps (default: 3)
  --threads=N        OpenMP threads (default: 0 = every core)
  --out=DIR          results directory (default: results)
  --quick            smoke configuration: bench/kernels --quick (batch 2, one rep), one round,
                     a short peak measurement
  --no-build         use the binaries already in build/<variant>/ (fails if one is missing)
  --dry-run          print the commands that would run, in order, and exit
  -h, --help         this text
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

variants=avx2,native model=all layer="" rounds=2 reps=3 threads=0 out=results
quick=0 build=1 dry=0 peak_seconds=0.5
for arg in "$@"; do
    case $arg in
    --variants=*) variants=${arg#*=} ;;
    --model=*) model=${arg#*=} ;;
    --layer=*) layer=${arg#*=} ;;
    --rounds=*) rounds=${arg#*=} ;;
    --reps=*) reps=${arg#*=} ;;
    --threads=*) threads=${arg#*=} ;;
    --out=*) out=${arg#*=} ;;
    --quick) quick=1 rounds=1 peak_seconds=0.1 ;;
    --no-build) build=0 ;;
    --dry-run) dry=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compare_kernels.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

for n in "$rounds:--rounds" "$reps:--reps"; do
    case ${n%%:*} in '' | *[!0-9]* | 0) echo "compare_kernels.sh: ${n#*:} must be a positive integer, got '${n%%:*}'" >&2; exit 2 ;; esac
done
case $threads in '' | *[!0-9]*) echo "compare_kernels.sh: --threads must be a non-negative integer, got '$threads'" >&2; exit 2 ;; esac
case $model in resnet_v1_50 | vgg_16 | all) ;; *) echo "compare_kernels.sh: unknown model '$model' (resnet_v1_50, vgg_16, all)" >&2; exit 2 ;; esac
IFS=, read -r -a vlist <<<"$variants"
[ "${#vlist[@]}" -ge 2 ] || { echo "compare_kernels.sh: --variants needs two or more variants, got '$variants'" >&2; exit 2; }
for v in "${vlist[@]}"; do
    case $v in generic | avx2 | avx512 | native) ;; *) echo "compare_kernels.sh: unknown variant '$v' (generic, avx2, avx512, native)" >&2; exit 2 ;; esac
done
[ "$threads" -gt 0 ] || threads=$(bench_cpu_count)

runnable=()
for v in "${vlist[@]}"; do
    if bench_variant_runs compare_kernels.sh "$v"; then runnable+=("$v"); fi
done
[ "${#runnable[@]}" -ge 2 ] || { echo "compare_kernels.sh: fewer than two of the variants can run here" >&2; exit 1; }

run_id=$(date -u +%Y%m%dT%H%M%SZ)
work="$out/compare_kernels.d/$run_id"
csv="$out/compare_kernels.csv"
base=${runnable[0]}

make_cmd() { echo make -j"$(bench_cpu_count)" BUILD="$1" bench; }
peak_cmd() { echo build/"$1"/bench/peak --threads="$threads" --seconds="$peak_seconds" --csv="$work/peak_$1.csv"; }
declare -A peak
kernels_cmd() { # variant model layer -> one bench/kernels command line (the variant's peak
    # comes from measure_peaks, once a round, not from every call)
    local opts="--reps=$reps"
    [ "$quick" = 1 ] && opts=--quick
    echo build/"$1"/bench/kernels --model="$2" ${3:+--layer="$3"} "$opts" --no-blas \
        --threads="$threads" --peak="${peak[$1]:-PEAK}" --csv="$work/kernels_$1.csv"
}
order() { # round -> the variants, rotated
    local r=$1 n=${#runnable[@]} i
    for ((i = 0; i < n; i++)); do echo "${runnable[$(((i + r) % n))]}"; done
}

if [ "$build" = 1 ] && [ "$dry" = 0 ]; then
    for v in "${runnable[@]}"; do
        echo "== $(make_cmd "$v")"
        read -r -a c <<<"$(make_cmd "$v")"
        mkdir -p "$work"
        "${c[@]}" >"$work/make_$v.log" 2>&1 || { echo "compare_kernels.sh: make BUILD=$v failed; see $work/make_$v.log" >&2; tail -n 20 "$work/make_$v.log" >&2; exit 1; }
    done
fi
for v in "${runnable[@]}"; do
    [ -x build/"$v"/bench/kernels ] || [ "$dry" = 1 ] ||
        { echo "compare_kernels.sh: build/$v/bench/kernels is missing (run without --no-build, or make BUILD=$v bench)" >&2; exit 1; }
done

# The layers, as bench/kernels selects them (model and name of each).
lister=build/$base/bench/kernels
if [ ! -x "$lister" ]; then
    for v in "${runnable[@]}"; do [ -x build/"$v"/bench/kernels ] && lister=build/$v/bench/kernels && break; done
fi
if [ -x "$lister" ]; then
    listed=$("$lister" --list --model="$model" ${layer:+--layer="$layer"}) || exit 2
else # a dry run before any build: the layers are not known yet, one call per variant
    listed="$model $layer"
fi

if [ "$dry" = 1 ]; then
    echo "# compare_kernels.sh --dry-run: $(IFS=,; echo "${runnable[*]}"), $rounds rounds"
    if [ "$build" = 1 ]; then for v in "${runnable[@]}"; do make_cmd "$v"; done; fi
    for ((r = 0; r < rounds; r++)); do
        for v in "${runnable[@]}"; do peak_cmd "$v"; done
        while read -r m l _; do
            while read -r v; do kernels_cmd "$v" "$m" "$l"; done < <(order "$r")
        done <<<"$listed"
    done
    exit 0
fi

mkdir -p "$work"
# Each variant's FMA peak, measured at the start of every round; the best so far is the one
# passed on (another job can only lower a measurement: once, both threads of a 2-core VM read
# 239 GFLOP/s where they read 474 a minute before).
measure_peaks() {
    local v c g
    for v in "${runnable[@]}"; do
        read -r -a c <<<"$(peak_cmd "$v")"
        "${c[@]}" >>"$work/peak_$v.log" 2>&1 || { echo "compare_kernels.sh: ${c[*]} failed; see $work/peak_$v.log" >&2; exit 1; }
        g=$(bench_csv_last "$work/peak_$v.csv" gflops)
        peak[$v]=$(awk -v a="${peak[$v]:-0}" -v b="$g" 'BEGIN { print (b > a ? b : a) }')
    done
}
nl=$(grep -c . <<<"$listed")
echo "compare_kernels: run $run_id, variants ${runnable[*]}, $nl layers, $rounds rounds, $threads threads; logs in $work/"
for ((r = 0; r < rounds; r++)); do
    measure_peaks
    i=0
    while read -r m l _; do
        i=$((i + 1))
        printf '\rcompare_kernels: round %d/%d, layer %d/%d %-30s' $((r + 1)) "$rounds" "$i" "$nl" "$l" >&2
        while read -r v; do
            read -r -a c <<<"$(kernels_cmd "$v" "$m" "$l")"
            log="$work/kernels_$v.log"
            if ! "${c[@]}" >>"$log" 2>&1; then
                echo >&2
                echo "compare_kernels.sh: ${c[*]} failed; see $log" >&2
                tail -n 20 "$log" >&2
                exit 1
            fi
        done < <(order "$r")
    done <<<"$listed"
done
echo >&2

# Best over the rounds per (model, layer, pass, variant): GFLOP/s, and the pass's time times the
# layer's count for the whole-net lines.
best="$work/best.tsv"
for v in "${runnable[@]}"; do
    bench_csv_select "$work/kernels_$v.csv" model layer pass gflops ms_best count |
        awk -F'\t' -v v="$v" -v OFS='\t' '{ k = $1 OFS $2 OFS $3
            if (!(k in g) || $4 > g[k]) { g[k] = $4; t[k] = $5 * $6 } }
            END { for (k in g) print k, v, g[k], t[k] }'
done >"$best"

echo
echo "compare_kernels: $run_id on $(bench_cpu_model), $threads threads; GFLOP/s (best of $rounds rounds) and speedup over $base"
echo "FMA peaks (bench/peak, best of the rounds): $(for v in "${runnable[@]}"; do printf '%s %s GFLOP/s  ' "$v" "${peak[$v]}"; done)"
printf '%-12s %-26s %-16s' model layer pass
for v in "${runnable[@]}"; do printf ' %9s' "$v"; done
for v in "${runnable[@]:1}"; do printf ' %9s' "x $v"; done
echo
# One pass over the best figures, in the listed order: the table's rows on stdout and the CSV's
# rows (each variant's GFLOP/s and speedup over the baseline) into rows.csv.
header="run_id,model,layer,pass,build,baseline,gflops,speedup"
awk -F'\t' -v base="$base" -v vs="${runnable[*]}" -v run="$run_id" -v rows="$work/rows.csv" '
    FNR == NR { g[$1, $2, $3, $4] = $5; next }
    {
        split($0, f, " ")
        n = split(vs, v, " ")
        split("forward backward_data backward_filter", ps, " ")
        for (k = 1; k <= 3; k++) {
            p = ps[k]
            b = g[f[1], f[2], p, base]
            printf "%-12s %-26s %-16s", f[1], f[2], p
            for (i = 1; i <= n; i++) {
                x = g[f[1], f[2], p, v[i]]
                r[i] = x > 0 && b > 0 ? x / b : 0
                printf " %9s", (x == "" ? "-" : x)
                print run "," f[1] "," f[2] "," p "," v[i] "," base "," x "," (r[i] > 0 ? sprintf("%.3f", r[i]) : "") > rows
            }
            for (i = 2; i <= n; i++) if (r[i] > 0) printf " %8.2fx", r[i]; else printf " %9s", "-"
            printf "\n"
        }
    }' "$best" - <<<"$listed"
bench_csv_append "$csv" "$header" "$(cat "$work/rows.csv")"

# Whole nets: FLOPs over the summed best times, per model and pass (the layers compared here).
echo
while read -r m; do
    for p in forward backward_data backward_filter; do
        printf '%-12s %-26s %-16s' "$m" "(these layers)" "$p"
        awk -F'\t' -v m="$m" -v p="$p" -v base="$base" -v vs="${runnable[*]}" '
            $1 == m && $3 == p { t[$4] += $6; f[$4] += $5 * $6 }
            END {
                n = split(vs, v, " ")
                for (i = 1; i <= n; i++) printf(" %9.1f", (t[v[i]] > 0 ? f[v[i]] / t[v[i]] : 0))
                for (i = 2; i <= n; i++) printf(" %8.2fx", (t[v[i]] > 0 ? t[base] / t[v[i]] : 0))
                printf "\n"
            }' "$best"
    done
done < <(cut -d' ' -f1 <<<"$listed" | sort -u)
echo "rows appended to $csv"
