#!/usr/bin/env bash
# t_export_onnx.sh — `cphil export` for every backbone, proven in the runtimes users load the
# files in: onnx.checker (Debian python3-onnx) accepts each ONNX file; ONNX Runtime 1.30
# (npm onnxruntime-node, one thread) matches `cphil predict` (cphil's window mode) within 1e-4
# relative (f32) on random inputs, and so does an independent NumPy forward pass rebuilt from the
# .npz export (tests/py/npz_forward.py); the int8 graphs (dynamic, and static QDQ calibrated on
# the inputs) run in ONNX Runtime and their chosen actions agree with cphil's int8 engine
# (`cphil predict --int8 dynamic|static`, same calibration) on >= 98% of decisions, logits within 10% (tests/ort_int8.sh); the int8
# files `cphil quantize` writes (dynamic and static) export as they are and ONNX Runtime agrees
# with `cphil predict` on them (the same bar); bad arguments are clear errors. Small models (E 24, H 16, W 6): seconds.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
T=${CPHIL_TEST_TMP:-build/rel/test-tmp}/export_onnx
PY=/usr/bin/python3
NODE_MOD=tests/js/node_modules/onnxruntime-node
rm -rf "$T"; mkdir -p "$T"
[ -x "$PY" ] && $PY -c 'import numpy, onnx' 2>/dev/null || { echo "SKIP: needs /usr/bin/python3 with numpy and onnx (scripts/setup.sh --test)"; exit 77; }
[ -d "$NODE_MOD" ] && command -v node >/dev/null || { echo "SKIP: needs node and tests/js/node_modules/onnxruntime-node (scripts/setup.sh --test)"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
# The int8 graphs run in ORT as tests/ort_int8.sh says (the CPU's VNNI decides), which also sets
# the agreement bar (98% and the largest logit error <= 10% of the row's largest logit; without
# VNNI, for dynamic graphs ORT cannot run exactly, 90%).
. tests/ort_int8.sh

# Clear errors.
out=$("$BIN" export --policy "$T/nope.safetensors" --format onnx --output "$T/x.onnx" 2>&1) && fail "missing policy accepted"
echo "$out" | grep -q "nope.safetensors" || fail "missing-policy message lacks the path: $out"
out=$("$BIN" export --policy random:mlp --format onxx --output "$T/x.onnx" 2>&1); [ $? -eq 2 ] || fail "unknown format not a usage error"
echo "$out" | grep -q "did you mean 'onnx'" || fail "unknown-format message: $out"
out=$("$BIN" export --policy random:mlp --format npz --int8 dynamic --output "$T/x.npz" 2>&1) && fail "--int8 with npz accepted"
echo "$out" | grep -q "onnx only" || fail "int8/npz message: $out"
out=$("$BIN" export --policy random:mlp --format onnx --int8 static --calibration "$T/none.npy" --output "$T/x.onnx" 2>&1) && fail "missing calibration data accepted"
echo "$out" | grep -q "none.npy" || fail "missing-calibration message: $out"
out=$("$BIN" export --policy random:mlp --format onnx --int8 static --output "$T/x.onnx" 2>&1) && fail "static without calibration accepted"
echo "$out" | grep -q "calibration" || fail "static/calibration message: $out"
out=$("$BIN" export --policy random:mlp --format onnx --output "$T/x.onnx" --bogus 2>&1); [ $? -eq 2 ] || fail "unknown option accepted"
printf 'not a policy' > "$T/bad.safetensors"
out=$("$BIN" export --policy "$T/bad.safetensors" --format onnx --output "$T/x.onnx" 2>&1) && fail "garbage policy accepted"
echo "$out" | grep -q "bad.safetensors" || fail "garbage-policy message: $out"
[ -e "$T/x.onnx" ] && fail "a failed export left an output file"
$PY -c "import numpy as np; np.save('$T/bad_w.npy', np.zeros((2, 5, 24), np.float32)); np.save('$T/bad_r.npy', np.zeros((2, 24), np.float32))"
out=$("$BIN" predict --policy random:lstm:E=24,hidden=16,window=6 --input "$T/bad_w.npy" --output "$T/p.npz" 2>&1) && fail "predict: wrong window accepted"
echo "$out" | grep -q "window is 6" || fail "predict wrong-window message: $out"
out=$("$BIN" predict --policy random:lstm:E=24,hidden=16,window=6 --input "$T/bad_r.npy" --output "$T/p.npz" 2>&1) && fail "predict: rank 2 accepted"
echo "$out" | grep -q "\[N, W, E\]" || fail "predict rank message: $out"
out=$("$BIN" predict --policy random:lstm:E=32,hidden=16,window=5 --input "$T/bad_w.npy" --output "$T/p.npz" 2>&1) && fail "predict: wrong E accepted"
echo "$out" | grep -q "E = 32" || fail "predict E message: $out"
out=$("$BIN" predict --policy random:lstm --input "$T/none.npy" --output "$T/p.npz" 2>&1) && fail "predict: missing input accepted"

$PY -c "import numpy as np; r = np.random.default_rng(7); np.save('$T/x.npy', r.standard_normal((16, 6, 24)).astype(np.float32)); np.save('$T/x64.npy', r.standard_normal((64, 6, 24)).astype(np.float32))"
# Autoregressive heads decode greedily inside the graph; ONNX Runtime matches cphil predict (the
# training forward without targets: each head conditioned on the greedy choices before it).
for bb in mlp mamba; do
  spec="random:$bb:E=24,hidden=16,window=6,layers=2,state=4,heads=2,mlp=32x16,seed=3,ar=1"
  P="$T/${bb}_ar.safetensors"
  "$BIN" export --quiet --policy "$spec" --format safetensors --output "$P" || fail "$bb ar: save"
  "$BIN" export --quiet --policy "$P" --format onnx --output "$T/${bb}_ar.onnx" || fail "$bb ar: onnx"
  $PY -c "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" "$T/${bb}_ar.onnx" || fail "$bb ar: onnx.checker"
  "$BIN" predict --quiet --policy "$P" --input "$T/x.npy" --output "$T/${bb}_ar_cphil.npz" || fail "$bb ar: predict"
  node tests/js/onnx_run.js "$T/${bb}_ar.onnx" "$T/x.npy" "$T/${bb}_ar_ort" || fail "$bb ar: onnxruntime f32"
  $PY tests/py/compare.py "$T/${bb}_ar_ort" "$T/${bb}_ar_cphil.npz" --label "$bb autoregressive f32 ORT vs cphil predict" || fail "$bb ar: ORT/cphil mismatch"
done
out=$("$BIN" export --policy "$T/mlp_ar.safetensors" --format onnx --int8 dynamic --output "$T/x.onnx" 2>&1) && fail "int8 export of autoregressive heads accepted"
echo "$out" | grep -q "autoregressive" || fail "int8/ar message: $out"
for bb in mlp lstm gru mamba attention; do
  spec="random:$bb:E=24,hidden=16,window=6,layers=2,state=4,heads=2,mlp=32x16,seed=3"
  "$BIN" export --quiet --policy "$spec" --format safetensors --output "$T/$bb.safetensors" || fail "$bb: save"
  P="$T/$bb.safetensors"
  "$BIN" export --quiet --policy "$P" --format npz --output "$T/$bb.npz" || fail "$bb: npz"
  "$BIN" export --quiet --policy "$P" --format onnx --output "$T/$bb.onnx" || fail "$bb: onnx"
  "$BIN" export --quiet --policy "$P" --format onnx --int8 dynamic --output "$T/${bb}_dyn.onnx" || fail "$bb: onnx int8 dynamic"
  $PY - "$T/$bb.onnx" "$T/${bb}_dyn.onnx" <<'PYEOF' || fail "$bb: onnx.checker"
import sys, onnx
for f in sys.argv[1:]:
    m = onnx.load(f)
    onnx.checker.check_model(m, full_check=True)
    assert [i.name for i in m.graph.input] == ["state_sequence"]
    assert [o.name for o in m.graph.output] == ["buttons", "main_x", "main_y", "c_x", "c_y", "shoulder"]
    assert m.opset_import[0].version == 17
print("onnx.checker ok:", ", ".join(f.split("/")[-1] for f in sys.argv[1:]))
PYEOF
  $PY tests/py/npz_forward.py "$T/$bb.npz" "$T/x.npy" "$T/${bb}_np.npz" || fail "$bb: numpy forward"
  "$BIN" predict --quiet --policy "$P" --input "$T/x.npy" --output "$T/${bb}_cphil.npz" || fail "$bb: predict"
  node tests/js/onnx_run.js "$T/$bb.onnx" "$T/x.npy" "$T/${bb}_ort" || fail "$bb: onnxruntime f32"
  $PY tests/py/compare.py "$T/${bb}_ort" "$T/${bb}_cphil.npz" --label "$bb f32 ORT vs cphil predict" || fail "$bb: f32 ORT/cphil mismatch"
  $PY tests/py/compare.py "$T/${bb}_np.npz" "$T/${bb}_cphil.npz" --label "$bb f32 NumPy(npz) vs cphil predict" || fail "$bb: f32 NumPy/cphil mismatch"
  "$BIN" export --quiet --policy "$P" --format onnx --int8 static --calibration "$T/x64.npy" --output "$T/${bb}_qdq.onnx" || fail "$bb: onnx int8 static"
  $PY -c "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" "$T/${bb}_qdq.onnx" || fail "$bb: onnx.checker (static)"
  "$BIN" predict --quiet --policy "$P" --input "$T/x64.npy" --int8 dynamic --output "$T/${bb}_cdyn.npz" || fail "$bb: predict --int8 dynamic"
  "$BIN" predict --quiet --policy "$P" --input "$T/x64.npy" --int8 static --calibration "$T/x64.npy" --output "$T/${bb}_cqdq.npz" || fail "$bb: predict --int8 static"
  ort_int8 "$T/${bb}_dyn.onnx" "$T/x64.npy" "$T/${bb}_dyn" dynamic || fail "$bb: onnxruntime int8 dynamic"
  $PY tests/py/compare.py "$T/${bb}_dyn" "$T/${bb}_cdyn.npz" --agree $ORT_BAR --max-rel $ORT_MAXREL --label "$bb int8-dynamic ORT vs cphil int8 engine" || fail "$bb: int8 dynamic agreement"
  ort_int8 "$T/${bb}_qdq.onnx" "$T/x64.npy" "$T/${bb}_qdq" static || fail "$bb: onnxruntime int8 static"
  $PY tests/py/compare.py "$T/${bb}_qdq" "$T/${bb}_cqdq.npz" --agree $ORT_BAR --max-rel $ORT_MAXREL --label "$bb int8-static ORT vs cphil int8 engine" || fail "$bb: int8 static agreement"
done
# Replay inputs: the windows of a replay, embedded as the agent does (cphil predict --replay),
# on policies over the real embedding width. A real replay when the shared replays are there,
# else a synthetic game (the same checks; the synthetic game exercises fewer embedding blocks).
"$BIN" synth --games 3 --out "$T/games" --quiet >/dev/null || fail "synth"
R=${CPHIL_REPLAYS:-../shared/replays}/exphil/fox_multishine.slp
if [ ! -f "$R" ]; then
  echo "note: $R missing: the replay-window comparisons run on a synthetic game"
  R="$T/games/synth_0001.slp"
fi
out=$("$BIN" predict --policy random:lstm:layout=default,hidden=16,window=6 --replay "$R" --port 3 --frames 0:10 --output "$T/p.npz" 2>&1) && fail "predict: empty port accepted"
out=$("$BIN" predict --policy random:lstm:layout=default,hidden=16,window=6 --replay "$R" --port 1 --frames 0:99999 --output "$T/p.npz" 2>&1) && fail "predict: frames past the end accepted"
echo "$out" | grep -q "outside the replay" || fail "predict frames message: $out"
for bb in mlp lstm gru mamba attention; do
  P="random:$bb:layout=default,hidden=16,window=6,layers=2,state=4,heads=2,mlp=32x16,seed=4"
  "$BIN" predict --quiet --policy "$P" --replay "$R" --port 1 --frames -123:40 --output "$T/${bb}_rp.npz" || fail "$bb: predict --replay"
  "$BIN" export --quiet --policy "$P" --format onnx --output "$T/${bb}_rp.onnx" || fail "$bb: onnx (replay width)"
  $PY -c "import numpy as np; np.save('$T/rp_x.npy', np.load('$T/${bb}_rp.npz')['state_sequence'])"
  node tests/js/onnx_run.js "$T/${bb}_rp.onnx" "$T/rp_x.npy" "$T/${bb}_rp_ort" || fail "$bb: onnxruntime on replay windows"
  $PY tests/py/compare.py "$T/${bb}_rp_ort" "$T/${bb}_rp.npz" --label "$bb f32 ORT vs cphil predict, replay windows" || fail "$bb: replay mismatch"
done
# Files `cphil quantize` wrote (its own int8 weights and activation mode, static scales calibrated
# on synthetic games): exported without --int8, and run by `cphil predict` without --int8.
X=""
for bb in mlp lstm gru mamba attention; do
  P="random:$bb:layout=default,hidden=16,window=6,layers=2,state=4,heads=2,mlp=32x16,seed=5"
  "$BIN" export --quiet --policy "$P" --format safetensors --output "$T/${bb}_f.safetensors" || fail "$bb: save"
  if [ -z "$X" ]; then
    "$BIN" predict --quiet --policy "$T/${bb}_f.safetensors" --replay "$T/games/synth_0000.slp" --port 1 --frames 0:127 --output "$T/q_x.npz" || fail "predict --replay (synthetic)"
    $PY -c "import numpy as np; np.save('$T/q_x.npy', np.load('$T/q_x.npz')['state_sequence'])"
    X="$T/q_x.npy"
  fi
  for mode in dynamic static; do
    Q="$T/${bb}_q_$mode.safetensors"
    cal=(); [ $mode = static ] && cal=(--calibration "$T/games")
    "$BIN" quantize --policy "$T/${bb}_f.safetensors" --mode $mode "${cal[@]}" --output "$Q" >/dev/null || fail "$bb: quantize $mode"
    "$BIN" export --quiet --policy "$Q" --format onnx --output "$T/${bb}_q_$mode.onnx" || fail "$bb: export of an int8 $mode file"
    "$BIN" predict --quiet --policy "$Q" --input "$X" --output "$T/${bb}_q_$mode.npz" || fail "$bb: predict on an int8 $mode file"
    ort_int8 "$T/${bb}_q_$mode.onnx" "$X" "$T/${bb}_q_${mode}_ort" $mode || fail "$bb: onnxruntime on the int8 $mode file's graph"
    $PY tests/py/compare.py "$T/${bb}_q_${mode}_ort" "$T/${bb}_q_$mode.npz" --agree $ORT_BAR --max-rel $ORT_MAXREL --label "$bb quantized-file int8 $mode: ORT vs cphil predict" || fail "$bb: quantized $mode agreement"
  done
done
Q="$T/lstm_q_static.safetensors"
out=$("$BIN" export --policy "$Q" --format npz --output "$T/q.npz" 2>&1) && fail "npz of an int8 file accepted"
echo "$out" | grep -q "int8 static weights" || fail "int8-file npz message: $out"
out=$("$BIN" export --policy "$Q" --format onnx --int8 dynamic --output "$T/q.onnx" 2>&1) && fail "--int8 dynamic on a static file accepted"
echo "$out" | grep -q "drop --int8" || fail "int8-file --int8 message: $out"
out=$("$BIN" predict --policy "$Q" --input "$X" --int8 static --calibration "$X" --output "$T/q.npz" 2>&1) && fail "predict: --calibration on a static file accepted"
echo "$out" | grep -q "drop --calibration" || fail "int8-file predict message: $out"
[ -e "$T/q.npz" ] || [ -e "$T/q.onnx" ] && fail "a refused export left an output file"
echo "all backbones: npz, onnx f32 and int8 checked"
