#!/usr/bin/env bash
# bench/compare_builds.sh — how much faster is a build compiled for AVX2 or AVX-512 than a
# generic one? Builds each variant (make BUILD=...), measures its FMA peak (bench/peak, the best
# of 3 measurements, the variants interleaved), then trains the same launch configuration with
# every variant on synthetic data, interleaving the variants over several repeats (the order
# rotates each repeat) so machine drift hits all alike.
#
# Writes one row per run to <out>/compare_builds.csv, keeps each run's launch rows, peak rows and
# logs in <out>/compare_builds.d/<run_id>/, and prints a table: images/sec (median over repeats
# of launch's per-run median, and the min-max spread), speedup over generic, achieved GFLOP/s and
# % of each variant's own FMA peak. Run from the repository root.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/compare_builds.sh [options]

  --variants=LIST    build variants, comma-separated (default: generic,avx2,avx512,native)
  --models=LIST      models (default: vgg_16,resnet_v1_50)
  --batch_size=N     per-run batch size (default: 32)
  --optimizer=NAME   optimizer (default: rmsprop)
  --steps=N          timed steps per run, after the warm-up (default: 10)
  --warmup=N         warm-up steps excluded from timing (default: 2)
  --repeats=N        runs per (variant, model); variants interleaved (default: 3)
  --threads=N        OpenMP threads (default: 0 = every core)
  --launch_args=S    extra flags for every launch (e.g. "--train_image_size=160")
  --out=DIR          results directory (default: results)
  --quick            smoke configuration: cifarnet and lenet, batch 8, 3 steps, 1 warm-up,
                     2 repeats, short peak measurement (seconds in all)
  --no-build         use the binaries already in build/<variant>/ (fails if one is missing)
  --dry-run          print the commands that would run, in order, and exit
  -h, --help         this text

Default configuration: the card's one-liner (--model_name=vgg_16 --batch_size=32
--optimizer=rmsprop) and resnet_v1_50, synthetic data, 2 warm-up + 10 timed steps, 3 repeats.
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

variants=generic,avx2,avx512,native
models=vgg_16,resnet_v1_50
batch=32 optimizer=rmsprop steps=10 warmup=2 repeats=3 threads=0
launch_args="" out=results build=1 dry=0 peak_seconds=0.5 peak_rounds=3

for arg in "$@"; do
    case $arg in
    --variants=*) variants=${arg#*=} ;;
    --models=*) models=${arg#*=} ;;
    --batch_size=*) batch=${arg#*=} ;;
    --optimizer=*) optimizer=${arg#*=} ;;
    --steps=*) steps=${arg#*=} ;;
    --warmup=*) warmup=${arg#*=} ;;
    --repeats=*) repeats=${arg#*=} ;;
    --threads=*) threads=${arg#*=} ;;
    --launch_args=*) launch_args=${arg#*=} ;;
    --out=*) out=${arg#*=} ;;
    --quick) models=cifarnet,lenet batch=8 steps=3 warmup=1 repeats=2 peak_seconds=0.1 ;;
    --no-build) build=0 ;;
    --dry-run) dry=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compare_builds.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

for n in "$batch:--batch_size" "$steps:--steps" "$repeats:--repeats"; do
    case ${n%%:*} in '' | *[!0-9]* | 0) echo "compare_builds.sh: ${n#*:} must be a positive integer, got '${n%%:*}'" >&2; exit 2 ;; esac
done
for n in "$warmup:--warmup" "$threads:--threads"; do
    case ${n%%:*} in '' | *[!0-9]*) echo "compare_builds.sh: ${n#*:} must be a non-negative integer, got '${n%%:*}'" >&2; exit 2 ;; esac
done
IFS=, read -r -a vlist <<<"$variants"
IFS=, read -r -a mlist <<<"$models"
for v in "${vlist[@]}"; do
    case $v in generic | avx2 | avx512 | native) ;; *) echo "compare_builds.sh: unknown variant '$v' (generic, avx2, avx512, native)" >&2; exit 2 ;; esac
done
[ "$threads" -gt 0 ] || threads=$(bench_cpu_count)

run_id=$(date -u +%Y%m%dT%H%M%SZ)
work="$out/compare_builds.d/$run_id"
csv="$out/compare_builds.csv"

# Skip a variant the CPU cannot execute.
runnable=()
for v in "${vlist[@]}"; do
    if bench_variant_runs compare_builds.sh "$v"; then runnable+=("$v"); fi
done
[ "${#runnable[@]}" -gt 0 ] || { echo "compare_builds.sh: no variant can run here" >&2; exit 1; }

launch_cmd() { # variant model -> the launch command line (words on stdout)
    local v=$1 m=$2
    # shellcheck disable=SC2086
    echo build/"$v"/bin/launch --model_name="$m" --batch_size="$batch" --optimizer="$optimizer" \
        --max_number_of_steps=$((warmup + steps)) --num_warmup_steps="$warmup" \
        --threads_per_replica="$threads" --results_csv="$work/runs.csv" --log_every_n_steps=1 \
        $launch_args
}
peak_cmd() { echo build/"$1"/bench/peak --threads="$threads" --seconds="$peak_seconds" --csv="$work/peak_trials.csv"; }
make_cmd() { echo make -j"$(bench_cpu_count)" BUILD="$1" all bench; }

# The order of one repeat: the variant list rotated by the repeat index.
order() {
    local r=$1 n=${#runnable[@]} i
    for ((i = 0; i < n; i++)); do echo "${runnable[$(((i + r) % n))]}"; done
}

if [ "$dry" = 1 ]; then
    echo "# compare_builds.sh --dry-run: $(IFS=,; echo "${runnable[*]}") x $models, $repeats repeats"
    if [ "$build" = 1 ]; then for v in "${runnable[@]}"; do make_cmd "$v"; done; fi
    for ((r = 0; r < peak_rounds; r++)); do for v in "${runnable[@]}"; do peak_cmd "$v"; done; done
    for ((r = 0; r < repeats; r++)); do
        for m in "${mlist[@]}"; do
            while read -r v; do launch_cmd "$v" "$m"; done < <(order "$r")
        done
    done
    exit 0
fi

mkdir -p "$work"
echo "compare_builds: run $run_id, variants ${runnable[*]}, models ${mlist[*]}, batch $batch," \
    "$optimizer, $warmup warm-up + $steps timed steps, $repeats repeats, $threads threads"
echo "compare_builds: logs and launch rows in $work/"

if [ "$build" = 1 ]; then
    for v in "${runnable[@]}"; do
        echo "== $(make_cmd "$v")"
        read -r -a c <<<"$(make_cmd "$v")"
        "${c[@]}" >"$work/make_$v.log" 2>&1 || { echo "compare_builds.sh: make BUILD=$v failed; see $work/make_$v.log" >&2; tail -n 20 "$work/make_$v.log" >&2; exit 1; }
    done
fi
for v in "${runnable[@]}"; do
    for f in build/"$v"/bin/launch build/"$v"/bench/peak; do
        [ -x "$f" ] || { echo "compare_builds.sh: $f is missing (run without --no-build, or make BUILD=$v all bench)" >&2; exit 1; }
    done
done

# The peak of each variant, measured in this run: the best of peak_rounds measurements, the
# variants interleaved. One measurement can land in a dip: on a shared VM a vCPU can be off its
# core for seconds, and a single peak of the avx512 build once read 116 GFLOP/s on a 230 GFLOP/s
# machine (the table then said 133% of peak). The best row per variant goes to peak.csv, where
# launch reads it for its own pct_of_peak; every measurement stays in peak_trials.csv.
declare -A peak
for ((pr = 0; pr < peak_rounds; pr++)); do
    for v in "${runnable[@]}"; do
        echo "== $(peak_cmd "$v")"
        read -r -a c <<<"$(peak_cmd "$v")"
        "${c[@]}" | tee -a "$work/peak_$v.log" | sed -n 's/^ *\([0-9]* threads:.*\)/   \1/p'
    done
done
for v in "${runnable[@]}"; do
    best=$(awk -F, -v v="$v" 'NR > 1 && NF >= 5 && $2 == v && $5 + 0 > b { b = $5 + 0; row = $0 } END { print row }' "$work/peak_trials.csv")
    [ -n "$best" ] || { echo "compare_builds.sh: no peak measured for $v (see $work/peak_$v.log)" >&2; exit 1; }
    bench_csv_append "$work/peak.csv" "$(head -n 1 "$work/peak_trials.csv")" "$best"
    peak[$v]=$(cut -d, -f5 <<<"$best")
    echo "   $v: ${peak[$v]} GFLOP/s, the best of $peak_rounds"
done

header="run_id,timestamp,git_sha,build,cflags,cpu_model,threads,model_name,batch_size,optimizer,data,image_size,warmup_steps,steps,repeat,images_per_sec,images_per_sec_stdev,step_ms_median,data_wait_ms,allreduce_ms,gflop_per_image,gflops,peak_gflops,pct_of_peak,peak_rss_mb,final_loss,command"
cols="timestamp git_sha build cflags cpu_model threads_per_replica model_name batch_size optimizer data image_size warmup_steps steps images_per_sec images_per_sec_stdev step_ms_median data_wait_ms allreduce_ms gflop_per_image gflops peak_rss_mb final_loss"
read -r -a colarr <<<"$cols"
rows="$work/rows.tsv"
: >"$rows"
for ((r = 0; r < repeats; r++)); do
    for m in "${mlist[@]}"; do
        while read -r v; do
            cmd=$(launch_cmd "$v" "$m")
            echo "== repeat $((r + 1))/$repeats: $cmd"
            log="$work/launch_${v}_${m}_$r.log"
            read -r -a c <<<"$cmd"
            if ! "${c[@]}" >"$log" 2>&1; then
                echo "compare_builds.sh: launch failed (build $v, model $m); see $log" >&2
                tail -n 20 "$log" >&2
                exit 1
            fi
            IFS=$'\t' read -r ts sha b cflags cpu thr model bs opt data isz wu st ips sd sms dw ar gpi gf rss loss \
                < <(bench_csv_last "$work/runs.csv" "${colarr[@]}")
            pk=${peak[$v]}
            pct=$(awk -v g="$gf" -v p="$pk" 'BEGIN { if (p > 0) printf "%.2f", 100 * g / p }')
            printf '   %s %s: %s images/sec (median step %s ms, %s GFLOP/s, %s%% of %s GFLOP/s peak)\n' \
                "$v" "$m" "$ips" "$sms" "$gf" "$pct" "$pk"
            row=$(awk -v FS='\t' "$BENCH_AWK_CSV"'{ for (i = 1; i <= NF; i++) printf "%s%s", csv_quote($i), (i < NF ? "," : "\n") }' \
                <<<"$run_id	$ts	$sha	$b	$cflags	$cpu	$thr	$model	$bs	$opt	$data	$isz	$wu	$st	$((r + 1))	$ips	$sd	$sms	$dw	$ar	$gpi	$gf	$pk	$pct	$rss	$loss	$cmd")
            bench_csv_append "$csv" "$header" "$row"
            printf '%s\t%s\t%s\t%s\t%s\n' "$m" "$v" "$ips" "$gf" "$pct" >>"$rows"
        done < <(order "$r")
    done
done

# The table: per model, per variant, median and spread over the repeats.
echo
echo "compare_builds: $run_id on $(bench_cpu_model), $threads threads, batch $batch, $optimizer, synthetic data, $steps timed steps after $warmup warm-up, $repeats repeats"
printf '%-14s %-8s %12s %19s %9s %9s %10s %10s\n' model build images/sec "[min - max]" speedup GFLOP/s "% of peak" "peak GF/s"
tv=()
for v in "${runnable[@]}"; do
    if [ "$v" = generic ]; then tv=(generic "${tv[@]}"); else tv+=("$v"); fi
done
for m in "${mlist[@]}"; do
    base=""
    for v in "${tv[@]}"; do
        sel() { awk -F'\t' -v m="$m" -v v="$v" -v c="$1" '$1 == m && $2 == v && $c != "" { print $c }' "$rows"; }
        read -r med lo hi _ < <(sel 3 | bench_median_spread)
        read -r gmed _ < <(sel 4 | bench_median_spread)
        read -r pmed _ < <(sel 5 | bench_median_spread)
        [ "$v" != generic ] || base=$med
        sp=$(awk -v a="$med" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
        printf '%-14s %-8s %12.3f %19s %9s %9.1f %9.1f%% %10s\n' "$m" "$v" "$med" "[$lo - $hi]" "$sp" "$gmed" "$pmed" "${peak[$v]}"
    done
done
echo "rows appended to $csv (run_id $run_id)"
