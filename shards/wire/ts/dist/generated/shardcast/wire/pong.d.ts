import * as flatbuffers from 'flatbuffers';
export declare class Pong {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Pong;
    static getRootAsPong(bb: flatbuffers.ByteBuffer, obj?: Pong): Pong;
    static getSizePrefixedRootAsPong(bb: flatbuffers.ByteBuffer, obj?: Pong): Pong;
    clientTimeMs(): bigint;
    serverTimeMs(): bigint;
    static startPong(builder: flatbuffers.Builder): void;
    static addClientTimeMs(builder: flatbuffers.Builder, clientTimeMs: bigint): void;
    static addServerTimeMs(builder: flatbuffers.Builder, serverTimeMs: bigint): void;
    static endPong(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createPong(builder: flatbuffers.Builder, clientTimeMs: bigint, serverTimeMs: bigint): flatbuffers.Offset;
}
