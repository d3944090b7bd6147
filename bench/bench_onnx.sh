#!/usr/bin/env bash
# bench_onnx.sh — ONNX Runtime 1.30 (onnxruntime-node, one thread) against cphil on the same
# policies, for every backbone, f32 and int8, in one run on this machine.
#
#   bench/bench_onnx.sh [--seconds S] [--backbone mlp,lstm,...]
#
# Each backbone at the seed's sizes (hidden 256, 2 layers, window 60, Mamba state 16 / expand 2 /
# conv 4, 4 attention heads, MLP 512-512) over cphil's real embedding (E 2185), random weights:
# `cphil export` writes the f32 and int8-dynamic ONNX files, bench/bench_onnx.js times ONNX
# Runtime on one window [1, W, E] (the MLP: one frame; bench/bench_onnx.py instead where there is
# no Node but Python's onnxruntime, e.g. the lent GPU machines, or with ORT=python); `cphil bench` (same sizes, same embedding)
# times cphil in window mode and stream mode. Ratios are ONNX Runtime p50 / cphil p50, measured in
# the same run. Medians over about S seconds per row (default 1); the machine is shared, so the
# numbers are noisy: compare ratios, not absolute times across runs. Node's call overhead is
# inside the ONNX Runtime times (it is how a Node user calls it; a few microseconds).
set -u
cd "$(dirname "$0")/.."
BIN=${CPHIL_BIN:-build/rel/cphil}
SECS=1
BBS=mlp,lstm,gru,mamba,attention
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECS=$2; shift 2 ;;
    --backbone) BBS=$2; shift 2 ;;
    *) echo "usage: bench/bench_onnx.sh [--seconds S] [--backbone mlp,lstm,...]" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "bench_onnx: build first (make)" >&2; exit 1; }
ORT=${ORT:-node}
if [ "$ORT" = node ] && ! { command -v node >/dev/null && [ -d tests/js/node_modules/onnxruntime-node ]; }; then
  python3 -c 'import onnxruntime' 2>/dev/null && ORT=python
fi
if [ "$ORT" = node ]; then
  [ -d tests/js/node_modules/onnxruntime-node ] || { echo "bench_onnx: needs tests/js/node_modules (scripts/setup.sh --test) or Python's onnxruntime (ORT=python)" >&2; exit 1; }
  export ORT_NODE=$PWD/tests/js/node_modules/onnxruntime-node
  ort_time() { node bench/bench_onnx.js "$@"; }
else
  ort_time() { python3 bench/bench_onnx.py "$@"; }
  ORT="python, onnxruntime $(python3 -c 'import onnxruntime; print(onnxruntime.__version__)' 2>/dev/null)"
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
have_bench=0; "$BIN" bench --help >/dev/null 2>&1 && have_bench=1
PYJ=$(command -v /usr/bin/python3 || command -v python3)
E=$("$BIN" embed-info --json 2>/dev/null | "$PYJ" -c 'import json,sys; print(json.load(sys.stdin)["E"])' 2>/dev/null || echo 2185)
echo "# ONNX Runtime ($ORT, 1 thread) vs cphil, seed sizes, E=$E, $(date -u +%FT%TZ), $(nproc) cores; p50 microseconds per decision"
printf "%-10s %-5s %10s %13s %8s %13s %8s\n" backbone prec "ORT win" "cphil win" "ratio" "cphil stream" "ratio"
for bb in ${BBS//,/ }; do
  W=60; [ "$bb" = mlp ] && W=1
  P="random:$bb:layout=default,window=$W"
  "$BIN" export --quiet --policy "$P" --format onnx --output "$T/$bb.onnx" || exit 1
  "$BIN" export --quiet --policy "$P" --format onnx --int8 dynamic --output "$T/${bb}_int8.onnx" || exit 1
  cj="$T/$bb.cphil.json"; : > "$cj"
  [ $have_bench = 1 ] && "$BIN" bench --backbone "$bb" --precision f32,int8 --mode window,stream --seconds "$SECS" --json > "$cj" 2>/dev/null
  for prec in f32 int8; do
    f="$T/$bb.onnx"; [ $prec = int8 ] && f="$T/${bb}_int8.onnx"
    oj=$(ort_time "$f" "$W" "$E" "$SECS") || exit 1
    "$PYJ" - "$bb" "$prec" "$oj" "$cj" <<'PY'
import json, sys
bb, prec, oj, cj = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
rows = {}
for line in open(cj):
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        if r.get("backbone") == bb and r.get("precision") == prec:
            rows[r.get("mode")] = r
ort = oj["p50_us"]
def cell(mode):
    r = rows.get(mode)
    if not r:
        return "%13s %8s" % ("-", "-")
    return "%13.1f %7.1fx" % (r["p50_us"], ort / r["p50_us"])
print("%-10s %-5s %10.1f %s %s" % (bb, prec, ort, cell("window"), cell("stream")))
PY
  done
done
[ $have_bench = 1 ] || echo "(cphil bench is not in this build: cphil columns empty)"
