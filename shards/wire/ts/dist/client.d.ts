/** The WebSocket subprotocol to request: `new WebSocket(url, SUBPROTOCOL)`. */
export declare const SUBPROTOCOL = "shardcast.v1";
/** How a bullet comment is shown. */
export type ChatMode = 'scroll' | 'top' | 'bottom';
/** A viewer's role in a room, from its token. */
export type Role = 'viewer' | 'speaker' | 'admin';
/** A 64-bit value as the encoders accept it. */
export type U64 = number | bigint;
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
export declare function encodeHello(args: HelloArgs): Uint8Array;
export declare function encodeChat(args: ChatArgs): Uint8Array;
export declare function encodeLike(args?: LikeArgs): Uint8Array;
export declare function encodeGift(args: GiftArgs): Uint8Array;
export declare function encodeHeartbeat(args: HeartbeatArgs): Uint8Array;
export declare function encodeHistory(args: HistoryArgs): Uint8Array;
export declare function encodeKickUser(args: KickUserArgs): Uint8Array;
/** A decoded client message (for tests and tools; the server decodes in Rust). */
export type ClientMsg = {
    type: 'hello';
    room: string;
    token: string;
    lastSeq: number;
    clientVersion: string;
    epoch: string;
} | {
    type: 'chat';
    text: string;
    color: number;
    mode: ChatMode;
} | {
    type: 'like';
    count: number;
} | {
    type: 'gift';
    giftId: number;
    count: number;
    idempotencyKey: string;
} | {
    type: 'heartbeat';
    clientTimeMs: number;
} | {
    type: 'history';
    fromSeq: number;
    limit: number;
} | {
    type: 'kickUser';
    user: string;
    reason: string;
} | {
    type: 'unknown';
    bodyType: number;
};
export declare function decodeClient(bytes: Uint8Array): ClientMsg;
/** One room event. Events in a batch or history reply have consecutive `seq`. */
export type RoomEvent = {
    seq: number;
    timeMs: number;
} & ({
    type: 'chat';
    user: string;
    text: string;
    color: number;
    mode: ChatMode;
} | {
    type: 'like';
    total: number;
    added: number;
} | {
    type: 'gift';
    user: string;
    giftId: number;
    count: number;
    value: number;
} | {
    type: 'system';
    text: string;
}
/** An event type newer than this module: skip it, but count its seq. */
 | {
    type: 'unknown';
    bodyType: number;
});
export type ServerMsg = {
    type: 'welcome';
    user: string;
    room: string;
    seq: number;
    online: number;
    heartbeatMs: number;
    role: Role;
    /** The room's order: send it back as `HelloArgs.epoch` when resuming. */
    epoch: string;
} | {
    type: 'batch';
    firstSeq: number;
    events: RoomEvent[];
} | {
    type: 'historyReply';
    firstSeq: number;
    events: RoomEvent[];
    more: boolean;
} | {
    type: 'roomStats';
    online: number;
    likes: number;
    heat: number;
}
/** Continue from `seq`; send `epoch` back as `HelloArgs.epoch` when resuming. */
 | {
    type: 'resync';
    seq: number;
    epoch: string;
} | {
    type: 'pong';
    clientTimeMs: number;
    serverTimeMs: number;
} | {
    type: 'error';
    code: number;
    message: string;
    cause: string;
} | {
    type: 'kick';
    reason: string;
} | {
    type: 'giftAck';
    idempotencyKey: string;
    seq: number;
    entry: number;
    balance: number;
}
/** A message type newer than this module. */
 | {
    type: 'unknown';
    bodyType: number;
};
export declare function decodeServer(bytes: Uint8Array): ServerMsg;
