#!/usr/bin/env bash
# t_live_lockstep.sh — live play end to end in lockstep (Dolphin's BlockingPipes), 127.0.0.1 only:
# `cphil fake-dolphin --lockstep` serves a game; `cphil play --blocking` drives a deterministic
# policy (trained here for a moment on `cphil synth` games) through the spectator stream and the
# controller FIFO; tests/py/live_check.py then checks that the pad state Dolphin would read for
# frame N+1 equals what `cphil play-replay --decide first --log` decides at frame N, on every
# frame, with exactly one FLUSH per bookend (rollback re-sends included), after Game Start and per
# menu frame (the synth game is preceded by 8 menu frames).
# Games: a synth game (always), and from the shared replays (CPHIL_REPLAYS) a local game, an
# online game with rollbacks and a game with items; each missing replay is named and skipped.
# The rollback game runs twice: an MLP (window mode, deterministic) and a GRU in stream mode with
# seeded sampling, whose recurrent state and random draws would diverge for good if a frame were
# fed twice or lost.
set -u
BIN=${CPHIL_BIN:-${CPHIL_BUILD:-build/rel}/cphil}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "needs /usr/bin/python3 to compare the logs"; exit 77; }
REPLAYS=${CPHIL_REPLAYS:-../shared/replays}
T=${CPHIL_TEST_TMP:-/tmp}/t_live_lockstep.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$BIN" synth --games 3 --out "$T/r" --seed 11 --max-seconds 8 --quiet >/dev/null || fail "synth"
"$BIN" train --replays "$T/r" --backbone mlp --hidden 32 --epochs 1 --precision f32 --out "$T" --name p --quiet \
    >/dev/null || fail "train"
POL="$T/p_policy.safetensors"
# a recurrent policy in stream mode: a frame fed twice (or lost) changes its state for good
"$BIN" train --replays "$T/r" --backbone gru --hidden 32 --window-size 16 --stride 4 --num-layers 1 --batch-size 4 \
    --epochs 1 --precision f32 --out "$T" --name g --quiet >/dev/null || fail "train gru"
PORT=$((20000 + $$ % 20000))
status=0
run_one() { # name replay port-of-the-bot [extra fake args]; POLICY/MODE from the environment
  local name=$1 rep=$2 bot=$3; shift 3
  local pol=${POLICY:-$POL} mode=${MODE:-window} pick=(--deterministic)
  [ -n "${SEED:-}" ] && pick=(--seed "$SEED") # seeded sampling: the same frames give the same draws
  local d="$T/$name"; mkdir -p "$d/U"
  PORT=$((PORT + 1))
  timeout 120 "$BIN" fake-dolphin --replay "$rep" --port $PORT --lockstep --user-dir "$d/U" --pipe-port "$bot" \
      --record "$d/rec.jsonl" --json --quiet --wait-client 20 "$@" > "$d/fake.json" 2> "$d/fake.err" &
  local fpid=$!
  timeout 120 "$BIN" play --policy "$pol" --mode $mode --port "$bot" --address 127.0.0.1:$PORT --dolphin-user-dir "$d/U" \
      "${pick[@]}" --blocking --games 1 --log "$d/live.jsonl" --connect-timeout 20 --quiet 2> "$d/play.err"
  local prc=$?
  wait $fpid; local frc=$?
  "$BIN" play-replay --policy "$pol" --mode $mode --port "$bot" "${pick[@]}" --decide first --log "$d/ref.jsonl" "$rep" \
      > /dev/null 2> "$d/ref.err" || { echo "$name: play-replay failed: $(cat "$d/ref.err")"; status=1; return; }
  if [ $prc -ne 0 ] || [ $frc -ne 0 ]; then
    echo "$name: play exit $prc, fake-dolphin exit $frc"; cat "$d/play.err" "$d/fake.err" "$d/fake.json"; status=1; return
  fi
  echo "$name ($(basename "$rep"), bot on port $bot, $(basename "$pol") in $mode mode, ${pick[*]}):"
  "$PY" "$(dirname "$0")/py/live_check.py" "$d/fake.json" "$d/rec.jsonl" "$d/live.jsonl" "$d/ref.jsonl" || status=1
}
run_one synth+menus "$T/r/synth_0000.slp" 1 --menu-frames 8
for spec in "local:slippi-js/consistencyTest/KirbyVMario-nB.slp:1" \
            "online-rollback:slippi-js/rollbackFrameTest.slp:1" \
            "items:slippi-js/consistencyTest/DKVBows-nB.slp:2"; do
  IFS=: read -r name rel bot <<< "$spec"
  if [ -f "$REPLAYS/$rel" ]; then run_one "$name" "$REPLAYS/$rel" "$bot"
  else echo "$name: SKIP, needs the shared replay $REPLAYS/$rel (set CPHIL_REPLAYS)"; fi
done
rel=slippi-js/rollbackFrameTest.slp
if [ -f "$REPLAYS/$rel" ]; then POLICY="$T/g_policy.safetensors" MODE=stream SEED=7 run_one online-rollback-gru "$REPLAYS/$rel" 1
else echo "online-rollback-gru: SKIP, needs the shared replay $REPLAYS/$rel (set CPHIL_REPLAYS)"; fi
# examples/live_bot.c (the C API around cphil_agent_step) plays the synth game in lockstep: every
# wait answered once.
EX=$(dirname "$BIN")/examples/live_bot
if [ -x "$EX" ]; then
  d="$T/example"; mkdir -p "$d/U"; PORT=$((PORT + 1))
  timeout 60 "$BIN" fake-dolphin --replay "$T/r/synth_0000.slp" --port $PORT --lockstep --user-dir "$d/U" --json \
      --quiet --wait-client 20 > "$d/fake.json" 2> "$d/fake.err" &
  fpid=$!
  timeout 60 "$EX" "$POL" "$d/U/Pipes/slippibot1" 127.0.0.1 $PORT > "$d/ex.out" 2> "$d/ex.err"; erc=$?
  wait $fpid; frc=$?
  if [ $erc -ne 0 ] || [ $frc -ne 0 ] || ! "$PY" -c 'import json,sys; f=json.load(open(sys.argv[1])); sys.exit(0 if f["flushes"]==f["need_inputs"]>600 and f["invalid_lines"]==0 else 1)' "$d/fake.json"; then
    echo "example: live_bot exit $erc, fake exit $frc"; cat "$d/ex.out" "$d/ex.err" "$d/fake.json"; status=1
  else echo "example: $(cat "$d/ex.out"); $(cut -c1-150 "$d/fake.json")"; fi
else echo "example: SKIP, $EX not built"; fi
exit $status
