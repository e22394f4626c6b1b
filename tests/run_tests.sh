#!/usr/bin/env bash
# Runs every cmocka test program of one build (build/<variant>/tests/test_*) from the repository
# root, collects cmocka's own summaries, and ends with "<variant>: N passed, N failed".
# A program that crashes or exits non-zero without a cmocka failure count counts as one failure.
set -u
builddir=${1:?usage: run_tests.sh build/<variant>}
variant=$(basename "$builddir")
export SB_BIN_DIR="$builddir/bin" SB_REF_DIR="tests/reference" SB_BUILD_DIR="$builddir"
export CMOCKA_MESSAGE_OUTPUT=stdout
passed=0 failed=0 failed_progs=()
logdir="$builddir/test-logs"; mkdir -p "$logdir"
for t in "$builddir"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  start=$(date +%s)
  timeout "${SB_TEST_TIMEOUT:-900}" "$t" > "$logdir/$name.log" 2>&1
  rc=$?
  p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$logdir/$name.log" | awk '{s+=$NF} END {print s+0}')
  f=$(grep -Eo '^\[  FAILED  \] [0-9]+ test' "$logdir/$name.log" | awk '{s+=$(NF-1)} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  printf '%-28s %4d passed %3d failed  (%ds)\n' "$name" "$p" "$f" "$(( $(date +%s) - start ))"
  if [ "$f" -ne 0 ]; then
    failed_progs+=("$name")
    echo "---- $name (exit $rc) ----"; tail -n 60 "$logdir/$name.log"; echo "----"
  fi
done
echo "$passed passed $failed failed" > "$builddir/test-summary.txt"
echo "$variant: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ $((passed + failed)) -gt 0 ]
