//! Client → server messages: the server's decoder and the client's encoder.

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use crate::{fb, ChatMode, VerifyLimits, WireError};

/// A client message, borrowed from the buffer it was decoded from. An optional string the
/// client left out reads as `""`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMsg<'a> {
    /// First message on a connection. An empty `token` is an anonymous viewer; `last_seq > 0`
    /// asks for the events after it.
    Hello {
        /// The room to join.
        room: &'a str,
        /// An HMAC token minted by `shardcast token`, or empty.
        token: &'a str,
        /// The last event the client saw, or 0.
        last_seq: u64,
        /// Free-form client name and version, for logs.
        client_version: &'a str,
        /// The `Welcome.epoch` that `last_seq` belongs to, or empty (not checked).
        epoch: &'a str,
    },
    /// A bullet comment.
    Chat {
        /// The comment.
        text: &'a str,
        /// 0xRRGGBB.
        color: u32,
        /// How it is shown.
        mode: ChatMode,
    },
    /// `count` likes at once.
    Like {
        /// Likes to add.
        count: u32,
    },
    /// A gift from the server's catalog; `idempotency_key` makes a retry safe.
    Gift {
        /// The gift's id in the catalog.
        gift_id: u32,
        /// How many.
        count: u32,
        /// The same key from the same user is applied once.
        idempotency_key: &'a str,
    },
    /// Keeps the connection alive; answered with `Pong`.
    Heartbeat {
        /// The client's clock, echoed in `Pong`.
        client_time_ms: u64,
    },
    /// Asks for events with `seq >= from_seq`, at most `limit` (the server caps it).
    History {
        /// The first event wanted.
        from_seq: u64,
        /// Most events wanted.
        limit: u32,
    },
    /// Admin only: disconnect every connection of `user` in the current room.
    KickUser {
        /// The user to disconnect.
        user: &'a str,
        /// Shown to the user and in the room.
        reason: &'a str,
    },
}

/// Verifies `buf` against `limits` and reads the client message in it.
///
/// Never panics. Errors: [`WireError::TooLarge`] over `limits.max_bytes`,
/// [`WireError::Invalid`] when the verifier refuses the buffer, [`WireError::UnknownBody`]
/// for a body of type NONE or one this version does not know, [`WireError::UnknownEnum`] for
/// an unknown `Chat.mode`.
pub fn decode_client<'a>(buf: &'a [u8], limits: &VerifyLimits) -> Result<ClientMsg<'a>, WireError> {
    let msg = limits.verify::<fb::ClientMessage>(buf)?;
    let unknown = WireError::UnknownBody;
    Ok(match msg.body_type() {
        fb::ClientBody::Hello => {
            let hello = msg.body_as_hello().ok_or(unknown)?;
            ClientMsg::Hello {
                room: hello.room(),
                token: hello.token().unwrap_or(""),
                last_seq: hello.last_seq(),
                client_version: hello.client_version().unwrap_or(""),
                epoch: hello.epoch().unwrap_or(""),
            }
        }
        fb::ClientBody::Chat => {
            let chat = msg.body_as_chat().ok_or(unknown)?;
            ClientMsg::Chat {
                text: chat.text(),
                color: chat.color(),
                mode: chat.mode().try_into()?,
            }
        }
        fb::ClientBody::Like => ClientMsg::Like {
            count: msg.body_as_like().ok_or(unknown)?.count(),
        },
        fb::ClientBody::Gift => {
            let gift = msg.body_as_gift().ok_or(unknown)?;
            ClientMsg::Gift {
                gift_id: gift.gift_id(),
                count: gift.count(),
                idempotency_key: gift.idempotency_key(),
            }
        }
        fb::ClientBody::Heartbeat => ClientMsg::Heartbeat {
            client_time_ms: msg.body_as_heartbeat().ok_or(unknown)?.client_time_ms(),
        },
        fb::ClientBody::History => {
            let history = msg.body_as_history().ok_or(unknown)?;
            ClientMsg::History {
                from_seq: history.from_seq(),
                limit: history.limit(),
            }
        }
        fb::ClientBody::KickUser => {
            let kick = msg.body_as_kick_user().ok_or(unknown)?;
            ClientMsg::KickUser {
                user: kick.user(),
                reason: kick.reason().unwrap_or(""),
            }
        }
        _ => return Err(unknown),
    })
}

/// Writes client messages, reusing one builder: each method resets it and returns the
/// finished message, valid until the next call. For the load generator, tests and tools.
///
/// Empty optional strings are left out of the message (the decoder reads them back as `""`).
pub struct ClientEncoder {
    fbb: FlatBufferBuilder<'static>,
}

impl ClientEncoder {
    /// An encoder whose buffer starts at 256 bytes, enough for any usual client message.
    pub fn new() -> Self {
        Self {
            fbb: FlatBufferBuilder::with_capacity(256),
        }
    }

    /// Encodes any client message.
    pub fn encode(&mut self, msg: &ClientMsg<'_>) -> &[u8] {
        match *msg {
            ClientMsg::Hello {
                room,
                token,
                last_seq,
                client_version,
                epoch,
            } => self.hello_in_epoch(room, token, last_seq, epoch, client_version),
            ClientMsg::Chat { text, color, mode } => self.chat(text, color, mode),
            ClientMsg::Like { count } => self.like(count),
            ClientMsg::Gift {
                gift_id,
                count,
                idempotency_key,
            } => self.gift(gift_id, count, idempotency_key),
            ClientMsg::Heartbeat { client_time_ms } => self.heartbeat(client_time_ms),
            ClientMsg::History { from_seq, limit } => self.history(from_seq, limit),
            ClientMsg::KickUser { user, reason } => self.kick_user(user, reason),
        }
    }

    /// `Hello`: joins `room`; an empty `token` is anonymous, `last_seq > 0` resumes (in any
    /// epoch: see [`ClientEncoder::hello_in_epoch`]).
    pub fn hello(&mut self, room: &str, token: &str, last_seq: u64, client_version: &str) -> &[u8] {
        self.hello_in_epoch(room, token, last_seq, "", client_version)
    }

    /// `Hello` resuming after `last_seq` of the room's order `epoch` (from `Welcome.epoch`):
    /// the server answers Resync when the room's order has another epoch now.
    pub fn hello_in_epoch(
        &mut self,
        room: &str,
        token: &str,
        last_seq: u64,
        epoch: &str,
        client_version: &str,
    ) -> &[u8] {
        self.fbb.reset();
        let args = fb::HelloArgs {
            room: Some(self.fbb.create_string(room)),
            token: opt_string(&mut self.fbb, token),
            last_seq,
            client_version: opt_string(&mut self.fbb, client_version),
            epoch: opt_string(&mut self.fbb, epoch),
        };
        let body = fb::Hello::create(&mut self.fbb, &args);
        self.finish(fb::ClientBody::Hello, body.as_union_value())
    }

    /// `Chat`: a bullet comment; `color` is 0xRRGGBB.
    pub fn chat(&mut self, text: &str, color: u32, mode: ChatMode) -> &[u8] {
        self.fbb.reset();
        let args = fb::ChatArgs {
            text: Some(self.fbb.create_string(text)),
            color,
            mode: mode.into(),
        };
        let body = fb::Chat::create(&mut self.fbb, &args);
        self.finish(fb::ClientBody::Chat, body.as_union_value())
    }

    /// `Like`: `count` likes at once.
    pub fn like(&mut self, count: u32) -> &[u8] {
        self.fbb.reset();
        let body = fb::Like::create(&mut self.fbb, &fb::LikeArgs { count });
        self.finish(fb::ClientBody::Like, body.as_union_value())
    }

    /// `Gift`: `count` of catalog gift `gift_id`, applied once per `idempotency_key`.
    pub fn gift(&mut self, gift_id: u32, count: u32, idempotency_key: &str) -> &[u8] {
        self.fbb.reset();
        let args = fb::GiftArgs {
            gift_id,
            count,
            idempotency_key: Some(self.fbb.create_string(idempotency_key)),
        };
        let body = fb::Gift::create(&mut self.fbb, &args);
        self.finish(fb::ClientBody::Gift, body.as_union_value())
    }

    /// `Heartbeat`, carrying the client's clock for `Pong`.
    pub fn heartbeat(&mut self, client_time_ms: u64) -> &[u8] {
        self.fbb.reset();
        let body = fb::Heartbeat::create(&mut self.fbb, &fb::HeartbeatArgs { client_time_ms });
        self.finish(fb::ClientBody::Heartbeat, body.as_union_value())
    }

    /// `History`: events with `seq >= from_seq`, at most `limit`.
    pub fn history(&mut self, from_seq: u64, limit: u32) -> &[u8] {
        self.fbb.reset();
        let body = fb::History::create(&mut self.fbb, &fb::HistoryArgs { from_seq, limit });
        self.finish(fb::ClientBody::History, body.as_union_value())
    }

    /// `KickUser` (admin only).
    pub fn kick_user(&mut self, user: &str, reason: &str) -> &[u8] {
        self.fbb.reset();
        let args = fb::KickUserArgs {
            user: Some(self.fbb.create_string(user)),
            reason: opt_string(&mut self.fbb, reason),
        };
        let body = fb::KickUser::create(&mut self.fbb, &args);
        self.finish(fb::ClientBody::KickUser, body.as_union_value())
    }

    fn finish(&mut self, body_type: fb::ClientBody, body: WIPOffset<UnionWIPOffset>) -> &[u8] {
        let args = fb::ClientMessageArgs {
            body_type,
            body: Some(body),
        };
        let root = fb::ClientMessage::create(&mut self.fbb, &args);
        self.fbb.finish_minimal(root);
        self.fbb.finished_data()
    }
}

impl Default for ClientEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// An empty string becomes an absent field: 8 bytes shorter, and read back as `""`.
pub(crate) fn opt_string<'fbb>(
    fbb: &mut FlatBufferBuilder<'fbb>,
    s: &str,
) -> Option<WIPOffset<&'fbb str>> {
    (!s.is_empty()).then(|| fbb.create_string(s))
}
