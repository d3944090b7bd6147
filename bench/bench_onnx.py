#!/usr/bin/env python3
"""bench_onnx.py — the Python twin of bench_onnx.js, for machines with the onnxruntime wheel and
no Node (the lent GPU machines): time one ONNX model in ONNX Runtime (CPU, ONE thread: intra- and
inter-op threads 1, sequential execution, all graph optimizations) on random state_sequence
[1, W, E] input, after a warm-up. Prints the same JSON line as bench_onnx.js:
  {"model": ..., "p50_us": ..., "p99_us": ..., "mean_us": ..., "runs": ..., "ort": version}
  python3 bench/bench_onnx.py model.onnx W E [seconds]
Python's call overhead (a few microseconds) is inside the times, as Node's is in bench_onnx.js."""
import json
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: bench_onnx.py model.onnx W E [seconds]")
    model, W, E = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    budget = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    x = (np.random.default_rng().random((1, W, E), dtype=np.float32) * 2 - 1).astype(np.float32)
    feeds = {"state_sequence": x}
    for _ in range(20):
        sess.run(None, feeds)
    t = []
    end = time.perf_counter() + budget
    while time.perf_counter() < end or len(t) < 20:
        a = time.perf_counter_ns()
        sess.run(None, feeds)
        t.append((time.perf_counter_ns() - a) / 1000.0)
    t.sort()
    q = lambda p: t[min(len(t) - 1, int(p * len(t)))]
    print(json.dumps({"model": model, "p50_us": q(0.5), "p99_us": q(0.99), "mean_us": sum(t) / len(t),
                      "runs": len(t), "ort": ort.__version__}))


if __name__ == "__main__":
    main()
