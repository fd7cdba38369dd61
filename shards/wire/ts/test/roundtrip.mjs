// Cross-checks the TypeScript client with the Rust side of shardcast-wire through the
// committed fixtures in shards/wire/tests/fixtures/:
//
// - client/*.bin: written by this test's encoders when SHARDCAST_WRITE_FIXTURES=1, otherwise
//   compared byte for byte; the Rust test `fixtures` decodes them.
// - server/*.bin: written by the Rust encoder (`cargo test -p shardcast-wire --test fixtures`
//   with the same variable); decoded here.
//
// Runs against dist/shardcast-wire.js (self-contained, needs no npm install) and, when
// `npm install` has been run in shards/wire/ts, against dist/client.js too. Exits non-zero on
// any mismatch. Usage: node shards/wire/ts/test/roundtrip.mjs

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const fixtures = here('../../tests/fixtures/');
const writing = process.env.SHARDCAST_WRITE_FIXTURES === '1';

const T = 1_700_000_000_000;

// Values shared with shards/wire/tests/fixtures.rs: change both together.
const clientCases = [
  ['hello', 'encodeHello', { room: 'room-1', token: 'tok.abc', lastSeq: 42, clientVersion: 'web/1.0', epoch: '3f2a9c0e11d4b7a5' },
    { type: 'hello', room: 'room-1', token: 'tok.abc', lastSeq: 42, clientVersion: 'web/1.0', epoch: '3f2a9c0e11d4b7a5' }],
  ['hello_anonymous', 'encodeHello', { room: '大厅' },
    { type: 'hello', room: '大厅', token: '', lastSeq: 0, clientVersion: '', epoch: '' }],
  ['chat', 'encodeChat', { text: 'hello 世界 🎉', color: 0xff8800, mode: 'top' },
    { type: 'chat', text: 'hello 世界 🎉', color: 0xff8800, mode: 'top' }],
  ['chat_default', 'encodeChat', { text: 'plain' },
    { type: 'chat', text: 'plain', color: 0, mode: 'scroll' }],
  ['like', 'encodeLike', { count: 5 }, { type: 'like', count: 5 }],
  ['like_default', 'encodeLike', undefined, { type: 'like', count: 1 }],
  ['gift', 'encodeGift', { giftId: 7, count: 3, idempotencyKey: 'k-123' },
    { type: 'gift', giftId: 7, count: 3, idempotencyKey: 'k-123' }],
  ['heartbeat', 'encodeHeartbeat', { clientTimeMs: BigInt(T + 123) },
    { type: 'heartbeat', clientTimeMs: T + 123 }],
  ['history', 'encodeHistory', { fromSeq: 100, limit: 50 },
    { type: 'history', fromSeq: 100, limit: 50 }],
  ['kick_user', 'encodeKickUser', { user: 'spammer', reason: 'spam' },
    { type: 'kickUser', user: 'spammer', reason: 'spam' }],
];

const events = [
  { seq: 42, timeMs: T, type: 'chat', user: 'bob', text: 'hi 👋', color: 0xffffff, mode: 'scroll' },
  { seq: 43, timeMs: T + 1, type: 'like', total: 1000, added: 5 },
  { seq: 44, timeMs: T + 2, type: 'gift', user: 'carol', giftId: 7, count: 3, value: 300 },
  { seq: 45, timeMs: T + 3, type: 'system', text: 'stream is live' },
  { seq: 46, timeMs: T + 4, type: 'chat', user: '', text: '弹幕 bottom', color: 0x00ff00, mode: 'bottom' },
];

const serverCases = [
  ['welcome', { type: 'welcome', user: 'alice', room: 'room-1', seq: 41, online: 1234, heartbeatMs: 15000, role: 'admin', epoch: '3f2a9c0e11d4b7a5' }],
  ['batch', { type: 'batch', firstSeq: 42, events }],
  ['batch_empty', { type: 'batch', firstSeq: 47, events: [] }],
  ['history_reply', { type: 'historyReply', firstSeq: 42, events: events.slice(0, 2), more: true }],
  ['room_stats', { type: 'roomStats', online: 1234, likes: 99999, heat: 5555 }],
  ['resync', { type: 'resync', seq: 500, epoch: '3f2a9c0e11d4b7a5' }],
  ['pong', { type: 'pong', clientTimeMs: T + 123, serverTimeMs: T + 200 }],
  ['error', { type: 'error', code: 429, message: 'slow down', cause: '' }],
  ['error_cause', { type: 'error', code: 402, message: 'balance 3 < 10', cause: 'insufficient_balance' }],
  ['kick', { type: 'kick', reason: 'kicked by admin' }],
  ['gift_ack', { type: 'giftAck', idempotencyKey: 'k-123', seq: 44, entry: 7, balance: 1000000 }],
];

function checkModule(label, wire) {
  assert.equal(wire.SUBPROTOCOL, 'shardcast.v1');

  for (const [name, encoder, args, expected] of clientCases) {
    const bytes = wire[encoder](args);
    assert.ok(bytes instanceof Uint8Array, `${label} ${name}: not a Uint8Array`);
    assert.deepEqual(wire.decodeClient(bytes), expected, `${label} ${name}: decodes differently`);
    const path = `${fixtures}client/${name}.bin`;
    if (writing) {
      mkdirSync(`${fixtures}client`, { recursive: true });
      writeFileSync(path, bytes);
    } else {
      const committed = new Uint8Array(readFileSync(path));
      assert.deepEqual(bytes, committed,
        `${label} ${name}: encoding differs from ${path}; if intended, rewrite with SHARDCAST_WRITE_FIXTURES=1 and rerun the Rust fixtures test`);
    }
  }

  // An earlier result stays valid after later encodes (each call returns its own copy).
  const first = wire.encodeLike({ count: 9 });
  wire.encodeChat({ text: 'something longer than a like' });
  assert.deepEqual(wire.decodeClient(first), { type: 'like', count: 9 });

  // Out-of-range arguments are refused, not wrapped.
  assert.throws(() => wire.encodeLike({ count: -1 }), RangeError);
  assert.throws(() => wire.encodeLike({ count: 2 ** 32 }), RangeError);
  assert.throws(() => wire.encodeHistory({ fromSeq: -1, limit: 1 }), RangeError);
  assert.throws(() => wire.encodeChat({ text: 'x', mode: 'sideways' }), RangeError);

  for (const [name, expected] of serverCases) {
    const bytes = new Uint8Array(readFileSync(`${fixtures}server/${name}.bin`));
    assert.deepEqual(wire.decodeServer(bytes), expected, `${label} ${name}: decodes differently`);
  }
}

const modules = [['dist/shardcast-wire.js', await import(here('../dist/shardcast-wire.js'))]];
if (existsSync(here('../node_modules/flatbuffers/package.json'))) {
  modules.push(['dist/client.js', await import(here('../dist/client.js'))]);
} else {
  console.log('roundtrip: skipping dist/client.js (run `npm install` in shards/wire/ts to test it)');
}
for (const [label, wire] of modules) {
  checkModule(label, wire);
  console.log(`roundtrip: ${label} ok (${clientCases.length} client, ${serverCases.length} server messages)`);
}
if (writing) console.log(`roundtrip: wrote ${fixtures}client/`);
