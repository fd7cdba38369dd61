//! shardcast's danmaku protocol (WebSocket subprotocol [`SUBPROTOCOL`], `shardcast.v1`): the
//! FlatBuffers schema, its generated code, verified decoding and reusable encoders.
//!
//! This crate sits between the WebSocket codec (`shards/ws`), which delivers whole binary
//! messages, and the room logic (`shards/danmaku`), which wants typed values. The schema is
//! `schema/danmaku.fbs`; [`generated`] is flatc's output for it, committed, so a build needs no
//! flatc (`scripts/gen.sh` regenerates it, and the TypeScript client module under `ts/`). Like
//! every protocol crate here it is sans-io: bytes in, borrowed values out; values in, bytes out.
//!
//! The pieces, in the order a server uses them:
//!
//! - [`decode_client`] checks a client message against [`VerifyLimits`] (size first, then the
//!   flatbuffers verifier's depth, table and apparent-size limits) and only then reads it, into
//!   a [`ClientMsg`] that borrows from the message. Nothing in here panics on any input; every
//!   refusal is a [`WireError`].
//! - [`Encoder`] writes server messages. One per shard, reused: each call resets the same
//!   builder and returns the finished bytes, valid until the next call. A [`Batch`] is encoded
//!   once per room per batching window and the same bytes go to every viewer, so
//!   [`Encoder::batch`] allocates nothing once its buffers have grown to the working size.
//!
//! [`Batch`]: ServerMsg::Batch
//!
//! The client side, for the load generator, tests and tools: [`ClientEncoder`] and
//! [`decode_server`]. Browsers use the TypeScript module in `ts/` (`ts/dist/` holds plain ES
//! modules).
//!
//! ```
//! use shardcast_wire::{
//!     decode_client, decode_server, ChatMode, ClientEncoder, ClientMsg, Encoder, EventBodyView,
//!     EventView, ServerMsg, VerifyLimits,
//! };
//!
//! // A viewer's message arrives and is checked before it is read.
//! let mut client = ClientEncoder::new();
//! let received = client.chat("hello", 0xffffff, ChatMode::Scroll).to_vec();
//! let ClientMsg::Chat { text, color, mode } = decode_client(&received, &VerifyLimits::client())?
//! else {
//!     unreachable!()
//! };
//!
//! // The home shard orders it as event 7; each shard encodes the batch once for all viewers.
//! let mut encoder = Encoder::new();
//! let event = EventView {
//!     seq: 7,
//!     time_ms: 1_700_000_000_000,
//!     body: EventBodyView::Chat { user: "alice", text, color, mode },
//! };
//! let frame = encoder.batch(7, [event]).to_vec();
//!
//! let ServerMsg::Batch { first_seq, events } = decode_server(&frame, &VerifyLimits::server())?
//! else {
//!     unreachable!()
//! };
//! assert_eq!((first_seq, events.get(0)), (7, Some(event)));
//! # Ok::<(), shardcast_wire::WireError>(())
//! ```
//!
//! Compatibility: an unknown union member (a message or event type newer than this crate) is
//! [`WireError::UnknownBody`], and an unknown enum value is [`WireError::UnknownEnum`]; adding
//! either is a protocol change that needs clients and servers updated together (or a new
//! subprotocol). New fields at the end of a table are compatible both ways.

#![deny(unsafe_code)]

mod client;
mod error;
mod fuzz;
mod limits;
mod server;
mod types;

pub use client::{decode_client, ClientEncoder, ClientMsg};
pub use error::WireError;
pub use fuzz::{fuzz_decode_client, fuzz_decode_server};
pub use limits::{
    VerifyLimits, CLIENT_MAX_APPARENT_SIZE, CLIENT_MAX_BYTES, CLIENT_MAX_DEPTH, CLIENT_MAX_TABLES,
    SERVER_MAX_APPARENT_SIZE, SERVER_MAX_BYTES, SERVER_MAX_DEPTH, SERVER_MAX_TABLES,
};
pub use server::{
    cause, decode_server, Encoder, Events, ServerMsg, ENCODER_INITIAL_BYTES, ENCODER_INITIAL_EVENTS,
};
pub use types::{ChatMode, EventBodyView, EventView, Role, WelcomeView};

/// The WebSocket subprotocol a client requests (`Sec-WebSocket-Protocol`) and the server
/// accepts for this version of the protocol.
pub const SUBPROTOCOL: &str = "shardcast.v1";

/// flatc's output for `schema/danmaku.fbs`, unchanged (regenerate with `scripts/gen.sh`).
///
/// Prefer the typed API at the crate root; these types are public for tests and tools that
/// need to build unusual (for example malformed) messages.
///
/// The generated accessors read fields without bounds checks, in `unsafe` blocks, which is why
/// this module alone allows `unsafe_code`. This crate only ever reads a buffer through them
/// after `flatbuffers::root_with_opts` has run the verifier over it, or when its own builder
/// wrote it. The clippy lints allowed are the ones flatc's output trips.
#[allow(unsafe_code)]
#[allow(clippy::extra_unused_lifetimes, clippy::missing_safety_doc)]
pub mod generated {
    include!("generated/danmaku_generated.rs");
}

/// The generated namespace `shardcast.wire`, shortened for the rest of the crate.
use generated::shardcast::wire as fb;
