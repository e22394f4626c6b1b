#!/usr/bin/env bash
# bench/scaling.sh — data-parallel scaling of launch over Open MPI, in one run:
#   1. images/sec against the replica count on this host, the cores split evenly (1 replica x
#      all cores, 2 replicas x cores/2, ...), --batch_size per replica fixed (tf_cnn_benchmarks'
#      convention), synthetic data; each row with its exposed allreduce time and its scaling
#      efficiency: images/sec against the 1-replica row's (the same cores, split);
#   2. with NS_HOSTS=N (root, iproute2): the same model on N "hosts" made from network
#      namespaces (tests/dist/netns.sh), ranks over TCP only;
#   3. the bandwidth of our gradient exchange (bucketed MPI_Iallreduce, bench/scaling.c) against
#      one plain MPI_Allreduce on the same buffer sizes (1, 4, 25 MiB and the size of a gradient
#      arena, ~100 MiB for resnet_v1_50) and against memcpy, 2 ranks.
# Rows go to results/scaling.csv (throughput) and results/allreduce.csv (bandwidth); launch's
# own rows to results/scaling_runs.csv.
#
# Usage: bench/scaling.sh [--quick] [MODEL [BATCH [STEPS]]]   defaults: resnet_v1_50 8 8
# Env: BUILD (native), REPLICAS ("1 2"), NS_HOSTS (0 = skip), WARMUP (2), SIZES ("1 4 25 100" MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

usage() {
    cat <<'EOF'
usage: bench/scaling.sh [--quick] [MODEL [BATCH [STEPS]]]

  MODEL BATCH STEPS  launch's --model_name, per-replica --batch_size and timed steps
                     (default: resnet_v1_50 8 8)
  --quick            smoke configuration: lenet 8 4
  -h, --help         this text
Environment: BUILD (native), REPLICAS ("1 2"), NS_HOSTS (0 = no namespace hosts), WARMUP (2),
SIZES ("1 4 25 100", MiB, for the allreduce bandwidth).
Writes results/scaling.csv, results/allreduce.csv and results/scaling_runs.csv.
EOF
}
pos=()
for arg in "$@"; do
    case $arg in
    --quick) pos=(lenet 8 4) ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "scaling.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
    *) pos+=("$arg") ;;
    esac
done
model=${pos[0]:-resnet_v1_50}
batch=${pos[1]:-8}
steps=${pos[2]:-8}
for n in "$batch:BATCH" "$steps:STEPS"; do
    case ${n%%:*} in '' | *[!0-9]* | 0) echo "scaling.sh: ${n#*:} must be a positive integer, got '${n%%:*}'" >&2; exit 2 ;; esac
done
build=${BUILD:-native}
replicas=${REPLICAS:-1 2}
ns_hosts=${NS_HOSTS:-0}
warmup=${WARMUP:-2}
bin=build/$build/bin
cores=$(bench_cpu_count)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

make -s BUILD="$build" all "build/$build/bench/scaling" >/dev/null
mkdir -p results
runs=results/scaling_runs.csv
out=results/scaling.csv
header="timestamp,git_sha,build,model_name,hosts,replicas,threads_per_replica,batch_size,global_batch_size,images_per_sec,step_ms_median,allreduce_ms,scaling_efficiency"
base_ips=""

# run_one HOSTS_LABEL N THREADS: one launch (prefixed by the array pre, with the extra launch
# flags of the array extra), one row in $out.
pre=()
extra=()
run_one() {
    local hosts=$1 n=$2 threads=$3
    "${pre[@]}" "$bin/launch" --model_name="$model" --batch_size="$batch" --optimizer=sgd \
        --worker_replicas="$n" --threads_per_replica="$threads" --max_number_of_steps="$steps" \
        --num_warmup_steps="$warmup" --results_csv="$runs" "${extra[@]}" >/dev/null 2>&1 || {
        echo "scaling: launch with $n replicas ($hosts) failed" >&2
        return 1
    }
    local ts sha ips step ar gb
    IFS=$'\t' read -r ts sha ips step ar gb < <(bench_csv_last "$runs" timestamp git_sha \
        images_per_sec step_ms_median allreduce_ms global_batch_size)
    if [ -z "$base_ips" ]; then base_ips=$ips; fi
    local eff
    # every row runs on this machine's cores: efficiency = throughput against the 1-replica row
    eff=$(awk -v a="$ips" -v b="$base_ips" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    bench_csv_append "$out" "$header" \
        "$ts,$sha,$build,$model,$hosts,$n,$threads,$batch,$gb,$ips,$step,$ar,$eff"
    printf '%-14s %2d replicas x %d threads  batch %3d/replica  %8.2f images/sec  step %8.1f ms  allreduce wait %7.1f ms  efficiency %s\n' \
        "$hosts" "$n" "$threads" "$batch" "$ips" "$step" "$ar" "$eff"
}

echo "== images/sec vs replicas: $model, batch $batch per replica, $steps steps ($warmup warm-up), $cores cores"
for n in $replicas; do
    t=$((cores / n))
    [ "$t" -ge 1 ] || t=1
    run_one "1 host" "$n" "$t"
done

if [ "$ns_hosts" -gt 1 ]; then
    prefix=sbs$$
    trap 'tests/dist/netns.sh down $prefix $ns_hosts' EXIT
    tests/dist/netns.sh up "$prefix" "$ns_hosts"
    hostfile=$(mktemp)
    map=""
    for ((i = 0; i < ns_hosts; i++)); do
        echo "10.77.0.$((i + 1)) slots=1" >>"$hostfile"
        [ "$i" -gt 0 ] && map="$map 10.77.0.$((i + 1))=$prefix-h$i"
    done
    echo "== $ns_hosts namespace hosts over TCP (one replica each)"
    t=$((cores / ns_hosts))
    [ "$t" -ge 1 ] || t=1
    export SB_NS_MAP="$map" OMPI_MCA_plm_rsh_agent="$PWD/tests/dist/ns_rsh.sh" \
        OMPI_MCA_plm_rsh_no_tree_spawn=1 OMPI_MCA_btl=tcp,self \
        OMPI_MCA_oob_tcp_if_include=10.77.0.0/24 OMPI_MCA_btl_tcp_if_include=10.77.0.0/24
    pre=(ip netns exec "$prefix-h0")
    extra=(--hostfile="$hostfile")
    run_one "$ns_hosts netns" "$ns_hosts" "$t" || true
    unset SB_NS_MAP OMPI_MCA_plm_rsh_agent OMPI_MCA_plm_rsh_no_tree_spawn OMPI_MCA_btl \
        OMPI_MCA_oob_tcp_if_include OMPI_MCA_btl_tcp_if_include
    rm -f "$hostfile"
fi

# resnet_v1_50's gradient arena is 25.6 M floats, about 100 MiB.
read -r -a sizes <<<"${SIZES:-1 4 25 100}"
echo "== allreduce bandwidth, 2 ranks: ours (25 MiB buckets, MPI_Iallreduce) vs MPI_Allreduce vs memcpy"
mpirun -np 2 --oversubscribe --bind-to core "build/$build/bench/scaling" results/allreduce.csv \
    "${sizes[@]}"
echo "rows: $out, results/allreduce.csv (launch's own rows: $runs)"
