#!/usr/bin/env bash
# t_gpu_nccl.sh — the GPU ranks' gradient exchange (docs/distributed.md) with one GPU: a run
# through the full NCCL path at world size 1 (CPHIL_GPU_NCCL=1: ncclCommInitRank, the weight-share
# scale and ncclAllReduce inside the step's CUDA graph, the polling wait) ends with the plain GPU
# trainer's policy bit for bit, per backbone, in f32 and bf16, with the exchange after the backward
# and in small buckets overlapped with it (CPHIL_GPU_BUCKET_MB); so does `mpirun -np 1` (the MPI
# rendezvous of the ncclUniqueId) and `--gpus 1` (cphil starting its rank through mpirun) when
# mpirun is here and this cphil has MPI compiled in (the GPU machine's image may lack Open MPI's
# headers, so its build is MPI=0; then those two are skipped, with a note).
set -u
BIN=${CPHIL_BIN:-build/cuda/cphil}
case "$BIN" in /*) ;; *) BIN=$PWD/$BIN ;; esac
T=${CPHIL_TEST_TMP:-/tmp}/t_gpu_nccl.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
have_mpi=0
command -v mpirun >/dev/null 2>&1 && "$BIN" version | grep -q "^mpi: compiled in" && have_mpi=1
[ "$have_mpi" = 1 ] || echo "note: no mpirun, or no MPI in this cphil: the --gpus 1 and mpirun -np 1 runs are skipped"
"$BIN" synth --games 4 --out "$T/r" --seed 3 --quiet >/dev/null || fail synth
"$BIN" dataset --replays "$T/r" --out "$T/d.ds" --quiet >/dev/null 2>&1 || fail dataset
for prec in f32 bf16; do
  for bb in mlp lstm gru mamba attention; do
    args=(--data "$T/d.ds" --backbone "$bb" --hidden 32 --window-size 16 --num-layers 1 --batch-size 8 --epochs 1
          --max-steps 12 --precision "$prec" --seed 5 --quiet --device cuda --out "$T")
    "$BIN" train "${args[@]}" --name "plain_${bb}_$prec" || fail "$bb $prec: plain GPU run"
    CPHIL_GPU_NCCL=1 CPHIL_GPU_BUCKET_MB=0 "$BIN" train "${args[@]}" --name "nccl_${bb}_$prec" || fail "$bb $prec: NCCL run"
    cmp "$T/plain_${bb}_${prec}_policy.safetensors" "$T/nccl_${bb}_${prec}_policy.safetensors" \
      || fail "$bb $prec: the one-rank NCCL path differs from the plain GPU trainer"
    # buckets of 16 KiB: one exchange per stage of the backward, on the second stream
    CPHIL_GPU_NCCL=1 CPHIL_GPU_BUCKET_MB=0.015625 "$BIN" train "${args[@]}" --name "bkt_${bb}_$prec" \
      || fail "$bb $prec: NCCL run with buckets"
    cmp "$T/plain_${bb}_${prec}_policy.safetensors" "$T/bkt_${bb}_${prec}_policy.safetensors" \
      || fail "$bb $prec: the bucketed one-rank NCCL exchange differs from the plain GPU trainer"
    if [ "$have_mpi" = 1 ]; then
      "$BIN" train "${args[@]}" --gpus 1 --name "gpus_${bb}_$prec" || fail "$bb $prec: --gpus 1"
      cmp "$T/plain_${bb}_${prec}_policy.safetensors" "$T/gpus_${bb}_${prec}_policy.safetensors" \
        || fail "$bb $prec: --gpus 1 (cphil starting its own rank through mpirun) differs from the plain GPU trainer"
      mpirun --allow-run-as-root -np 1 "$BIN" train "${args[@]}" --name "mpi_${bb}_$prec" || fail "$bb $prec: mpirun -np 1"
      cmp "$T/plain_${bb}_${prec}_policy.safetensors" "$T/mpi_${bb}_${prec}_policy.safetensors" \
        || fail "$bb $prec: mpirun -np 1 differs from the plain GPU trainer"
    fi
  done
done
echo "NCCL path at world size 1: bit-identical to the plain GPU trainer, with and without buckets (mlp, lstm, gru, mamba, attention; f32, bf16)"
