#!/usr/bin/env bash
# cphil synth -> cphil dataset end to end through the command line: a damaged replay in the
# folder is listed with its reason and skipped, aliases parse (--character falcon, --stage fd),
# --json reports every file, bad options exit 2, an empty folder fails with a message.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
d=${CPHIL_TEST_TMP:-/tmp}/dscli.$$
trap 'rm -rf "$d"' EXIT
mkdir -p "$d"
"$BIN" synth --games 4 --out "$d/r" --seed 2 --stocks 1 --max-seconds 30 --quiet >/dev/null || exit 1
head -c 3000 "$d/r/synth_0000.slp" > "$d/r/cut.slp"
out=$("$BIN" dataset --replays "$d/r" --out "$d/a.ds" --json --quiet) || { echo "dataset failed: $out"; exit 1; }
echo "$out" | grep -q '"files_found":5' || { echo "expected 5 files: $out"; exit 1; }
echo "$out" | grep -q '"files_used":4' || { echo "expected 4 used: $out"; exit 1; }
echo "$out" | grep -q '"path":"cut.slp","status":"damaged","message":"cut.slp: ' || { echo "cut.slp not listed as damaged: $out"; exit 1; }
# text summary on stderr names the damaged file
err=$("$BIN" dataset --replays "$d/r" --out "$d/b.ds" --quiet 2>&1 >/dev/null) || exit 1
echo "$err" | grep -q "damaged cut.slp" || { echo "summary lacks the damaged file: $err"; exit 1; }
echo "$err" | grep -q "button press rates: A " || { echo "summary lacks press rates: $err"; exit 1; }
# the same build twice gives the same bytes
cmp -s "$d/a.ds" "$d/b.ds" || { echo "two builds differ"; exit 1; }
# aliases
"$BIN" dataset --replays "$d/r" --out "$d/c.ds" --character falcon sheik --stage fd bf --quiet 2>/dev/null
rc=$?; [ $rc -eq 0 ] || [ $rc -eq 1 ] || { echo "alias run exited $rc"; exit 1; }
"$BIN" dataset --replays "$d/r" --out "$d/c.ds" --character nobodyatall 2>/dev/null; [ $? -eq 2 ] || { echo "unknown character should exit 2"; exit 1; }
"$BIN" dataset --replays "$d/r" --out "$d/c.ds" --player 2 --dual-port 2>/dev/null; [ $? -eq 2 ] || { echo "conflicting port options should exit 2"; exit 1; }
"$BIN" dataset --replays "$d/r" --out "$d/c.ds" --val-splitt 0.1 2>&1 | grep -q "did you mean '--val-split'" || { echo "no did-you-mean"; exit 1; }
mkdir -p "$d/empty"
msg=$("$BIN" dataset --replays "$d/empty" --out "$d/e.ds" --quiet 2>&1); [ $? -eq 1 ] || { echo "empty folder should fail"; exit 1; }
echo "$msg" | grep -q "no .slp replay in" || { echo "unclear message: $msg"; exit 1; }
[ ! -e "$d/e.ds" ] || { echo "a failed build left an output file"; exit 1; }
ls "$d" | grep -q tmp && { echo "scratch files left behind: $(ls "$d")"; exit 1; }
exit 0
