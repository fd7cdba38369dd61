import * as flatbuffers from 'flatbuffers';
export declare class Kick {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Kick;
    static getRootAsKick(bb: flatbuffers.ByteBuffer, obj?: Kick): Kick;
    static getSizePrefixedRootAsKick(bb: flatbuffers.ByteBuffer, obj?: Kick): Kick;
    reason(): string | null;
    reason(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startKick(builder: flatbuffers.Builder): void;
    static addReason(builder: flatbuffers.Builder, reasonOffset: flatbuffers.Offset): void;
    static endKick(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createKick(builder: flatbuffers.Builder, reasonOffset: flatbuffers.Offset): flatbuffers.Offset;
}
