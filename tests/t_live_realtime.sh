#!/usr/bin/env bash
# t_live_realtime.sh — live play at Dolphin's pace (no BlockingPipes), 127.0.0.1 only: the fake
# Dolphin sends one frame every 1/59.94 s; `cphil play` must answer every frame in time over the
# whole game: 0 late (answer more than 12 ms after the bookend arrived, or, as the fake sees it,
# not there when the next frame is due) and 0 missed (a frame's write skipped because newer
# frames were already waiting). With every frame answered the pad states line up one to one, so
# tests/py/live_check.py also holds. Timing asserted here is the frame deadline of the game
# itself (16.7 ms), not a benchmark figure. play runs with --warm-us 3000 (the weights read and
# the connection polled from 3 ms before each frame is due), so that path is exercised too.
set -u
BIN=${CPHIL_BIN:-${CPHIL_BUILD:-build/rel}/cphil}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "needs /usr/bin/python3 to compare the logs"; exit 77; }
T=${CPHIL_TEST_TMP:-/tmp}/t_live_realtime.$$
mkdir -p "$T/U"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$BIN" synth --games 2 --out "$T/r" --seed 9 --max-seconds 4 --quiet >/dev/null || fail "synth"
"$BIN" train --replays "$T/r" --backbone mlp --hidden 32 --epochs 1 --precision f32 --out "$T" --name p --quiet \
    >/dev/null || fail "train"
POL="$T/p_policy.safetensors"
REP="$T/r/synth_0000.slp"
PORT=$((20000 + ($$ * 13) % 20000))
"$BIN" play-replay --policy "$POL" --port 1 --deterministic --decide first --log "$T/ref.jsonl" "$REP" >/dev/null \
    || fail "play-replay"
# A machine shared with parallel builds can stall a process for longer than a frame; such a run
# is reported and tried again (3 runs at most): the claim is that the bot keeps up, not that the
# scheduler never interferes.
for attempt in 1 2 3; do
  PORT=$((PORT + 1)); rm -rf "$T/U"; mkdir -p "$T/U"
  timeout 60 "$BIN" fake-dolphin --replay "$REP" --port $PORT --realtime --user-dir "$T/U" --record "$T/rec.jsonl" \
      --json --quiet --wait-client 20 > "$T/fake.json" 2> "$T/fake.err" &
  fpid=$!
  timeout 60 "$BIN" play --policy "$POL" --port 1 --address 127.0.0.1:$PORT --dolphin-user-dir "$T/U" --deterministic \
      --games 1 --log "$T/live.jsonl" --connect-timeout 20 --warm-us 3000 --json > "$T/play.json" 2> "$T/play.err"
  prc=$?
  wait $fpid; frc=$?
  [ $prc -eq 0 ] && [ $frc -eq 0 ] || { cat "$T/play.err" "$T/fake.err"; fail "play exit $prc, fake-dolphin exit $frc"; }
  if "$PY" - "$T/play.json" "$T/fake.json" "$attempt" <<'PYEOF'
import json, sys
g = json.loads(open(sys.argv[1]).readline()); f = json.load(open(sys.argv[2]))
print("  run %s: %d bookends in %.1f s: play late %d, missed %d; fake Dolphin late %d; bookend to write p50 %.0f us, "
      "p99 %.0f us" % (sys.argv[3], g["bookends"], f["seconds"], g["late"], g["missed"], f["late"], g["write_p50_us"],
                       g["write_p99_us"]))
ok = g["end"] == "ended" and g["late"] == 0 and g["missed"] == 0 and f["late"] == 0 and g["bookends"] == f["bookends"] > 300
sys.exit(0 if ok else 1)
PYEOF
  then
    exec "$PY" "$(dirname "$0")/py/live_check.py" "$T/fake.json" "$T/rec.jsonl" "$T/live.jsonl" "$T/ref.jsonl"
  fi
done
fail "late or missed frames in 3 runs"
