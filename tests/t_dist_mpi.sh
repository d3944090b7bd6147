#!/usr/bin/env bash
# t_dist_mpi.sh — data-parallel CPU ranks (docs/distributed.md) through mpirun on synthetic games:
#  1. 2 ranks with --batch-size 8 end 10 f32 steps where 1 process with --batch-size 16 ends:
#     every policy tensor within 1e-4 of its largest value (the bits differ where the gradient
#     sums are ordered differently: per rank, then across ranks, after a weight-share scale);
#  2. the ranks' shares of every step are disjoint and together are the 1-process batch
#     (CPHIL_DIST_LOG_WINDOWS logs the window ids each rank trained on);
#  3. kill -9 of one rank mid-epoch ends the other within 30 s with a message naming the rank, and
#     the last checkpoint stays intact (a 1-process resume from it trains);
#  4. a 2-rank checkpoint (stopped mid-epoch) resumes in 1 process with the same global batch and
#     ends where the uninterrupted 1-process run ends; with another global batch it says how the
#     position was carried over;
#  5. a rank that hangs (SIGSTOP) makes the other stop after CPHIL_DIST_TIMEOUT, naming it;
#  6. TBPTT: 2 ranks x 2 streams end 10 steps where 1 process x 4 streams ends (policy and carried
#     state), and a checkpoint taken mid-stream resumes across rank counts (2 -> 1, 1 -> 2);
#  7. mpirun -np 2 cphil distill: 2 ranks x 8 frames end 10 steps where 1 process x 16 ends, the
#     shares are disjoint and make up the global batch, and a 2-rank checkpoint resumes in 1 process;
#  8. the gradient all-reduce in buckets overlapped with the backward (CPHIL_DIST_BUCKET_KB) gives
#     the bits of one all-reduce after the backward.
# Exit 77 when mpirun is missing (scripts/setup.sh --test installs Open MPI) or cphil was built
# without MPI (then it must refuse to run as one of several ranks, which is checked first).
# Under the sanitizer build, LeakSanitizer is off for the mpirun runs only: Open MPI keeps
# allocations of its own until exit, which LSan reports as leaks in libmpi/libopen-pal.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
case "$BIN" in /*) ;; *) BIN=$PWD/$BIN ;; esac
T=${CPHIL_TEST_TMP:-/tmp}/t_dist_mpi.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "$*"; exit 1; }
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found (scripts/setup.sh --test installs openmpi-bin)"; exit 77; }
MPI=(timeout 120 env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
     mpirun --allow-run-as-root --oversubscribe -x ASAN_OPTIONS -x CPHIL_DIST_TIMEOUT -x CPHIL_DIST_LOG_WINDOWS
     -x CPHIL_DIST_BUCKET_KB)
export CPHIL_DIST_TIMEOUT=60 CPHIL_DIST_LOG_WINDOWS= CPHIL_DIST_BUCKET_KB=
if ! "$BIN" version | grep -q '^mpi: compiled in'; then
  # a build without MPI must refuse to be one of several ranks, not train 2 copies
  out=$(PMI_SIZE=2 "$BIN" train --data /nonexistent 2>&1); rc=$?
  [ $rc -ne 0 ] || fail "a build without MPI ran as one of 2 ranks"
  case "$out" in *"without MPI"*) ;; *) fail "no 'without MPI' in: $out" ;; esac
  echo "SKIP: $BIN was built without MPI (it refuses mpirun, checked); install libopenmpi-dev and rebuild"
  exit 77
fi
out=$("$BIN" train --gpus 2 --data /nonexistent 2>&1) && fail "--gpus without --device cuda accepted"
case "$out" in *"--gpus 2 needs --device cuda"*) ;; *) fail "no clear --gpus message: $out" ;; esac
PY=$(command -v python3) || { echo "SKIP: python3 missing (compares the policy tensors)"; exit 77; }

"$BIN" synth --games 4 --out "$T/r" --seed 11 --max-seconds 4 --quiet >/dev/null || fail "synth failed"
"$BIN" dataset --replays "$T/r" --out "$T/d.ds" --dual-port --val-split 0.25 --quiet >/dev/null 2>&1 || fail "dataset failed"
common=(--data "$T/d.ds" --dual-port --backbone mlp --hidden 8 --num-layers 1 --window-size 8 --precision f32
        --lr 0.003 --warmup-steps 3 --seed 5 --quiet --out "$T")

# compare two policy files tensor by tensor: max |a - b| <= 1e-4 x max |a| (or, with a third
# argument, that section of two checkpoints)
cat > "$T/cmp.py" <<'PYEOF'
import json, struct, sys
from array import array
def load_ckpt(p, name):
    # ckpt.h: magic, u32 version, u32 n_sections, u64 meta_len, meta (padded to 8), then per
    # section: u32 name_len, name (padded with the length word to 8), u64 size, u64 hash, data (padded)
    b = open(p, 'rb').read(); pad = lambda n: (8 - n % 8) % 8
    ns = struct.unpack('<I', b[12:16])[0]; ml = struct.unpack('<Q', b[16:24])[0]; o = 24 + ml + pad(ml)
    for _ in range(ns):
        nl = struct.unpack('<I', b[o:o + 4])[0]; nm = b[o + 4:o + 4 + nl].decode(); o += 4 + nl + pad(4 + nl)
        sz = struct.unpack('<Q', b[o:o + 8])[0]; o += 16
        if nm == name: a = array('f'); a.frombytes(b[o:o + sz]); return {name: a}
        o += sz + pad(sz)
    sys.exit(f'{p}: no section {name}')
def load(p):
    if len(sys.argv) > 3: return load_ckpt(p, sys.argv[3])
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n]); base = 8 + n; out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        if v['dtype'] != 'F32': sys.exit(f'{k}: dtype {v["dtype"]}, expected F32')
        s, e = v['data_offsets']; a = array('f'); a.frombytes(b[base + s:base + e]); out[k] = a
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
if set(a) != set(b): sys.exit('the files hold different tensors')
worst, nd, nt = 0.0, 0, 0
for k in sorted(a):
    x, y = a[k], b[k]
    if len(x) != len(y): sys.exit(f'{k}: sizes differ')
    scale = max(max((abs(v) for v in x), default=0.0), 1e-30)
    d = max((abs(u - v) for u, v in zip(x, y)), default=0.0) / scale
    nd += sum(1 for u, v in zip(x, y) if u != v); nt += len(x); worst = max(worst, d)
    if d > 1e-4: sys.exit(f'{k}: differs by {d:.3g} of its largest value (limit 1e-4)')
print(f'{len(a)} tensors, {nt} values, {nd} differ in bits, worst {worst:.3g}')
PYEOF

# 1 + 2: one process with batch 16 against 2 ranks with batch 8, 10 steps
CPHIL_DIST_LOG_WINDOWS="$T/w1" "$BIN" train "${common[@]}" --epochs 3 --max-steps 10 --batch-size 16 --name one \
  || fail "1-process run failed"
CPHIL_DIST_LOG_WINDOWS="$T/w2" "${MPI[@]}" -np 2 "$BIN" train "${common[@]}" --epochs 3 --max-steps 10 --batch-size 8 \
  --name two > "$T/two.out" 2>&1 || { cat "$T/two.out"; fail "2-rank run failed"; }
[ ! -s "$T/two.out" ] || { cat "$T/two.out"; fail "2 quiet ranks printed something"; }
[ "$(tail -1 "$T/one_curves.csv" | cut -d, -f2)" = 10 ] || fail "the 1-process run did not end at step 10"
[ "$(tail -1 "$T/two_curves.csv" | cut -d, -f2)" = 10 ] || fail "the 2-rank run did not end at step 10"
res=$("$PY" "$T/cmp.py" "$T/one_policy.safetensors" "$T/two_policy.safetensors") \
  || fail "2 ranks x batch 8 differ from 1 process x batch 16: $res"
echo "# 10 steps, 2 ranks x 8 vs 1 x 16: $res"
# the shares logged under $2 (2 ranks, 8 items a step each) are disjoint and make up the 1-process
# batches logged under $1, for 10 steps
check_shares() {
  local one=$1 two=$2 l1 l2 l3 s1 a b
  [ "$(wc -l < "$one.rank0")" = 10 ] || fail "the share log $one has $(wc -l < "$one.rank0") steps, expected 10"
  while IFS= read -r l1 && IFS= read -r l2 <&3 && IFS= read -r l3 <&4; do
    set -- $l1; s1=$(shift 2; printf '%s\n' "$@" | sort)
    set -- $l2; [ $# -eq 10 ] || fail "rank 0 trained $(($# - 2)) items in a step, expected 8: $l2"; a=$(shift 2; printf '%s\n' "$@")
    set -- $l3; [ $# -eq 10 ] || fail "rank 1 trained $(($# - 2)) items in a step, expected 8: $l3"; b=$(shift 2; printf '%s\n' "$@")
    [ -z "$(comm -12 <(sort <<<"$a") <(sort <<<"$b"))" ] || fail "ranks share items in step: $l2 / $l3"
    [ "$(printf '%s\n%s\n' "$a" "$b" | sort)" = "$s1" ] || fail "the ranks' shares are not the global batch: $l1 / $l2 / $l3"
  done < "$one.rank0" 3< "$two.rank0" 4< "$two.rank1"
  [ "$(wc -l < "$two.rank1")" = 10 ] || fail "rank 1 logged $(wc -l < "$two.rank1") steps, expected 10"
}
check_shares "$T/w1" "$T/w2"

# 6: TBPTT (LSTM, 2 layers, 8-frame chunks): 2 ranks x 2 streams against 1 process x 4 streams for
# 10 steps: the policies, and the carried state of every stream slot in the checkpoints (gathered
# from the ranks into one process's layout), within 1e-4
tb=(--data "$T/d.ds" --dual-port --backbone lstm --hidden 8 --num-layers 2 --tbptt 8 --precision f32 --lr 0.003
    --warmup-steps 3 --seed 5 --quiet --out "$T" --epochs 3)
"$BIN" train "${tb[@]}" --max-steps 10 --batch-size 4 --name tone || fail "1-process TBPTT run failed"
"${MPI[@]}" -np 2 "$BIN" train "${tb[@]}" --max-steps 10 --batch-size 2 --name ttwo > "$T/ttwo.out" 2>&1 \
  || { cat "$T/ttwo.out"; fail "2-rank TBPTT run failed"; }
res=$("$PY" "$T/cmp.py" "$T/tone_policy.safetensors" "$T/ttwo_policy.safetensors") \
  || fail "TBPTT: 2 ranks x 2 streams differ from 1 process x 4: $res"
echo "# TBPTT 10 steps, 2 ranks x 2 vs 1 x 4: $res"
res=$("$PY" "$T/cmp.py" "$T/tone.ckpt" "$T/ttwo.ckpt" carry) || fail "TBPTT: the carried states differ: $res"
echo "# TBPTT carried state at step 10: $res"
# 8: gradient buckets overlapped with the backward: 1 KiB (one per finished layer: heads, LSTM
# layer 1, layer 0, input) and 1 MiB (all in one, started when the input layer is done) give the
# bits of the default, one sum after the backward: with 2 ranks every value is the same a + b
# whatever the bucket; a bad size is refused
for kb in 1 1024; do
  CPHIL_DIST_BUCKET_KB=$kb "${MPI[@]}" -np 2 "$BIN" train "${tb[@]}" --max-steps 10 --batch-size 2 --name tb$kb \
    > "$T/tb$kb.out" 2>&1 || { cat "$T/tb$kb.out"; fail "2-rank TBPTT run with CPHIL_DIST_BUCKET_KB=$kb failed"; }
  cmp -s "$T/ttwo_policy.safetensors" "$T/tb${kb}_policy.safetensors" \
    || fail "CPHIL_DIST_BUCKET_KB=$kb changed the bits of the 2-rank result"
done
out=$(CPHIL_DIST_BUCKET_KB=1x "${MPI[@]}" -np 2 "$BIN" train "${tb[@]}" --max-steps 10 --batch-size 2 --name tbx 2>&1) \
  && fail "CPHIL_DIST_BUCKET_KB=1x accepted"
case "$out" in *"CPHIL_DIST_BUCKET_KB='1x'"*) ;; *) fail "no clear message for a bad bucket size: $out" ;; esac
# resume across rank counts mid-stream (step 4 of 10): 2 ranks -> 1 process gathers the state,
# 1 process -> 2 ranks deals it out; both end where the uninterrupted run ends
"${MPI[@]}" -np 2 "$BIN" train "${tb[@]}" --max-steps 10 --batch-size 2 --name trs --stop-after-steps 4 > "$T/trs.out" 2>&1
rc=$?; [ $rc -eq 130 ] || { cat "$T/trs.out"; fail "interrupted 2-rank TBPTT run exit $rc, expected 130"; }
cp "$T/trs.ckpt" "$T/trs1.ckpt"
"$BIN" train "${tb[@]}" --max-steps 10 --batch-size 4 --name trs --resume "$T/trs.ckpt" 2>/dev/null \
  || fail "1-process resume of a 2-rank TBPTT checkpoint failed"
for f in "_policy.safetensors" ".ckpt carry"; do
  set -- $f
  res=$("$PY" "$T/cmp.py" "$T/tone$1" "$T/trs$1" ${2:-}) || fail "TBPTT 2 ranks then 1 process ($f): $res"
done
"$BIN" train "${tb[@]}" --max-steps 10 --batch-size 4 --name tr1 --stop-after-steps 4 2>/dev/null
[ $? -eq 130 ] || fail "interrupted 1-process TBPTT run did not exit 130"
"${MPI[@]}" -np 2 "$BIN" train "${tb[@]}" --max-steps 10 --batch-size 2 --name tr1 --resume "$T/tr1.ckpt" \
  > "$T/tr1.out" 2>&1 || { cat "$T/tr1.out"; fail "2-rank resume of a 1-process TBPTT checkpoint failed"; }
for f in "_policy.safetensors" ".ckpt carry"; do
  set -- $f
  res=$("$PY" "$T/cmp.py" "$T/tone$1" "$T/tr1$1" ${2:-}) || fail "TBPTT 1 process then 2 ranks ($f): $res"
done
# another number of stream slots cannot continue the streams: refused, saying why
out=$("${MPI[@]}" -np 2 "$BIN" train "${tb[@]}" --max-steps 10 --batch-size 4 --name trs1 --resume "$T/trs1.ckpt" 2>&1) \
  && fail "a TBPTT checkpoint of 4 slots resumed with 8"
case "$out" in *"TBPTT checkpoint of 4 stream slots per step (2 ranks); this run has 8"*) ;;
  *) fail "no clear message for a TBPTT resume with another global batch: $out" ;; esac

# 7: distillation (soft labels of the 10-step policy): 2 ranks x 8 frames against 1 process x 16 for
# 10 steps (policies within 1e-4, shares of every step disjoint and the global batch), and a
# 2-rank run stopped at step 4 resumed in 1 process ends where the uninterrupted run ends
"$BIN" soft-labels --teacher "$T/one_policy.safetensors" --data "$T/d.ds" --output "$T/soft.bin" --quiet \
  || fail "soft-labels failed"
dc=(--soft-labels "$T/soft.bin" --hidden 8 --precision f32 --lr 0.003 --warmup-steps 3 --seed 5 --quiet --epochs 3
    --max-steps 10)
CPHIL_DIST_LOG_WINDOWS="$T/s1" "$BIN" distill "${dc[@]}" --batch-size 16 --output "$T/sone" \
  || fail "1-process distill failed"
CPHIL_DIST_LOG_WINDOWS="$T/s2" "${MPI[@]}" -np 2 "$BIN" distill "${dc[@]}" --batch-size 8 --output "$T/stwo" \
  > "$T/stwo.out" 2>&1 || { cat "$T/stwo.out"; fail "2-rank distill failed"; }
[ ! -s "$T/stwo.out" ] || { cat "$T/stwo.out"; fail "2 quiet distill ranks printed something"; }
[ "$(tail -1 "$T/stwo_curves.csv" | cut -d, -f2)" = 10 ] || fail "the 2-rank distill did not end at step 10"
res=$("$PY" "$T/cmp.py" "$T/sone_policy.safetensors" "$T/stwo_policy.safetensors") \
  || fail "distill: 2 ranks x 8 differ from 1 process x 16: $res"
echo "# distill 10 steps, 2 ranks x 8 vs 1 x 16: $res"
check_shares "$T/s1" "$T/s2"
"${MPI[@]}" -np 2 "$BIN" distill "${dc[@]}" --batch-size 8 --output "$T/srs" --stop-after-steps 4 > "$T/srs.out" 2>&1
rc=$?; [ $rc -eq 130 ] || { cat "$T/srs.out"; fail "interrupted 2-rank distill exit $rc, expected 130"; }
out=$("$BIN" distill "${dc[@]}" --batch-size 16 --output "$T/srs" --resume "$T/srs.ckpt" 2>&1) \
  || fail "1-process resume of a 2-rank distill checkpoint failed: $out"
case "$out" in *"written by 2 ranks"*) ;; *) fail "the distill resume did not say it changed the rank count: $out" ;; esac
res=$("$PY" "$T/cmp.py" "$T/sone_policy.safetensors" "$T/srs_policy.safetensors") \
  || fail "distill 2 ranks then 1 process differ from 1 process: $res"

# the process of rank $2 of the job whose --name is $1 (a grandchild of timeout/mpirun)
rank_pid() {
  local p
  for p in $(pgrep -f -- "--name $1"); do
    tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -q -- "--out $T .*--name $1\b" || continue
    grep -qz "^OMPI_COMM_WORLD_RANK=$2\$" /proc/$p/environ 2>/dev/null && { echo $p; return; }
  done
}

# 4: a 2-rank run stopped mid-epoch (the Ctrl-C hook) resumes in 1 process
"${MPI[@]}" -np 2 "$BIN" train "${common[@]}" --epochs 3 --max-steps 10 --batch-size 8 --name rs --stop-after-steps 4 \
  > "$T/rs.out" 2>&1
rc=$?; [ $rc -eq 130 ] || { cat "$T/rs.out"; fail "interrupted 2-rank run exit $rc, expected 130"; }
cp "$T/rs.ckpt" "$T/rs8.ckpt"
out=$("$BIN" train "${common[@]}" --epochs 3 --max-steps 10 --batch-size 16 --name rs --resume "$T/rs.ckpt" --quiet 2>&1) \
  || fail "1-process resume of a 2-rank checkpoint failed: $out"
case "$out" in *"written by 2 ranks"*) ;; *) fail "the resume did not say it changed the rank count: $out" ;; esac
res=$("$PY" "$T/cmp.py" "$T/one_policy.safetensors" "$T/rs_policy.safetensors") \
  || fail "2 ranks then 1 process differ from 1 process: $res"
out=$("$BIN" train "${common[@]}" --epochs 3 --max-steps 10 --batch-size 8 --name rs8 --resume "$T/rs8.ckpt" 2>&1) \
  || fail "1-process resume with another global batch failed: $out"
case "$out" in *"64 windows done continue as batch 8"*) ;; *) fail "no position carried over in: $out" ;; esac

# 3: kill -9 of rank 1 mid-epoch
"${MPI[@]}" -np 2 "$BIN" train "${common[@]}" --epochs 100000 --batch-size 8 --save-every 3 --name k > "$T/k.out" 2>&1 &
mp=$!
for i in $(seq 1 300); do [ -f "$T/k.ckpt" ] && break; sleep 0.1; done
[ -f "$T/k.ckpt" ] || { kill $mp; fail "no checkpoint from the 2-rank run to kill"; }
r1=$(rank_pid k 1)
[ -n "$r1" ] || { kill $mp; fail "rank 1's process not found under mpirun ($mp)"; }
t0=$SECONDS
kill -9 "$r1"
for i in $(seq 1 300); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
kill -0 $mp 2>/dev/null && { kill -9 $mp; fail "rank 0 still runs 30 s after rank 1 was killed"; }
wait $mp; rc=$?
[ $rc -ne 0 ] || fail "the job exited 0 after a rank was killed"
grep -q "rank 1" "$T/k.out" || { cat "$T/k.out"; fail "no message names rank 1"; }
echo "# kill -9 of rank 1: the job ended in $((SECONDS - t0)) s (exit $rc)"
# the checkpoint loads (--max-steps 1 is refused only after every check passed, naming its step)
out=$("$BIN" train "${common[@]}" --epochs 100000 --max-steps 1 --batch-size 16 --name k --resume "$T/k.ckpt" 2>&1)
step=$(sed -n 's/.*the checkpoint is at step \([0-9]*\) .*/\1/p' <<<"$out")
[ -n "$step" ] || fail "the checkpoint left by the killed job does not load: $out"
"$BIN" train "${common[@]}" --epochs 100000 --max-steps $((step + 2)) --batch-size 16 --name k --resume "$T/k.ckpt" \
  > /dev/null 2>&1 || fail "the checkpoint left by the killed job (step $step) does not train on"

# 5: a hung rank (SIGSTOP): the other gives up after the timeout, naming it (with gradient
# buckets, so the wait may be the one for the buckets' sums)
CPHIL_DIST_TIMEOUT=3 CPHIL_DIST_BUCKET_KB=1 "${MPI[@]}" -np 2 "$BIN" train "${common[@]}" --epochs 100000 --batch-size 8 --save-every 3 \
  --name h > "$T/h.out" 2>&1 &
mp=$!
for i in $(seq 1 300); do [ -f "$T/h.ckpt" ] && break; sleep 0.1; done
r1=$(rank_pid h 1)
[ -n "$r1" ] || { kill $mp; fail "rank 1's process not found under mpirun ($mp)"; }
kill -STOP "$r1"
for i in $(seq 1 300); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
kill -0 $mp 2>/dev/null && { kill -9 $mp "$r1"; fail "rank 0 still waits 30 s after rank 1 hung"; }
wait $mp
for i in $(seq 1 100); do kill -0 "$r1" 2>/dev/null || break; sleep 0.1; done
kill -0 "$r1" 2>/dev/null && { ps -o pid,stat,cmd -p "$r1"; kill -9 "$r1"; fail "the hung rank was left running"; }
grep -q "rank 1 did not answer" "$T/h.out" || { cat "$T/h.out"; fail "no message names the hung rank 1"; }
exit 0
