#!/usr/bin/env bash
# t_device_cli.sh — --device in a build without CUDA: `train --device cuda` and `distill --device
# cuda` are refused with a message naming the missing CUDA build and what to do; a bad --device
# value is a usage error; `cphil version` says whether CUDA is compiled in.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
T=${CPHIL_TEST_TMP:-/tmp}/t_device_cli.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$BIN" version >"$T/v" || fail "version failed"
grep -q "^cuda: " "$T/v" || fail "version has no cuda line: $(cat "$T/v")"
if grep -q "^cuda: not compiled in" "$T/v"; then
  "$BIN" synth --games 2 --out "$T/r" --seed 1 --quiet >/dev/null || fail synth
  "$BIN" train --replays "$T/r" --device cuda --epochs 1 --out "$T/o" >"$T/o.txt" 2>"$T/e"; rc=$?
  [ $rc -ne 0 ] || fail "train --device cuda succeeded without CUDA"
  grep -q "built without CUDA" "$T/e" && grep -q "make CUDA=1" "$T/e" || fail "unclear message: $(cat "$T/e")"
  [ ! -e "$T/o/mamba_policy.safetensors" ] || fail "a policy was written"
  "$BIN" train --replays "$T/r" --device tpu --epochs 1 --out "$T/o" 2>"$T/e2"; rc=$?
  [ $rc -eq 2 ] || fail "--device tpu: exit $rc, want 2 (usage)"
  grep -q "expected cpu, cuda or cuda:N" "$T/e2" || fail "unclear message: $(cat "$T/e2")"
  echo "no-CUDA build refuses --device cuda clearly"
else
  echo "CUDA build: tests/cuda/ covers --device"
fi
