#!/usr/bin/env bash
# bench/peers.sh — slimbench against PyTorch on the same work: the same models, batch size,
# optimizer (RMSProp with slim's defaults), thread count and synthetic ImageNet-shaped data,
# warm-up then timed steps, median images/sec. Ours and the peer alternate over the repeats in
# one run, so both see the same machine. Appends one row per run to <out>/peers.csv and prints
# the table with the ratio ours/peer. Without PyTorch (Debian's python3-torch) the peer is
# skipped with a message and only our runs are recorded. Run from the repository root.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/peers.sh [options]

  --build=VARIANT    our build variant to run (default: native)
  --models=LIST      models, comma-separated: vgg_16, resnet_v1_50 (default: both)
  --batch_size=N     batch size (default: 32)
  --steps=N          timed steps per run, after the warm-up (default: 10)
  --warmup=N         warm-up steps (default: 2)
  --repeats=N        runs of each side, alternating (default: 2)
  --threads=N        threads for both sides (default: 0 = every core)
  --python=PATH      interpreter with torch (default: /usr/bin/python3, Debian's)
  --out=DIR          results directory (default: results)
  --quick            smoke configuration: resnet_v1_50, batch 2, 1 timed step, 1 warm-up,
                     1 repeat
  --no-build         use build/<variant>/bin/launch as it is
  --dry-run          print the commands that would run, in order, and exit
  -h, --help         this text
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

variant=native models=vgg_16,resnet_v1_50 batch=32 steps=10 warmup=2 repeats=2 threads=0
python=/usr/bin/python3 out=results build=1 dry=0
for arg in "$@"; do
    case $arg in
    --build=*) variant=${arg#*=} ;;
    --models=*) models=${arg#*=} ;;
    --batch_size=*) batch=${arg#*=} ;;
    --steps=*) steps=${arg#*=} ;;
    --warmup=*) warmup=${arg#*=} ;;
    --repeats=*) repeats=${arg#*=} ;;
    --threads=*) threads=${arg#*=} ;;
    --python=*) python=${arg#*=} ;;
    --out=*) out=${arg#*=} ;;
    --quick) models=resnet_v1_50 batch=2 steps=1 warmup=1 repeats=1 ;;
    --no-build) build=0 ;;
    --dry-run) dry=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "peers.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done
for n in "$batch:--batch_size" "$steps:--steps" "$repeats:--repeats"; do
    case ${n%%:*} in '' | *[!0-9]* | 0) echo "peers.sh: ${n#*:} must be a positive integer, got '${n%%:*}'" >&2; exit 2 ;; esac
done
for n in "$warmup:--warmup" "$threads:--threads"; do
    case ${n%%:*} in '' | *[!0-9]*) echo "peers.sh: ${n#*:} must be a non-negative integer, got '${n%%:*}'" >&2; exit 2 ;; esac
done
case $variant in generic | avx2 | avx512 | native) ;; *) echo "peers.sh: unknown variant '$variant'" >&2; exit 2 ;; esac
IFS=, read -r -a mlist <<<"$models"
for m in "${mlist[@]}"; do
    case $m in vgg_16 | resnet_v1_50) ;; *) echo "peers.sh: model '$m' has no PyTorch peer (vgg_16, resnet_v1_50)" >&2; exit 2 ;; esac
done
[ "$threads" -gt 0 ] || threads=$(bench_cpu_count)

run_id=$(date -u +%Y%m%dT%H%M%SZ)
work="$out/peers.d/$run_id"
csv="$out/peers.csv"

ours_cmd() {
    echo build/"$variant"/bin/launch --model_name="$1" --batch_size="$batch" --optimizer=rmsprop \
        --max_number_of_steps=$((warmup + steps)) --num_warmup_steps="$warmup" \
        --threads_per_replica="$threads" --results_csv="$work/runs.csv" --log_every_n_steps=1
}
peer_cmd() {
    echo "$python" "$here/peers/torch_peer.py" --model_name="$1" --batch_size="$batch" \
        --optimizer=rmsprop --threads="$threads" --warmup="$warmup" --steps="$steps"
}

have_torch=1
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
    have_torch=0
    echo "peers.sh: PyTorch is not importable by $python (Debian: apt-get install python3-torch);" \
        "the PyTorch peer is skipped, only slimbench runs" >&2
fi

if [ "$dry" = 1 ]; then
    echo "# peers.sh --dry-run: build $variant, ${mlist[*]}, $repeats repeats"
    [ "$build" = 0 ] || echo make -j"$(bench_cpu_count)" BUILD="$variant" all
    for ((r = 0; r < repeats; r++)); do
        for m in "${mlist[@]}"; do
            if [ $((r % 2)) = 1 ] && [ "$have_torch" = 1 ]; then peer_cmd "$m"; fi
            ours_cmd "$m"
            if [ $((r % 2)) = 0 ] && [ "$have_torch" = 1 ]; then peer_cmd "$m"; fi
        done
    done
    exit 0
fi

mkdir -p "$work"
if [ "$build" = 1 ]; then
    echo "== make -j$(bench_cpu_count) BUILD=$variant all"
    make -j"$(bench_cpu_count)" BUILD="$variant" all >"$work/make.log" 2>&1 ||
        { echo "peers.sh: make BUILD=$variant failed; see $work/make.log" >&2; tail -n 20 "$work/make.log" >&2; exit 1; }
fi
[ -x build/"$variant"/bin/launch ] || { echo "peers.sh: build/$variant/bin/launch is missing" >&2; exit 1; }
torch_version=""
[ "$have_torch" = 0 ] || torch_version=$("$python" -c 'import torch; print(torch.__version__)')
echo "peers: run $run_id, slimbench $variant vs PyTorch ${torch_version:-(absent)}, ${mlist[*]}," \
    "batch $batch, rmsprop, $warmup warm-up + $steps timed steps, $repeats repeats, $threads threads"

header="run_id,timestamp,impl,version,cpu_model,threads,model_name,batch_size,optimizer,warmup_steps,steps,repeat,images_per_sec,images_per_sec_stdev,step_ms_median,final_loss,command"
cpu=$(bench_cpu_model)
rows="$work/rows.tsv"
: >"$rows"
record() { # impl version model repeat ips sd sms loss cmd
    local row
    row=$(printf '%s\t' "$run_id" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" "$cpu" "$threads" "$3" \
        "$batch" rmsprop "$warmup" "$steps" "$4" "$5" "$6" "$7" "$8" | sed 's/\t$//')
    row=$(awk -v FS='\t' "$BENCH_AWK_CSV"'{ for (i = 1; i <= NF; i++) printf "%s%s", csv_quote($i), (i < NF ? "," : "\n") }' \
        <<<"$row	$9")
    bench_csv_append "$csv" "$header" "$row"
    printf '%s\t%s\t%s\n' "$3" "$1" "$5" >>"$rows"
}

for ((r = 0; r < repeats; r++)); do
    for m in "${mlist[@]}"; do
        # Alternate which side goes first, so neither always runs on a warmer (or hotter) machine.
        sides=(ours peer)
        [ $((r % 2)) = 0 ] || sides=(peer ours)
        for side in "${sides[@]}"; do
            if [ "$side" = ours ]; then
                cmd=$(ours_cmd "$m")
                echo "== repeat $((r + 1))/$repeats: $cmd"
                read -r -a c <<<"$cmd"
                log="$work/ours_${m}_$r.log"
                "${c[@]}" >"$log" 2>&1 || { echo "peers.sh: launch failed; see $log" >&2; tail -n 20 "$log" >&2; exit 1; }
                IFS=$'\t' read -r sha ips sd sms loss < <(bench_csv_last "$work/runs.csv" git_sha images_per_sec images_per_sec_stdev step_ms_median final_loss)
                echo "   slimbench-$variant $m: $ips images/sec"
                record "slimbench-$variant" "$sha" "$m" $((r + 1)) "$ips" "$sd" "$sms" "$loss" "$cmd"
            elif [ "$have_torch" = 1 ]; then
                cmd=$(peer_cmd "$m")
                echo "== repeat $((r + 1))/$repeats: $cmd"
                read -r -a c <<<"$cmd"
                log="$work/peer_${m}_$r.log"
                line=$("${c[@]}" 2>"$log") || { echo "peers.sh: torch_peer.py failed; see $log" >&2; tail -n 20 "$log" >&2; exit 1; }
                IFS=, read -r impl ver _ _ _ _ _ ips sd sms loss <<<"$line"
                echo "   $impl $m: $ips images/sec"
                record "$impl" "$ver" "$m" $((r + 1)) "$ips" "$sd" "$sms" "$loss" "$cmd"
            fi
        done
    done
done

echo
echo "peers: $run_id on $cpu, $threads threads, batch $batch, rmsprop, synthetic data, $steps timed steps after $warmup warm-up; images/sec = median over repeats"
printf '%-14s %22s %26s %14s\n' model "slimbench-$variant" "PyTorch ${torch_version:-(skipped)}" "ours / peer"
for m in "${mlist[@]}"; do
    read -r ours _ < <(awk -F'\t' -v m="$m" '$1 == m && $2 ~ /^slimbench/ { print $3 }' "$rows" | bench_median_spread)
    read -r peer _ _ np < <(awk -F'\t' -v m="$m" '$1 == m && $2 ~ /^pytorch/ { print $3 }' "$rows" | bench_median_spread)
    if [ "$np" = 0 ]; then
        printf '%-14s %22.3f %26s %14s\n' "$m" "$ours" "-" "-"
    else
        printf '%-14s %22.3f %26.3f %13.2fx\n' "$m" "$ours" "$peer" "$(awk -v a="$ours" -v b="$peer" 'BEGIN { print (b > 0 ? a / b : 0) }')"
    fi
done
echo "rows appended to $csv (run_id $run_id)"
