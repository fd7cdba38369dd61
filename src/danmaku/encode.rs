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

#[cfg(test)]
mod tests {
    use super::*;
    use shardcast_danmaku::event::BATCH_OVERHEAD_BYTES;
    use std::sync::Arc;

    /// The rooms bound batches and replies by an estimate of their encoded size; the real
    /// frames (the message and the WebSocket header) must never be larger.
    #[test]
    fn encoded_batches_and_replies_stay_within_the_rooms_estimate() {
        let mut encoder = shardcast_wire::Encoder::new();
        let config = shardcast_danmaku::RoomConfig::default();
        let largest = |seq: u64| RoomEvent {
            seq,
            time_ms: u64::MAX,
            body: EventBody::Chat {
                user: Arc::from("u".repeat(config.user_max_bytes)),
                text: Arc::from("t".repeat(config.text_max_bytes)),
                color: u32::MAX,
                mode: ChatMode::Bottom,
            },
        };
        let small = |seq: u64| RoomEvent {
            seq,
            time_ms: 1,
            body: EventBody::Gift {
                user: Arc::from("g"),
                gift_id: 1,
                count: 1,
                value: 1,
            },
        };
        for count in [1, 2, 10, 1000] {
            for make in [&largest as &dyn Fn(u64) -> RoomEvent, &small] {
                let events: Vec<RoomEvent> = (1..=count).map(make).collect();
                let estimate = BATCH_OVERHEAD_BYTES
                    + events.iter().map(RoomEvent::wire_size_bytes).sum::<usize>();
                let reply = encoder.history_reply(1, events.iter().map(event_view), true);
                let frame = shardcast_ws::binary_frame(reply);
                assert!(
                    frame.len() <= estimate,
                    "reply: {} > {estimate}",
                    frame.len()
                );
                let batch = Batch {
                    room: shardcast_danmaku::RoomId::new("r").unwrap(),
                    first_seq: 1,
                    events: events.into(),
                };
                let frame = encode_batch(&mut encoder, &batch);
                assert!(
                    frame.len() <= estimate,
                    "batch: {} > {estimate}",
                    frame.len()
                );
            }
        }
    }
}
