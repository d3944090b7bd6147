// dolphin_client.js — slippi-js's own Dolphin client (DolphinConnection over the npm `enet`
// package, then SlpStream and SlpParser) pointed at `cphil fake-dolphin`: an independent client
// showing that the fake speaks Slippi Dolphin's protocol. Usage: node dolphin_client.js PORT [SECONDS]
// Prints one JSON line: handshake details, messages by type, cursor errors slippi-js raised,
// bytes of game data, frames the parser finalized, the last frame, whether it disconnected (it does
// so itself when Dolphin says dolphin_closed).
'use strict';
const s = require('@slippi/slippi-js/node');

const port = Number(process.argv[2]);
const seconds = Number(process.argv[3] || 60);
const out = { handshake: null, types: {}, cursor_errors: 0, errors: 0, bytes: 0, frames: 0, last_frame: null,
  game_end: false, disconnected: false };
const conn = new s.DolphinConnection();
const stream = new s.SlpStream();
const parser = new s.SlpParser();
stream.on(s.SlpStreamEvent.COMMAND, (d) => parser.handleCommand(d.command, d.payload));
parser.on(s.SlpParserEvent.FINALIZED_FRAME, (f) => { out.frames++; out.last_frame = f.frame; });
parser.on(s.SlpParserEvent.END, () => { out.game_end = true; });
conn.on(s.ConnectionEvent.HANDSHAKE, (d) => { out.handshake = d; });
// slippi-js disconnects on dolphin_closed without emitting that message: the end is the status
conn.on(s.ConnectionEvent.MESSAGE, (m) => { out.types[m.type] = (out.types[m.type] || 0) + 1; });
conn.on(s.ConnectionEvent.DATA, (b) => { out.bytes += b.length; stream.process(b); });
conn.on(s.ConnectionEvent.ERROR, (e) => {
  if (String(e && e.message).includes('Unexpected game data cursor')) out.cursor_errors++;
  else out.errors++;
});
const finish = () => { console.log(JSON.stringify(out)); process.exit(0); };
conn.on(s.ConnectionEvent.STATUS_CHANGE, (st) => {
  if (st === s.ConnectionStatus.DISCONNECTED && out.handshake) { out.disconnected = true; finish(); }
});
setTimeout(finish, seconds * 1000);
const origWarn = console.warn;
console.warn = (...a) => { if (!String(a[0]).includes('Unexpected game data cursor')) origWarn(...a); };
conn.connect('127.0.0.1', port).catch((e) => { out.errors++; out.connect_error = String(e); finish(); });
