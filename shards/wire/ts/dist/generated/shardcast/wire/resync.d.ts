import * as flatbuffers from 'flatbuffers';
export declare class Resync {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Resync;
    static getRootAsResync(bb: flatbuffers.ByteBuffer, obj?: Resync): Resync;
    static getSizePrefixedRootAsResync(bb: flatbuffers.ByteBuffer, obj?: Resync): Resync;
    seq(): bigint;
    static startResync(builder: flatbuffers.Builder): void;
    static addSeq(builder: flatbuffers.Builder, seq: bigint): void;
    static endResync(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createResync(builder: flatbuffers.Builder, seq: bigint): flatbuffers.Offset;
}
