#!/usr/bin/env bash
# Runs every test: the C test executables in $CPHIL_BUILD/tests (one per module) and the script
# tests tests/t_*.sh (each one test: exit 0 passes, 77 skips with its reason on stdout, anything
# else fails). Prints each result and ends with the line "N passed, N failed".
# Run from the repository root (make test does).
set -u
B=${CPHIL_BUILD:-build/rel}
export CPHIL_BUILD=$B
export CPHIL_BIN=${CPHIL_BIN:-$B/cphil}
export CPHIL_TEST_TMP=${CPHIL_TEST_TMP:-$B/test-tmp}
mkdir -p "$CPHIL_TEST_TMP"
# ASan: fail on leaks too where LeakSanitizer works, and on use of a returned stack frame;
# UBSan: print stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pass=0; fail=0; skip=0; failed_names=()
filter=${TEST_FILTER:-}
for t in "$B"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  [ -n "$filter" ] && [[ "$name" != *$filter* ]] && continue
  echo "== $name"
  out=$("$t" 2>&1); rc=$?
  echo "$out" | grep -v '^# passed=' 
  sum=$(echo "$out" | grep '^# passed=' | tail -1)
  if [ -z "$sum" ]; then
    echo "FAIL $name: crashed or exited early (rc=$rc)"; fail=$((fail+1)); failed_names+=("$name"); continue
  fi
  p=$(echo "$sum" | sed 's/.*passed=\([0-9]*\).*/\1/')
  f=$(echo "$sum" | sed 's/.*failed=\([0-9]*\).*/\1/')
  s=$(echo "$sum" | sed 's/.*skipped=\([0-9]*\).*/\1/')
  pass=$((pass+p)); fail=$((fail+f)); skip=$((skip+s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exited $rc after its tests (sanitizer report above?)"; fail=$((fail+1))
  fi
  [ "$f" -ne 0 ] || [ "$rc" -ne 0 ] && failed_names+=("$name")
done
for t in tests/t_*.sh; do
  [ -f "$t" ] || continue
  [ -n "${CPHIL_TESTS_C_ONLY:-}" ] && break  # the C test executables only (scripts/test.sh's scalar pass)
  name=$(basename "$t" .sh)
  [ -n "$filter" ] && [[ "$name" != *$filter* ]] && continue
  echo "== $name"
  out=$(bash "$t" 2>&1); rc=$?
  echo "$out" | tail -n 40
  if [ $rc -eq 0 ]; then echo "PASS $name"; pass=$((pass+1));
  elif [ $rc -eq 77 ]; then echo "SKIP $name"; skip=$((skip+1));
  else echo "FAIL $name (exit $rc)"; fail=$((fail+1)); failed_names+=("$name"); fi
done
[ ${#failed_names[@]} -gt 0 ] && echo "failing: ${failed_names[*]}"
[ $skip -gt 0 ] && echo "($skip skipped; see SKIP lines for what they need)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
