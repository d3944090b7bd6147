# ort_int8.sh — sourced by the ONNX Runtime tests (t_export_onnx.sh, t_engine_onnx.sh): run an int8
# ONNX graph in ONNX Runtime so that it computes what the graph means on this CPU, and set the
# agreement bar for comparing it with cphil.
#
# Why: ORT's fused int8 kernels multiply u8 activations by s8 weights. On x86 CPUs with VNNI the
# products are summed in 32 bits (exact). Without VNNI (AVX2, AVX-512 without VNNI) pairs of
# products are added in 16-bit lanes first, which saturate (ORT PR 12088; OpenVINO's "saturation
# issue" page); cphil accumulates in 32 bits. Measured on an AVX2 EPYC with ORT's defaults: static
# QDQ logits 19-24% off cphil's engine (median, mamba and attention), 87.6% of decisions agreeing;
# with graph optimizations off (the QDQ pairs run as float DequantizeLinear -> MatMul: the graph's
# meaning, no integer sums) 1.6% and >= 98.8%. So without VNNI: static graphs run unoptimized;
# dynamic graphs (MatMulInteger, an integer op in any case) run with session.x64quantprecision
# (u8 x u8, exact), and where ORT 1.30 refuses that option (graphs with per-channel
# DequantizeLinear) with its defaults, under a 90% bar and without the logit-error check.
#
# ort_int8 MODEL X.npy OUTDIR dynamic|static: runs it; sets ORT_BAR (fraction of decisions that
# must agree) and ORT_MAXREL (largest logit error over the row's largest |logit|; inf = not
# checked). Returns non-zero when ORT fails.
ORT_VNNI=0
grep -qw 'avx512_vnni\|avx_vnni' /proc/cpuinfo 2>/dev/null && ORT_VNNI=1
ort_int8() {
  local model=$1 x=$2 out=$3 kind=$4 noopt=0 precise=0
  if [ $ORT_VNNI = 0 ]; then
    if [ "$kind" = static ]; then noopt=1; else precise=1; fi
  fi
  CPHIL_ORT_NOOPT=$noopt CPHIL_ORT_PRECISE=$precise node tests/js/onnx_run.js "$model" "$x" "$out" 1 || return 1
  ORT_BAR=0.98; ORT_MAXREL=0.10
  if [ $ORT_VNNI = 0 ] && [ "$(cat "$out/ort_mode")" = optimized ]; then
    ORT_BAR=0.90; ORT_MAXREL=inf
    echo "note: $(basename "$model"): ORT's saturating u8 x s8 products on this CPU (no VNNI): bar $ORT_BAR, logit error not checked"
  fi
  return 0
}
