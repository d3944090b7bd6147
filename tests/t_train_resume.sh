#!/usr/bin/env bash
# t_train_resume.sh — through the CLI on synthetic replays: a run interrupted in the middle of
# an epoch (the --stop-after-steps hook acts like Ctrl-C) and resumed with --resume ends with the
# same policy bits as the uninterrupted run (lstm with TBPTT, which also carries recurrent state
# in the checkpoint, and mamba with windows); real Ctrl-C (SIGINT) saves a checkpoint, exits 130,
# and the run resumes from it; a damaged checkpoint is refused.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
T=${CPHIL_TEST_TMP:-/tmp}/t_train_resume.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "$*"; exit 1; }
"$BIN" synth --games 4 --out "$T/r" --seed 11 --max-seconds 8 --quiet >/dev/null || fail "synth failed"
common=(--replays "$T/r" --hidden 16 --num-layers 1 --batch-size 4 --epochs 2 --lr 0.003 --warmup-steps 3
        --precision f32 --val-split 0.25 --quiet --out "$T")
for cfg in "lstm --tbptt 16" "mamba --window-size 16 --state-size 4 --conv-size 3"; do
  set -- $cfg; bb=$1; shift
  "$BIN" train "${common[@]}" --backbone "$bb" "$@" --name full_$bb || fail "$bb: full run failed"
  "$BIN" train "${common[@]}" --backbone "$bb" "$@" --name int_$bb --stop-after-steps 7
  rc=$?; [ $rc -eq 130 ] || fail "$bb: interrupted run exit $rc, expected 130"
  [ -f "$T/int_$bb.ckpt" ] || fail "$bb: no checkpoint after the interruption"
  "$BIN" train "${common[@]}" --backbone "$bb" "$@" --name int_$bb --resume "$T/int_$bb.ckpt" || fail "$bb: resume failed"
  cmp "$T/full_${bb}_policy.safetensors" "$T/int_${bb}_policy.safetensors" || fail "$bb: resumed policy differs from the uninterrupted one"
  cmp "$T/full_${bb}_curves.csv" "$T/int_${bb}_curves.csv" >/dev/null 2>&1 || \
    diff <(cut -d, -f1-10 "$T/full_${bb}_curves.csv") <(cut -d, -f1-10 "$T/int_${bb}_curves.csv") || fail "$bb: curves differ"
done
# a damaged checkpoint is refused with a message
head -c 1000 "$T/int_lstm.ckpt" > "$T/bad.ckpt"
out=$("$BIN" train "${common[@]}" --backbone lstm --tbptt 16 --name bad --resume "$T/bad.ckpt" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a truncated checkpoint was accepted"
case "$out" in *truncated*) ;; *) fail "no 'truncated' in: $out" ;; esac
# a checkpoint of another model is refused
out=$("$BIN" train "${common[@]}" --backbone gru --name other --resume "$T/int_lstm.ckpt" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a checkpoint of another model was accepted"
case "$out" in *"different model"*) ;; *) fail "no 'different model' in: $out" ;; esac
# real Ctrl-C
"$BIN" train "${common[@]}" --backbone lstm --tbptt 16 --epochs 100000 --name sig 2>"$T/sig.err" &
pid=$!
for i in $(seq 1 100); do [ -f "$T/sig_curves.csv" ] && break; sleep 0.1; done
sleep 0.3
kill -INT $pid
wait $pid; rc=$?
[ $rc -eq 130 ] || { cat "$T/sig.err"; fail "SIGINT: exit $rc, expected 130"; }
grep -q "resume" "$T/sig.err" || fail "SIGINT: no resume hint: $(cat "$T/sig.err")"
"$BIN" train "${common[@]}" --backbone lstm --tbptt 16 --epochs 100000 --max-steps 1 --name sig --resume "$T/sig.ckpt" >/dev/null 2>&1 \
  || fail "cannot resume after SIGINT"
exit 0
