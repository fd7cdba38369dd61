import * as flatbuffers from 'flatbuffers';
import { Event } from '../../shardcast/wire/event.js';
export declare class HistoryReply {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): HistoryReply;
    static getRootAsHistoryReply(bb: flatbuffers.ByteBuffer, obj?: HistoryReply): HistoryReply;
    static getSizePrefixedRootAsHistoryReply(bb: flatbuffers.ByteBuffer, obj?: HistoryReply): HistoryReply;
    firstSeq(): bigint;
    events(index: number, obj?: Event): Event | null;
    eventsLength(): number;
    more(): boolean;
    static startHistoryReply(builder: flatbuffers.Builder): void;
    static addFirstSeq(builder: flatbuffers.Builder, firstSeq: bigint): void;
    static addEvents(builder: flatbuffers.Builder, eventsOffset: flatbuffers.Offset): void;
    static createEventsVector(builder: flatbuffers.Builder, data: flatbuffers.Offset[]): flatbuffers.Offset;
    static startEventsVector(builder: flatbuffers.Builder, numElems: number): void;
    static addMore(builder: flatbuffers.Builder, more: boolean): void;
    static endHistoryReply(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createHistoryReply(builder: flatbuffers.Builder, firstSeq: bigint, eventsOffset: flatbuffers.Offset, more: boolean): flatbuffers.Offset;
}
