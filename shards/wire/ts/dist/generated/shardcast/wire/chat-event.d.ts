import * as flatbuffers from 'flatbuffers';
import { ChatMode } from '../../shardcast/wire/chat-mode.js';
export declare class ChatEvent {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): ChatEvent;
    static getRootAsChatEvent(bb: flatbuffers.ByteBuffer, obj?: ChatEvent): ChatEvent;
    static getSizePrefixedRootAsChatEvent(bb: flatbuffers.ByteBuffer, obj?: ChatEvent): ChatEvent;
    user(): string | null;
    user(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    text(): string | null;
    text(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    color(): number;
    mode(): ChatMode;
    static startChatEvent(builder: flatbuffers.Builder): void;
    static addUser(builder: flatbuffers.Builder, userOffset: flatbuffers.Offset): void;
    static addText(builder: flatbuffers.Builder, textOffset: flatbuffers.Offset): void;
    static addColor(builder: flatbuffers.Builder, color: number): void;
    static addMode(builder: flatbuffers.Builder, mode: ChatMode): void;
    static endChatEvent(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createChatEvent(builder: flatbuffers.Builder, userOffset: flatbuffers.Offset, textOffset: flatbuffers.Offset, color: number, mode: ChatMode): flatbuffers.Offset;
}
