#!/usr/bin/env bash
# bench/all.sh — every benchmark and the report, from scratch, in one command:
#   make deps (Debian packages) -> PyTorch for the peer (python3-torch, python3-torchvision; skipped
#   with a message when it cannot be installed) -> bench/compare_builds.sh (builds the variants) ->
#   bench/peers.sh -> bench/kernels with the native build -> bench/compare_kernels.sh (avx2
#   against native, layer by layer) -> bench/scaling.sh (replicas over Open MPI) ->
#   bench/convert -> bench/report.
# Writes everything into <out>/ (default results/) and the report to <out>/report.md.
# Options not listed here are passed to compare_builds.sh and peers.sh (--models, --batch_size,
# --steps, --warmup, --repeats, --threads). Run from the repository root.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/all.sh [--quick] [--out=DIR] [--no-deps] [--no-peers] [--no-kernels] [--no-scaling]
                   [options...]

  --quick        smoke configuration for every step (minutes, not hours)
  --out=DIR      results directory (default: results)
  --no-deps      do not install packages (make deps, python3-torch)
  --no-peers     skip the PyTorch comparison
  --no-kernels   skip bench/kernels and compare_kernels.sh (the per-layer plots then use
                 older kernels_*.csv and compare_kernels.csv, if any)
  --no-scaling   skip bench/scaling.sh (replica scaling over Open MPI; it writes into results/)
  options...     --models= --batch_size= --steps= --warmup= --repeats= --threads= are passed to
                 compare_builds.sh and peers.sh
EOF
}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=results quick=0 deps=1 peers=1 kernels=1 scaling=1
pass=()
for arg in "$@"; do
    case $arg in
    --quick) quick=1 ;;
    --out=*) out=${arg#*=} ;;
    --no-deps) deps=0 ;;
    --no-peers) peers=0 ;;
    --no-kernels) kernels=0 ;;
    --no-scaling) scaling=0 ;;
    --models=* | --batch_size=* | --steps=* | --warmup=* | --repeats=* | --threads=*) pass+=("$arg") ;;
    -h | --help) usage; exit 0 ;;
    *) echo "all.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done
q=()
[ "$quick" = 0 ] || q=(--quick)
step() { echo; echo "######## $*"; }

if [ "$deps" = 1 ]; then
    step "make deps"
    make deps
    if [ "$peers" = 1 ] && ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
        step "installing the PyTorch peer (Debian: python3-torch python3-torchvision)"
        sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-torch python3-torchvision; }; then
            echo "all.sh: could not install python3-torch; the PyTorch comparison will be skipped" >&2
        fi
    fi
fi

step "bench/compare_builds.sh ${q[*]} ${pass[*]}"
bench/compare_builds.sh --out="$out" "${q[@]}" "${pass[@]}"

if [ "$peers" = 1 ]; then
    step "bench/peers.sh ${q[*]} ${pass[*]}"
    # peers.sh knows only vgg_16 and resnet_v1_50; --quick picks a small resnet_v1_50 run itself.
    bench/peers.sh --out="$out" --no-build "${q[@]}" "${pass[@]}"
fi

if [ "$kernels" = 1 ]; then
    # two rounds: a burst of load from another tenant of a shared host then costs one visit of
    # a layer, not its figure (a quick run is one round anyway)
    step "build/native/bench/kernels --rounds=2 ${q[*]}"
    build/native/bench/kernels --csv="$out/kernels_native.csv" --rounds=2 "${q[@]}"
    # the avx2 and native builds, layer by layer (built already unless --variants left one
    # out); on a CPU without AVX2 there is no pair to compare
    if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
        step "bench/compare_kernels.sh ${q[*]}"
        bench/compare_kernels.sh --out="$out" "${q[@]}"
    else
        echo "all.sh: skipping bench/compare_kernels.sh: this CPU has no AVX2" >&2
    fi
fi

if [ "$scaling" = 1 ] && [ -x bench/scaling.sh ] && command -v mpirun >/dev/null; then
    # bench/scaling.sh writes into results/ itself; its quick form is a small lenet run
    if [ "$quick" = 1 ]; then
        step "bench/scaling.sh --quick"
        bench/scaling.sh --quick
    else
        step "bench/scaling.sh"
        bench/scaling.sh
    fi
fi

step "build/native/bench/convert ${q[*]}"
build/native/bench/convert --csv="$out/convert.csv" "${q[@]}"

step "bench/report"
bench/report --results="$out"
