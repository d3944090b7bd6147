#!/usr/bin/env bash
# gpu_run.sh — everything worth running on a lent GPU machine, in one call, against a CUDA build
# made elsewhere (the GPU machine has no protobuf-c tools): the GPU tests (scripts/test_cuda.sh
# with CPHIL_PREBUILT=1), then the training benchmark beside PyTorch (bench/gpu_train.sh).
# Logs go to $OUT (or build/cuda/run-out). Each part is bounded with `timeout`.
# Here, before the call: `make CUDA=1 MPI=0 all bench` (the GPU machine has no Open MPI), copy the
# Debian libraries it lacks next to the build (mkdir -p build/cuda/lib; cp -L
# /usr/lib/x86_64-linux-gnu/{libprotobuf-c.so.1,libenet.so.7} build/cuda/lib/), and carry
# build/cuda/{cphil,tests/cuda,bench/cuda,lib}.
#   tools/gpu_run.sh [tests|bench|all]
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-build/cuda/run-out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/build/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} CPHIL_PREBUILT=1
what=${1:-all}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
date -u +%Y-%m-%dT%H:%MZ >> "$OUT/gpu.txt"
if [ "$what" = tests ] || [ "$what" = all ]; then
  timeout ${TEST_TIMEOUT:-420} scripts/test_cuda.sh > "$OUT/tests.log" 2>&1; echo "test_cuda.sh rc=$?"
  grep -E "^(FAIL|SKIP)|:[0-9]+: |rel diff|rel err|clean|exit|passed, " "$OUT/tests.log" | head -120
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  timeout ${BENCH_TIMEOUT:-400} bench/gpu_train.sh "$OUT" > "$OUT/bench.log" 2>&1; echo "gpu_train.sh rc=$?"
  sed -n '/^| backbone/,$p' "$OUT/bench.log" | head -60
fi
