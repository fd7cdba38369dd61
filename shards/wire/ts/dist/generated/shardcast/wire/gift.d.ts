import * as flatbuffers from 'flatbuffers';
export declare class Gift {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Gift;
    static getRootAsGift(bb: flatbuffers.ByteBuffer, obj?: Gift): Gift;
    static getSizePrefixedRootAsGift(bb: flatbuffers.ByteBuffer, obj?: Gift): Gift;
    giftId(): number;
    count(): number;
    idempotencyKey(): string | null;
    idempotencyKey(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startGift(builder: flatbuffers.Builder): void;
    static addGiftId(builder: flatbuffers.Builder, giftId: number): void;
    static addCount(builder: flatbuffers.Builder, count: number): void;
    static addIdempotencyKey(builder: flatbuffers.Builder, idempotencyKeyOffset: flatbuffers.Offset): void;
    static endGift(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createGift(builder: flatbuffers.Builder, giftId: number, count: number, idempotencyKeyOffset: flatbuffers.Offset): flatbuffers.Offset;
}
