#!/usr/bin/env bash
# t_inspect_synth.sh — `cphil inspect` on synthetic games (no shared replays needed; the values of
# real replays are t_inspect.sh's): human and --json output of good files agree with what
# `cphil synth` wrote; a bad file (missing, a folder, not a replay, truncated) is reported once,
# with its error, while the others are still read; the exit status is 1; every --json key is there.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "needs /usr/bin/python3 to check the JSON"; exit 77; }
T=${CPHIL_TEST_TMP:-/tmp}/t_inspect_synth.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$BIN" synth --games 2 --seed 9 --stocks 2 --max-seconds 30 --quiet --out "$T/g" >"$T/synth.txt" || fail "synth"
printf 'not a replay\n' >"$T/text.slp"
head -c 20000 "$T/g/synth_0000.slp" >"$T/cut.slp"

"$BIN" inspect "$T/g/synth_0000.slp" >"$T/human.txt" 2>&1 || fail "inspect failed on a good file: $(cat "$T/human.txt")"
grep -q "^  frames [0-9]* (-123\.\.[0-9]*)" "$T/human.txt" || fail "human summary lacks the frame range: $(cat "$T/human.txt")"
grep -q "P1 " "$T/human.txt" && grep -q "P2 " "$T/human.txt" || fail "human summary lacks the players"

"$BIN" inspect --json "$T/g/synth_0000.slp" "$T/missing.slp" "$T/g" "$T/text.slp" "$T/cut.slp" "$T/g/synth_0001.slp" \
    >"$T/out.json" 2>"$T/err.txt"
rc=$?
[ $rc -eq 1 ] || fail "exit status $rc, expected 1"
"$PY" - "$T/out.json" <<'PYEOF' || exit 1
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 6, f"{len(lines)} lines, expected 6"
objs = [json.loads(l) for l in lines]
keys = ["file", "version", "stage_id", "players", "frames", "frame_copies", "first_frame", "last_frame",
        "rollback_resends", "item_events", "end_method", "follower_ports", "is_pal", "metadata_last_frame", "error"]
for o in objs:
    for k in keys:
        assert k in o, (k, o.get("file"))
good0, missing, dir_, text, cut, good1 = objs
for g in (good0, good1):
    assert g["error"] is None and g["first_frame"] == -123 and g["frames"] == g["last_frame"] + 124, g
    assert [p["port"] for p in g["players"]] == [1, 2], g["players"]
    assert g["rollback_resends"] == 0 and g["end_method"] in (1, 2, 3, 7), g
assert "missing.slp" in missing["error"], missing["error"]
assert "directory" in dir_["error"], dir_["error"]
assert "not a Slippi replay" in text["error"] and "byte 0" in text["error"], text["error"]
assert cut["error"] and "truncated" in cut["error"] and 0 < cut["frames"] < good0["frames"], cut
print("inspect --json on synthetic games ok")
PYEOF
for f in missing.slp "not a Slippi replay" truncated "is a directory"; do
  [ "$(grep -c "$f" "$T/err.txt")" -eq 1 ] || fail "stderr does not name '$f' exactly once: $(cat "$T/err.txt")"
done
# human mode: each error once in all (stderr), not repeated on stdout
"$BIN" inspect "$T/text.slp" "$T/cut.slp" >"$T/h.out" 2>"$T/h.err"; [ $? -eq 1 ] || fail "human mode exit status"
[ "$(cat "$T/h.out" "$T/h.err" | grep -c "not a Slippi replay")" -eq 1 ] || fail "human mode repeats an error: $(cat "$T/h.out" "$T/h.err")"
grep -q "read stopped at an error" "$T/h.out" || fail "the truncated file's partial report is not marked: $(cat "$T/h.out")"
"$BIN" inspect --jsn x >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option should exit 2"
exit 0
