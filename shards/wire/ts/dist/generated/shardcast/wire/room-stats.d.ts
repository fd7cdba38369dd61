import * as flatbuffers from 'flatbuffers';
export declare class RoomStats {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): RoomStats;
    static getRootAsRoomStats(bb: flatbuffers.ByteBuffer, obj?: RoomStats): RoomStats;
    static getSizePrefixedRootAsRoomStats(bb: flatbuffers.ByteBuffer, obj?: RoomStats): RoomStats;
    online(): bigint;
    likes(): bigint;
    heat(): bigint;
    static startRoomStats(builder: flatbuffers.Builder): void;
    static addOnline(builder: flatbuffers.Builder, online: bigint): void;
    static addLikes(builder: flatbuffers.Builder, likes: bigint): void;
    static addHeat(builder: flatbuffers.Builder, heat: bigint): void;
    static endRoomStats(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createRoomStats(builder: flatbuffers.Builder, online: bigint, likes: bigint, heat: bigint): flatbuffers.Offset;
}
