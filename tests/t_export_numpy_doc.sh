#!/usr/bin/env bash
# t_export_numpy_doc.sh — the NumPy script in docs/export.md rebuilds an MLP policy's forward
# pass from `cphil export --format npz` and matches `cphil predict` (runs the script as written).
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
T=${CPHIL_TEST_TMP:-build/rel/test-tmp}/export_numpy_doc
PY=/usr/bin/python3
rm -rf "$T"; mkdir -p "$T"
[ -x "$PY" ] && $PY -c 'import numpy' 2>/dev/null || { echo "SKIP: needs /usr/bin/python3 with numpy"; exit 77; }
sed -n '/numpy-mlp-begin/,/numpy-mlp-end/p' docs/export.md | sed '1,2d;$d' | sed '$d' > "$T/mlp.py"
grep -q "np.load" "$T/mlp.py" || { echo "FAIL: could not extract the script from docs/export.md"; exit 1; }
P="random:mlp:E=40,mlp=48x32x16,seed=5"
"$BIN" export --quiet --policy "$P" --format npz --output "$T/w.npz" || exit 1
$PY -c "import numpy as np; np.save('$T/x.npy', np.random.default_rng(2).standard_normal((32, 3, 40)).astype(np.float32))"
"$BIN" predict --quiet --policy "$P" --input "$T/x.npy" --output "$T/pred.npz" || exit 1
$PY "$T/mlp.py" "$T/w.npz" "$T/pred.npz"
