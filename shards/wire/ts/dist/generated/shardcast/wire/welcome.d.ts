import * as flatbuffers from 'flatbuffers';
import { Role } from '../../shardcast/wire/role.js';
export declare class Welcome {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Welcome;
    static getRootAsWelcome(bb: flatbuffers.ByteBuffer, obj?: Welcome): Welcome;
    static getSizePrefixedRootAsWelcome(bb: flatbuffers.ByteBuffer, obj?: Welcome): Welcome;
    user(): string | null;
    user(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    room(): string | null;
    room(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    seq(): bigint;
    online(): bigint;
    heartbeatMs(): number;
    role(): Role;
    epoch(): string | null;
    epoch(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startWelcome(builder: flatbuffers.Builder): void;
    static addUser(builder: flatbuffers.Builder, userOffset: flatbuffers.Offset): void;
    static addRoom(builder: flatbuffers.Builder, roomOffset: flatbuffers.Offset): void;
    static addSeq(builder: flatbuffers.Builder, seq: bigint): void;
    static addOnline(builder: flatbuffers.Builder, online: bigint): void;
    static addHeartbeatMs(builder: flatbuffers.Builder, heartbeatMs: number): void;
    static addRole(builder: flatbuffers.Builder, role: Role): void;
    static addEpoch(builder: flatbuffers.Builder, epochOffset: flatbuffers.Offset): void;
    static endWelcome(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createWelcome(builder: flatbuffers.Builder, userOffset: flatbuffers.Offset, roomOffset: flatbuffers.Offset, seq: bigint, online: bigint, heartbeatMs: number, role: Role, epochOffset: flatbuffers.Offset): flatbuffers.Offset;
}
