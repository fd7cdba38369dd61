import * as flatbuffers from 'flatbuffers';
import { EventBody } from '../../shardcast/wire/event-body.js';
export declare class Event {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Event;
    static getRootAsEvent(bb: flatbuffers.ByteBuffer, obj?: Event): Event;
    static getSizePrefixedRootAsEvent(bb: flatbuffers.ByteBuffer, obj?: Event): Event;
    seq(): bigint;
    timeMs(): bigint;
    bodyType(): EventBody;
    body<T extends flatbuffers.Table>(obj: any): any | null;
    static startEvent(builder: flatbuffers.Builder): void;
    static addSeq(builder: flatbuffers.Builder, seq: bigint): void;
    static addTimeMs(builder: flatbuffers.Builder, timeMs: bigint): void;
    static addBodyType(builder: flatbuffers.Builder, bodyType: EventBody): void;
    static addBody(builder: flatbuffers.Builder, bodyOffset: flatbuffers.Offset): void;
    static endEvent(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createEvent(builder: flatbuffers.Builder, seq: bigint, timeMs: bigint, bodyType: EventBody, bodyOffset: flatbuffers.Offset): flatbuffers.Offset;
}
