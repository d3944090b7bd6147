#!/usr/bin/env bash
# CPHIL_ISA forces the kernel path; an unknown name is refused with a clear message.
set -u
B=${CPHIL_BIN:-build/rel/cphil}
out=$(CPHIL_ISA=scalar "$B" version) || { echo "CPHIL_ISA=scalar failed"; exit 1; }
echo "$out" | grep -q "kernels: scalar" || { echo "scalar not active: $out"; exit 1; }
err=$(CPHIL_ISA=avx9000 "$B" version 2>&1) && { echo "unknown path accepted"; exit 1; }
echo "$err" | grep -q "CPHIL_ISA='avx9000' is not a kernel path" || { echo "unclear message: $err"; exit 1; }
best=$("$B" version | sed -n 's/.*(best \([a-z0-9]*\)).*/\1/p')
[ -n "$best" ] || { echo "no best path reported"; exit 1; }
CPHIL_ISA=$best "$B" version >/dev/null || { echo "forcing the best path ($best) failed"; exit 1; }
exit 0
