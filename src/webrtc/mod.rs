//! WebRTC on the shards: WHEP playback (adaptive between a stream's layers, `abr`), WHIP
//! ingest and co-hosting's feeds.
//!
//! Each peer is a [`session::Session`], a sans-io state machine around `str0m`: the shard owns
//! its UDP socket (one per shard, `engine::UdpSpec` with a port per shard), feeds the
//! session datagrams and time, and sends what the session hands back. Sessions never share
//! state across shards; a viewer's datagrams reach the shard whose port its answer named.

pub mod abr;
pub mod direct;
pub mod feed;
pub mod publish;
pub mod sdp;
pub mod session;
pub mod shard;
pub mod srtp;
pub mod tcp;
#[cfg(test)]
mod tests;
pub mod whip;

pub use abr::Layer;
pub use shard::{Webrtc, WebrtcSettings};
