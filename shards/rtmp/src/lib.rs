//! shardcast's RTMP ingest: a sans-io RTMP 1.0 server session, for OBS, ffmpeg and other
//! encoders that publish.
//!
//! This crate sits between a shard's connection service and the media layer. The shard that
//! accepted an encoder's TCP connection feeds its bytes to a [`ServerSession`]; out come the
//! bytes to send back, the next deadline, and [`Event`]s: the `connect`, the publish request
//! (which the application accepts or rejects after checking the stream key), metadata, and
//! the audio and video messages as raw FLV tag bodies for the FLV layer (`shards/media`) to
//! parse. There are no sockets, clocks or threads in here: the same code runs on io_uring, on
//! epoll, in a fuzzer and in a deterministic test.
//!
//! The layers, bottom up:
//!
//! - the handshake (RTMP 1.0 §5.2), simple form, with S2 echoing C1;
//! - the chunk stream (§5.3): chunk headers of every type and width, extended timestamps,
//!   message reassembly per chunk stream, and the protocol control messages (§5.4): Set Chunk
//!   Size, Abort, Acknowledgement, Window Acknowledgement Size, Set Peer Bandwidth, plus User
//!   Control (§6.2) pings;
//! - AMF0 ([`Amf0Value`], [`decode_all`], [`encode_all`]) for command and data messages, and
//!   AMF3 envelopes that carry AMF0;
//! - the NetConnection and NetStream commands an encoder sends (§7.2): `connect`,
//!   `releaseStream`, `FCPublish`, `createStream`, `publish`, `FCUnpublish`, `closeStream`,
//!   `deleteStream`, with `@setDataFrame`/`onMetaData`. Anything else with a transaction id
//!   is answered `_error`; `play` is refused.
//!
//! Every cap is a field of [`SessionConfig`] whose documentation gives its memory cost, and
//! every way a peer can fail is an [`RtmpError`] variant. No input makes a session panic.
//!
//! [`ClientSession`] is the other side, small but real: it publishes the way ffmpeg does, and
//! drives the tests and the load generator.
//!
//! # A connection's life
//!
//! ```
//! use shardcast_rtmp::{ClientConfig, ClientEvent, ClientSession, Event, ServerSession, SessionConfig};
//!
//! let now_ms = 0;
//! let mut server = ServerSession::new(SessionConfig::default(), now_ms);
//! let mut client = ClientSession::new(ClientConfig::new("live", "key"));
//! let mut events = Vec::new();
//!
//! // Pump bytes both ways until both sides are quiet, answering publish requests.
//! let pump = |server: &mut ServerSession, client: &mut ClientSession, events: &mut Vec<Event>| {
//!     loop {
//!         let mut moved = false;
//!         while let Some(bytes) = client.poll_transmit() {
//!             server.handle_input(now_ms, &bytes).expect("a valid client");
//!             moved = true;
//!         }
//!         while let Some(event) = server.poll_event() {
//!             if let Event::PublishRequested { stream_id, name, .. } = &event {
//!                 // Check the stream key here; `reject_publish` to refuse.
//!                 assert_eq!(name, "key");
//!                 server.accept_publish(*stream_id).expect("pending");
//!             }
//!             events.push(event);
//!         }
//!         while let Some(bytes) = server.poll_transmit() {
//!             client.handle_input(&bytes).expect("a valid server");
//!             moved = true;
//!         }
//!         if !moved {
//!             break;
//!         }
//!     }
//! };
//! pump(&mut server, &mut client, &mut events);
//! assert!(client.is_publishing());
//! assert_eq!(server.poll_timeout(), None, "connect is done: no handshake deadline");
//!
//! client.send_video(0, &[0x17, 0x00, 0, 0, 0]).unwrap();
//! client.send_audio(21, &[0xAF, 0x01, 0x21]).unwrap();
//! client.unpublish();
//! pump(&mut server, &mut client, &mut events);
//!
//! assert!(matches!(&events[0], Event::Connected { app, .. } if app == "live"));
//! assert!(matches!(&events[1], Event::PublishRequested { kind, .. } if kind == "live"));
//! assert!(matches!(&events[2], Event::Video { timestamp_ms: 0, payload, .. } if payload[0] == 0x17));
//! assert!(matches!(&events[3], Event::Audio { timestamp_ms: 21, .. }));
//! assert!(matches!(events[4], Event::Unpublished { stream_id: 1 }));
//! ```
//!
//! What is deliberately not here: playing (this is an ingest server), RTMPE and RTMPS (TLS
//! belongs to the socket layer, in front of this), the Flash Player 9 digest handshake (no
//! encoder in scope needs it), AMF3 values, shared objects, and any timer but the handshake
//! deadline.

#![forbid(unsafe_code)]

mod amf0;
mod chunk;
mod client;
mod config;
mod error;
mod fuzz;
mod handshake;
mod message;
mod server;

#[cfg(test)]
mod tests;

pub use amf0::{
    decode_all, encode_all, Amf0Object, Amf0Value, AmfLimits, AMF0_SHORT_STRING_MAX_BYTES,
};
pub use client::{ClientConfig, ClientEvent, ClientSession};
pub use config::{
    SessionConfig, AMF_DEPTH_CEILING, AMF_VALUES_CEILING, CHUNK_SIZE_CEILING, CHUNK_SIZE_DEFAULT,
    CHUNK_STREAMS_CEILING, MESSAGE_LENGTH_CEILING, PARTIAL_BYTES_CEILING, STREAMS_CEILING,
    TRANSMIT_QUEUE_FLOOR,
};
pub use error::{AmfError, ConfigError, NoPendingPublish, RtmpError};
pub use fuzz::fuzz_server_input;
pub use handshake::{HANDSHAKE_PACKET_BYTES, RTMP_VERSION};
pub use server::{Event, ServerSession, StatusLevel, NOTICE_TEXT_MAX_BYTES};
