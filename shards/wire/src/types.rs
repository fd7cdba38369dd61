//! Plain values shared by the client and server sides: the schema's enums as Rust enums, and
//! borrowed views of events and of `Welcome`.

use crate::{fb, WireError};

/// How a bullet comment is shown (the schema's `ChatMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChatMode {
    /// Scrolls across the video; the default.
    #[default]
    Scroll,
    /// Pinned at the top.
    Top,
    /// Pinned at the bottom.
    Bottom,
}

impl From<ChatMode> for fb::ChatMode {
    fn from(mode: ChatMode) -> Self {
        match mode {
            ChatMode::Scroll => fb::ChatMode::Scroll,
            ChatMode::Top => fb::ChatMode::Top,
            ChatMode::Bottom => fb::ChatMode::Bottom,
        }
    }
}

impl TryFrom<fb::ChatMode> for ChatMode {
    type Error = WireError;

    fn try_from(mode: fb::ChatMode) -> Result<Self, WireError> {
        match mode {
            fb::ChatMode::Scroll => Ok(ChatMode::Scroll),
            fb::ChatMode::Top => Ok(ChatMode::Top),
            fb::ChatMode::Bottom => Ok(ChatMode::Bottom),
            other => Err(WireError::UnknownEnum {
                field: "ChatMode",
                value: other.0,
            }),
        }
    }
}

/// A member's role in a room, from its token (the schema's `Role`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reads, and sends if the token allows it; the default.
    #[default]
    Viewer,
    /// The streamer.
    Speaker,
    /// May kick users.
    Admin,
}

impl From<Role> for fb::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Viewer => fb::Role::Viewer,
            Role::Speaker => fb::Role::Speaker,
            Role::Admin => fb::Role::Admin,
        }
    }
}

impl TryFrom<fb::Role> for Role {
    type Error = WireError;

    fn try_from(role: fb::Role) -> Result<Self, WireError> {
        match role {
            fb::Role::Viewer => Ok(Role::Viewer),
            fb::Role::Speaker => Ok(Role::Speaker),
            fb::Role::Admin => Ok(Role::Admin),
            other => Err(WireError::UnknownEnum {
                field: "Role",
                value: other.0,
            }),
        }
    }
}

/// The answer to `Hello`. `seq` is the room's latest event number when the member joined; live
/// batches continue from `seq + 1` (after any replayed events).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WelcomeView<'a> {
    /// The member's user name; empty for an anonymous viewer.
    pub user: &'a str,
    /// The room joined.
    pub room: &'a str,
    /// The room's latest event number.
    pub seq: u64,
    /// Members online in the room.
    pub online: u64,
    /// How often the client must send `Heartbeat`.
    pub heartbeat_ms: u32,
    /// The member's role.
    pub role: Role,
    /// The room's order: seqs mean something only within one epoch.
    pub epoch: &'a str,
}

/// One room event, as the encoder takes it and the decoder returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventView<'a> {
    /// The room's sequence number for this event.
    pub seq: u64,
    /// Server time (Unix milliseconds) when the home shard ordered the event.
    pub time_ms: u64,
    /// What happened.
    pub body: EventBodyView<'a>,
}

/// What a room event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventBodyView<'a> {
    /// A bullet comment; `color` is 0xRRGGBB.
    Chat {
        /// Who sent it.
        user: &'a str,
        /// The comment.
        text: &'a str,
        /// 0xRRGGBB.
        color: u32,
        /// How it is shown.
        mode: ChatMode,
    },
    /// Likes: the room's total after this event, and how many it adds.
    Like {
        /// The room's like total after this event.
        total: u64,
        /// Likes this event adds.
        added: u64,
    },
    /// A gift, acknowledged and durable.
    Gift {
        /// Who sent it.
        user: &'a str,
        /// The gift's id in the server's catalog.
        gift_id: u32,
        /// How many.
        count: u32,
        /// Value in the catalog's unit (price × count).
        value: u64,
    },
    /// A room notice.
    System {
        /// The notice.
        text: &'a str,
    },
}

impl<'a> EventView<'a> {
    /// Reads a verified event; `UnknownBody` or `UnknownEnum` when it holds something this
    /// version does not know.
    pub(crate) fn from_fb(event: fb::Event<'a>) -> Result<Self, WireError> {
        let body = match event.body_type() {
            fb::EventBody::ChatEvent => {
                let chat = event.body_as_chat_event().ok_or(WireError::UnknownBody)?;
                EventBodyView::Chat {
                    user: chat.user().unwrap_or(""),
                    text: chat.text().unwrap_or(""),
                    color: chat.color(),
                    mode: chat.mode().try_into()?,
                }
            }
            fb::EventBody::LikeEvent => {
                let like = event.body_as_like_event().ok_or(WireError::UnknownBody)?;
                EventBodyView::Like {
                    total: like.total(),
                    added: like.added(),
                }
            }
            fb::EventBody::GiftEvent => {
                let gift = event.body_as_gift_event().ok_or(WireError::UnknownBody)?;
                EventBodyView::Gift {
                    user: gift.user().unwrap_or(""),
                    gift_id: gift.gift_id(),
                    count: gift.count(),
                    value: gift.value(),
                }
            }
            fb::EventBody::SystemEvent => {
                let system = event.body_as_system_event().ok_or(WireError::UnknownBody)?;
                EventBodyView::System {
                    text: system.text().unwrap_or(""),
                }
            }
            _ => return Err(WireError::UnknownBody),
        };
        Ok(EventView {
            seq: event.seq(),
            time_ms: event.time_ms(),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_convert_both_ways() {
        for mode in [ChatMode::Scroll, ChatMode::Top, ChatMode::Bottom] {
            assert_eq!(ChatMode::try_from(fb::ChatMode::from(mode)), Ok(mode));
        }
        for role in [Role::Viewer, Role::Speaker, Role::Admin] {
            assert_eq!(Role::try_from(fb::Role::from(role)), Ok(role));
        }
        assert_eq!(
            ChatMode::try_from(fb::ChatMode(3)),
            Err(WireError::UnknownEnum {
                field: "ChatMode",
                value: 3
            })
        );
        assert_eq!(
            Role::try_from(fb::Role(200)),
            Err(WireError::UnknownEnum {
                field: "Role",
                value: 200
            })
        );
        assert_eq!(ChatMode::default(), ChatMode::Scroll);
        assert_eq!(Role::default(), Role::Viewer);
    }
}
