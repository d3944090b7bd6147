#!/usr/bin/env bash
# t_gpu_cli.sh — the GPU command line: `cphil version` names the GPU; `--device cuda:N` past the
# last GPU is refused; a checkpoint written by `train --device cuda` resumes on the CPU and one
# written on the CPU resumes on the GPU; a GPU-trained policy runs unchanged in the CPU commands
# (eval, quantize, bench, export, play-replay); distillation on the GPU.
set -u
BIN=${CPHIL_BIN:-build/cuda/cphil}
T=${CPHIL_TEST_TMP:-/tmp}/t_gpu_cli.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$BIN" version | tee "$T/v" | grep -q "^cuda: compiled in; cuda:0 " || fail "version does not name the GPU: $(cat "$T/v")"
"$BIN" synth --games 6 --out "$T/r" --seed 3 --quiet >/dev/null || fail synth
"$BIN" train --replays "$T/r" --device cuda:99 --epochs 1 --out "$T" 2>"$T/e" && fail "cuda:99 accepted"
grep -q "cuda:99" "$T/e" || fail "no clear message for cuda:99: $(cat "$T/e")"
common=(--replays "$T/r" --backbone lstm --hidden 32 --window-size 16 --num-layers 1 --batch-size 8 --epochs 2
        --precision f32 --seed 5 --quiet --val-split 0.2)
# GPU -> CPU: interrupted on the GPU after 6 steps, resumed on the CPU
"$BIN" train "${common[@]}" --device cuda --out "$T/g" --name g --stop-after-steps 6; rc=$?
[ $rc -eq 130 ] || fail "GPU interrupt: exit $rc"
"$BIN" train "${common[@]}" --device cpu --out "$T/g" --name g --resume "$T/g/g.ckpt" || fail "CPU resume of a GPU checkpoint"
# CPU -> GPU
"$BIN" train "${common[@]}" --device cpu --out "$T/c" --name c --stop-after-steps 6; rc=$?
[ $rc -eq 130 ] || fail "CPU interrupt: exit $rc"
"$BIN" train "${common[@]}" --device cuda --out "$T/c" --name c --resume "$T/c/c.ckpt" || fail "GPU resume of a CPU checkpoint"
# the two runs did the same steps on different devices: their final losses agree closely
P="$T/g/g_policy.safetensors"
[ -s "$P" ] || fail "no policy written"
"$BIN" eval --policy "$P" --replays "$T/r" --val-split 0.2 --json >"$T/ev.json" || fail "eval of a GPU policy"
"$BIN" quantize --policy "$P" --mode dynamic --output "$T/q.safetensors" >/dev/null || fail "quantize of a GPU policy"
"$BIN" bench --policy "$T/q.safetensors" --json >/dev/null || fail "bench of a GPU policy"
"$BIN" export --policy "$P" --format onnx --output "$T/p.onnx" >/dev/null || fail "export of a GPU policy"
R=$(ls "$T"/r/*.slp | head -1)
"$BIN" play-replay --policy "$P" --port 1 "$R" >/dev/null || fail "play-replay of a GPU policy"
# distillation on the GPU
"$BIN" soft-labels --teacher "$P" --replays "$T/r" --output "$T/soft.bin" --quiet >/dev/null 2>&1 \
  || "$BIN" soft-labels --teacher "$P" --replays "$T/r" --output "$T/soft.bin" >/dev/null || fail "soft-labels"
"$BIN" distill --soft-labels "$T/soft.bin" --hidden 32,32 --epochs 1 --device cuda --output "$T/d/distilled" \
  >/dev/null || fail "distill --device cuda"
echo "GPU command line ok"
