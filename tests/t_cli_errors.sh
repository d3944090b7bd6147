#!/usr/bin/env bash
# t_cli_errors.sh — the mistakes a new user makes, walked through the CLI: each one exits non-zero
# with a message that says what is wrong, and prints no report (a table of zeros) after it. Runs on
# synthetic games made here (no shared replays needed). Under the sanitizer build it also catches
# undefined behaviour on these paths (play-replay used to qsort(NULL, 0) when no decision was made).
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
T=${CPHIL_TEST_TMP:-/tmp}/t_cli_errors.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# expect RC "<text in stderr>" args...: exit status RC, the text in stderr, nothing on stdout, no
# sanitizer report.
expect() {
  local want_rc=$1 want=$2; shift 2
  "$BIN" "$@" >"$T/out" 2>"$T/err"; local rc=$?
  [ $rc -eq "$want_rc" ] || fail "cphil $*: exit $rc, expected $want_rc ($(cat "$T/err"))"
  grep -qF -- "$want" "$T/err" || fail "cphil $*: stderr lacks '$want': $(cat "$T/err")"
  [ ! -s "$T/out" ] || fail "cphil $*: printed a report after an error: $(head -c 400 "$T/out")"
  grep -q "runtime error\|AddressSanitizer" "$T/err" && fail "cphil $*: sanitizer report: $(cat "$T/err")"
  return 0
}

"$BIN" synth --games 3 --seed 3 --max-seconds 20 --quiet --out "$T/games" >/dev/null || fail "synth"
mkdir -p "$T/one" "$T/empty" "$T/outdir"
cp "$T/games/synth_0000.slp" "$T/one/"
P="$T/p.safetensors"
"$BIN" export --quiet --policy "random:mlp:layout=default,mlp=16x16,seed=3" --format safetensors --output "$P" ||
  fail "a random policy"
printf 'not a replay at all\n' >"$T/garbage.slp"

# eval with too few replays for the split: one file, 10% held out -> 0 held-out files
expect 1 "no held-out frames" eval --policy "$P" --replays "$T/one" --quiet
expect 1 "--all" eval --policy "$P" --replays "$T/one" --quiet
# ... and --all evaluates on it
"$BIN" eval --policy "$P" --replays "$T/one" --all --quiet >"$T/out" 2>&1 || fail "eval --all: $(cat "$T/out")"

# play-replay: a port not in the game (synthetic games use ports 1 and 2), a folder without
# replays, an unreadable replay (no decision: no report, no qsort of nothing)
expect 1 "port 3 is not a player in this game" play-replay --policy "$P" --port 3 "$T/games/synth_0000.slp"
expect 1 "no replay could be played" play-replay --policy "$P" --port 3 "$T/games/synth_0000.slp"
expect 1 "a folder without .slp replays" play-replay --policy "$P" --port 1 "$T/empty"
expect 1 "no replay could be played" play-replay --policy "$P" --port 1 "$T/garbage.slp"
expect 2 "missing --port" play-replay --policy "$P" "$T/games/synth_0000.slp"
# more replays than play-replay takes (4096): refused, not cut short in silence
mkdir -p "$T/many" && (cd "$T/many" && for i in $(seq 1 4097); do : > "g$i.slp"; done)
expect 1 "more than 4096 replays" play-replay --policy "$P" --port 1 "$T/many"
# a folder of replays plays its .slp files
"$BIN" play-replay --policy "$P" --port 1 --deterministic "$T/one" >"$T/out" 2>"$T/err" || fail "play-replay on a folder: $(cat "$T/err")"
grep -q "^replays 1, frames" "$T/out" || fail "play-replay on a folder: $(cat "$T/out")"

# bench: a backbone, precision or mode that does not exist; a folder as the policy
expect 2 "'foo' is not one of mlp,lstm,gru,mamba,attention" bench --backbone foo
expect 2 "did you mean 'lstm'" bench --backbone lsmt --seconds 0.01
expect 2 "'int4' is not one of f32,bf16,int8" bench --precision int4
expect 2 "'both' is not one of window,stream" bench --mode both
expect 1 "is a directory, expected a file" bench --policy "$T"
expect 2 "with --policy the file's backbone is benched" bench --policy "$P" --backbone mlp

# unknown flags and stray arguments are refused everywhere
for c in version inspect embed-info dataset synth export predict train eval soft-labels distill bench \
         play-replay quantize; do
  expect 2 "unknown option '--bogus'" $c --bogus
done
expect 2 "unexpected argument 'extra'" version extra

# inspect prints each error once: on stderr, not repeated on stdout
"$BIN" inspect "$T/garbage.slp" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] || fail "inspect of garbage: exit $rc"
[ "$(grep -c "not a Slippi replay" "$T/err" "$T/out" | awk -F: '{s+=$2} END {print s}')" -eq 1 ] ||
  fail "inspect: the error is not printed exactly once: stdout '$(cat "$T/out")' stderr '$(cat "$T/err")'"
expect 2 "missing FILE" inspect

# required flags are named
expect 2 "export: missing --format" export --policy "$P" --output "$T/x.onnx"
expect 2 "export: missing --policy, --format, --output" export
expect 2 "predict: missing --output" predict --policy "$P" --input x.npy
expect 2 "quantize: missing --output" quantize --policy "$P"
expect 2 "dataset: missing --out" dataset --replays "$T/games"
expect 2 "synth: missing --games" synth --out "$T/s2"
expect 2 "eval: missing --replays DIR or --data PATH" eval --policy "$P"
expect 2 "soft-labels: missing --teacher" soft-labels --output "$T/sl.bin" --replays "$T/games"
expect 2 "exactly one of --replays DIR or --data PATH" train --epochs 1

# an output that is a folder or in a folder that does not exist: said before any work
expect 2 "names a folder, not a file" export --policy "$P" --format onnx --output "$T/outdir/"
expect 2 "names a folder, not a file" export --policy "$P" --format onnx --output "$T/outdir"
expect 2 "does not exist (create it first)" export --policy "$P" --format onnx --output "$T/nodir/p.onnx"
expect 2 "names a folder, not a file" quantize --policy "$P" --output "$T/outdir/"
expect 2 "names a folder, not a file" dataset --replays "$T/games" --out "$T/outdir"
[ -z "$(ls -A "$T/outdir")" ] || fail "a refused command wrote into $T/outdir: $(ls "$T/outdir")"

# train on a folder without replays says so (not "see the skip reasons" of none)
expect 1 "no .slp replay in $T/empty or its subfolders" train --replays "$T/empty" --quiet --out "$T/ck"

# quantize --mode static without --calibration: refused (scripted games are a poor default)
expect 2 "--mode static needs --calibration" quantize --policy "$P" --mode static --output "$T/q.safetensors"
[ ! -e "$T/q.safetensors" ] || fail "a refused quantize wrote its output"

# help texts say what they mean (no unexplained "the seed's table")
for c in bench quantize distill train eval; do
  "$BIN" $c --help 2>&1 | grep -q "seed's" && fail "cphil $c --help speaks of 'the seed's' without saying what it is"
done
"$BIN" --help | grep -q "seed's" && fail "cphil --help speaks of 'the seed's'"
echo "all CLI error paths: non-zero exit, a message naming the problem, no report after it"
exit 0
