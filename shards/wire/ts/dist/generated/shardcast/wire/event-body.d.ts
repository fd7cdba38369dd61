import { ChatEvent } from '../../shardcast/wire/chat-event.js';
import { GiftEvent } from '../../shardcast/wire/gift-event.js';
import { LikeEvent } from '../../shardcast/wire/like-event.js';
import { SystemEvent } from '../../shardcast/wire/system-event.js';
export declare enum EventBody {
    NONE = 0,
    ChatEvent = 1,
    LikeEvent = 2,
    GiftEvent = 3,
    SystemEvent = 4
}
export declare function unionToEventBody(type: EventBody, accessor: (obj: ChatEvent | GiftEvent | LikeEvent | SystemEvent) => ChatEvent | GiftEvent | LikeEvent | SystemEvent | null): ChatEvent | GiftEvent | LikeEvent | SystemEvent | null;
export declare function unionListToEventBody(type: EventBody, accessor: (index: number, obj: ChatEvent | GiftEvent | LikeEvent | SystemEvent) => ChatEvent | GiftEvent | LikeEvent | SystemEvent | null, index: number): ChatEvent | GiftEvent | LikeEvent | SystemEvent | null;
