import { Chat } from '../../shardcast/wire/chat.js';
import { Gift } from '../../shardcast/wire/gift.js';
import { Heartbeat } from '../../shardcast/wire/heartbeat.js';
import { Hello } from '../../shardcast/wire/hello.js';
import { History } from '../../shardcast/wire/history.js';
import { KickUser } from '../../shardcast/wire/kick-user.js';
import { Like } from '../../shardcast/wire/like.js';
export declare enum ClientBody {
    NONE = 0,
    Hello = 1,
    Chat = 2,
    Like = 3,
    Gift = 4,
    Heartbeat = 5,
    History = 6,
    KickUser = 7
}
export declare function unionToClientBody(type: ClientBody, accessor: (obj: Chat | Gift | Heartbeat | Hello | History | KickUser | Like) => Chat | Gift | Heartbeat | Hello | History | KickUser | Like | null): Chat | Gift | Heartbeat | Hello | History | KickUser | Like | null;
export declare function unionListToClientBody(type: ClientBody, accessor: (index: number, obj: Chat | Gift | Heartbeat | Hello | History | KickUser | Like) => Chat | Gift | Heartbeat | Hello | History | KickUser | Like | null, index: number): Chat | Gift | Heartbeat | Hello | History | KickUser | Like | null;
