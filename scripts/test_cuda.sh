#!/usr/bin/env bash
# The GPU tests (needs an NVIDIA GPU and CUDA 13 at /usr/local/cuda): builds `make CUDA=1`, then
#   - every GPU kernel and whole policy against its CPU twin (build/cuda/tests/cuda/test_*),
#   - the GPU command line (tests/cuda/t_*.sh): train/resume across devices, errors, learning,
#   - compute-sanitizer memcheck and racecheck on a short `cphil train --device cuda` per backbone
#     (CPHIL_SANITIZER=0 skips them),
# and ends with the line "N passed, N failed". scripts/test.sh calls this when it finds a GPU, and
# without one with CPHIL_CUDA_HOST_ONLY=1: the test binaries only (their host-side tests run, the
# rest skip), none of the command-line scripts.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
# CPHIL_PREBUILT=1: use the build/cuda already there (a GPU machine without the build tools)
if [ "${CPHIL_PREBUILT:-0}" != 1 ] && ! make -j"$jobs" CUDA=1 test-bin bench >build-cuda.log 2>&1; then
  tail -40 build-cuda.log; echo "CUDA build failed"; echo "0 passed, 1 failed"; exit 1
fi
rm -f build-cuda.log
export CPHIL_BUILD=build/cuda CPHIL_BIN=build/cuda/cphil
export CPHIL_TEST_TMP=${CPHIL_TEST_TMP:-build/cuda/test-tmp}
mkdir -p "$CPHIL_TEST_TMP"
pass=0; fail=0; skip=0; failed=()
for t in build/cuda/tests/cuda/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t"); echo "== $name"
  out=$("$t" 2>&1); rc=$?
  echo "$out" | grep -v '^# passed='
  sum=$(echo "$out" | grep '^# passed=' | tail -1)
  if [ -z "$sum" ]; then echo "FAIL $name: crashed (rc=$rc)"; fail=$((fail+1)); failed+=("$name"); continue; fi
  p=$(echo "$sum" | sed 's/.*passed=\([0-9]*\).*/\1/'); f=$(echo "$sum" | sed 's/.*failed=\([0-9]*\).*/\1/')
  s=$(echo "$sum" | sed 's/.*skipped=\([0-9]*\).*/\1/')
  pass=$((pass+p)); fail=$((fail+f)); skip=$((skip+s))
  [ "$f" -ne 0 ] || [ "$rc" -ne 0 ] && failed+=("$name")
done
for t in tests/cuda/t_*.sh; do
  [ -f "$t" ] && [ "${CPHIL_CUDA_HOST_ONLY:-0}" != 1 ] || continue
  name=$(basename "$t" .sh); echo "== $name"
  out=$(bash "$t" 2>&1); rc=$?
  echo "$out" | tail -n 60
  if [ $rc -eq 0 ]; then echo "PASS $name"; pass=$((pass+1));
  elif [ $rc -eq 77 ]; then echo "SKIP $name"; skip=$((skip+1));
  else echo "FAIL $name (exit $rc)"; fail=$((fail+1)); failed+=("$name"); fi
done
[ ${#failed[@]} -gt 0 ] && echo "failing: ${failed[*]}"
[ $skip -gt 0 ] && echo "($skip skipped)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
