import * as flatbuffers from 'flatbuffers';
export declare class LikeEvent {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): LikeEvent;
    static getRootAsLikeEvent(bb: flatbuffers.ByteBuffer, obj?: LikeEvent): LikeEvent;
    static getSizePrefixedRootAsLikeEvent(bb: flatbuffers.ByteBuffer, obj?: LikeEvent): LikeEvent;
    total(): bigint;
    added(): bigint;
    static startLikeEvent(builder: flatbuffers.Builder): void;
    static addTotal(builder: flatbuffers.Builder, total: bigint): void;
    static addAdded(builder: flatbuffers.Builder, added: bigint): void;
    static endLikeEvent(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createLikeEvent(builder: flatbuffers.Builder, total: bigint, added: bigint): flatbuffers.Offset;
}
