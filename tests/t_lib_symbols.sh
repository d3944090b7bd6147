#!/usr/bin/env bash
# t_lib_symbols.sh — every global symbol libcphil.a defines starts with cphil_ (so a program that
# links the library cannot collide with its internals), apart from the generated ONNX protobuf code
# (onnx__*, protobuf_c_*: protoc-c's names). The CLI's cli_* / cmd_* are in the program, not the
# library. Symbols the sanitizers add (__odr_asan.*, __asan_*, __ubsan_*) and the C++ runtime's
# personality reference of the CUDA build (DW.ref.__gxx_personality_v0) are not the library's.
# scripts/test.sh also runs it on the CUDA build (CPHIL_BUILD=build/cuda), whose kernels and
# device functions are file-local.
set -u
B=${CPHIL_BUILD:-build/rel}
LIB=$B/libcphil.a
[ -f "$LIB" ] || { echo "no $LIB (build first)"; exit 77; }
command -v nm >/dev/null || { echo "nm not found (binutils)"; exit 77; }
bad=$(nm -g --defined-only "$LIB" 2>/dev/null | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -v '^cphil_\|^onnx__\|^protobuf_c_\|^__odr_asan\.\|^__asan_\|^__ubsan_\|^__sanitizer_\|^DW\.ref\.__gxx_personality_v0$' | sort -u)
n=$(nm -g --defined-only "$LIB" 2>/dev/null | awk '$2 ~ /^[TDBRVW]$/' | wc -l)
[ "$n" -gt 100 ] || { echo "nm listed only $n symbols in $LIB: cannot check"; exit 1; }
if [ -n "$bad" ]; then
  echo "global symbols of $LIB without the cphil_ prefix:"; echo "$bad" | head -40; exit 1
fi
echo "  $n global symbols in $LIB, all cphil_ (or the generated onnx__ / protobuf_c_)"
