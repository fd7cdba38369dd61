import * as flatbuffers from 'flatbuffers';
import { ServerBody } from '../../shardcast/wire/server-body.js';
export declare class ServerMessage {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): ServerMessage;
    static getRootAsServerMessage(bb: flatbuffers.ByteBuffer, obj?: ServerMessage): ServerMessage;
    static getSizePrefixedRootAsServerMessage(bb: flatbuffers.ByteBuffer, obj?: ServerMessage): ServerMessage;
    bodyType(): ServerBody;
    body<T extends flatbuffers.Table>(obj: any): any | null;
    static startServerMessage(builder: flatbuffers.Builder): void;
    static addBodyType(builder: flatbuffers.Builder, bodyType: ServerBody): void;
    static addBody(builder: flatbuffers.Builder, bodyOffset: flatbuffers.Offset): void;
    static endServerMessage(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createServerMessage(builder: flatbuffers.Builder, bodyType: ServerBody, bodyOffset: flatbuffers.Offset): flatbuffers.Offset;
}
