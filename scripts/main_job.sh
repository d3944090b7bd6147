#!/usr/bin/env bash
# The README's main job: install what is missing, build, then run the whole pipeline —
# replays -> train a small policy -> quantize it to int8 -> bench it -> play a held-out replay
# with it as if live — printing the latency table, the agreement figures and where each file went.
#
#   scripts/main_job.sh                    built-in data: synthetic replays of a scripted game
#   scripts/main_job.sh DIR_OR_SLP ...     your replays (folders are searched recursively)
#
# Environment: OUT (output folder, default out/main_job), EPOCHS, BACKBONE (default mamba).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
make -j"$(nproc 2>/dev/null || echo 2)" build/rel/cphil >/dev/null
CPHIL=$PWD/build/rel/cphil
OUT=${OUT:-out/main_job}
BACKBONE=${BACKBONE:-mamba}
mkdir -p "$OUT"
step() { printf '\n=== %s\n' "$*"; }
t_start=$(date +%s)

# 1. Replays: the ones given (linked into one folder so train and eval see them all), or built-in.
REPLAYS=$OUT/replays
rm -rf "$REPLAYS"; mkdir -p "$REPLAYS"
if [ $# -eq 0 ]; then
  step "1/6 no replays given: synthesizing 24 games of the scripted two-player game (cphil synth)"
  "$CPHIL" synth --games 24 --out "$REPLAYS" --seed 1 --max-seconds 40 --quiet
  EPOCHS=${EPOCHS:-4}
else
  step "1/6 using the replays given"
  n=0
  for a in "$@"; do
    if [ -d "$a" ]; then
      while IFS= read -r f; do n=$((n+1)); ln -sf "$(realpath "$f")" "$REPLAYS/$(printf '%05d' $n)_$(basename "$f")"; done \
        < <(find "$a" -name '*.slp' | sort)
    elif [ -f "$a" ]; then n=$((n+1)); ln -sf "$(realpath "$a")" "$REPLAYS/$(printf '%05d' $n)_$(basename "$a")"
    else echo "main job: '$a' is neither a file nor a folder" >&2; exit 2; fi
  done
  [ $n -gt 0 ] || { echo "main job: no .slp files in $*" >&2; exit 2; }
  echo "$n replay files"
  EPOCHS=${EPOCHS:-2}
fi
"$CPHIL" inspect "$REPLAYS"/*.slp | tail -n 4

# 2. Train a small temporal policy, holding out files for validation.
step "2/6 training a small $BACKBONE policy (cphil train, held-out files for validation)"
"$CPHIL" train --replays "$REPLAYS" --backbone "$BACKBONE" --hidden 64 --window-size 30 --num-layers 2 \
  --state-size 8 --epochs "$EPOCHS" --batch-size 32 --stride 10 --lr 0.003 --warmup-steps 20 \
  --val-split 0.2 --prev-action --out "$OUT" --name policy
POLICY=$OUT/policy_policy.safetensors

# 3. Held-out accuracy beside the baselines.
step "3/6 held-out accuracy (cphil eval) beside most-frequent and repeat-previous baselines"
"$CPHIL" eval --policy "$POLICY" --replays "$REPLAYS" --val-split 0.2

# 4. Quantize to int8 (dynamic), with agreement against the f32 policy.
step "4/6 quantizing to int8 (cphil quantize --mode dynamic)"
"$CPHIL" quantize --policy "$POLICY" --mode dynamic --calibration "$REPLAYS" --output "$OUT/policy_int8.safetensors"

# 5. Latency of this policy per decision, f32 and int8, window and stream.
step "5/6 decision latency (cphil bench, one core)"
"$CPHIL" bench --policy "$POLICY" --seconds 0.3
"$CPHIL" bench --policy "$OUT/policy_int8.safetensors" --seconds 0.3

# 6. Play one replay as if live with the int8 agent.
step "6/6 playing a replay as if live (cphil play-replay, int8, stream mode)"
last=$(ls "$REPLAYS"/*.slp | tail -n 1)
"$CPHIL" play-replay --policy "$OUT/policy_int8.safetensors" --port 1 --mode stream --deterministic "$last"

step "done in $(( $(date +%s) - t_start )) s; files:"
ls -l "$OUT" | sed 1d | grep -v '^d' | awk '{print "  '"$OUT"'/" $NF}'
echo "  $REPLAYS/ (the replays used)"
