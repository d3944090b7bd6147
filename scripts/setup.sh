#!/usr/bin/env bash
# Installs what cphil needs on a fresh Debian 12 machine (run as root; idempotent).
#   scripts/setup.sh           build dependencies (compiler, make, protobuf-c for ONNX export,
#                              libenet-dev for live play, Open MPI for data-parallel ranks)
#   scripts/setup.sh --test    plus the test tools: clang (fuzzing), NumPy and ONNX (Debian),
#                              Node.js with @slippi/slippi-js and onnxruntime-node (npm, tests/js)
#   scripts/setup.sh --bench   plus Debian's python3-torch for the PyTorch comparisons
# Only missing Debian packages are installed, so a second run is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0; want_bench=0
for a in "$@"; do
  case "$a" in
    --test) want_test=1 ;;
    --bench) want_bench=1; want_test=1 ;;
    *) echo "setup.sh: unknown option '$a' (use --test or --bench)" >&2; exit 2 ;;
  esac
done

pkgs=(gcc make libc6-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev libenet-dev openmpi-bin libopenmpi-dev)
[ $want_test = 1 ] && pkgs+=(clang libclang-rt-14-dev python3 python3-numpy python3-onnx)
# Node.js: the machine image may carry its own build (with npm bundled); use Debian's only
# when there is none.
if [ $want_test = 1 ]; then
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi
[ $want_bench = 1 ] && pkgs+=(python3-torch)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ $want_test = 1 ] && [ -f tests/js/package.json ]; then
  # --ignore-scripts: onnxruntime-node's install script downloads CUDA parts we do not use;
  # its CPU binaries ship inside the package.
  if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
    echo "setup: installing npm test tools (tests/js)"
    (cd tests/js && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    touch tests/js/node_modules
  fi
fi
echo "setup: ok"
