#!/usr/bin/env python3
"""live_check.py — checks one lockstep run of `cphil play` against `cphil fake-dolphin`
(used by tests/t_live_*.sh).

usage: live_check.py FAKE.json RECORD.jsonl PLAY_LOG.jsonl REPLAY_LOG.jsonl

 - the fake saw exactly one FLUSH per wait (Game Start, every bookend, re-sends included, every
   menu frame), no invalid pipe line, no frame written in pieces;
 - the pad state recorded at the FLUSH after frame N's bookend (the input of frame N+1) equals,
   as GameCube bytes decoded to classes and buttons, what `cphil play-replay --decide first`
   decided at frame N; after a re-sent (rollback) bookend, the newest decision again; after Game
   Start and menu frames, neutral;
 - the live decision log equals the replay decision log line by line (latency aside).
"""
import json
import sys

BITS = [0x0100, 0x0200, 0x0400, 0x0800, 0x0010, 0x0040, 0x0020, 0x0008]  # A B X Y Z L R D-up
NEUTRAL = {"cls": [8, 8, 8, 8, 0], "buttons": [0] * 8}


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    fake = json.load(open(sys.argv[1]))
    rec, live, ref = lines(sys.argv[2]), lines(sys.argv[3]), lines(sys.argv[4])
    errs = []
    if fake["status"] != "ok":
        errs.append("fake Dolphin status %s" % fake["status"])
    if fake["flushes"] != fake["need_inputs"]:
        errs.append("FLUSH count %d != waits %d" % (fake["flushes"], fake["need_inputs"]))
    if fake["invalid_lines"] or fake["split_bursts"]:
        errs.append("invalid lines %d, split writes %d" % (fake["invalid_lines"], fake["split_bursts"]))
    if len(rec) != fake["need_inputs"]:
        errs.append("recorded %d FLUSHes, expected %d" % (len(rec), fake["need_inputs"]))
    if sum(r["after"] == "frame" for r in rec) != fake["bookends"]:
        errs.append("FLUSHes after bookends %d != bookends %d" % (sum(r["after"] == "frame" for r in rec), fake["bookends"]))
    if sum(r["after"] == "game_start" for r in rec) != 1:
        errs.append("not exactly one FLUSH after Game Start")
    by_frame = {}
    for d in ref:
        if d["frame"] in by_frame:
            errs.append("replay log decides frame %d twice" % d["frame"])
        by_frame[d["frame"]] = d
    last = NEUTRAL
    bad = 0
    decided = resent = 0
    for r in rec:
        if r["after"] == "frame" and not r["resend"]:
            want = by_frame.get(r["frame"])
            if want is None:
                errs.append("frame %d: no decision in the replay log" % r["frame"])
                continue
            last = want
            decided += 1
        elif r["after"] == "frame":
            want = last
            resent += 1
        elif r["after"] == "menu" and r["frame"]:  # a menu frame inside the game: the state again
            want = last
        else:
            want = NEUTRAL
        bits = sum(b for b, on in zip(BITS, want["buttons"]) if on)
        if r["cls"] != want["cls"] or r["buttons"] != bits:
            bad += 1
            if bad <= 5:
                errs.append("FLUSH %d (after %s %d%s): pad cls %s buttons 0x%04x, decided cls %s buttons 0x%04x"
                            % (r["flush"], r["after"], r["frame"], " re-sent" if r["resend"] else "", r["cls"],
                               r["buttons"], want["cls"], bits))
    if bad > 5:
        errs.append("... %d mismatching FLUSHes in all" % bad)
    if len(live) != len(ref):
        errs.append("live log has %d decisions, replay log %d" % (len(live), len(ref)))
    for a, b in zip(live, ref):
        a = dict(a); b = dict(b)
        a.pop("latency_us", None); b.pop("latency_us", None)
        if a != b:
            errs.append("first differing decision: live %s vs replay %s" % (a, b))
            break
    if decided != len(ref):
        errs.append("%d first-simulation FLUSHes but %d decisions in the replay log" % (decided, len(ref)))
    distinct = len({(tuple(d["cls"]), tuple(d["buttons"])) for d in ref})
    if distinct < 2:
        errs.append("the policy made only %d distinct decision(s): the comparison would prove nothing" % distinct)
    for e in errs:
        print("  " + e)
    print("  %d FLUSHes checked: %d decided frames, %d re-sent bookends, %d distinct decisions"
          % (len(rec), decided, resent, distinct))
    return 1 if errs else 0


sys.exit(main())
