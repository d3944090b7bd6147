#!/usr/bin/env bash
# t_live_setup.sh — `cphil dolphin-setup`: makes the FIFO, writes the pipe device section (with
# the "Axis L +" trigger mapping) and the spectator / BlockingPipes settings, keeps every other
# setting, copies a file before changing it (never overwriting a copy), changes nothing when run
# twice, and refuses a non-FIFO where the FIFO goes.
set -u
BIN=${CPHIL_BIN:-${CPHIL_BUILD:-build/rel}/cphil}
T=${CPHIL_TEST_TMP:-/tmp}/t_live_setup.$$
mkdir -p "$T/U/Config"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
printf '[Core]\nSlippiSpectatorLocalPort = 51441\nGFXBackend = OGL\n\n[Interface]\nTheme = Clean\n' > "$T/U/Config/Dolphin.ini"
cp "$T/U/Config/Dolphin.ini" "$T/orig.ini"
"$BIN" dolphin-setup --user-dir "$T/U" --port 2 --spectator-port 51450 --blocking > "$T/out1" || fail "first run: $(cat "$T/out1")"
[ -p "$T/U/Pipes/slippibot2" ] || fail "no FIFO Pipes/slippibot2"
sec() { awk -v s="[$2]" '$0==s{on=1;next} /^\[/{on=0} on' "$1"; }
g=$(sec "$T/U/Config/GCPadNew.ini" GCPad2)
for kv in "Device = Pipe/0/slippibot2" "Triggers/L-Analog = Axis L +" "Triggers/R-Analog = Axis R +" \
          "Main Stick/Left = Axis MAIN X -" "Buttons/Start = Button START" "D-Pad/Up = Button D_UP"; do
  grep -qxF "$kv" <<< "$g" || fail "GCPadNew.ini [GCPad2] lacks '$kv'"
done
c=$(sec "$T/U/Config/Dolphin.ini" Core)
for kv in "SlippiEnableSpectator = True" "SlippiSpectatorLocalPort = 51450" "BlockingPipes = True" "SIDevice1 = 6" \
          "GFXBackend = OGL"; do
  grep -qxF "$kv" <<< "$c" || fail "Dolphin.ini [Core] lacks '$kv'"
done
sec "$T/U/Config/Dolphin.ini" Interface | grep -qxF "Theme = Clean" || fail "[Interface] Theme lost"
sec "$T/U/Config/Dolphin.ini" Slippi | grep -qxF "SpectatorLocalPort = 51450" || fail "no mainline [Slippi] port"
grep -q "SlippiSpectatorLocalPort = 51450 (was 51441)" "$T/out1" || fail "the change is not reported: $(cat "$T/out1")"
b=$(ls "$T/U/Config/" | grep -c "Dolphin.ini.cphil-backup-")
[ "$b" -eq 1 ] || fail "$b backups of Dolphin.ini after the first run, want 1"
cmp -s "$T/orig.ini" "$T/U/Config/"Dolphin.ini.cphil-backup-* || fail "the backup is not the original file"
"$BIN" dolphin-setup --user-dir "$T/U" --port 2 --spectator-port 51450 --blocking > "$T/out2" || fail "second run"
[ "$(grep -c unchanged "$T/out2")" -eq 2 ] || fail "a second identical run changed something: $(cat "$T/out2")"
[ "$(ls "$T/U/Config/" | grep -c cphil-backup-)" -eq 1 ] || fail "a second identical run made a backup"
"$BIN" dolphin-setup --user-dir "$T/U" --port 2 --spectator-port 51450 > "$T/out3" || fail "third run"
grep -q "BlockingPipes = False (was True)" "$T/out3" || fail "BlockingPipes not turned off: $(cat "$T/out3")"
[ "$(ls "$T/U/Config/" | grep -c "Dolphin.ini.cphil-backup-")" -eq 2 ] || fail "no second backup (or one overwritten)"
echo "not a pipe" > "$T/U/Pipes/slippibot3"
"$BIN" dolphin-setup --user-dir "$T/U" --port 3 > "$T/out4" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "is not a FIFO" "$T/out4" || fail "a regular file at the FIFO path: exit $rc, $(cat "$T/out4")"
[ "$(cat "$T/U/Pipes/slippibot3")" = "not a pipe" ] || fail "the regular file was touched"
"$BIN" dolphin-setup --user-dir "$T/U" --port 5 > /dev/null 2>&1; [ $? -eq 2 ] || fail "--port 5 is not a usage error"
echo "dolphin-setup: FIFO, [GCPad2] pipe section, spectator port, BlockingPipes on/off, backups, idempotent, refusal: ok"
