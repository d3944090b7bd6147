#!/usr/bin/env bash
# bench_live.sh — live-play latency: from a bookend's arrival (the network thread's receive) to
# the controller write() on the FIFO, p50 and p99, beside the decision (agent step) time, for an
# int8 stream policy of the seed's size (GRU, hidden 256, 2 layers, window 60; random-ish weights
# from one training step on synth games: latency does not depend on what the weights are).
# Runs cphil fake-dolphin + cphil play on 127.0.0.1: real time (60 fps, one game) and lockstep
# (every frame as fast as the two processes go). Not a test: nothing is asserted.
#   bench/bench_live.sh [BUILD_DIR] [REPLAY]     (default build/rel, a synth game)
set -eu
B=${1:-build/rel}
BIN=$B/cphil
T=$(mktemp -d /tmp/bench_live.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$BIN" synth --games 2 --out "$T/r" --seed 4 --max-seconds 20 --quiet >/dev/null
REP=${2:-$T/r/synth_0000.slp}
"$BIN" train --replays "$T/r" --backbone gru --hidden 256 --num-layers 2 --window-size 60 --batch-size 4 --stride 8 --epochs 1 \
    --stop-after-steps 1 --precision f32 --out "$T" --name gru --quiet >/dev/null 2>&1 || true
[ -f "$T/gru_policy.safetensors" ] || { echo "bench_live: training the policy failed" >&2; exit 1; }
"$BIN" quantize --policy "$T/gru_policy.safetensors" --mode dynamic --output "$T/gru_int8.safetensors" >/dev/null
PORT=$((30000 + $$ % 20000))
# realtime and lockstep as cphil play runs by default; "spin": real time with --spin-us 20000
# (the caller busy-waits for the next message instead of sleeping: a core for a faster wake-up);
# "warm": real time with --warm-us ${WARM_US:-2000} (the weights read into cache and the caller
# polling from that long before the next frame is due). RUNS picks some of them.
for run in ${RUNS:-realtime lockstep spin warm}; do
  pace=$run; spin=0; warm=0
  [ $run = spin ] && pace=realtime && spin=20000
  [ $run = warm ] && pace=realtime && warm=${WARM_US:-2000}
  PORT=$((PORT + 1)); mkdir -p "$T/$run"
  blk=""; [ $pace = lockstep ] && blk=--blocking
  timeout 300 "$BIN" fake-dolphin --replay "$REP" --port $PORT --$pace --user-dir "$T/$run" --json --quiet \
      > "$T/$run.fake" &
  timeout 300 "$BIN" play --policy "$T/gru_int8.safetensors" --mode stream --port 1 --address 127.0.0.1:$PORT \
      --dolphin-user-dir "$T/$run" --deterministic --games 1 $blk --spin-us $spin --warm-us $warm --json --quiet > "$T/$run.json"
  wait
  /usr/bin/python3 - "$T/$run.json" "$T/$run.fake" "$run" <<'PYEOF'
import json, sys
g = json.loads(open(sys.argv[1]).readline()); f = json.load(open(sys.argv[2]))
print("%-9s int8 gru stream: %5d frames | decision p50 %6.1f us p99 %6.1f us | bookend arrival to write p50 %6.1f us "
      "p99 %6.1f us max %7.1f us | without the step p50 %5.1f p99 %6.1f us | arrival to event p50 %5.1f p99 %6.1f us "
      "| late %d missed %d (fake: late %d)"
      % (sys.argv[3], g["bookends"], g["decision_p50_us"], g["decision_p99_us"], g["write_p50_us"], g["write_p99_us"],
         g["write_max_us"], g.get("overhead_p50_us", -1), g.get("overhead_p99_us", -1), g.get("handoff_p50_us", -1),
         g.get("handoff_p99_us", -1), g["late"], g["missed"], f["late"]))
PYEOF
done
