//! Server → client messages: the server's encoder and the client's decoder.

use core::fmt;

use flatbuffers::{FlatBufferBuilder, ForwardsUOffset, UnionWIPOffset, Vector, WIPOffset};

use crate::client::opt_string;
use crate::{fb, EventBodyView, EventView, VerifyLimits, WelcomeView, WireError};

/// A server message, borrowed from the buffer it was decoded from. An optional string the
/// server left out reads as `""`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMsg<'a> {
    /// The answer to `Hello`.
    Welcome(WelcomeView<'a>),
    /// Live events, consecutive from `first_seq`.
    Batch {
        /// `events[0].seq`.
        first_seq: u64,
        /// The events, in order.
        events: Events<'a>,
    },
    /// The answer to `History` (and the replay after `Hello.last_seq`): consecutive events from
    /// `first_seq`; `more` when the server capped the answer and later events exist.
    HistoryReply {
        /// `events[0].seq`.
        first_seq: u64,
        /// The events, in order.
        events: Events<'a>,
        /// Later events exist.
        more: bool,
    },
    /// Room counters.
    RoomStats {
        /// Members online.
        online: u64,
        /// The room's like total.
        likes: u64,
        /// The room's heat score.
        heat: u64,
    },
    /// The requested events are older than the history window, or the room's order restarted;
    /// continue from `seq` in `epoch`.
    Resync {
        /// The room's latest event.
        seq: u64,
        /// The room's epoch now, for the next `Hello.epoch`.
        epoch: &'a str,
    },
    /// The answer to `Heartbeat`.
    Pong {
        /// `Heartbeat.client_time_ms`, echoed.
        client_time_ms: u64,
        /// The server's clock (Unix milliseconds).
        server_time_ms: u64,
    },
    /// A request was refused; see the schema for the codes.
    Error {
        /// HTTP-like status: 400, 401, 402, 403, 404, 409, 413, 422, 429, 503.
        code: u16,
        /// For people, not programs.
        message: &'a str,
        /// For programs, when the code alone does not say it (see [`cause`]); empty otherwise.
        cause: &'a str,
    },
    /// The server is about to close the connection.
    Kick {
        /// Why.
        reason: &'a str,
    },
    /// A gift is durable.
    GiftAck {
        /// The gift's `idempotency_key`.
        idempotency_key: &'a str,
        /// The gift event's seq (0 on a retry the room no longer knows the seq of).
        seq: u64,
        /// The gift's entry in the ledger.
        entry: u64,
        /// The sender's wallet balance after the gift.
        balance: u64,
    },
}

/// The events of a decoded `Batch` or `HistoryReply`, read in place.
///
/// [`decode_server`] has already checked every event's body type and enum values, so each
/// index below [`len`](Events::len) yields an event.
#[derive(Clone, Copy)]
pub struct Events<'a> {
    list: Vector<'a, ForwardsUOffset<fb::Event<'a>>>,
}

impl<'a> Events<'a> {
    /// How many events.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// No events.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Event `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<EventView<'a>> {
        if index >= self.list.len() {
            return None;
        }
        EventView::from_fb(self.list.get(index)).ok()
    }

    /// The events, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EventView<'a>> + '_ {
        (0..self.len()).map(|i| {
            // `decode_server` checked every event, and `i` is in range.
            self.get(i).unwrap_or(EventView {
                seq: 0,
                time_ms: 0,
                body: EventBodyView::System { text: "" },
            })
        })
    }

    /// Checks what `get` relies on: every event is one this version can read.
    fn check(list: Vector<'a, ForwardsUOffset<fb::Event<'a>>>) -> Result<Self, WireError> {
        for event in list.iter() {
            EventView::from_fb(event)?;
        }
        Ok(Self { list })
    }
}

impl PartialEq for Events<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Events<'_> {}

impl fmt::Debug for Events<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Verifies `buf` against `limits` (usually [`VerifyLimits::server`]) and reads the server
/// message in it.
///
/// Never panics. Errors as for [`decode_client`](crate::decode_client); an event of unknown
/// type anywhere in a batch refuses the whole message with [`WireError::UnknownBody`].
pub fn decode_server<'a>(buf: &'a [u8], limits: &VerifyLimits) -> Result<ServerMsg<'a>, WireError> {
    let msg = limits.verify::<fb::ServerMessage>(buf)?;
    let unknown = WireError::UnknownBody;
    Ok(match msg.body_type() {
        fb::ServerBody::Welcome => {
            let welcome = msg.body_as_welcome().ok_or(unknown)?;
            ServerMsg::Welcome(WelcomeView {
                user: welcome.user().unwrap_or(""),
                room: welcome.room().unwrap_or(""),
                seq: welcome.seq(),
                online: welcome.online(),
                heartbeat_ms: welcome.heartbeat_ms(),
                role: welcome.role().try_into()?,
                epoch: welcome.epoch().unwrap_or(""),
            })
        }
        fb::ServerBody::Batch => {
            let batch = msg.body_as_batch().ok_or(unknown)?;
            ServerMsg::Batch {
                first_seq: batch.first_seq(),
                events: Events::check(batch.events())?,
            }
        }
        fb::ServerBody::HistoryReply => {
            let reply = msg.body_as_history_reply().ok_or(unknown)?;
            ServerMsg::HistoryReply {
                first_seq: reply.first_seq(),
                events: Events::check(reply.events())?,
                more: reply.more(),
            }
        }
        fb::ServerBody::RoomStats => {
            let stats = msg.body_as_room_stats().ok_or(unknown)?;
            ServerMsg::RoomStats {
                online: stats.online(),
                likes: stats.likes(),
                heat: stats.heat(),
            }
        }
        fb::ServerBody::Resync => {
            let resync = msg.body_as_resync().ok_or(unknown)?;
            ServerMsg::Resync {
                seq: resync.seq(),
                epoch: resync.epoch().unwrap_or(""),
            }
        }
        fb::ServerBody::Pong => {
            let pong = msg.body_as_pong().ok_or(unknown)?;
            ServerMsg::Pong {
                client_time_ms: pong.client_time_ms(),
                server_time_ms: pong.server_time_ms(),
            }
        }
        fb::ServerBody::Error => {
            let error = msg.body_as_error().ok_or(unknown)?;
            ServerMsg::Error {
                code: error.code(),
                message: error.message().unwrap_or(""),
                cause: error.cause().unwrap_or(""),
            }
        }
        fb::ServerBody::Kick => ServerMsg::Kick {
            reason: msg.body_as_kick().ok_or(unknown)?.reason().unwrap_or(""),
        },
        fb::ServerBody::GiftAck => {
            let ack = msg.body_as_gift_ack().ok_or(unknown)?;
            ServerMsg::GiftAck {
                idempotency_key: ack.idempotency_key().unwrap_or(""),
                seq: ack.seq(),
                entry: ack.entry(),
                balance: ack.balance(),
            }
        }
        _ => return Err(unknown),
    })
}

/// Initial size of an [`Encoder`]'s buffer: 64 KiB, a busy room's batch. It grows to the
/// largest message encoded and stays there.
pub const ENCODER_INITIAL_BYTES: usize = 64 * 1024;
/// Initial capacity of an [`Encoder`]'s event offset list (4 bytes each).
pub const ENCODER_INITIAL_EVENTS: usize = 256;

/// Writes server messages. One per shard, reused: each method resets the same builder and
/// returns the finished message, valid until the next call, so the caller copies it once into
/// its outgoing frame (for a batch, one frame shared by every viewer).
///
/// After the first few messages have grown its buffers to the working size, encoding
/// allocates nothing: the builder keeps its buffer and vtable scratch across resets, and the
/// event offsets of a batch go through a `Vec` kept here.
///
/// Empty optional strings are left out of the message (the decoder reads them back as `""`).
/// The encoder does not enforce [`VerifyLimits::server`]: callers cap batch and history sizes
/// so that a message stays under [`SERVER_MAX_BYTES`](crate::SERVER_MAX_BYTES).
pub struct Encoder {
    fbb: FlatBufferBuilder<'static>,
    events: Vec<WIPOffset<fb::Event<'static>>>,
}

impl Encoder {
    /// An encoder with [`ENCODER_INITIAL_BYTES`] of buffer and room for
    /// [`ENCODER_INITIAL_EVENTS`] event offsets.
    pub fn new() -> Self {
        Self::with_capacity(ENCODER_INITIAL_BYTES, ENCODER_INITIAL_EVENTS)
    }

    /// An encoder with `bytes` of buffer and room for `events` event offsets, so that messages
    /// up to that size never allocate.
    pub fn with_capacity(bytes: usize, events: usize) -> Self {
        Self {
            fbb: FlatBufferBuilder::with_capacity(bytes),
            events: Vec::with_capacity(events),
        }
    }

    /// Encodes any server message; a decoded one re-encodes to an equal message. The events of a
    /// `Batch` or `HistoryReply` must be consecutive, as for [`batch`](Encoder::batch).
    pub fn encode(&mut self, msg: &ServerMsg<'_>) -> &[u8] {
        match *msg {
            ServerMsg::Welcome(ref welcome) => self.welcome(welcome),
            ServerMsg::Batch { first_seq, events } => self.batch(first_seq, events.iter()),
            ServerMsg::HistoryReply {
                first_seq,
                events,
                more,
            } => self.history_reply(first_seq, events.iter(), more),
            ServerMsg::RoomStats {
                online,
                likes,
                heat,
            } => self.room_stats(online, likes, heat),
            ServerMsg::Resync { seq, epoch } => self.resync(seq, epoch),
            ServerMsg::Pong {
                client_time_ms,
                server_time_ms,
            } => self.pong(client_time_ms, server_time_ms),
            ServerMsg::Error {
                code,
                message,
                cause,
            } => self.error_with_cause(code, cause, message),
            ServerMsg::Kick { reason } => self.kick(reason),
            ServerMsg::GiftAck {
                idempotency_key,
                seq,
                entry,
                balance,
            } => self.gift_ack(idempotency_key, seq, entry, balance),
        }
    }

    /// `Welcome`, the answer to `Hello`.
    pub fn welcome(&mut self, welcome: &WelcomeView<'_>) -> &[u8] {
        self.fbb.reset();
        let args = fb::WelcomeArgs {
            user: opt_string(&mut self.fbb, welcome.user),
            room: opt_string(&mut self.fbb, welcome.room),
            seq: welcome.seq,
            online: welcome.online,
            heartbeat_ms: welcome.heartbeat_ms,
            role: welcome.role.into(),
            epoch: opt_string(&mut self.fbb, welcome.epoch),
        };
        let body = fb::Welcome::create(&mut self.fbb, &args);
        self.finish(fb::ServerBody::Welcome, body.as_union_value())
    }

    /// `Batch`: live events, which must be consecutive from `first_seq` (checked in debug
    /// builds).
    pub fn batch<'e>(
        &mut self,
        first_seq: u64,
        events: impl IntoIterator<Item = EventView<'e>>,
    ) -> &[u8] {
        self.fbb.reset();
        let events = self.events(first_seq, events);
        let args = fb::BatchArgs {
            first_seq,
            events: Some(events),
        };
        let body = fb::Batch::create(&mut self.fbb, &args);
        self.finish(fb::ServerBody::Batch, body.as_union_value())
    }

    /// `HistoryReply`: events consecutive from `first_seq` (checked in debug builds); `more`
    /// when later events exist beyond the cap.
    pub fn history_reply<'e>(
        &mut self,
        first_seq: u64,
        events: impl IntoIterator<Item = EventView<'e>>,
        more: bool,
    ) -> &[u8] {
        self.fbb.reset();
        let events = self.events(first_seq, events);
        let args = fb::HistoryReplyArgs {
            first_seq,
            events: Some(events),
            more,
        };
        let body = fb::HistoryReply::create(&mut self.fbb, &args);
        self.finish(fb::ServerBody::HistoryReply, body.as_union_value())
    }

    /// `RoomStats`.
    pub fn room_stats(&mut self, online: u64, likes: u64, heat: u64) -> &[u8] {
        self.fbb.reset();
        let args = fb::RoomStatsArgs {
            online,
            likes,
            heat,
        };
        let body = fb::RoomStats::create(&mut self.fbb, &args);
        self.finish(fb::ServerBody::RoomStats, body.as_union_value())
    }

    /// `Resync`: the requested events are gone; `seq` is the room's latest, in `epoch`.
    pub fn resync(&mut self, seq: u64, epoch: &str) -> &[u8] {
        self.fbb.reset();
        let epoch = opt_string(&mut self.fbb, epoch);
        let body = fb::Resync::create(&mut self.fbb, &fb::ResyncArgs { seq, epoch });
        self.finish(fb::ServerBody::Resync, body.as_union_value())
    }

    /// `Pong`, the answer to `Heartbeat`.
    pub fn pong(&mut self, client_time_ms: u64, server_time_ms: u64) -> &[u8] {
        self.fbb.reset();
        let args = fb::PongArgs {
            client_time_ms,
            server_time_ms,
        };
        let body = fb::Pong::create(&mut self.fbb, &args);
        self.finish(fb::ServerBody::Pong, body.as_union_value())
    }

    /// `Error`: a request was refused (codes in the schema).
    pub fn error(&mut self, code: u16, message: &str) -> &[u8] {
        self.error_with_cause(code, "", message)
    }

    /// `Error` with a [`cause`] (one of its constants) for programs.
    pub fn error_with_cause(&mut self, code: u16, cause: &str, message: &str) -> &[u8] {
        self.fbb.reset();
        let args = fb::ErrorArgs {
            code,
            message: opt_string(&mut self.fbb, message),
            cause: opt_string(&mut self.fbb, cause),
        };
        let body = fb::Error::create(&mut self.fbb, &args);
        self.finish(fb::ServerBody::Error, body.as_union_value())
    }

    /// `Kick`: sent just before the server closes the connection.
    pub fn kick(&mut self, reason: &str) -> &[u8] {
        self.fbb.reset();
        let args = fb::KickArgs {
            reason: opt_string(&mut self.fbb, reason),
        };
        let body = fb::Kick::create(&mut self.fbb, &args);
        self.finish(fb::ServerBody::Kick, body.as_union_value())
    }

    /// `GiftAck`: the gift with `idempotency_key` is durable as ledger `entry` and event
    /// `seq`, leaving the sender `balance`.
    pub fn gift_ack(&mut self, idempotency_key: &str, seq: u64, entry: u64, balance: u64) -> &[u8] {
        self.fbb.reset();
        let args = fb::GiftAckArgs {
            idempotency_key: opt_string(&mut self.fbb, idempotency_key),
            seq,
            entry,
            balance,
        };
        let body = fb::GiftAck::create(&mut self.fbb, &args);
        self.finish(fb::ServerBody::GiftAck, body.as_union_value())
    }

    /// Writes each event (its strings, its body, the event table), keeping the offsets in the
    /// reused `self.events`, then the vector of them.
    fn events<'e>(
        &mut self,
        first_seq: u64,
        events: impl IntoIterator<Item = EventView<'e>>,
    ) -> WIPOffset<Vector<'static, ForwardsUOffset<fb::Event<'static>>>> {
        self.events.clear();
        for (i, event) in events.into_iter().enumerate() {
            debug_assert_eq!(
                event.seq,
                first_seq.wrapping_add(i as u64),
                "events must be consecutive from first_seq"
            );
            let (body_type, body) = event_body(&mut self.fbb, &event.body);
            let args = fb::EventArgs {
                seq: event.seq,
                time_ms: event.time_ms,
                body_type,
                body: Some(body),
            };
            let offset = fb::Event::create(&mut self.fbb, &args);
            self.events.push(offset);
        }
        self.fbb.create_vector(&self.events)
    }

    fn finish(&mut self, body_type: fb::ServerBody, body: WIPOffset<UnionWIPOffset>) -> &[u8] {
        let args = fb::ServerMessageArgs {
            body_type,
            body: Some(body),
        };
        let root = fb::ServerMessage::create(&mut self.fbb, &args);
        self.fbb.finish_minimal(root);
        self.fbb.finished_data()
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

fn event_body(
    fbb: &mut FlatBufferBuilder<'static>,
    body: &EventBodyView<'_>,
) -> (fb::EventBody, WIPOffset<UnionWIPOffset>) {
    match *body {
        EventBodyView::Chat {
            user,
            text,
            color,
            mode,
        } => {
            let args = fb::ChatEventArgs {
                user: opt_string(fbb, user),
                text: opt_string(fbb, text),
                color,
                mode: mode.into(),
            };
            let table = fb::ChatEvent::create(fbb, &args);
            (fb::EventBody::ChatEvent, table.as_union_value())
        }
        EventBodyView::Like { total, added } => {
            let table = fb::LikeEvent::create(fbb, &fb::LikeEventArgs { total, added });
            (fb::EventBody::LikeEvent, table.as_union_value())
        }
        EventBodyView::Gift {
            user,
            gift_id,
            count,
            value,
        } => {
            let args = fb::GiftEventArgs {
                user: opt_string(fbb, user),
                gift_id,
                count,
                value,
            };
            let table = fb::GiftEvent::create(fbb, &args);
            (fb::EventBody::GiftEvent, table.as_union_value())
        }
        EventBodyView::System { text } => {
            let args = fb::SystemEventArgs {
                text: opt_string(fbb, text),
            };
            let table = fb::SystemEvent::create(fbb, &args);
            (fb::EventBody::SystemEvent, table.as_union_value())
        }
    }
}

/// The `cause` of an `Error`, for programs (the code alone is ambiguous for these).
pub mod cause {
    /// A gift's value is more than the sender's wallet holds (code 402).
    pub const INSUFFICIENT_BALANCE: &str = "insufficient_balance";
    /// The ledger cannot write: the gift was not taken, retry later with the same key (503).
    pub const STORE_UNAVAILABLE: &str = "store_unavailable";
    /// The ledger is behind: too many gifts wait on it already; the gift was not taken,
    /// retry shortly with the same key (503).
    pub const LEDGER_BUSY: &str = "ledger_busy";
    /// The room shed the message under load (503), or took its gifts for this second (429).
    pub const ROOM_BUSY: &str = "room_busy";
    /// The connection's own rate limit (429).
    pub const RATE_LIMITED: &str = "rate_limited";
}
