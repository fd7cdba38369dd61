// The uWebSockets.js baseline of bench-ws: room broadcast written the way uWebSockets.js users
// write it, with its built-in pub/sub (ws.subscribe(room), app.publish(room, message)),
// speaking the shardcast.v1 protocol minimally through the project's generated JavaScript
// module (shards/wire/ts/dist, installed as @shardcast/wire).
//
// Usage: npm ci && node server.mjs PORT   (listens on 127.0.0.1:PORT, any path)
//
// Which uWebSockets.js: the npm package `uws-pack` 20.0.8 (pinned in package.json and
// package-lock.json), a repack of uWebSockets.js v20 with its prebuilt native binaries for
// Linux x64 and Node ABI 108/115/120/127. uWebSockets.js itself is published on GitHub, not on
// the npm registry; uws-pack ships the same binaries and code as ESM.
//
// Configuration, and why:
// - One process, one event loop: bench-ws.sh starts it under `taskset -c 0`, like shardcast
//   with `--shards 1`.
// - uWebSockets.js defaults where it has them: compression DISABLED, maxPayloadLength 16 KiB,
//   maxBackpressure 64 KiB per socket (a slow member's messages are dropped past it, which is
//   uWebSockets.js's own slow-reader policy), idleTimeout 0 (this server closes nobody for
//   silence). The upgrade selects shardcast.v1 when the client offers it.
// - Rooms: each member subscribes to its room's topic; a chat takes the room's next seq, is
//   encoded once as a Batch of one ChatEvent and published with app.publish(room, frame,
//   true), which frames it once and writes it to every subscriber, the sender included.
// - Protocol: Hello{room} joins (Welcome with the room's current seq); Chat is broadcast with
//   no batching window; Heartbeat is answered by Pong; the rest is ignored. No
//   authentication: any token is accepted.

import * as flatbuffers from 'flatbuffers';
import { App, DISABLED } from 'uws-pack';
import { decodeClient, SUBPROTOCOL } from '@shardcast/wire';
import { Batch } from './node_modules/@shardcast/wire/dist/generated/shardcast/wire/batch.js';
import { ChatEvent } from './node_modules/@shardcast/wire/dist/generated/shardcast/wire/chat-event.js';
import { ChatMode } from './node_modules/@shardcast/wire/dist/generated/shardcast/wire/chat-mode.js';
import { Event } from './node_modules/@shardcast/wire/dist/generated/shardcast/wire/event.js';
import { EventBody } from './node_modules/@shardcast/wire/dist/generated/shardcast/wire/event-body.js';
import { Pong } from './node_modules/@shardcast/wire/dist/generated/shardcast/wire/pong.js';
import { Role } from './node_modules/@shardcast/wire/dist/generated/shardcast/wire/role.js';
import { ServerBody } from './node_modules/@shardcast/wire/dist/generated/shardcast/wire/server-body.js';
import { ServerMessage } from './node_modules/@shardcast/wire/dist/generated/shardcast/wire/server-message.js';
import { Welcome } from './node_modules/@shardcast/wire/dist/generated/shardcast/wire/welcome.js';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.mjs PORT');
  process.exit(2);
}

const HEARTBEAT_MS = 30000;

/** @type {Map<string, {seq: number, members: number}>} */
const rooms = new Map();
const builder = new flatbuffers.Builder(1024);
let nextId = 0;

const app = App().ws('/*', {
  compression: DISABLED,
  maxPayloadLength: 16 * 1024,
  maxBackpressure: 64 * 1024,
  idleTimeout: 0,
  upgrade: (res, req, context) => {
    const offered = req.getHeader('sec-websocket-protocol')
      .split(',')
      .map((p) => p.trim());
    res.upgrade(
      { user: `user-${++nextId}`, room: null },
      req.getHeader('sec-websocket-key'),
      offered.includes(SUBPROTOCOL) ? SUBPROTOCOL : '',
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  message: (ws, message, isBinary) => {
    if (!isBinary) return;
    let msg;
    try {
      msg = decodeClient(new Uint8Array(message));
    } catch {
      return;
    }
    const data = ws.getUserData();
    switch (msg.type) {
      case 'hello': {
        if (data.room) return;
        let room = rooms.get(msg.room);
        if (!room) {
          room = { seq: 0, members: 0 };
          rooms.set(msg.room, room);
        }
        room.members += 1;
        data.room = msg.room;
        ws.subscribe(msg.room);
        ws.send(encodeWelcome(data.user, msg.room, room), true);
        break;
      }
      case 'chat': {
        if (!data.room) return;
        const room = rooms.get(data.room);
        room.seq += 1;
        app.publish(data.room, encodeChatBatch(room.seq, data.user, msg), true);
        break;
      }
      case 'heartbeat':
        ws.send(encodePong(msg.clientTimeMs), true);
        break;
      default:
        break;
    }
  },
  close: (ws) => {
    const data = ws.getUserData();
    const room = data.room && rooms.get(data.room);
    if (room) room.members -= 1;
  },
}).listen('127.0.0.1', port, (listenSocket) => {
  if (!listenSocket) {
    console.error(`uws-ws: cannot listen on 127.0.0.1:${port}`);
    process.exit(1);
  }
  console.error(`uws-ws listening on 127.0.0.1:${port}`);
});

function encodeWelcome(user, name, room) {
  builder.clear();
  const userOffset = builder.createString(user);
  const roomOffset = builder.createString(name);
  // The last argument is the epoch's offset: 0, none (this server keeps no history).
  const body = Welcome.createWelcome(
    builder, userOffset, roomOffset, BigInt(room.seq), BigInt(room.members), HEARTBEAT_MS,
    Role.Viewer, 0);
  return finish(ServerBody.Welcome, body);
}

function encodeChatBatch(seq, user, chat) {
  builder.clear();
  const userOffset = builder.createString(user);
  const textOffset = builder.createString(chat.text);
  const mode = chat.mode === 'top' ? ChatMode.Top : chat.mode === 'bottom' ? ChatMode.Bottom : ChatMode.Scroll;
  const chatEvent = ChatEvent.createChatEvent(builder, userOffset, textOffset, chat.color, mode);
  const event = Event.createEvent(builder, BigInt(seq), BigInt(Date.now()), EventBody.ChatEvent, chatEvent);
  const events = Batch.createEventsVector(builder, [event]);
  const body = Batch.createBatch(builder, BigInt(seq), events);
  return finish(ServerBody.Batch, body);
}

function encodePong(clientTimeMs) {
  builder.clear();
  const body = Pong.createPong(builder, BigInt(clientTimeMs), BigInt(Date.now()));
  return finish(ServerBody.Pong, body);
}

function finish(type, body) {
  builder.finish(ServerMessage.createServerMessage(builder, type, body));
  return builder.asUint8Array().slice();
}
