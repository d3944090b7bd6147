#!/usr/bin/env bash
# t_gpu_sanitizer.sh — compute-sanitizer memcheck and racecheck clean on a short GPU training run
# of each backbone (3 steps, small sizes; graphs off so each kernel is checked as launched). bf16, so
# the LSTM (hidden 32) and the GRU at hidden 128 run the weights-resident recurrence
# (cu_rnn_persist.cu), the GRU at hidden 32 the per-step one.
set -u
[ "${CPHIL_SANITIZER:-1}" = 0 ] && { echo "CPHIL_SANITIZER=0"; exit 77; }
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
[ -x "$CS" ] || { echo "compute-sanitizer not found"; exit 77; }
BIN=${CPHIL_BIN:-build/cuda/cphil}
T=${CPHIL_TEST_TMP:-/tmp}/t_gpu_san.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
"$BIN" synth --games 3 --out "$T/r" --seed 4 --quiet >/dev/null || { echo "synth failed"; exit 1; }
status=0
for run in mlp lstm gru gru:128 mamba attention; do
  bb=${run%%:*}; hid=32; [ "$run" != "$bb" ] && hid=${run#*:}
  extra=(--hidden $hid --window-size 8 --num-layers 2 --batch-size 4 --state-size 4 --num-heads 2)
  [ $bb = mlp ] && extra=(--hidden 32,32 --batch-size 8)
  for tool in memcheck racecheck; do
    CPHIL_CUDA_GRAPH=0 "$CS" --tool $tool --error-exitcode 9 "$BIN" train --replays "$T/r" --backbone $bb \
        "${extra[@]}" --max-steps 3 --epochs 1 --device cuda --out "$T/$bb" --quiet >"$T/log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then echo "$run $tool: exit $rc"; tail -30 "$T/log"; status=1; else echo "$run $tool: clean"; fi
  done
done
exit $status
