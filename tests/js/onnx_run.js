// onnx_run.js — run an ONNX model in ONNX Runtime (onnxruntime-node, CPU, one thread) on the
// float array of a .npy file and write the outputs as a raw little-endian float32 file per
// output (OUTDIR/<name>.f32) plus OUTDIR/shapes.json. Used by the export tests.
//   node tests/js/onnx_run.js model.onnx inputs.npy OUTDIR [batch_per_run]
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function readNpyF32(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(file + ': not a .npy');
  const major = b[6];
  const hl = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const off = (major === 1 ? 10 : 12) + hl;
  const hdr = b.toString('latin1', major === 1 ? 10 : 12, off);
  if (!hdr.includes("'<f4'")) throw new Error(file + ': expected <f4, header ' + hdr);
  const shape = hdr.match(/\(([^)]*)\)/)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const data = new Float32Array(b.buffer.slice(b.byteOffset + off, b.byteOffset + b.length));
  return { shape, data };
}

async function main() {
  const [model, input, outdir, perRunArg] = process.argv.slice(2);
  fs.mkdirSync(outdir, { recursive: true });
  const x = readNpyF32(input);
  const [B, W, E] = x.shape;
  const perRun = perRunArg ? Number(perRunArg) : B;
  // CPHIL_ORT_PRECISE=1 sets session.x64quantprecision: on x86 CPUs without VNNI, ONNX Runtime's
  // u8 x s8 products add pairs in 16-bit lanes that saturate; the option (ORT PR 12088) runs
  // MatMulInteger as u8 x u8 instead, which does not (no effect with VNNI). It breaks QDQ graphs
  // with per-channel weights in ORT 1.30 ("x_zero_point must be null or 1D"): dynamic graphs only.
  // Graphs where it fails run again with ORT's defaults (a note on stderr says so).
  async function runAll(extra) {
    const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, extra };
    // CPHIL_ORT_NOOPT=1: no graph optimizations, so QDQ pairs are not fused into integer kernels
    // (ORT then runs DequantizeLinear -> MatMul in float: the QDQ semantics without integer
    // accumulation, hence without saturation)
    if (process.env.CPHIL_ORT_NOOPT === '1') opts.graphOptimizationLevel = 'disabled';
    const sess = await ort.InferenceSession.create(model, opts);
    const outs = {};
    for (let s = 0; s < B; s += perRun) {
      const n = Math.min(perRun, B - s);
      const t = new ort.Tensor('float32', x.data.subarray(s * W * E, (s + n) * W * E), [n, W, E]);
      const r = await sess.run({ state_sequence: t });
      for (const k of sess.outputNames) {
        if (!outs[k]) outs[k] = [];
        outs[k].push(r[k]);
      }
    }
    return outs;
  }
  // OUTDIR/ort_mode says how ORT ran: noopt, x64quantprecision, or optimized (its defaults).
  let outs, mode = process.env.CPHIL_ORT_NOOPT === '1' ? 'noopt' : 'optimized';
  if (process.env.CPHIL_ORT_PRECISE === '1') {
    try {
      outs = await runAll({ session: { x64quantprecision: '1' } });
      mode = 'x64quantprecision';
    } catch (e) {
      console.error('onnx_run: note: ' + path.basename(model) + ' fails with session.x64quantprecision; ORT defaults');
      outs = await runAll({});
    }
  } else {
    outs = await runAll({});
  }
  fs.mkdirSync(outdir, { recursive: true });
  const shapes = {};
  for (const k of Object.keys(outs)) {
    const parts = outs[k];
    const C = parts[0].dims[1];
    const all = new Float32Array(B * C);
    let o = 0;
    for (const p of parts) { all.set(p.data, o); o += p.data.length; }
    fs.writeFileSync(path.join(outdir, k + '.f32'), Buffer.from(all.buffer));
    shapes[k] = [B, C];
  }
  fs.writeFileSync(path.join(outdir, 'shapes.json'), JSON.stringify(shapes));
  fs.writeFileSync(path.join(outdir, 'ort_mode'), mode + '\n');
}
main().catch(e => { console.error('onnx_run: ' + (e && e.message ? e.message : e)); process.exit(1); });
