// bench_slippijs.js — parses the given .slp files from memory with slippi-js (npm
// @slippi/slippi-js 9.1.2) and prints one JSON line: {"bytes", "frames", "seconds", "mb_s",
// "frames_s", "reps"}. Used by bench/bench_slp.c for the speed ratio; run: node bench_slippijs.js
// [--reps N] FILE... A full parse = getSettings + getFrames + getGameEnd + getMetadata on a fresh
// SlippiGame built from a Buffer (files are read into memory first and not timed).
'use strict';
const fs = require('fs');
const path = require('path');
let mod;
try {
  mod = require('@slippi/slippi-js/node');
} catch (e) {
  mod = require('@slippi/slippi-js');
}
const { SlippiGame } = mod;

let reps = 3;
let cpu = false; // --cpu: time with the process CPU clock (user + system), for a loaded machine
const files = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--reps') reps = parseInt(argv[++i], 10);
  else if (argv[i] === '--cpu') cpu = true;
  else files.push(argv[i]);
}
const bufs = files.map((f) => fs.readFileSync(f));
const bytes = bufs.reduce((a, b) => a + b.length, 0);

function parseAll() {
  let frames = 0;
  for (const b of bufs) {
    const g = new SlippiGame(b);
    g.getSettings();
    const fr = g.getFrames();
    g.getGameEnd();
    g.getMetadata();
    frames += Object.keys(fr).length;
  }
  return frames;
}

parseAll(); // warm-up (JIT)
const times = [];
let frames = 0;
for (let r = 0; r < reps; r++) {
  if (cpu) {
    const c0 = process.cpuUsage();
    frames = parseAll();
    const c = process.cpuUsage(c0);
    times.push((c.user + c.system) / 1e6);
  } else {
    const t0 = process.hrtime.bigint();
    frames = parseAll();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
}
times.sort((a, b) => a - b);
const sec = times[Math.floor(times.length / 2)];
console.log(JSON.stringify({ bytes, frames, seconds: sec, mb_s: bytes / sec / 1e6, frames_s: frames / sec, reps, clock: cpu ? 'process cpu' : 'wall',
  files: files.length, parser: '@slippi/slippi-js ' + require(path.join(path.dirname(require.resolve('@slippi/slippi-js/package.json')), 'package.json')).version }));
