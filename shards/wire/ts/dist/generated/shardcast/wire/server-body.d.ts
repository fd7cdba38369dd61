import { Batch } from '../../shardcast/wire/batch.js';
import { Error } from '../../shardcast/wire/error.js';
import { GiftAck } from '../../shardcast/wire/gift-ack.js';
import { HistoryReply } from '../../shardcast/wire/history-reply.js';
import { Kick } from '../../shardcast/wire/kick.js';
import { Pong } from '../../shardcast/wire/pong.js';
import { Resync } from '../../shardcast/wire/resync.js';
import { RoomStats } from '../../shardcast/wire/room-stats.js';
import { Welcome } from '../../shardcast/wire/welcome.js';
export declare enum ServerBody {
    NONE = 0,
    Welcome = 1,
    Batch = 2,
    HistoryReply = 3,
    RoomStats = 4,
    Resync = 5,
    Pong = 6,
    Error = 7,
    Kick = 8,
    GiftAck = 9
}
export declare function unionToServerBody(type: ServerBody, accessor: (obj: Batch | Error | GiftAck | HistoryReply | Kick | Pong | Resync | RoomStats | Welcome) => Batch | Error | GiftAck | HistoryReply | Kick | Pong | Resync | RoomStats | Welcome | null): Batch | Error | GiftAck | HistoryReply | Kick | Pong | Resync | RoomStats | Welcome | null;
export declare function unionListToServerBody(type: ServerBody, accessor: (index: number, obj: Batch | Error | GiftAck | HistoryReply | Kick | Pong | Resync | RoomStats | Welcome) => Batch | Error | GiftAck | HistoryReply | Kick | Pong | Resync | RoomStats | Welcome | null, index: number): Batch | Error | GiftAck | HistoryReply | Kick | Pong | Resync | RoomStats | Welcome | null;
