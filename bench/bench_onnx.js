// bench_onnx.js — time one ONNX model in ONNX Runtime (onnxruntime-node, CPU, ONE thread: intra-
// and inter-op threads 1, sequential execution, all graph optimizations) on random
// state_sequence [1, W, E] input, after a warm-up. Prints one JSON line:
//   {"model": ..., "p50_us": ..., "p99_us": ..., "mean_us": ..., "runs": ...}
//   node bench/bench_onnx.js model.onnx W E [seconds]
'use strict';
const ort = require(process.env.ORT_NODE || 'onnxruntime-node');

async function main() {
  const [model, Ws, Es, secs] = process.argv.slice(2);
  const W = Number(Ws), E = Number(Es), budget = Number(secs || 1.0);
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const x = new Float32Array(W * E);
  for (let i = 0; i < x.length; i++) x[i] = Math.random() * 2 - 1;
  const feeds = { state_sequence: new ort.Tensor('float32', x, [1, W, E]) };
  for (let i = 0; i < 20; i++) await sess.run(feeds);            // warm-up
  const t = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(budget * 1e9));
  while (process.hrtime.bigint() < end || t.length < 20) {
    const a = process.hrtime.bigint();
    await sess.run(feeds);
    t.push(Number(process.hrtime.bigint() - a) / 1000);
  }
  t.sort((a, b) => a - b);
  const q = p => t[Math.min(t.length - 1, Math.floor(p * t.length))];
  const mean = t.reduce((s, v) => s + v, 0) / t.length;
  console.log(JSON.stringify({ model, p50_us: q(0.5), p99_us: q(0.99), mean_us: mean, runs: t.length }));
}
main().catch(e => { console.error('bench_onnx: ' + (e && e.message ? e.message : e)); process.exit(1); });
