#!/usr/bin/env bash
# t_live_slippijs.sh — a second, independent client for the fake Dolphin: slippi-js's own
# DolphinConnection (npm @slippi/slippi-js 9.1.2 with the npm `enet` package, tests/js) connects
# to `cphil fake-dolphin`, hands the game data to slippi-js's SlpStream and SlpParser, and must
# see the handshake ("Slippi Online"), one start_game and one end_game, every game_event with no
# "Unexpected game data cursor" error, every frame finalized up to the last, the Game End, and
# then disconnect by itself on dolphin_closed. Games: a synth game and, when the shared replays
# are there, the online game with rollbacks.
set -u
BIN=${CPHIL_BIN:-${CPHIL_BUILD:-build/rel}/cphil}
JS=$(dirname "$0")/js
command -v node >/dev/null || { echo "needs node (scripts/setup.sh --test)"; exit 77; }
[ -d "$JS/node_modules/@slippi/slippi-js" ] && [ -d "$JS/node_modules/enet" ] \
    || { echo "needs tests/js/node_modules with @slippi/slippi-js and enet (scripts/setup.sh --test)"; exit 77; }
REPLAYS=${CPHIL_REPLAYS:-../shared/replays}
T=${CPHIL_TEST_TMP:-/tmp}/t_live_slippijs.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
"$BIN" synth --games 1 --out "$T/r" --seed 3 --max-seconds 4 --quiet >/dev/null || { echo "synth failed"; exit 1; }
PORT=$((20000 + ($$ * 17) % 20000))
status=0
check() { # name replay
  PORT=$((PORT + 1))
  timeout 120 "$BIN" fake-dolphin --replay "$2" --port $PORT --lockstep --json --quiet --wait-client 20 > "$T/fake.json" &
  local fpid=$!
  (cd "$JS" && timeout 120 node dolphin_client.js $PORT 100 2> /dev/null) > "$T/js.json"
  wait $fpid || { echo "$1: fake-dolphin failed"; status=1; return; }
  /usr/bin/node -e '
    const fs = require("fs");
    const j = JSON.parse(fs.readFileSync(process.argv[1])), f = JSON.parse(fs.readFileSync(process.argv[2]));
    const frames = f.last_frame - f.first_frame + 1;
    const ok = j.handshake && j.handshake.consoleNick === "Slippi Online" && j.types.start_game === 1 &&
      j.types.end_game === 1 && j.types.game_event === f.game_events && j.cursor_errors === 0 && j.errors === 0 &&
      j.frames === frames && j.last_frame === f.last_frame && j.game_end && j.disconnected;
    console.log(`${process.argv[3]}: slippi-js got ${j.types.game_event} of ${f.game_events} game_events, ` +
      `${j.cursor_errors} cursor errors, finalized ${j.frames} of ${frames} frames (last ${j.last_frame}), ` +
      `game end ${j.game_end}, disconnected on dolphin_closed ${j.disconnected}`);
    process.exit(ok ? 0 : 1);' "$T/js.json" "$T/fake.json" "$1" 2>/dev/null || { echo "$1: $(cat "$T/js.json")"; status=1; }
}
check synth "$T/r/synth_0000.slp"
if [ -f "$REPLAYS/slippi-js/rollbackFrameTest.slp" ]; then check online-rollback "$REPLAYS/slippi-js/rollbackFrameTest.slp"
else echo "online-rollback: SKIP, needs $REPLAYS/slippi-js/rollbackFrameTest.slp"; fi
exit $status
