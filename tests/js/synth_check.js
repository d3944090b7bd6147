// synth_check.js — reads cphil's synthetic replays with slippi-js and checks that they are
// valid and self-consistent: settings, one Pre and Post per player per frame from -123, Pre state
// = previous Post state, stocks never increase, Game End placements agree with the last frame,
// metadata lastFrame and per-character Post counts. Usage: node synth_check.js FILE...
// Prints one line per file and exits 1 on the first inconsistency.
'use strict';
const { SlippiGame } = require('@slippi/slippi-js/node');

function fail(file, msg) {
  console.log(`FAIL ${file}: ${msg}`);
  process.exit(1);
}

for (const file of process.argv.slice(2)) {
  const g = new SlippiGame(file);
  const st = g.getSettings();
  if (!st) fail(file, 'no settings');
  if (st.slpVersion !== '3.18.0') fail(file, `version ${st.slpVersion}`);
  if (st.players.length !== 2) fail(file, `${st.players.length} players`);
  const meta = g.getMetadata();
  if (!meta || typeof meta.lastFrame !== 'number') fail(file, 'no metadata lastFrame');
  const frames = g.getFrames();
  const keys = Object.keys(frames).map(Number).sort((a, b) => a - b);
  if (keys[0] !== -123) fail(file, `first frame ${keys[0]}`);
  if (keys[keys.length - 1] !== meta.lastFrame) fail(file, `last frame ${keys[keys.length - 1]} vs metadata ${meta.lastFrame}`);
  if (keys.length !== meta.lastFrame + 124) fail(file, `frame count ${keys.length}`);
  const prev = [null, null];
  const stocks0 = st.players.map((p) => p.startStocks);
  for (const f of keys) {
    const fr = frames[f];
    for (let i = 0; i < 2; i++) {
      const p = fr.players[i];
      if (!p || !p.pre || !p.post) fail(file, `frame ${f} port ${i + 1} missing`);
      const pre = p.pre, post = p.post;
      if (pre.frame !== f || post.frame !== f) fail(file, `frame ${f}: frame numbers`);
      if (post.stocksRemaining > stocks0[i]) fail(file, `frame ${f}: stocks above start`);
      if (prev[i]) {
        const q = prev[i];
        if (pre.actionStateId !== q.actionStateId) fail(file, `frame ${f} p${i + 1}: pre action ${pre.actionStateId} != previous post ${q.actionStateId}`);
        if (pre.positionX !== q.positionX || pre.positionY !== q.positionY) fail(file, `frame ${f} p${i + 1}: pre position != previous post`);
        if (pre.percent !== q.percent) fail(file, `frame ${f} p${i + 1}: pre percent != previous post`);
        if (post.stocksRemaining > q.stocksRemaining) fail(file, `frame ${f} p${i + 1}: stocks increased`);
      }
      const btn = pre.physicalButtons;
      if ((btn & 0x0100) && (btn & 0x0020)) fail(file, `frame ${f}: A and R together (the rule never does this)`);
      prev[i] = post;
    }
  }
  const end = g.getGameEnd();
  if (!end) fail(file, 'no Game End');
  const last = frames[meta.lastFrame].players.map((p) => p.post);
  const winner = end.placements.find((p) => p.position === 0).playerIndex;
  const loser = end.placements.find((p) => p.position === 1).playerIndex;
  if (end.gameEndMethod === 2 && last[loser].stocksRemaining !== 0) fail(file, 'GAME! but the loser has stocks');
  if (end.gameEndMethod === 2 && last[winner].stocksRemaining === 0) fail(file, 'GAME! but the winner has none');
  if (last[winner].stocksRemaining < last[loser].stocksRemaining) fail(file, 'winner has fewer stocks');
  for (let i = 0; i < 2; i++) {
    const chars = meta.players[String(i)].characters;
    const n = Object.values(chars).reduce((a, b) => a + b, 0);
    if (n !== keys.length) fail(file, `metadata characters count ${n}`);
  }
  console.log(`ok ${file}: ${keys.length} frames, stage ${st.stageId}, characters ${st.players.map((p) => p.characterId).join(',')}, end ${end.gameEndMethod}, winner port ${winner + 1}`);
}
