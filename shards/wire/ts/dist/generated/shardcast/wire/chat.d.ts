import * as flatbuffers from 'flatbuffers';
import { ChatMode } from '../../shardcast/wire/chat-mode.js';
export declare class Chat {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Chat;
    static getRootAsChat(bb: flatbuffers.ByteBuffer, obj?: Chat): Chat;
    static getSizePrefixedRootAsChat(bb: flatbuffers.ByteBuffer, obj?: Chat): Chat;
    text(): string | null;
    text(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    color(): number;
    mode(): ChatMode;
    static startChat(builder: flatbuffers.Builder): void;
    static addText(builder: flatbuffers.Builder, textOffset: flatbuffers.Offset): void;
    static addColor(builder: flatbuffers.Builder, color: number): void;
    static addMode(builder: flatbuffers.Builder, mode: ChatMode): void;
    static endChat(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createChat(builder: flatbuffers.Builder, textOffset: flatbuffers.Offset, color: number, mode: ChatMode): flatbuffers.Offset;
}
