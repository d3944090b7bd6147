#!/usr/bin/env bash
# t_live_menus.sh — the bot at Melee's select screens, end to end against the fake Dolphin
# (127.0.0.1 only, every process under `timeout`). `cphil fake-dolphin --menus` simulates the
# character and stage select from the pad it reads on the FIFO (cursor moved by the stick, A on a
# portrait or stage, START with the ready banner up) with the same coordinate table the bot aims
# with, so the closed loop runs for real:
#   - lockstep: `play --character fox --stage battlefield` picks both (the fake says so), one FLUSH
#     per menu frame and per bookend, then plays the game;
#   - real time (60 fps): `--character marth --stage fd` picks both;
#   - a pipe that does not drive the port (Dolphin's controller misconfigured): the cursor never
#     moves and play gives up within --menu-timeout with a message that says what to check;
#   - no menu frames at all (no gecko code): the message names "Extract Menu Info" within 5 s;
#   - --menus manual: the pad is released and centred at every menu FLUSH (lockstep);
#   - unknown names are refused (exit 2) with the valid names listed.
set -u
BIN=${CPHIL_BIN:-${CPHIL_BUILD:-build/rel}/cphil}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "needs /usr/bin/python3 to read the records"; exit 77; }
T=${CPHIL_TEST_TMP:-/tmp}/t_live_menus.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$BIN" synth --games 2 --out "$T/r" --seed 3 --max-seconds 3 --quiet >/dev/null || fail "synth"
"$BIN" train --replays "$T/r" --backbone mlp --hidden 16 --epochs 1 --precision f32 --out "$T" --name p --quiet \
    >/dev/null || fail "train"
POL="$T/p_policy.safetensors"
REP="$T/r/synth_0000.slp"
PORT=$((20000 + ($$ * 13) % 20000))
status=0
# run NAME 'fake args' 'play args': both under timeout; leaves $T/NAME/{fake.json,fake.err,play.err,rec.jsonl,prc,frc}
run() {
  local d="$T/$1"; mkdir -p "$d/U"; PORT=$((PORT + 1))
  [ -n "${PREP:-}" ] && eval "$PREP"
  # shellcheck disable=SC2086
  timeout 60 "$BIN" fake-dolphin --replay "$REP" --port $PORT --user-dir "$d/U" --record "$d/rec.jsonl" --json \
      --wait-client 20 $2 > "$d/fake.json" 2> "$d/fake.err" &
  local fpid=$!
  # shellcheck disable=SC2086
  timeout 60 "$BIN" play --policy "$POL" --address 127.0.0.1:$PORT --dolphin-user-dir "$d/U" --deterministic \
      --games 1 --connect-timeout 20 $3 2> "$d/play.err"
  echo $? > "$d/prc"
  wait $fpid; echo $? > "$d/frc"
}
# check NAME python-expression-over-f(fake json),rec(list of FLUSH records),err(play's stderr)
check() {
  local d="$T/$1" what=$2
  if [ "$(cat "$d/prc")" != 0 ] || [ "$(cat "$d/frc")" != 0 ] || ! "$PY" - "$d" "$what" <<'PYEOF'
import json, sys
d, what = sys.argv[1], sys.argv[2]
f = json.load(open(d + "/fake.json"))
rec = [json.loads(l) for l in open(d + "/rec.jsonl")]
err = open(d + "/play.err").read()
menu = [r for r in rec if r["after"] == "menu"]
ok = eval(what)
print("  %s: chose %s / %s, %d menu frames, %d menu FLUSHes (%d not neutral), FLUSH %d of %d awaited, %d bookends"
      % (d.rsplit("/", 1)[1], f["menu_character"], f["menu_stage"], f["menu_frames"], len(menu),
         sum(1 for r in menu if r["buttons"] or r["main_x"] != 128 or r["main_y"] != 128), f["flushes"],
         f["need_inputs"], f["bookends"]))
sys.exit(0 if ok else 1)
PYEOF
  then echo "$1: FAILED ($what): play exit $(cat "$d/prc"), fake exit $(cat "$d/frc")"; cat "$d/play.err" "$d/fake.err"; status=1
  else echo "$1: ok"; fi
}

run lockstep "--lockstep --menus" "--port 1 --blocking --character fox --stage battlefield"
check lockstep 'f["menu_character"] == "fox" and f["menu_stage"] == "battlefield" and f["flushes"] == f["need_inputs"] and len(menu) == f["menu_frames"] > 10 and "fox chosen for port 1" in err and f["bookends"] > 100'

run realtime "--realtime --menus" "--port 1 --character marth --stage fd"
check realtime 'f["menu_character"] == "marth" and f["menu_stage"] == "final_destination" and f["bookends"] > 100'

# the pad the fake reads (slippibot2) is not the one the bot writes (slippibot1): port 1's cursor
# never moves; play gives up after --menu-timeout 1 and names what to check; the fake starts the
# game after 150 menu frames, as a person would have, and the bot plays it
PREP='mkdir -p "$d/U/Pipes"; mkfifo "$d/U/Pipes/slippibot1" "$d/U/Pipes/slippibot2"'
run stuck "--lockstep --menus --menu-frames 150 --pipe-port 2" "--port 1 --blocking --character fox --stage bf --menu-timeout 1"
PREP=
check stuck 'f["menu_character"] is None and "has not come closer to fox in 1 s" in err and "the pipe device" in err and f["bookends"] > 100'

# no menu frames for 6 s (Dolphin without the gecko code), then a game: the code is named
run no-menu-frames "--lockstep --start-delay 6" "--port 1 --blocking --character fox --stage bf"
check no-menu-frames '"Extract Menu Info" in err and "cannot pick fox and battlefield" in err and f["bookends"] > 100'

run manual "--lockstep --menus --menu-frames 60" "--port 1 --blocking --menus manual"
check manual 'f["menu_character"] is None and len(menu) == 60 and all(r["buttons"] == 0 and r["main_x"] == 128 and r["main_y"] == 128 for r in menu)'

for bad in "--character foxx" "--stage hyrule_temple" "--menus manual --character fox" "--menus sometimes"; do
  # shellcheck disable=SC2086
  timeout 20 "$BIN" play --policy "$POL" --port 1 --pipe "$T/none" $bad 2> "$T/bad.err"; rc=$?
  case "$bad" in
    --character*) want="one of: doc, mario" ;;
    --stage*) want="one of: battlefield, final_destination" ;;
    "--menus manual"*) want="does not go with --character" ;;
    *) want="not auto or manual" ;;
  esac
  if [ $rc -ne 2 ] || ! grep -q -- "$want" "$T/bad.err"; then echo "'$bad': exit $rc (want 2), wanted '$want' in: $(cat "$T/bad.err")"; status=1
  else echo "'$bad': refused: $(head -c 160 "$T/bad.err")"; fi
done
exit $status
