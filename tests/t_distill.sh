#!/usr/bin/env bash
# t_distill.sh — cphil soft-labels + cphil distill at reduced size on synthetic replays:
# a student of the teacher's own size (mlp 32,32), distilled with alpha 1 on the teacher's
# training frames, agrees with the teacher's decisions on nearly every frame (>= 97%); the
# student is a policy file that eval (and so the agent, bench, quantize, export) loads; a
# soft-label file made on another dataset, or damaged, is refused with a message.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "needs /usr/bin/python3 to read the JSON"; exit 77; }
T=${CPHIL_TEST_TMP:-/tmp}/t_distill.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "$*"; exit 1; }
"$BIN" synth --games 6 --out "$T/r" --seed 21 --max-seconds 20 --quiet >/dev/null || fail "synth failed"
"$BIN" train --replays "$T/r" --backbone mlp --hidden 32,32 --epochs 2 --batch-size 32 --lr 0.003 --precision f32 \
    --val-split 0.2 --out "$T" --name teacher --quiet || fail "teacher training failed"
"$BIN" soft-labels --teacher "$T/teacher_policy.safetensors" --replays "$T/r" --val-split 0.2 --output "$T/soft.bin" \
    --temperature 2 --quiet || fail "soft-labels failed"
[ -f "$T/soft.bin" ] && [ -f "$T/soft.bin.ds" ] || fail "soft-labels wrote no file"
"$BIN" distill --soft-labels "$T/soft.bin" --hidden 32,32 --epochs 4 --alpha 1 --lr 0.003 --batch-size 32 \
    --precision f32 --output "$T/student" --quiet || fail "distill failed"
"$BIN" eval --policy "$T/student_policy.safetensors" --data "$T/soft.bin.ds" --all \
    --agree-with "$T/teacher_policy.safetensors" --json > "$T/agree.json" || fail "eval --agree-with failed"
"$PY" - "$T/agree.json" <<'PYEOF' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
a = d["agreement"]["action"]
print("same-size student agrees with the teacher on %.4f of %d frames (%s)" % (
    a, d["frames"], " ".join("%s %.3f" % (k, v) for k, v in d["agreement"].items() if k not in ("with", "action"))))
sys.exit(0 if a >= 0.97 else 1)
PYEOF
# another dataset: refused
"$BIN" dataset --replays "$T/r" --out "$T/other.ds" --max-files 3 --quiet >/dev/null 2>&1 || fail "dataset failed"
out=$("$BIN" distill --soft-labels "$T/soft.bin" --data "$T/other.ds" --output "$T/x" --quiet 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a soft-label file of another dataset was accepted"
case "$out" in *"another dataset"*) ;; *) fail "no 'another dataset' in: $out" ;; esac
# damaged: refused
head -c 5000 "$T/soft.bin" > "$T/cut.bin"
out=$("$BIN" distill --soft-labels "$T/cut.bin" --output "$T/x" --quiet 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a truncated soft-label file was accepted"
case "$out" in *truncated*) ;; *) fail "no 'truncated' in: $out" ;; esac
exit 0
