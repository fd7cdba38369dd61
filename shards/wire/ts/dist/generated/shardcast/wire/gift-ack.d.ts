import * as flatbuffers from 'flatbuffers';
export declare class GiftAck {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): GiftAck;
    static getRootAsGiftAck(bb: flatbuffers.ByteBuffer, obj?: GiftAck): GiftAck;
    static getSizePrefixedRootAsGiftAck(bb: flatbuffers.ByteBuffer, obj?: GiftAck): GiftAck;
    idempotencyKey(): string | null;
    idempotencyKey(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    seq(): bigint;
    entry(): bigint;
    balance(): bigint;
    static startGiftAck(builder: flatbuffers.Builder): void;
    static addIdempotencyKey(builder: flatbuffers.Builder, idempotencyKeyOffset: flatbuffers.Offset): void;
    static addSeq(builder: flatbuffers.Builder, seq: bigint): void;
    static addEntry(builder: flatbuffers.Builder, entry: bigint): void;
    static addBalance(builder: flatbuffers.Builder, balance: bigint): void;
    static endGiftAck(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createGiftAck(builder: flatbuffers.Builder, idempotencyKeyOffset: flatbuffers.Offset, seq: bigint, entry: bigint, balance: bigint): flatbuffers.Offset;
}
