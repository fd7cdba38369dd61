import * as flatbuffers from 'flatbuffers';
export declare class Hello {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Hello;
    static getRootAsHello(bb: flatbuffers.ByteBuffer, obj?: Hello): Hello;
    static getSizePrefixedRootAsHello(bb: flatbuffers.ByteBuffer, obj?: Hello): Hello;
    room(): string | null;
    room(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    token(): string | null;
    token(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    lastSeq(): bigint;
    clientVersion(): string | null;
    clientVersion(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    epoch(): string | null;
    epoch(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startHello(builder: flatbuffers.Builder): void;
    static addRoom(builder: flatbuffers.Builder, roomOffset: flatbuffers.Offset): void;
    static addToken(builder: flatbuffers.Builder, tokenOffset: flatbuffers.Offset): void;
    static addLastSeq(builder: flatbuffers.Builder, lastSeq: bigint): void;
    static addClientVersion(builder: flatbuffers.Builder, clientVersionOffset: flatbuffers.Offset): void;
    static addEpoch(builder: flatbuffers.Builder, epochOffset: flatbuffers.Offset): void;
    static endHello(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createHello(builder: flatbuffers.Builder, roomOffset: flatbuffers.Offset, tokenOffset: flatbuffers.Offset, lastSeq: bigint, clientVersionOffset: flatbuffers.Offset, epochOffset: flatbuffers.Offset): flatbuffers.Offset;
}
