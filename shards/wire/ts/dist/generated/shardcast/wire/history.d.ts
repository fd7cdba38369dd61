import * as flatbuffers from 'flatbuffers';
export declare class History {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): History;
    static getRootAsHistory(bb: flatbuffers.ByteBuffer, obj?: History): History;
    static getSizePrefixedRootAsHistory(bb: flatbuffers.ByteBuffer, obj?: History): History;
    fromSeq(): bigint;
    limit(): number;
    static startHistory(builder: flatbuffers.Builder): void;
    static addFromSeq(builder: flatbuffers.Builder, fromSeq: bigint): void;
    static addLimit(builder: flatbuffers.Builder, limit: number): void;
    static endHistory(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createHistory(builder: flatbuffers.Builder, fromSeq: bigint, limit: number): flatbuffers.Offset;
}
