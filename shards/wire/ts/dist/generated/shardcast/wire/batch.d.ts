import * as flatbuffers from 'flatbuffers';
import { Event } from '../../shardcast/wire/event.js';
export declare class Batch {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Batch;
    static getRootAsBatch(bb: flatbuffers.ByteBuffer, obj?: Batch): Batch;
    static getSizePrefixedRootAsBatch(bb: flatbuffers.ByteBuffer, obj?: Batch): Batch;
    firstSeq(): bigint;
    events(index: number, obj?: Event): Event | null;
    eventsLength(): number;
    static startBatch(builder: flatbuffers.Builder): void;
    static addFirstSeq(builder: flatbuffers.Builder, firstSeq: bigint): void;
    static addEvents(builder: flatbuffers.Builder, eventsOffset: flatbuffers.Offset): void;
    static createEventsVector(builder: flatbuffers.Builder, data: flatbuffers.Offset[]): flatbuffers.Offset;
    static startEventsVector(builder: flatbuffers.Builder, numElems: number): void;
    static endBatch(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createBatch(builder: flatbuffers.Builder, firstSeq: bigint, eventsOffset: flatbuffers.Offset): flatbuffers.Offset;
}
