//! shardcast: a live-streaming backend built thread-per-core on io_uring.
//!
//! This crate is the wiring: configuration and CLI, the shard bootstrap, and the services
//! that drive the sans-io protocol crates (`shards/*`) on the engine (`shards/engine`).

#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod counters;
pub mod danmaku_service;
pub mod http_service;
pub mod logging;
pub mod media_index;
pub mod media_service;
pub mod metrics;
pub mod shard_msg;
pub mod static_files;
pub mod transcode;
