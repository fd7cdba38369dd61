// The Node baseline of bench-ws: a room-broadcast WebSocket server written the way a Node user
// would write one with the `ws` package, speaking the shardcast.v1 protocol minimally through
// the project's generated JavaScript module (shards/wire/ts/dist, installed as @shardcast/wire).
//
// Usage: npm ci && node server.js PORT   (listens on 127.0.0.1:PORT, any path)
//
// Configuration, and why:
// - One process, one event loop: bench-ws.sh starts it under `taskset -c 0`, like shardcast
//   with `--shards 1`. No cluster module, no worker threads.
// - ws 8 (pinned in package.json and package-lock.json) with its defaults: no
//   permessage-deflate, 100 MiB max payload, pings answered by ws itself. The handshake
//   selects the shardcast.v1 subprotocol when the client offers it.
// - Rooms: a Map from room name to { seq, members: Set<WebSocket> }. A chat takes the room's
//   next seq, is encoded once as a Batch of one ChatEvent, and the same buffer is passed to
//   ws.send() of every member, the sender included. ws frames it per member (a 2-10 byte
//   header; the payload is not copied) and queues it in the socket without limit
//   (bufferedAmount is not watched), which is what the usual broadcast loop does.
// - Protocol: Hello{room} joins the room and is answered by Welcome (seq = the room's current
//   seq); Chat is broadcast with no batching window; Heartbeat is answered by Pong; the rest
//   is ignored. No authentication: any token is accepted. Rooms are kept after their last
//   member leaves.
// - Installed with `install-links=true` (.npmrc) so that @shardcast/wire is a copy of
//   shards/wire/ts with its own dependency (flatbuffers) resolved here. The encoders of that
//   module are client-side; server messages are built with its generated flatc classes.

import * as flatbuffers from 'flatbuffers';
import { WebSocketServer } from 'ws';
import { decodeClient, SUBPROTOCOL } from '@shardcast/wire';
// The package's exports map publishes only the client API; the generated classes are read by
// path.
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
  console.error('usage: node server.js PORT');
  process.exit(2);
}

// Told to clients in Welcome; this server closes nobody for silence.
const HEARTBEAT_MS = 30000;

/** @type {Map<string, {seq: number, members: Set<import('ws').WebSocket>}>} */
const rooms = new Map();
const builder = new flatbuffers.Builder(1024);
let nextId = 0;

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});

wss.on('listening', () => console.error(`node-ws listening on 127.0.0.1:${port}`));

wss.on('connection', (ws) => {
  const user = `user-${++nextId}`;
  let room = null;

  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    let msg;
    try {
      msg = decodeClient(data);
    } catch {
      return;
    }
    switch (msg.type) {
      case 'hello': {
        if (room) return;
        room = rooms.get(msg.room);
        if (!room) {
          room = { seq: 0, members: new Set() };
          rooms.set(msg.room, room);
        }
        room.members.add(ws);
        ws.send(encodeWelcome(user, msg.room, room), { binary: true });
        break;
      }
      case 'chat': {
        if (!room) return;
        room.seq += 1;
        const frame = encodeChatBatch(room.seq, user, msg);
        for (const member of room.members) member.send(frame, { binary: true });
        break;
      }
      case 'heartbeat':
        ws.send(encodePong(msg.clientTimeMs), { binary: true });
        break;
      default:
        break;
    }
  });

  ws.on('close', () => {
    if (room) room.members.delete(ws);
  });
  ws.on('error', () => {});
});

function encodeWelcome(user, name, room) {
  builder.clear();
  const userOffset = builder.createString(user);
  const roomOffset = builder.createString(name);
  // The last argument is the epoch's offset: 0, none (this server keeps no history).
  const body = Welcome.createWelcome(
    builder, userOffset, roomOffset, BigInt(room.seq), BigInt(room.members.size), HEARTBEAT_MS,
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

// One copy out of the shared builder: the same buffer then goes to every member.
function finish(type, body) {
  builder.finish(ServerMessage.createServerMessage(builder, type, body));
  return builder.asUint8Array().slice();
}
