#!/usr/bin/env bash
# t_live_faults.sh — live play under the fake Dolphin's fault switches (127.0.0.1 only, every
# process under `timeout`). In lockstep each case must still satisfy tests/py/live_check.py (the
# pad after frame N = the replay decision at N, one FLUSH per bookend: nothing lost, nothing
# doubled) and `cphil play` must say what happened:
#   kick (reconnect mid-game), pause longer than the client's ENet timeout, server restart on the
#   same port, zero-length / unknown-type / malformed JSON / bad base64 packets, undeclared
#   ("unknown") event codes in every frame, a menu frame inside a game_event, a truncated event;
# Dolphin at the menus without the menu gecko code (a hint naming it); a second client joining
# mid-game (catch-up from the game's start); Ctrl-C (clean exit, log kept); Dolphin closing mid-game (exit 1, clear message) and no Dolphin at all (exit 1, bounded).
set -u
BIN=${CPHIL_BIN:-${CPHIL_BUILD:-build/rel}/cphil}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "needs /usr/bin/python3 to compare the logs"; exit 77; }
T=${CPHIL_TEST_TMP:-/tmp}/t_live_faults.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$BIN" synth --games 2 --out "$T/r" --seed 5 --max-seconds 4 --quiet >/dev/null || fail "synth"
"$BIN" train --replays "$T/r" --backbone mlp --hidden 32 --epochs 1 --precision f32 --out "$T" --name p --quiet \
    >/dev/null || fail "train"
POL="$T/p_policy.safetensors"
REP="$T/r/synth_0000.slp"
"$BIN" play-replay --policy "$POL" --port 1 --deterministic --decide first --log "$T/ref.jsonl" "$REP" >/dev/null \
    || fail "play-replay"
PORT=$((20000 + ($$ * 7) % 20000))
status=0
# case name, expected text in play's stderr, fake args..., -- play args...
run_case() {
  local name=$1 want=$2; shift 2
  local fargs=() pargs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do fargs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  pargs=("$@")
  local d="$T/$name"; mkdir -p "$d/U"
  PORT=$((PORT + 1))
  timeout 60 "$BIN" fake-dolphin --replay "$REP" --port $PORT --lockstep --user-dir "$d/U" --record "$d/rec.jsonl" \
      --json --wait-client 20 "${fargs[@]}" > "$d/fake.json" 2> "$d/fake.err" &
  local fpid=$!
  timeout 60 "$BIN" play --policy "$POL" --port 1 --address 127.0.0.1:$PORT --dolphin-user-dir "$d/U" --deterministic \
      --blocking --games 1 --log "$d/live.jsonl" --connect-timeout 20 "${pargs[@]}" 2> "$d/play.err"
  local prc=$?
  wait $fpid; local frc=$?
  if [ $prc -ne 0 ] || [ $frc -ne 0 ]; then
    echo "$name: play exit $prc, fake-dolphin exit $frc"; cat "$d/play.err" "$d/fake.err"; status=1; return
  fi
  if ! grep -q -- "$want" "$d/play.err"; then
    echo "$name: play's messages lack '$want':"; cat "$d/play.err"; status=1; return
  fi
  echo "$name: '$(grep -m1 -o -- ".\{0,60\}$want.\{0,40\}" "$d/play.err")'"
  "$PY" "$(dirname "$0")/py/live_check.py" "$d/fake.json" "$d/rec.jsonl" "$d/live.jsonl" "$T/ref.jsonl" || status=1
}
run_case kick "resumed at cursor" --fault kick --fault-frame 50
run_case pause "resumed at cursor" --fault pause --pause-ms 2500 --fault-frame 50 -- --net-timeout 800
run_case restart "resumed at cursor" --fault restart --fault-frame 50 -- --net-timeout 800
run_case zero-length "zero-length packet" --fault zero-length
run_case unknown-type "unknown message type" --fault unknown-type
run_case bad-json "malformed JSON" --fault bad-json
run_case bad-base64 "not base64" --fault bad-base64
run_case unknown-event "unknown events skipped by size [1-9]" --fault unknown-event
run_case menu-in-game "menu frames inside games 1" --fault menu-in-game
run_case truncated "truncated event 0x39" --fault truncated
# at the menus for 6 s without menu frames (no gecko code): play names the code to enable
run_case no-menu-frames "Extract Menu Info" --start-delay 6

# Catch-up: a second client joining mid-game with cursor 0 (libmelee and slippi-js always do)
# gets the whole game from its start_game, then the live frames: its decisions (bot on port 2)
# equal play-replay's on every frame, though it answered the backlog late (missed > 0).
d="$T/catchup"; mkdir -p "$d/U/Pipes"; PORT=$((PORT + 1))
mkfifo "$d/U/Pipes/slippibot1" "$d/U/Pipes/slippibot2"
"$BIN" play-replay --policy "$POL" --port 2 --deterministic --decide first --log "$d/ref2.jsonl" "$REP" >/dev/null \
    || fail "play-replay port 2"
timeout 60 "$BIN" fake-dolphin --replay "$REP" --port $PORT --realtime --user-dir "$d/U" --json --quiet \
    --wait-client 20 > "$d/fake.json" 2> "$d/fake.err" &
fpid=$!
timeout 60 "$BIN" play --policy "$POL" --port 1 --address 127.0.0.1:$PORT --dolphin-user-dir "$d/U" --deterministic \
    --games 1 --connect-timeout 20 --quiet 2> "$d/p1.err" &
p1=$!
sleep 2.5
timeout 60 "$BIN" play --policy "$POL" --port 2 --address 127.0.0.1:$PORT --dolphin-user-dir "$d/U" --deterministic \
    --games 1 --connect-timeout 20 --json --log "$d/live2.jsonl" > "$d/p2.json" 2> "$d/p2.err"; rc2=$?
wait $p1; rc1=$?; wait $fpid; frc=$?
if [ $rc1 -ne 0 ] || [ $rc2 -ne 0 ] || [ $frc -ne 0 ]; then
  echo "catch-up: exits $rc1 $rc2 $frc"; cat "$d/p1.err" "$d/p2.err" "$d/fake.err"; status=1
elif ! "$PY" - "$d/live2.jsonl" "$d/ref2.jsonl" "$d/p2.json" <<'PYEOF'
import json, sys
strip = lambda l: {k: v for k, v in json.loads(l).items() if k != "latency_us"}
a = [strip(l) for l in open(sys.argv[1])]; b = [strip(l) for l in open(sys.argv[2])]
g = json.loads(open(sys.argv[3]).readline())
print("catch-up: the late client decided %d frames (%d missed while catching up), replay %d, equal: %s"
      % (len(a), g["missed"], len(b), a == b))
sys.exit(0 if a == b and g["missed"] > 0 else 1)
PYEOF
then status=1; fi

# Ctrl-C (SIGINT) mid-game: play stops cleanly (exit 0) and commits its log.
d="$T/sigint"; mkdir -p "$d/U"; PORT=$((PORT + 1))
timeout 60 "$BIN" fake-dolphin --replay "$REP" --port $PORT --realtime --user-dir "$d/U" --quiet --wait-client 20 \
    > /dev/null 2> "$d/fake.err" &
fpid=$!
timeout 60 "$BIN" play --policy "$POL" --port 1 --address 127.0.0.1:$PORT --dolphin-user-dir "$d/U" --deterministic \
    --log "$d/live.jsonl" --connect-timeout 20 2> "$d/play.err" &
ppid=$!
sleep 2.5; kill -INT $ppid; wait $ppid; prc=$?; wait $fpid
n=$(wc -l < "$d/live.jsonl" 2>/dev/null || echo 0)
if [ $prc -ne 0 ] || [ "$n" -lt 10 ] || ls "$d" | grep -q "live.jsonl.tmp"; then
  echo "Ctrl-C: exit $prc, $n log lines"; cat "$d/play.err"; status=1
else echo "Ctrl-C: exit 0, log committed with $n decisions, '$(grep -o "stopped during game [0-9]*" "$d/play.err")'"; fi

# Dolphin closes at frame 40 (its bookend never comes): play exits 1 naming the game and frame; the fake itself is fine.
d="$T/close"; mkdir -p "$d/U"; PORT=$((PORT + 1))
timeout 60 "$BIN" fake-dolphin --replay "$REP" --port $PORT --lockstep --user-dir "$d/U" --quiet --wait-client 20 \
    --fault close --fault-frame 40 2> "$d/fake.err" &
fpid=$!
timeout 60 "$BIN" play --policy "$POL" --port 1 --address 127.0.0.1:$PORT --dolphin-user-dir "$d/U" --deterministic \
    --blocking --connect-timeout 20 2> "$d/play.err"
prc=$?; wait $fpid; frc=$?
if [ $prc -ne 1 ] || [ $frc -ne 0 ] || ! grep -q "Dolphin closed during game 1 (frame 39)" "$d/play.err"; then
  echo "close: play exit $prc (want 1), fake exit $frc (want 0)"; cat "$d/play.err" "$d/fake.err"; status=1
else echo "close: '$(grep -m1 "Dolphin closed during" "$d/play.err")'"; fi

# No Dolphin at all: a bounded wait, exit 1, a message that says what to check.
mkfifo "$T/nofifo"
exec 3<>"$T/nofifo" # a reader on the pipe, so only the spectator server is missing
t0=$(date +%s)
timeout 30 "$BIN" play --policy "$POL" --port 1 --address 127.0.0.1:$((PORT + 1)) --pipe "$T/nofifo" \
    --connect-timeout 1.5 2> "$T/none.err"
prc=$?; t1=$(date +%s)
if [ $prc -ne 1 ] || ! grep -q "could not connect to Dolphin's spectator server" "$T/none.err" || [ $((t1 - t0)) -gt 10 ]; then
  echo "no Dolphin: exit $prc after $((t1 - t0)) s:"; cat "$T/none.err"; status=1
else echo "no Dolphin: '$(tail -1 "$T/none.err")'"; fi
exit $status
