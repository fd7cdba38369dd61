// Interop check with an independent WebSocket client (Node's `ws` package) speaking
// shardcast.v1 through the generated JavaScript module (shards/wire/ts/dist).
//
// Usage: node ws_node.mjs URL TOKEN
// Joins room "node-room", sends a chat, waits for it to come back in a Batch, sends a
// Heartbeat and waits for the Pong, then closes with 1000. Prints one JSON object with what
// it saw; the Rust test decides pass or fail. Exits non-zero on a timeout.

import WebSocket from 'ws';
import {
  SUBPROTOCOL,
  decodeServer,
  encodeChat,
  encodeHeartbeat,
  encodeHello,
} from '../../../shards/wire/ts/dist/shardcast-wire.js';

const [url, token] = process.argv.slice(2);
const seen = { messages: [] };
const timer = setTimeout(() => {
  console.log(JSON.stringify({ ...seen, timeout: true }));
  process.exit(2);
}, 10000);

const ws = new WebSocket(url, [SUBPROTOCOL]);
ws.binaryType = 'nodebuffer';
ws.on('open', () => {
  seen.protocol = ws.protocol;
  ws.send(encodeHello({ room: 'node-room', token, lastSeq: 0, clientVersion: 'node-ws' }));
});
ws.on('message', (data, isBinary) => {
  const message = decodeServer(new Uint8Array(data));
  seen.messages.push(message.type);
  if (!isBinary) {
    seen.text = true;
  }
  if (message.type === 'welcome') {
    seen.welcome = { user: message.user, room: message.room, role: message.role };
    ws.send(encodeChat({ text: 'hello from node', color: 0x00ff00, mode: 'top' }));
  } else if (message.type === 'batch') {
    for (const event of message.events) {
      if (event.type === 'chat' && event.text === 'hello from node') {
        seen.chat = { seq: event.seq, user: event.user, mode: event.mode, color: event.color };
        ws.send(encodeHeartbeat({ clientTimeMs: 1234 }));
      }
    }
  } else if (message.type === 'pong') {
    seen.pong = message.clientTimeMs;
    ws.close(1000, 'done');
  }
});
ws.on('close', (code) => {
  seen.close_code = code;
  clearTimeout(timer);
  console.log(JSON.stringify(seen));
});
ws.on('error', (error) => {
  seen.error = String(error);
});
