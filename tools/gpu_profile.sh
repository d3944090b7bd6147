#!/usr/bin/env bash
# gpu_profile.sh — where a GPU training step spends its time, per kernel: Nsight Compute (ncu,
# one metric: gpu__time_duration, clocks left alone) over a few steps of bench_train_gpu, then a
# table of kernels by their share of the total GPU time. Needs a GPU, ncu on PATH and
# `make CUDA=1 bench`. Kernels inside the step's CUDA graph are profiled node by node.
#   tools/gpu_profile.sh BACKBONE BATCH [PRECISION] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bb=${1:?backbone}; B=${2:?batch}; prec=${3:-bf16}; out=${4:-build/cuda/profile}
mkdir -p "$out"
csv="$out/ncu_${bb}_${B}_${prec}.csv"
ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    build/cuda/bench/cuda/bench_train_gpu --backbones "$bb" --batches "$B" --precision "$prec" \
    --warmup 1 --steps 2 > "$csv" 2> "$out/ncu_${bb}_${B}_${prec}.err"
python3 - "$csv" "$bb" "$B" "$prec" <<'PY'
import csv, sys, collections
path, bb, B, prec = sys.argv[1:]
lines = [l for l in open(path) if l.startswith('"')]
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in csv.DictReader(lines):
    if r.get('Metric Name') != 'gpu__time_duration.sum':
        continue
    name = r['Kernel Name'].split('(')[0][:70]
    tot[name] += float(r['Metric Value'].replace(',', '')); cnt[name] += 1
allt = sum(tot.values())
print('%s B=%s %s: %d kernels, %.3f ms of GPU time in all' % (bb, B, prec, sum(cnt.values()), allt / 1e6))
for n, t in sorted(tot.items(), key=lambda kv: -kv[1])[:25]:
    print('  %5.1f%%  %9.1f us  x%-5d %s' % (100 * t / allt, t / 1e3, cnt[n], n))
PY
