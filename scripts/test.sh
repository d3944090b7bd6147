#!/usr/bin/env bash
# The README's test command: install what is missing, build, and run every test twice — in the
# release build and under AddressSanitizer + UBSan — and the C tests a third time under the
# sanitizers on the scalar kernels. Ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs" test-bin >build.log 2>&1 || { tail -50 build.log; echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
make -j"$jobs" SAN=1 test-bin >>build.log 2>&1 || { tail -50 build.log; echo "sanitizer build failed"; echo "0 passed, 1 failed"; exit 1; }
# The CUDA variant (make CUDA=1) is compiled and linked wherever CUDA 13 is installed, GPU or
# not, so the GPU path cannot rot; its tests run where a GPU is found (scripts/test_cuda.sh), and
# elsewhere its test binaries run their host-side tests and skip the rest.
cuda_built=skip
if [ -x /usr/local/cuda/bin/nvcc ]; then
  if make -j"$jobs" CUDA=1 all bench >>build.log 2>&1; then cuda_built=ok
  else tail -50 build.log; echo "CUDA build failed"; cuda_built=fail; fi
fi
rm -f build.log
echo "### release build"
out_rel=$(CPHIL_BUILD=build/rel tests/run_tests.sh 2>&1); rc_rel=$?
echo "$out_rel"
echo "### AddressSanitizer + UBSan build"
out_san=$(CPHIL_BUILD=build/san CPHIL_SAN=1 tests/run_tests.sh 2>&1); rc_san=$?
echo "$out_san"
# The sanitizer build's C tests again on the scalar kernels: the SIMD tiers' masked loads and
# stores can hide an out-of-bounds access that the scalar code makes visible to ASan.
echo "### AddressSanitizer + UBSan build, CPHIL_ISA=scalar (C tests)"
out_sca=$(CPHIL_ISA=scalar CPHIL_TESTS_C_ONLY=1 CPHIL_BUILD=build/san CPHIL_SAN=1 CPHIL_TEST_TMP=build/san/test-tmp-scalar tests/run_tests.sh 2>&1); rc_sca=$?
echo "$out_sca"
out_cuda=""; rc_cuda=0
if [ "$cuda_built" = ok ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "### GPU tests (scripts/test_cuda.sh)"
  out_cuda=$(scripts/test_cuda.sh 2>&1); rc_cuda=$?
  echo "$out_cuda"
elif [ "$cuda_built" = ok ]; then
  # no GPU: the GPU test binaries still run their host-side tests (the id index) and skip the rest
  echo "### CUDA build: compiled and linked (build/cuda/cphil); no GPU here: host-side CUDA tests only"
  out_cuda=$(CPHIL_PREBUILT=1 CPHIL_CUDA_HOST_ONLY=1 scripts/test_cuda.sh 2>&1); rc_cuda=$?
  echo "$out_cuda"
fi
count() { echo "$1" | tail -1 | sed -n "s/^\([0-9]*\) passed, \([0-9]*\) failed$/\\$2/p"; }
p=$(( $(count "$out_rel" 1) + $(count "$out_san" 1) + $(count "$out_sca" 1) ))
f=$(( $(count "$out_rel" 2) + $(count "$out_san" 2) + $(count "$out_sca" 2) ))
[ $rc_rel -ne 0 ] && [ "$(count "$out_rel" 2)" = 0 ] && f=$((f+1))
[ $rc_san -ne 0 ] && [ "$(count "$out_san" 2)" = 0 ] && f=$((f+1))
[ $rc_sca -ne 0 ] && [ "$(count "$out_sca" 2)" = 0 ] && f=$((f+1))
if [ -n "$out_cuda" ]; then
  p=$(( p + $(count "$out_cuda" 1) )); f=$(( f + $(count "$out_cuda" 2) ))
  [ $rc_cuda -ne 0 ] && [ "$(count "$out_cuda" 2)" = 0 ] && f=$((f+1))
fi
[ "$cuda_built" = fail ] && f=$((f+1))
if [ "$cuda_built" = ok ]; then # the CUDA library's globals: cphil_ only (its kernels are file-local)
  echo "### CUDA build: library symbols (tests/t_lib_symbols.sh)"
  if CPHIL_BUILD=build/cuda tests/t_lib_symbols.sh; then p=$((p+1)); else f=$((f+1)); fi
fi
echo "$p passed, $f failed"
[ $f -eq 0 ]
