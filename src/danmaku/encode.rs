//! Between the room's events (`shardcast-danmaku`) and the wire's views (`shardcast-wire`).

use bytes::Bytes;
use shardcast_danmaku::{Batch, ChatMode, EventBody, RoomEvent};
use shardcast_wire::{EventBodyView, EventView};

/// The wire view of a room event.
pub(super) fn event_view(event: &RoomEvent) -> EventView<'_> {
    EventView {
        seq: event.seq,
        time_ms: event.time_ms,
        body: match &event.body {
            EventBody::Chat {
                user,
                text,
                color,
                mode,
            } => EventBodyView::Chat {
                user,
                text,
                color: *color,
                mode: chat_mode_out(*mode),
            },
            EventBody::Like { total, added } => EventBodyView::Like {
                total: *total,
                added: *added,
            },
            EventBody::Gift {
                user,
                gift_id,
                count,
                value,
            } => EventBodyView::Gift {
                user,
                gift_id: *gift_id,
                count: *count,
                value: *value,
            },
            EventBody::System { text } => EventBodyView::System { text },
        },
    }
}

/// One batch as one complete WebSocket frame, shared by every member.
pub(super) fn encode_batch(encoder: &mut shardcast_wire::Encoder, batch: &Batch) -> Bytes {
    shardcast_ws::binary_frame(encoder.batch(batch.first_seq, batch.events.iter().map(event_view)))
}

/// A chat's display mode as the room keeps it.
pub(super) fn chat_mode_in(mode: shardcast_wire::ChatMode) -> ChatMode {
    match mode {
        shardcast_wire::ChatMode::Scroll => ChatMode::Scroll,
        shardcast_wire::ChatMode::Top => ChatMode::Top,
        shardcast_wire::ChatMode::Bottom => ChatMode::Bottom,
    }
}

fn chat_mode_out(mode: ChatMode) -> shardcast_wire::ChatMode {
    match mode {
        ChatMode::Scroll => shardcast_wire::ChatMode::Scroll,
        ChatMode::Top => shardcast_wire::ChatMode::Top,
        ChatMode::Bottom => shardcast_wire::ChatMode::Bottom,
    }
}
