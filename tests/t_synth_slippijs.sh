#!/usr/bin/env bash
# slippi-js (npm @slippi/slippi-js 9.1.2, tests/js) reads `cphil synth` replays and finds them
# valid and consistent (tests/js/synth_check.js). Skips when Node.js or the npm tools are missing.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
command -v node >/dev/null || { echo "needs node (scripts/setup.sh --test)"; exit 77; }
[ -d tests/js/node_modules/@slippi/slippi-js ] || { echo "needs tests/js/node_modules (scripts/setup.sh --test)"; exit 77; }
dir=${CPHIL_TEST_TMP:-/tmp}/synth_js.$$
rm -rf "$dir"
"$BIN" synth --games 3 --out "$dir" --seed 7 --stocks 2 --quiet || exit 1
node tests/js/synth_check.js "$dir"/*.slp; rc=$?
# the same seed gives the same bytes
"$BIN" synth --games 1 --out "$dir/again" --seed 7 --stocks 2 --quiet || exit 1
cmp -s "$dir/synth_0000.slp" "$dir/again/synth_0000.slp" || { echo "same seed, different files"; rc=1; }
rm -rf "$dir"
exit $rc
