#!/usr/bin/env bash
# t_inspect.sh — `cphil inspect`: human and --json output on real replays; a bad file (missing,
# directory, not a replay, truncated) is reported with its error while the others are still
# read, and the exit status is 1; every key the issue lists is present in --json.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
R=${CPHIL_REPLAYS:-../shared/replays}
[ -d "$R" ] || { echo "needs the shared replays at $R (set CPHIL_REPLAYS; t_inspect_synth.sh checks the same behaviour on synthetic games)"; exit 77; }
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "needs /usr/bin/python3 to check the JSON"; exit 77; }
T=${CPHIL_TEST_TMP:-/tmp}/t_inspect.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
printf 'not a replay\n' > "$T/text.slp"
head -c 100000 "$R/slippi-js/unranked_game1.slp" > "$T/cut.slp"

"$BIN" inspect "$R/slippi-js/rollbackFrameTest.slp" > "$T/human.txt" 2>&1 || { echo "inspect failed on a good file"; exit 1; }
grep -q "copies 13569, rollback re-sends 4292" "$T/human.txt" || { cat "$T/human.txt"; echo "human summary lacks the rollback figures"; exit 1; }
grep -q "Dream Land N64" "$T/human.txt" || { echo "no stage name"; exit 1; }

"$BIN" inspect --json "$R/slippi-js/ics_missing.slp" "$R/slippi-js/test.slp" "$T" "$T/text.slp" "$T/cut.slp" \
    "$R/slippi-js/consistencyTest/PichuVSelf-All-22.slp" > "$T/out.json" 2> "$T/err.txt"
rc=$?
[ $rc -eq 1 ] || { echo "exit status $rc, expected 1"; exit 1; }
"$PY" - "$T/out.json" <<'PYEOF' || exit 1
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 6, f"{len(lines)} lines, expected 6"
objs = [json.loads(l) for l in lines]
keys = ["file", "version", "stage_id", "players", "frames", "frame_copies", "first_frame", "last_frame",
        "rollback_resends", "item_events", "end_method", "follower_ports", "is_pal", "metadata_last_frame", "error"]
for o in objs:
    for k in keys:
        assert k in o, f"key {k} missing in {o['file']}"
missing, test, dir_, text, cut, pichu = objs
assert "ics_missing.slp" in missing["error"], missing["error"]
assert "directory" in dir_["error"], dir_["error"]
assert "not a Slippi replay" in text["error"] and "byte 0" in text["error"], text["error"]
assert cut["error"] and "truncated" in cut["error"] and cut["frames"] > 0, cut
assert test["error"] is None and test["version"] == "0.1.0" and test["stage_id"] == 28
assert [(p["port"], p["character"], p["character_name"], p["type"]) for p in test["players"]] == \
    [(1, 20, "Falco", "human"), (3, 0, "Captain Falcon", "cpu")], test["players"]
assert test["frames"] == 3818 and test["frame_copies"] == 3818 and test["first_frame"] == -123
assert test["last_frame"] == 3694 and test["end_method"] == 3 and test["metadata_last_frame"] is None
assert test["is_pal"] is False and test["follower_ports"] == [] and test["rollback_resends"] == 0
assert pichu["follower_ports"] == [2] and pichu["item_events"] == 528 and pichu["end_method"] == 7
print("inspect --json ok")
PYEOF
grep -q "ics_missing.slp" "$T/err.txt" || { echo "error not on stderr"; exit 1; }
"$BIN" inspect --jsn x >/dev/null 2>&1; [ $? -eq 2 ] || { echo "unknown option should exit 2"; exit 1; }
exit 0
