#!/usr/bin/env bash
# t_cli_opts.sh — every command parses its options with the one parser (src/cli/opts.c):
#  - `cphil CMD --help` exits 0 and every flag it lists is one the parser accepts (help and parser
#    come from the same table, so a flag in the help that the parser refused would fail here);
#  - the same errors in every command: unknown flag with "did you mean", missing value, bad number,
#    out of range, not one of the choices, missing required flag; each exits 2 and prints nothing
#    on stdout;
#  - the shared fragments: train and distill take the same optimizer flags; play and play-replay
#    the same agent flags; export and predict refuse the same requests on an int8 file.
# Needs no shared replays (a random policy and one synthetic game made here).
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
T=${CPHIL_TEST_TMP:-/tmp}/t_cli_opts.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# expect "<text in stderr>" args...: exit 2, the text in stderr, nothing on stdout
expect() {
  local want=$1; shift
  "$BIN" "$@" >"$T/out" 2>"$T/err"; local rc=$?
  [ $rc -eq 2 ] || fail "cphil $*: exit $rc, expected 2 ($(cat "$T/err"))"
  grep -qF -- "$want" "$T/err" || fail "cphil $*: stderr lacks '$want': $(cat "$T/err")"
  [ ! -s "$T/out" ] || fail "cphil $*: printed on stdout after an error: $(head -c 300 "$T/out")"
  return 0
}

cmds=$("$BIN" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}')
[ "$(echo "$cmds" | wc -w)" -ge 17 ] || fail "cphil --help lists too few commands: $cmds"
n_flags=0
for c in $cmds; do
  help=$("$BIN" $c --help) || fail "cphil $c --help: exit $?"
  [ "$(echo "$help" | head -1 | cut -d' ' -f1-3)" = "usage: cphil $c" ] || fail "cphil $c --help: first line '$(echo "$help" | head -1)'"
  echo "$help" | grep -q -- "--help, -h" || fail "cphil $c --help does not list --help"
  # every listed flag (and alias) is accepted: the parser's complaint is about what follows it
  for f in $(echo "$help" | grep -oE '^  --[a-z0-9-]+(, -{1,2}[a-z0-9-]+)?' | tr -d ','); do
    [ "$f" = "--help" ] || [ "$f" = "-h" ] && continue
    "$BIN" $c "$f" --zz-end >"$T/out" 2>"$T/err"
    grep -q "unknown option '$f'" "$T/err" && fail "cphil $c lists $f in --help but refuses it"
    grep -q "unknown option '--zz-end'\|needs a value, got the option '--zz-end'" "$T/err" ||
      fail "cphil $c $f --zz-end: unexpected answer: $(cat "$T/err")"
    n_flags=$((n_flags + 1))
  done
  # a typo of a flag it takes: "did you mean"
  first=$(echo "$help" | grep -oE '^  --[a-z0-9-]{4,}' | head -1 | tr -d ' ')
  if [ -n "$first" ]; then
    expect "did you mean '$first'" $c "${first}x"
  fi
  expect "unknown option '--bogus'" $c --bogus
done
[ $n_flags -ge 150 ] || fail "only $n_flags flags found in the help texts"

# the same error, worded the same way, in commands that parsed by hand before
expect "synth: --stocks: '0' is out of range (--stocks takes a whole number in [1, 99])" synth --games 1 --out "$T/s" --stocks 0
expect "dataset: --jobs: 'two' is not a whole number (--jobs takes a whole number in [1, 64])" dataset --replays x --out y --jobs two
expect "fake-dolphin: --port: '70000' is out of range" fake-dolphin --replay x --port 70000
expect "play-replay: --temperature: 'hot' is not a number" play-replay --policy p --port 1 --temperature hot x.slp
expect "bench: --seconds: '0' is out of range" bench --seconds 0
expect "quantize: --mode: 'stat' is not one of dynamic|static (did you mean 'static'?)" quantize --policy p --output q --mode stat
expect "play: --mode: 'strem' is not one of window|stream (did you mean 'stream'?)" play --policy p --port 1 --mode strem
expect "export: --policy needs a value (--policy P:" export --policy
expect "predict: --output needs a value, got the option '--quiet'" predict --output --quiet
expect "inspect: missing FILE" inspect --json
expect "play-replay: missing --policy, --port, REPLAY" play-replay
expect "dolphin-setup: missing --user-dir, --port" dolphin-setup
expect "embed-info: --json takes no value" embed-info --json=1
expect "fake-dolphin: give one of --realtime and --lockstep" fake-dolphin --replay x --realtime --lockstep
# --flag=value and aliases
"$BIN" embed-info --no-json --prev-action >/dev/null || fail "embed-info --no-json"
"$BIN" export --quiet --policy "random:mlp:layout=default,mlp=8,seed=1" --format=safetensors -o "$T/p.safetensors" ||
  fail "export --format=... -o ..."
[ -s "$T/p.safetensors" ] || fail "export -o wrote nothing"

# shared fragments: the optimizer flags of train and distill, the agent flags of play and play-replay
th=$("$BIN" train --help); dh=$("$BIN" distill --help)
for f in --epochs --lr --weight-decay --schedule --warmup-steps --max-grad-norm --max-steps --seed --precision \
         --threads --device; do
  [ "$(echo "$th" | grep -A1 -- "^  $f ")" = "$(echo "$dh" | grep -A1 -- "^  $f ")" ] ||
    fail "train and distill describe $f differently"
done
ph=$("$BIN" play --help); rh=$("$BIN" play-replay --help)
for f in --policy --port --mode --precision --temperature --deterministic --seed --log; do
  [ "$(echo "$ph" | grep -A2 -- "^  $f ")" = "$(echo "$rh" | grep -A2 -- "^  $f ")" ] ||
    fail "play and play-replay describe $f differently"
done

# export and predict refuse the same requests on an int8 file (one function)
"$BIN" synth --games 1 --seed 5 --max-seconds 10 --quiet --out "$T/g" >/dev/null || fail "synth"
"$BIN" quantize --policy "$T/p.safetensors" --output "$T/q.safetensors" >/dev/null || fail "quantize"
expect "holds int8 dynamic weights (written by cphil quantize) and runs as it is; the .npz and safetensors exports hold f32 weights" \
  export --policy "$T/q.safetensors" --format npz --output "$T/q.npz"
expect "holds int8 dynamic weights (written by cphil quantize) and runs as it is; its weights and activation mode are used as they are: drop --int8" \
  export --policy "$T/q.safetensors" --format onnx --int8 static --output "$T/q.onnx"
expect "holds int8 dynamic weights (written by cphil quantize) and runs as it is; it quantizes activations per call (dynamic): drop --calibration" \
  export --policy "$T/q.safetensors" --format onnx --int8 static --calibration "$T/g" --output "$T/q.onnx"
expect "holds int8 dynamic weights (written by cphil quantize) and runs as it is; it quantizes activations per call (dynamic): drop --calibration" \
  predict --policy "$T/q.safetensors" --replay "$T/g/synth_0000.slp" --port 1 --frames 0:3 --int8 static --calibration "$T/g" --output "$T/q.npz"
[ ! -e "$T/q.npz" ] && [ ! -e "$T/q.onnx" ] || fail "a refused command wrote its output"
echo "cli options: $(echo "$cmds" | wc -w) commands, $n_flags flags listed in --help and accepted; shared errors and fragments ok"
exit 0
