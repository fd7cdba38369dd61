import * as flatbuffers from 'flatbuffers';
export declare class Error {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Error;
    static getRootAsError(bb: flatbuffers.ByteBuffer, obj?: Error): Error;
    static getSizePrefixedRootAsError(bb: flatbuffers.ByteBuffer, obj?: Error): Error;
    code(): number;
    message(): string | null;
    message(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    cause(): string | null;
    cause(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startError(builder: flatbuffers.Builder): void;
    static addCode(builder: flatbuffers.Builder, code: number): void;
    static addMessage(builder: flatbuffers.Builder, messageOffset: flatbuffers.Offset): void;
    static addCause(builder: flatbuffers.Builder, causeOffset: flatbuffers.Offset): void;
    static endError(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createError(builder: flatbuffers.Builder, code: number, messageOffset: flatbuffers.Offset, causeOffset: flatbuffers.Offset): flatbuffers.Offset;
}
