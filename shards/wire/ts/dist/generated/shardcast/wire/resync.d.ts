import * as flatbuffers from 'flatbuffers';
export declare class Resync {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Resync;
    static getRootAsResync(bb: flatbuffers.ByteBuffer, obj?: Resync): Resync;
    static getSizePrefixedRootAsResync(bb: flatbuffers.ByteBuffer, obj?: Resync): Resync;
    seq(): bigint;
    epoch(): string | null;
    epoch(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startResync(builder: flatbuffers.Builder): void;
    static addSeq(builder: flatbuffers.Builder, seq: bigint): void;
    static addEpoch(builder: flatbuffers.Builder, epochOffset: flatbuffers.Offset): void;
    static endResync(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createResync(builder: flatbuffers.Builder, seq: bigint, epochOffset: flatbuffers.Offset): flatbuffers.Offset;
}
