// The Node baseline for rooms across hosts: Socket.IO 4 with @socket.io/redis-adapter, the
// way Node users run chat rooms on several hosts. Each process is one host; every host uses
// the same Redis, and io.to(room).emit() reaches the room's members on every host through
// Redis pub/sub.
//
// Usage: npm ci && node server.mjs PORT REDIS_URL   (listens on 127.0.0.1:PORT, path /socket.io/)
//
// Configuration, and why:
// - One process, one event loop per host (the benchmark pins each host to a core).
// - Socket.IO defaults (pingInterval 25 s, pingTimeout 20 s, maxHttpBufferSize 1 MB), with
//   transports limited to WebSocket: the load generator connects straight over WebSocket
//   (`/socket.io/?EIO=4&transport=websocket`), as production clients do after the upgrade.
// - @socket.io/redis-adapter 8 (the classic PUBLISH/SUBSCRIBE adapter) on node-redis 4, two
//   connections per host (publisher and subscriber), as its README sets it up.
// - Protocol: `join` {room} joins the room and is answered by `welcome` {seq: 0}; `chat`
//   {text} is sent to everyone in the room on every host as `chat` {user, text}, with no
//   batching window. There is no per-room sequence number across hosts: Socket.IO has none.
//   No authentication.

import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';

const port = Number(process.argv[2]);
const redisUrl = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || port > 65535 || !redisUrl) {
  console.error('usage: node server.mjs PORT REDIS_URL');
  process.exit(2);
}

const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
pub.on('error', (e) => console.error(`redis: ${e.message}`));
sub.on('error', (e) => console.error(`redis: ${e.message}`));
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer();
const io = new Server(http, { transports: ['websocket'], adapter: createAdapter(pub, sub) });
let nextId = 0;

io.on('connection', (socket) => {
  const user = `user-${port}-${++nextId}`;
  let room = null;
  socket.on('join', (msg) => {
    if (room || !msg || typeof msg.room !== 'string') return;
    room = msg.room;
    socket.join(room);
    socket.emit('welcome', { user, room, seq: 0 });
  });
  socket.on('chat', (msg) => {
    if (!room || !msg || typeof msg.text !== 'string') return;
    io.to(room).emit('chat', { user, text: msg.text });
  });
});

http.listen(port, '127.0.0.1', () => console.error(`socketio-redis listening on 127.0.0.1:${port}`));
