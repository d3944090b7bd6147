#!/usr/bin/env bash
# gpu_train.sh — cphil's GPU training step against PyTorch's on the same card, in one command:
# bench/cuda/bench_train_gpu (cphil) then bench/torch_train_gpu.py (PyTorch 2.x: cuDNN LSTM/GRU,
# SDPA attention, Mamba in plain PyTorch eager and compiled, fused AdamW, bf16 autocast), and a
# table of frames/s with the ratio cphil / best PyTorch row per backbone and batch.
# Needs `make CUDA=1 bench` first and a python3 with torch and a GPU.
#   bench/gpu_train.sh [OUT_DIR]    (JSON lines in OUT_DIR/cphil.jsonl, OUT_DIR/torch.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/cuda/bench-out}
mkdir -p "$OUT"
BACKBONES=${BACKBONES:-lstm,gru,mamba,attention,mlp}
BATCHES=${BATCHES:-64,512}
PREC=${PREC:-bf16}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv,noheader || true
# the trainer's path end to end needs a dataset: synthetic games (enough windows at stride 2)
DS=$(mktemp -d); trap 'rm -rf "$DS"' EXIT
build/cuda/cphil synth --games "${GAMES:-30}" --out "$DS/r" --seed 1 --quiet
build/cuda/cphil dataset --replays "$DS/r" --out "$DS/d.ds" --quiet >/dev/null
build/cuda/bench/cuda/bench_train_gpu --backbones "$BACKBONES" --batches "$BATCHES" --precision "$PREC" \
    --steps "${STEPS:-30}" --data "$DS/d.ds" | tee "$OUT/cphil.jsonl"
python3 bench/torch_train_gpu.py --backbones "$BACKBONES" --batches "$BATCHES" --precision "$PREC" \
    --modes "${MODES:-eager,compile,graph}" --inputs "${INPUTS:-gather,dense}" --steps "${STEPS:-30}" \
    | tee "$OUT/torch.jsonl"
python3 - "$OUT/cphil.jsonl" "$OUT/torch.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.strip()]
c = {(r['backbone'], r['batch']): r for r in rows if r.get('side') == 'cphil' and 'frames_per_s' in r}
dd = {(r['backbone'], r['batch']): r for r in rows if r.get('side') == 'cphil' and r.get('data')}
t = {}
for r in rows:
    if r.get('side') == 'pytorch' and 'frames_per_s' in r:
        t.setdefault((r['backbone'], r['batch']), []).append(r)
print('\n| backbone | batch | cphil frames/s (step ms, p90) | staged + step, serial / loader thread | dataset end to end, serial / loader thread | cphil GPU MiB | best PyTorch (mode, input) frames/s | PyTorch peak MiB | ratio |')
print('|---|---|---|---|---|---|---|---|---|')
for k in sorted(c, key=lambda k: (k[0], k[1])):
    r = c[k]
    best = max(t.get(k, []), key=lambda x: x['frames_per_s'], default=None)
    bt = '%.0f (%s, %s)' % (best['frames_per_s'], best['mode'], best['input']) if best else '-'
    e = dd.get(k, {})
    print('| %s | %d | %.0f (%.3f, %.3f) | %.0f / %.0f | %.0f / %.0f | %.0f | %s | %s | %s |' % (
        k[0], k[1], r['frames_per_s'], r['step_ms'], r['p90_ms'], r['e2e_frames_per_s'], r['overlap_frames_per_s'],
        e.get('data_serial_frames_per_s', -1), e.get('data_loader_frames_per_s', -1), r['device_mib'], bt,
        '%.0f' % best['peak_mib'] if best else '-', '%.1fx' % (r['frames_per_s'] / best['frames_per_s']) if best else '-'))
print('\nevery PyTorch row:')
for k in sorted(t):
    for r in t[k]:
        print('  %-9s B=%-4d %-7s %-6s %10.0f frames/s  step %.3f ms  peak %.0f MiB  warmup/compile %.1fs' % (
            k[0], k[1], r['mode'], r['input'], r['frames_per_s'], r['step_ms'], r['peak_mib'], r['warmup_s']))
PY
