import * as flatbuffers from 'flatbuffers';
export declare class SystemEvent {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): SystemEvent;
    static getRootAsSystemEvent(bb: flatbuffers.ByteBuffer, obj?: SystemEvent): SystemEvent;
    static getSizePrefixedRootAsSystemEvent(bb: flatbuffers.ByteBuffer, obj?: SystemEvent): SystemEvent;
    text(): string | null;
    text(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startSystemEvent(builder: flatbuffers.Builder): void;
    static addText(builder: flatbuffers.Builder, textOffset: flatbuffers.Offset): void;
    static endSystemEvent(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createSystemEvent(builder: flatbuffers.Builder, textOffset: flatbuffers.Offset): flatbuffers.Offset;
}
