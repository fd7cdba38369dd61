// shardcast danmaku protocol (subprotocol "shardcast.v1") for browsers and Node.
//
// Encoders turn plain arguments into the bytes of one binary WebSocket message (a
// ClientMessage); decodeServer turns the bytes of one message from the server (a
// ServerMessage) into a plain object tagged by `type`. The schema is
// shards/wire/schema/danmaku.fbs; the classes under ./generated are flatc output.
//
// Numbers: 64-bit fields (seq, times, totals) are accepted as number or bigint and returned as
// number. Sequence numbers, millisecond timestamps and counters stay far below 2^53, where a
// number is exact.
//
// Trust: the JavaScript flatbuffers runtime has no verifier. decodeServer is meant for bytes
// from a shardcast server; on malformed input it may throw or return nonsense, but it does not
// loop. The server verifies everything a client sends.

import * as flatbuffers from 'flatbuffers';

import { Batch } from './generated/shardcast/wire/batch.js';
import { Chat } from './generated/shardcast/wire/chat.js';
import { ChatEvent } from './generated/shardcast/wire/chat-event.js';
import { ChatMode as FbChatMode } from './generated/shardcast/wire/chat-mode.js';
import { ClientBody } from './generated/shardcast/wire/client-body.js';
import { ClientMessage } from './generated/shardcast/wire/client-message.js';
import { Error as FbError } from './generated/shardcast/wire/error.js';
import { Event as FbEvent } from './generated/shardcast/wire/event.js';
import { EventBody } from './generated/shardcast/wire/event-body.js';
import { Gift } from './generated/shardcast/wire/gift.js';
import { GiftAck } from './generated/shardcast/wire/gift-ack.js';
import { GiftEvent } from './generated/shardcast/wire/gift-event.js';
import { Heartbeat } from './generated/shardcast/wire/heartbeat.js';
import { Hello } from './generated/shardcast/wire/hello.js';
import { History } from './generated/shardcast/wire/history.js';
import { HistoryReply } from './generated/shardcast/wire/history-reply.js';
import { Kick } from './generated/shardcast/wire/kick.js';
import { KickUser } from './generated/shardcast/wire/kick-user.js';
import { Like } from './generated/shardcast/wire/like.js';
import { LikeEvent } from './generated/shardcast/wire/like-event.js';
import { Pong } from './generated/shardcast/wire/pong.js';
import { Resync } from './generated/shardcast/wire/resync.js';
import { Role as FbRole } from './generated/shardcast/wire/role.js';
import { RoomStats } from './generated/shardcast/wire/room-stats.js';
import { ServerBody } from './generated/shardcast/wire/server-body.js';
import { ServerMessage } from './generated/shardcast/wire/server-message.js';
import { SystemEvent } from './generated/shardcast/wire/system-event.js';
import { Welcome } from './generated/shardcast/wire/welcome.js';

/** The WebSocket subprotocol to request: `new WebSocket(url, SUBPROTOCOL)`. */
export const SUBPROTOCOL = 'shardcast.v1';

/** How a bullet comment is shown. */
export type ChatMode = 'scroll' | 'top' | 'bottom';
/** A viewer's role in a room, from its token. */
export type Role = 'viewer' | 'speaker' | 'admin';
/** A 64-bit value as the encoders accept it. */
export type U64 = number | bigint;

// ------------------------------------------------------------------------ client -> server

export interface HelloArgs {
  room: string;
  /** Empty or absent: anonymous (read-only, if the server allows it). */
  token?: string;
  /** The last seq this client saw; 0 or absent for a fresh join. */
  lastSeq?: U64;
  clientVersion?: string;
  /**
   * The `epoch` of the Welcome that `lastSeq` belongs to: when the room's order has another
   * epoch now, the server answers Resync. Absent: not checked.
   */
  epoch?: string;
}
export interface ChatArgs {
  text: string;
  /** 0xRRGGBB. */
  color?: number;
  mode?: ChatMode;
}
export interface LikeArgs {
  count?: number;
}
export interface GiftArgs {
  giftId: number;
  count?: number;
  idempotencyKey: string;
}
export interface HeartbeatArgs {
  clientTimeMs: U64;
}
export interface HistoryArgs {
  fromSeq: U64;
  limit: number;
}
export interface KickUserArgs {
  user: string;
  reason?: string;
}

// One builder for every encoder: each call clears it and returns a copy of its bytes, so the
// returned array stays valid.
const builder = new flatbuffers.Builder(256);

export function encodeHello(args: HelloArgs): Uint8Array {
  const b = start();
  const room = b.createString(args.room);
  const token = optString(b, args.token);
  const clientVersion = optString(b, args.clientVersion);
  const epoch = optString(b, args.epoch);
  Hello.startHello(b);
  Hello.addRoom(b, room);
  if (token) Hello.addToken(b, token);
  Hello.addLastSeq(b, u64(args.lastSeq ?? 0));
  if (clientVersion) Hello.addClientVersion(b, clientVersion);
  if (epoch) Hello.addEpoch(b, epoch);
  return finishClient(b, ClientBody.Hello, Hello.endHello(b));
}

export function encodeChat(args: ChatArgs): Uint8Array {
  const b = start();
  const text = b.createString(args.text);
  Chat.startChat(b);
  Chat.addText(b, text);
  Chat.addColor(b, u32(args.color ?? 0));
  Chat.addMode(b, chatModeToFb(args.mode ?? 'scroll'));
  return finishClient(b, ClientBody.Chat, Chat.endChat(b));
}

export function encodeLike(args: LikeArgs = {}): Uint8Array {
  const b = start();
  return finishClient(b, ClientBody.Like, Like.createLike(b, u32(args.count ?? 1)));
}

export function encodeGift(args: GiftArgs): Uint8Array {
  const b = start();
  const key = b.createString(args.idempotencyKey);
  Gift.startGift(b);
  Gift.addGiftId(b, u32(args.giftId));
  Gift.addCount(b, u32(args.count ?? 1));
  Gift.addIdempotencyKey(b, key);
  return finishClient(b, ClientBody.Gift, Gift.endGift(b));
}

export function encodeHeartbeat(args: HeartbeatArgs): Uint8Array {
  const b = start();
  const body = Heartbeat.createHeartbeat(b, u64(args.clientTimeMs));
  return finishClient(b, ClientBody.Heartbeat, body);
}

export function encodeHistory(args: HistoryArgs): Uint8Array {
  const b = start();
  const body = History.createHistory(b, u64(args.fromSeq), u32(args.limit));
  return finishClient(b, ClientBody.History, body);
}

export function encodeKickUser(args: KickUserArgs): Uint8Array {
  const b = start();
  const user = b.createString(args.user);
  const reason = optString(b, args.reason);
  KickUser.startKickUser(b);
  KickUser.addUser(b, user);
  if (reason) KickUser.addReason(b, reason);
  return finishClient(b, ClientBody.KickUser, KickUser.endKickUser(b));
}

/** A decoded client message (for tests and tools; the server decodes in Rust). */
export type ClientMsg =
  | { type: 'hello'; room: string; token: string; lastSeq: number; clientVersion: string; epoch: string }
  | { type: 'chat'; text: string; color: number; mode: ChatMode }
  | { type: 'like'; count: number }
  | { type: 'gift'; giftId: number; count: number; idempotencyKey: string }
  | { type: 'heartbeat'; clientTimeMs: number }
  | { type: 'history'; fromSeq: number; limit: number }
  | { type: 'kickUser'; user: string; reason: string }
  | { type: 'unknown'; bodyType: number };

export function decodeClient(bytes: Uint8Array): ClientMsg {
  const msg = ClientMessage.getRootAsClientMessage(new flatbuffers.ByteBuffer(bytes));
  const bodyType = msg.bodyType();
  switch (bodyType) {
    case ClientBody.Hello: {
      const h: Hello = msg.body(new Hello());
      return {
        type: 'hello',
        room: h.room() ?? '',
        token: h.token() ?? '',
        lastSeq: Number(h.lastSeq()),
        clientVersion: h.clientVersion() ?? '',
        epoch: h.epoch() ?? '',
      };
    }
    case ClientBody.Chat: {
      const c: Chat = msg.body(new Chat());
      return { type: 'chat', text: c.text() ?? '', color: c.color(), mode: chatModeFromFb(c.mode()) };
    }
    case ClientBody.Like:
      return { type: 'like', count: (msg.body(new Like()) as Like).count() };
    case ClientBody.Gift: {
      const g: Gift = msg.body(new Gift());
      return {
        type: 'gift',
        giftId: g.giftId(),
        count: g.count(),
        idempotencyKey: g.idempotencyKey() ?? '',
      };
    }
    case ClientBody.Heartbeat:
      return {
        type: 'heartbeat',
        clientTimeMs: Number((msg.body(new Heartbeat()) as Heartbeat).clientTimeMs()),
      };
    case ClientBody.History: {
      const h: History = msg.body(new History());
      return { type: 'history', fromSeq: Number(h.fromSeq()), limit: h.limit() };
    }
    case ClientBody.KickUser: {
      const k: KickUser = msg.body(new KickUser());
      return { type: 'kickUser', user: k.user() ?? '', reason: k.reason() ?? '' };
    }
    default:
      return { type: 'unknown', bodyType };
  }
}

// ------------------------------------------------------------------------ server -> client

/** One room event. Events in a batch or history reply have consecutive `seq`. */
export type RoomEvent = { seq: number; timeMs: number } & (
  | { type: 'chat'; user: string; text: string; color: number; mode: ChatMode }
  | { type: 'like'; total: number; added: number }
  | { type: 'gift'; user: string; giftId: number; count: number; value: number }
  | { type: 'system'; text: string }
  /** An event type newer than this module: skip it, but count its seq. */
  | { type: 'unknown'; bodyType: number }
);

export type ServerMsg =
  | {
      type: 'welcome';
      user: string;
      room: string;
      seq: number;
      online: number;
      heartbeatMs: number;
      role: Role;
      /** The room's order: send it back as `HelloArgs.epoch` when resuming. */
      epoch: string;
    }
  | { type: 'batch'; firstSeq: number; events: RoomEvent[] }
  | { type: 'historyReply'; firstSeq: number; events: RoomEvent[]; more: boolean }
  | { type: 'roomStats'; online: number; likes: number; heat: number }
  /** Continue from `seq`; send `epoch` back as `HelloArgs.epoch` when resuming. */
  | { type: 'resync'; seq: number; epoch: string }
  | { type: 'pong'; clientTimeMs: number; serverTimeMs: number }
  | { type: 'error'; code: number; message: string; cause: string }
  | { type: 'kick'; reason: string }
  | { type: 'giftAck'; idempotencyKey: string; seq: number; entry: number; balance: number }
  /** A message type newer than this module. */
  | { type: 'unknown'; bodyType: number };

export function decodeServer(bytes: Uint8Array): ServerMsg {
  const msg = ServerMessage.getRootAsServerMessage(new flatbuffers.ByteBuffer(bytes));
  const bodyType = msg.bodyType();
  switch (bodyType) {
    case ServerBody.Welcome: {
      const w: Welcome = msg.body(new Welcome());
      return {
        type: 'welcome',
        user: w.user() ?? '',
        room: w.room() ?? '',
        seq: Number(w.seq()),
        online: Number(w.online()),
        heartbeatMs: w.heartbeatMs(),
        role: roleFromFb(w.role()),
        epoch: w.epoch() ?? '',
      };
    }
    case ServerBody.Batch: {
      const b: Batch = msg.body(new Batch());
      return { type: 'batch', firstSeq: Number(b.firstSeq()), events: events(b) };
    }
    case ServerBody.HistoryReply: {
      const h: HistoryReply = msg.body(new HistoryReply());
      return {
        type: 'historyReply',
        firstSeq: Number(h.firstSeq()),
        events: events(h),
        more: h.more(),
      };
    }
    case ServerBody.RoomStats: {
      const s: RoomStats = msg.body(new RoomStats());
      return {
        type: 'roomStats',
        online: Number(s.online()),
        likes: Number(s.likes()),
        heat: Number(s.heat()),
      };
    }
    case ServerBody.Resync: {
      const r: Resync = msg.body(new Resync());
      return { type: 'resync', seq: Number(r.seq()), epoch: r.epoch() ?? '' };
    }
    case ServerBody.Pong: {
      const p: Pong = msg.body(new Pong());
      return {
        type: 'pong',
        clientTimeMs: Number(p.clientTimeMs()),
        serverTimeMs: Number(p.serverTimeMs()),
      };
    }
    case ServerBody.Error: {
      const e: FbError = msg.body(new FbError());
      return { type: 'error', code: e.code(), message: e.message() ?? '', cause: e.cause() ?? '' };
    }
    case ServerBody.Kick:
      return { type: 'kick', reason: (msg.body(new Kick()) as Kick).reason() ?? '' };
    case ServerBody.GiftAck: {
      const a: GiftAck = msg.body(new GiftAck());
      return {
        type: 'giftAck',
        idempotencyKey: a.idempotencyKey() ?? '',
        seq: Number(a.seq()),
        entry: Number(a.entry()),
        balance: Number(a.balance()),
      };
    }
    default:
      return { type: 'unknown', bodyType };
  }
}

// ------------------------------------------------------------------------ helpers

function events(list: Batch | HistoryReply): RoomEvent[] {
  const out: RoomEvent[] = [];
  const event = new FbEvent();
  const n = list.eventsLength();
  for (let i = 0; i < n; i++) {
    list.events(i, event);
    out.push(roomEvent(event));
  }
  return out;
}

function roomEvent(e: FbEvent): RoomEvent {
  const seq = Number(e.seq());
  const timeMs = Number(e.timeMs());
  const bodyType = e.bodyType();
  switch (bodyType) {
    case EventBody.ChatEvent: {
      const c: ChatEvent = e.body(new ChatEvent());
      return {
        seq,
        timeMs,
        type: 'chat',
        user: c.user() ?? '',
        text: c.text() ?? '',
        color: c.color(),
        mode: chatModeFromFb(c.mode()),
      };
    }
    case EventBody.LikeEvent: {
      const l: LikeEvent = e.body(new LikeEvent());
      return { seq, timeMs, type: 'like', total: Number(l.total()), added: Number(l.added()) };
    }
    case EventBody.GiftEvent: {
      const g: GiftEvent = e.body(new GiftEvent());
      return {
        seq,
        timeMs,
        type: 'gift',
        user: g.user() ?? '',
        giftId: g.giftId(),
        count: g.count(),
        value: Number(g.value()),
      };
    }
    case EventBody.SystemEvent: {
      const s: SystemEvent = e.body(new SystemEvent());
      return { seq, timeMs, type: 'system', text: s.text() ?? '' };
    }
    default:
      return { seq, timeMs, type: 'unknown', bodyType };
  }
}

function start(): flatbuffers.Builder {
  builder.clear();
  return builder;
}

function finishClient(b: flatbuffers.Builder, type: ClientBody, body: flatbuffers.Offset): Uint8Array {
  b.finish(ClientMessage.createClientMessage(b, type, body));
  return b.asUint8Array().slice();
}

// An absent optional string and an empty one decode the same; absent is 8 bytes shorter.
function optString(b: flatbuffers.Builder, s: string | undefined): flatbuffers.Offset {
  return s ? b.createString(s) : 0;
}

function u64(v: U64): bigint {
  const n = BigInt(v);
  if (n < 0n || n > 0xffff_ffff_ffff_ffffn) throw new RangeError(`${v} is not a u64`);
  return n;
}

function u32(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`${v} is not a u32`);
  return v;
}

function chatModeToFb(mode: ChatMode): FbChatMode {
  switch (mode) {
    case 'scroll':
      return FbChatMode.Scroll;
    case 'top':
      return FbChatMode.Top;
    case 'bottom':
      return FbChatMode.Bottom;
    default:
      throw new RangeError(`unknown chat mode ${String(mode)}`);
  }
}

// A mode newer than this module is shown the default way.
function chatModeFromFb(mode: FbChatMode): ChatMode {
  switch (mode) {
    case FbChatMode.Top:
      return 'top';
    case FbChatMode.Bottom:
      return 'bottom';
    default:
      return 'scroll';
  }
}

// A role newer than this module gets the least privilege.
function roleFromFb(role: FbRole): Role {
  switch (role) {
    case FbRole.Speaker:
      return 'speaker';
    case FbRole.Admin:
      return 'admin';
    default:
      return 'viewer';
  }
}
