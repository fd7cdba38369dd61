import * as flatbuffers from 'flatbuffers';
export declare class GiftEvent {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): GiftEvent;
    static getRootAsGiftEvent(bb: flatbuffers.ByteBuffer, obj?: GiftEvent): GiftEvent;
    static getSizePrefixedRootAsGiftEvent(bb: flatbuffers.ByteBuffer, obj?: GiftEvent): GiftEvent;
    user(): string | null;
    user(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    giftId(): number;
    count(): number;
    value(): bigint;
    static startGiftEvent(builder: flatbuffers.Builder): void;
    static addUser(builder: flatbuffers.Builder, userOffset: flatbuffers.Offset): void;
    static addGiftId(builder: flatbuffers.Builder, giftId: number): void;
    static addCount(builder: flatbuffers.Builder, count: number): void;
    static addValue(builder: flatbuffers.Builder, value: bigint): void;
    static endGiftEvent(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createGiftEvent(builder: flatbuffers.Builder, userOffset: flatbuffers.Offset, giftId: number, count: number, value: bigint): flatbuffers.Offset;
}
