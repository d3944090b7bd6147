#!/usr/bin/env bash
# t_train_resume.sh — through the CLI on synthetic replays: a run interrupted in a LATER epoch
# (the --stop-after-steps hook acts like Ctrl-C; epoch 3 of 3, so the data order of an epoch
# that is not the first must be rebuilt from the checkpoint alone) and resumed with --resume ends
# with the same policy bits as the uninterrupted run, for every backbone in bf16 and f32 (lstm
# also with TBPTT, whose carried state is in the checkpoint); so does a run resumed from an
# epoch-end checkpoint (NAME_best.ckpt of the interrupted run, written at the end of epoch 1 or
# 2). Real Ctrl-C (SIGINT) saves a checkpoint, exits 130, and the run resumes from it; a damaged
# checkpoint and one of another model are refused.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
T=${CPHIL_TEST_TMP:-/tmp}/t_train_resume.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "$*"; exit 1; }
"$BIN" synth --games 3 --out "$T/r" --seed 11 --max-seconds 4 --quiet >/dev/null || fail "synth failed"
# 3 games of 4 s, one held out: 2 x 2 ports x ~240 frames of windows of 8 -> ~14 batches of 8 an epoch
common=(--replays "$T/r" --hidden 8 --num-layers 1 --batch-size 8 --epochs 3 --lr 0.003 --warmup-steps 3
        --window-size 8 --val-split 0.34 --seed 5 --quiet --out "$T")
steps_per_epoch() { sed -n 2p "$1" | cut -d, -f2; }
for prec in bf16 f32; do
  for cfg in "mlp" "lstm" "lstm --tbptt 8" "gru" "mamba --state-size 4 --conv-size 3" "attention --num-heads 2"; do
    set -- $cfg; bb=$1; shift
    tag="$bb$([ $# -gt 0 ] && [ "$1" = --tbptt ] && echo _tbptt)_$prec"
    args=("${common[@]}" --precision "$prec" --backbone "$bb" "$@")
    "$BIN" train "${args[@]}" --name "full_$tag" || fail "$tag: full run failed"
    nb=$(steps_per_epoch "$T/full_${tag}_curves.csv")
    [ -n "$nb" ] && [ "$nb" -ge 3 ] || fail "$tag: epoch 1 has ${nb:-no} steps, the test needs 3 or more"
    stop=$((2 * nb + nb / 2)) # the middle of epoch 3
    "$BIN" train "${args[@]}" --name "int_$tag" --stop-after-steps "$stop" 2>/dev/null
    rc=$?; [ $rc -eq 130 ] || fail "$tag: interrupted run exit $rc, expected 130"
    [ -f "$T/int_$tag.ckpt" ] || fail "$tag: no checkpoint after the interruption"
    [ -f "$T/int_${tag}_best.ckpt" ] || fail "$tag: no epoch-end (best) checkpoint before the interruption"
    cp "$T/int_${tag}_best.ckpt" "$T/end_$tag.ckpt"
    "$BIN" train "${args[@]}" --name "int_$tag" --resume "$T/int_$tag.ckpt" 2>/dev/null || fail "$tag: resume failed"
    cmp "$T/full_${tag}_policy.safetensors" "$T/int_${tag}_policy.safetensors" \
      || fail "$tag: policy resumed at step $stop (epoch 3, $nb steps an epoch) differs from the uninterrupted one"
    diff <(cut -d, -f1-10 "$T/full_${tag}_curves.csv") <(cut -d, -f1-10 "$T/int_${tag}_curves.csv") \
      || fail "$tag: curves differ"
    "$BIN" train "${args[@]}" --name "end_$tag" --resume "$T/end_$tag.ckpt" 2>/dev/null || fail "$tag: resume from the epoch-end checkpoint failed"
    cmp "$T/full_${tag}_policy.safetensors" "$T/end_${tag}_policy.safetensors" \
      || fail "$tag: policy resumed from an epoch-end checkpoint differs from the uninterrupted one"
    rm -f "$T"/*"_$tag"*
  done
done
sig=("${common[@]}" --precision f32 --backbone lstm --tbptt 8)
"$BIN" train "${sig[@]}" --name keep --stop-after-steps 5 2>/dev/null
# a damaged checkpoint is refused with a message
head -c 1000 "$T/keep.ckpt" > "$T/bad.ckpt"
out=$("$BIN" train "${sig[@]}" --name bad --resume "$T/bad.ckpt" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a truncated checkpoint was accepted"
case "$out" in *truncated*) ;; *) fail "no 'truncated' in: $out" ;; esac
# a checkpoint of another model is refused
out=$("$BIN" train "${common[@]}" --precision f32 --backbone gru --name other --resume "$T/keep.ckpt" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a checkpoint of another model was accepted"
case "$out" in *"different model"*) ;; *) fail "no 'different model' in: $out" ;; esac
# real Ctrl-C
"$BIN" train "${sig[@]}" --epochs 100000 --name sig 2>"$T/sig.err" &
pid=$!
for i in $(seq 1 100); do [ -f "$T/sig_curves.csv" ] && break; sleep 0.1; done
sleep 0.3
kill -INT $pid
wait $pid; rc=$?
[ $rc -eq 130 ] || { cat "$T/sig.err"; fail "SIGINT: exit $rc, expected 130"; }
grep -q "resume" "$T/sig.err" || fail "SIGINT: no resume hint: $(cat "$T/sig.err")"
st=$(sed -n 's/.*(step \([0-9]*\)).*/\1/p' "$T/sig.err" | head -1)
[ -n "$st" ] || fail "SIGINT: no step in: $(cat "$T/sig.err")"
"$BIN" train "${sig[@]}" --epochs 100000 --max-steps $((st + 1)) --name sig --resume "$T/sig.ckpt" >/dev/null 2>&1 \
  || fail "cannot resume after SIGINT"
# --max-steps: a stop is an exact position; a resume with a larger --max-steps continues, one
# with the same number or of a finished run fails with a message (it used to exit 0 silently)
ms=("${common[@]}" --precision f32 --backbone mlp --epochs 2 --name ms)
"$BIN" train "${ms[@]}" --max-steps 5 || fail "max-steps 5 failed"
out=$("$BIN" train "${ms[@]}" --max-steps 5 --resume "$T/ms.ckpt" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a resume with the same --max-steps exit 0: $out"
case "$out" in *"--max-steps"*) ;; *) fail "no --max-steps hint in: $out" ;; esac
"$BIN" train "${ms[@]}" --max-steps 9 --resume "$T/ms.ckpt" || fail "resume with a larger --max-steps failed"
tail -1 "$T/ms_curves.csv" | cut -d, -f2 | grep -qx 9 || fail "resume with --max-steps 9 did not reach step 9: $(cat "$T/ms_curves.csv")"
"$BIN" train "${ms[@]}" --resume "$T/ms.ckpt" || fail "resume without --max-steps failed"
out=$("$BIN" train "${ms[@]}" --resume "$T/ms.ckpt" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a resume of a finished run exit 0: $out"
case "$out" in *finished*) ;; *) fail "no 'finished' in: $out" ;; esac
exit 0
