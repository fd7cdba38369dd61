import * as flatbuffers from 'flatbuffers';
export declare class Like {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Like;
    static getRootAsLike(bb: flatbuffers.ByteBuffer, obj?: Like): Like;
    static getSizePrefixedRootAsLike(bb: flatbuffers.ByteBuffer, obj?: Like): Like;
    count(): number;
    static startLike(builder: flatbuffers.Builder): void;
    static addCount(builder: flatbuffers.Builder, count: number): void;
    static endLike(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createLike(builder: flatbuffers.Builder, count: number): flatbuffers.Offset;
}
