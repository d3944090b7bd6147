#!/usr/bin/python3
"""compare.py — compare logits of two runtimes on the six heads.

    compare.py A B [--rtol 1e-4 --atol 1e-5] [--agree 0.99 [--max-rel 0.1]] [--label text]
A and B are .npz files (cphil predict / npz_forward.py) or folders of <head>.f32 files written by
tests/js/onnx_run.js (shapes from B when it is an .npz). f32 mode (default): every logit must
satisfy |a - b| <= atol + rtol |b|. With --agree: the chosen actions (button a > 0, argmax of each
categorical head) must agree on at least that fraction of (row, head) decisions.
Prints one summary line; exit 1 on failure.
"""
import argparse
import json
import os
import sys

import numpy as np

HEADS = ["buttons", "main_x", "main_y", "c_x", "c_y", "shoulder"]


def load(src, shapes):
    if os.path.isdir(src):
        sh = json.load(open(os.path.join(src, "shapes.json")))
        return {k: np.fromfile(os.path.join(src, k + ".f32"), np.float32).reshape(sh[k]) for k in HEADS}
    z = np.load(src)
    return {k: z[k].astype(np.float32) for k in HEADS}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--agree", type=float, default=None)
    ap.add_argument("--max-rel", type=float, default=None,
                    help="with --agree: every row's largest logit error <= this times its largest |logit|")
    ap.add_argument("--label", default="")
    o = ap.parse_args()
    a, b = load(o.a, None), load(o.b, None)
    if o.agree is None:
        worst, where = 0.0, ""
        for k in HEADS:
            if a[k].shape != b[k].shape:
                print("%s: %s shape %s vs %s" % (o.label, k, a[k].shape, b[k].shape)); sys.exit(1)
            excess = np.abs(a[k] - b[k]) - (o.atol + o.rtol * np.abs(b[k]))
            i = int(np.argmax(excess))
            rel = float(np.max(np.abs(a[k] - b[k]) / (np.abs(b[k]) + o.atol / o.rtol)))
            if rel > worst:
                worst, where = rel, "%s[%d]: %.7g vs %.7g" % (k, i, a[k].flat[i], b[k].flat[i])
            if excess.max() > 0:
                print("%s: FAIL %s: %.7g vs %.7g (rtol %g atol %g)" % (o.label, k, a[k].flat[i], b[k].flat[i], o.rtol, o.atol))
                sys.exit(1)
        print("%s: ok, %d rows, max relative error %.2e (%s)" % (o.label, a["buttons"].shape[0], worst, where))
    else:
        n = same = 0
        for k in HEADS:
            if k == "buttons":
                eq = (a[k] > 0) == (b[k] > 0)
            else:
                eq = a[k].argmax(1) == b[k].argmax(1)
            n += eq.size
            same += int(eq.sum())
        frac = same / n
        rel_note, rel_bad = "", False
        if o.max_rel is not None:
            ra = np.concatenate([a[k] for k in HEADS], axis=1)
            rb = np.concatenate([b[k] for k in HEADS], axis=1)
            rel = np.abs(ra - rb).max(axis=1) / np.maximum(np.abs(rb).max(axis=1), 1e-12)
            rel_bad = float(rel.max()) > o.max_rel
            rel_note = "; largest logit error %.2f%% of the row's largest logit (median %.2f%%, allowed %.0f%%)" % (
                100 * float(rel.max()), 100 * float(np.median(rel)), 100 * o.max_rel)
        print("%s: chosen actions agree on %.2f%% of %d decisions (need %.0f%%)%s" % (o.label, 100 * frac, n, 100 * o.agree,
                                                                                    rel_note))
        if frac < o.agree or rel_bad:
            sys.exit(1)


if __name__ == "__main__":
    main()
