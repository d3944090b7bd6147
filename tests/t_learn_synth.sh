#!/usr/bin/env bash
# t_learn_synth.sh — learning, shown on synthetic replays whose scripted players follow a known
# rule of the game state (cphil synth, docs/data.md): every backbone, trained briefly on 8 games,
# matches the rule (all six heads right) on >= 95% of the frames of 2 held-out games.
# Reduced sizes to keep CI short; the full figure is in docs/training.md. Under the sanitizer
# build (slow) only the MLP runs: there the point is memory safety of the whole pipeline.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "needs /usr/bin/python3 to read the JSON"; exit 77; }
T=${CPHIL_TEST_TMP:-/tmp}/t_learn_synth.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "$*"; exit 1; }
"$BIN" synth --games 10 --out "$T/r" --seed 7 --max-seconds 30 --quiet >/dev/null || fail "synth failed"
tmp=(--hidden 32 --window-size 16 --stride 4 --num-layers 1 --batch-size 4)
configs=("mlp --hidden 64,64 --batch-size 32"
         "lstm ${tmp[*]}"
         "gru ${tmp[*]}"
         "mamba ${tmp[*]} --state-size 8 --conv-size 4"
         "attention ${tmp[*]} --num-heads 2")
case "${CPHIL_BUILD:-}" in *san*) configs=("${configs[0]}") ;; esac
# CPHIL_TRAIN_DEVICE=cuda: the same on the GPU (tests/cuda/t_gpu_learn.sh)
status=0
for cfg in "${configs[@]}"; do
  set -- $cfg; bb=$1; shift
  t0=$(date +%s.%N)
  "$BIN" train --replays "$T/r" --backbone "$bb" "$@" --epochs 3 --lr 0.003 --warmup-steps 20 --val-split 0.2 \
      --precision f32 --out "$T" --name "$bb" --quiet ${CPHIL_TRAIN_DEVICE:+--device "$CPHIL_TRAIN_DEVICE"} \
      || fail "$bb: train failed"
  "$BIN" eval --policy "$T/${bb}_policy.safetensors" --replays "$T/r" --val-split 0.2 --json > "$T/$bb.json" \
      || fail "$bb: eval failed"
  t1=$(date +%s.%N)
  "$PY" - "$T/$bb.json" "$bb" "$t0" "$t1" <<'PYEOF' || status=1
import json, sys
d = json.load(open(sys.argv[1])); bb = sys.argv[2]
acc = d["action_acc"]["model"]
heads = " ".join("%s %.3f" % (h, v["model"]["acc"]) for h, v in d["heads"].items())
print("%-9s matches the rule on %.4f of %d held-out frames (%s; most-frequent %.3f, repeat %.3f) in %.1fs"
      % (bb, acc, d["frames"], heads, d["action_acc"]["most_frequent"], d["action_acc"]["repeat_prev"],
         float(sys.argv[4]) - float(sys.argv[3])))
sys.exit(0 if acc >= 0.95 and d["frames"] > 1000 else 1)
PYEOF
done
exit $status
