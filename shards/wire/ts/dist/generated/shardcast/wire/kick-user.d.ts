import * as flatbuffers from 'flatbuffers';
export declare class KickUser {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): KickUser;
    static getRootAsKickUser(bb: flatbuffers.ByteBuffer, obj?: KickUser): KickUser;
    static getSizePrefixedRootAsKickUser(bb: flatbuffers.ByteBuffer, obj?: KickUser): KickUser;
    user(): string | null;
    user(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    reason(): string | null;
    reason(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startKickUser(builder: flatbuffers.Builder): void;
    static addUser(builder: flatbuffers.Builder, userOffset: flatbuffers.Offset): void;
    static addReason(builder: flatbuffers.Builder, reasonOffset: flatbuffers.Offset): void;
    static endKickUser(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createKickUser(builder: flatbuffers.Builder, userOffset: flatbuffers.Offset, reasonOffset: flatbuffers.Offset): flatbuffers.Offset;
}
