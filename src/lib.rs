//! shardcast: a live-streaming backend built thread-per-core on io_uring.
//!
//! This crate wires the engine (`shards/engine`), the sans-io protocol crates (`shards/*`)
//! and the transcode threads (`native/`) together. One folder per service; see the README's
//! "Where code lives" for what each owns and must never do.

#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines, clippy::fn_params_excessive_bools)]

pub mod boot;
pub mod common;
pub mod control;
pub mod danmaku;
pub mod edge;
pub mod http;
pub mod media;
pub mod record;
pub mod shard;
pub mod state;
pub mod transcode;
pub mod webrtc;
