#!/usr/bin/env bash
# t_fuzz_train_files.sh — bounded libFuzzer runs (ASan + UBSan, clang) of the training files'
# readers: the checkpoint reader with every resume check (tests/fuzz/fuzz_ckpt.c) and the
# soft-label reader (tests/fuzz/fuzz_softlabels.c), a few seconds each, from a seed corpus of
# valid files that the targets write first (CPHIL_FUZZ_SEED_DIR; the checkpoint target also
# checks that its valid seeds get through every check). Any sanitizer report, crash, leak or
# failed invariant fails the test; the input that did it is kept in build/fuzz/. Longer runs:
# make fuzz_ckpt / make fuzz_softlabels FUZZ_SECONDS=600.
set -u
command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1 || { echo "needs clang (libFuzzer) to build the fuzz targets: apt-get install clang"; exit 77; }
SECS=${CPHIL_FUZZ_SECONDS:-4}
T=${CPHIL_TEST_TMP:-/tmp}/t_fuzz_train_files.$$
mkdir -p "$T"
T=$(cd "$T" && pwd)
trap 'rm -rf "$T"' EXIT
fail() { echo "$*"; exit 1; }
make -s build/fuzz/fuzz_ckpt build/fuzz/fuzz_softlabels >"$T/build.log" 2>&1 || { tail -30 "$T/build.log"; fail "building the fuzz targets failed"; }
for t in ckpt softlabels; do
  mkdir -p "$T/$t/seed" "$T/$t/corpus"
  out=$(cd "$T/$t" && TMPDIR="$T/$t" CPHIL_FUZZ_SEED_DIR=seed ASAN_OPTIONS=detect_leaks=1 \
        "$OLDPWD/build/fuzz/fuzz_$t" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$T/$t/" -print_final_stats=1 corpus seed 2>&1); rc=$?
  n=$(ls "$T/$t/seed" | wc -l)
  [ "$n" -ge 3 ] || fail "fuzz_$t: only $n seed files were written"
  runs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p')
  if [ $rc -ne 0 ] || [ -z "$runs" ]; then
    echo "$out" | grep -v '^#' | tail -40
    for a in "$T/$t"/crash-* "$T/$t"/leak-* "$T/$t"/timeout-* "$T/$t"/oom-*; do [ -f "$a" ] && cp "$a" build/fuzz/ && echo "kept build/fuzz/$(basename "$a")"; done
    fail "fuzz_$t failed (exit $rc)"
  fi
  [ "$runs" -ge 50 ] || fail "fuzz_$t: only $runs inputs in ${SECS}s"
  echo "fuzz_$t: $runs inputs in ${SECS}s from $n seeds, no report"
done
exit 0
