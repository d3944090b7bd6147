#!/usr/bin/env bash
# Bounded libFuzzer runs of the file readers beside the replay reader's (issue 13): policy files
# (f32, bf16, int8; both readers), dataset caches, .npy/.npz. Each target is built by clang with
# ASan + UBSan (make FUZZ=1 fuzz-readers, library in build/fuzzlib) and runs for
# CPHIL_FUZZ_SECONDS (default 5) from a seed corpus of small valid files: a crash, a sanitizer
# report, a leak or a hang (-timeout) fails the test. The targets write their own seeds; the
# dataset seeds are caches built here with cphil synth + cphil dataset. Skips (77) only when
# clang or its libFuzzer runtime is missing (scripts/setup.sh --test installs both).
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
SECS=${CPHIL_FUZZ_SECONDS:-5}
command -v clang >/dev/null || { echo "SKIP: clang is not installed (scripts/setup.sh --test installs it; libFuzzer needs clang)"; exit 77; }
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "${TMPDIR:-/tmp}/cphil_fz_probe.$$.c"
if ! clang -fsanitize=fuzzer "${TMPDIR:-/tmp}/cphil_fz_probe.$$.c" -o "${TMPDIR:-/tmp}/cphil_fz_probe.$$" 2>/dev/null; then
    rm -f "${TMPDIR:-/tmp}/cphil_fz_probe.$$"*
    echo "SKIP: clang cannot link -fsanitize=fuzzer (install libclang-rt-dev: scripts/setup.sh --test)"; exit 77
fi
rm -f "${TMPDIR:-/tmp}/cphil_fz_probe.$$"*
make -s -j2 FUZZ=1 fuzz-readers >/dev/null || { echo "FAIL: make FUZZ=1 fuzz-readers"; exit 1; }
F=build/fuzzlib/fuzz
mkdir -p "${CPHIL_TEST_TMP:-/tmp}" || exit 1
d=$(cd "${CPHIL_TEST_TMP:-/tmp}" && pwd)/fuzzr.$$ # absolute: the fuzzers run inside it
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/policy" "$d/dataset" "$d/npy"
"$BIN" synth --games 2 --out "$d/r" --seed 5 --stocks 1 --max-seconds 3 --quiet >/dev/null || exit 1
"$BIN" dataset --replays "$d/r" --out "$d/dataset/a.ds" --val-split 0 --quiet 2>/dev/null || exit 1
"$BIN" dataset --replays "$d/r" --out "$d/dataset/b.ds" --val-split 0 --prev-action --quiet 2>/dev/null || exit 1
fail=0
for t in policy dataset npy; do
    log="$d/$t.log"
    ( cd "$d" && CPHIL_FUZZ_SEEDS="$d/$t" TMPDIR="$d" "$OLDPWD/$F/fuzz_$t" -max_total_time="$SECS" -timeout=10 \
        -rss_limit_mb=2048 -max_len=300000 -print_final_stats=1 "$d/$t" ) >"$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    seeds=$(ls "$d/$t" | wc -l)
    if [ $rc -ne 0 ]; then
        echo "FAIL fuzz_$t (exit $rc):"; grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -8; fail=1
    elif [ "${runs:-0}" -lt 10 ]; then
        echo "FAIL fuzz_$t ran only ${runs:-0} inputs"; tail -5 "$log"; fail=1
    else
        echo "ok   fuzz_$t: ${runs} inputs in ${SECS} s from ${seeds} files (corpus grew as it ran)"
    fi
done
exit $fail
