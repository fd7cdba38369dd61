import * as flatbuffers from 'flatbuffers';
export declare class Heartbeat {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Heartbeat;
    static getRootAsHeartbeat(bb: flatbuffers.ByteBuffer, obj?: Heartbeat): Heartbeat;
    static getSizePrefixedRootAsHeartbeat(bb: flatbuffers.ByteBuffer, obj?: Heartbeat): Heartbeat;
    clientTimeMs(): bigint;
    static startHeartbeat(builder: flatbuffers.Builder): void;
    static addClientTimeMs(builder: flatbuffers.Builder, clientTimeMs: bigint): void;
    static endHeartbeat(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createHeartbeat(builder: flatbuffers.Builder, clientTimeMs: bigint): flatbuffers.Offset;
}
