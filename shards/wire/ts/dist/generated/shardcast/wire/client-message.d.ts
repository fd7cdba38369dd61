import * as flatbuffers from 'flatbuffers';
import { ClientBody } from '../../shardcast/wire/client-body.js';
export declare class ClientMessage {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): ClientMessage;
    static getRootAsClientMessage(bb: flatbuffers.ByteBuffer, obj?: ClientMessage): ClientMessage;
    static getSizePrefixedRootAsClientMessage(bb: flatbuffers.ByteBuffer, obj?: ClientMessage): ClientMessage;
    bodyType(): ClientBody;
    body<T extends flatbuffers.Table>(obj: any): any | null;
    static startClientMessage(builder: flatbuffers.Builder): void;
    static addBodyType(builder: flatbuffers.Builder, bodyType: ClientBody): void;
    static addBody(builder: flatbuffers.Builder, bodyOffset: flatbuffers.Offset): void;
    static endClientMessage(builder: flatbuffers.Builder): flatbuffers.Offset;
    static finishClientMessageBuffer(builder: flatbuffers.Builder, offset: flatbuffers.Offset): void;
    static finishSizePrefixedClientMessageBuffer(builder: flatbuffers.Builder, offset: flatbuffers.Offset): void;
    static createClientMessage(builder: flatbuffers.Builder, bodyType: ClientBody, bodyOffset: flatbuffers.Offset): flatbuffers.Offset;
}
