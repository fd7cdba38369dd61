//! Load generator for shardcast.
//!
//! Two kinds of load, each usable from the command line (`shardcast-bench`) and from code
//! (end-to-end tests call the same functions):
//!
//! - [`http::run_http`]: keep-alive HTTP/1.1 requests over many connections, closed or open
//!   loop, with latency percentiles from an HDR histogram ([`report::HttpReport`]);
//! - [`hold::run_hold`]: many idle connections held open, to measure the server's memory per
//!   connection ([`hold::HoldReport`]);
//! - [`ws::run_ws`]: danmaku over WebSocket (`shardcast.v1`): viewers in rooms, senders posting
//!   chats at a paced rate, every delivery accounted for (in order, late, duplicated,
//!   missing) with its latency ([`ws::WsReport`]); optionally spread over worker processes,
//!   and an idle mode for memory per WebSocket connection;
//! - [`hls::run_hls`]: viewers of a live HLS stream behaving as players (plain reloads and
//!   whole segments, or LL-HLS blocking reloads and parts), with request latency by kind,
//!   modelled stalls and ingest latency ([`hls::HlsReport`]);
//! - [`gifts::run_gifts`]: durable gifts through the server's ledger, open loop, with ack
//!   latency from each gift's scheduled send time ([`gifts::GiftsReport`]);
//! - [`rtc::run_rtc`]: WebRTC fan-out: a WHIP publisher of a looped file and many WHEP
//!   viewers (str0m clients on one thread), with loss and each frame's spread over the
//!   viewers ([`rtc::RtcReport`]);
//! - [`soak::run_soak`]: churn (viewers, chatters, resumes, stallers, publishers replaying a
//!   file, HLS players, bad clients) against a running server for a long time, sampling its
//!   gauges and RSS, then checking that it let everything go ([`soak::SoakReport`]).
//!
//! All build their own threads and io_uring runtimes (monoio) and return when their
//! duration is over. The protocol parts, [`parser::ResponseParser`] and [`ws::codec`], are sans-io
//! and tested on their own.

#![forbid(unsafe_code)]

pub mod gifts;
pub mod hls;
pub mod hold;
pub mod http;
pub mod net;
pub mod parser;
pub mod report;
pub mod rtc;
pub mod soak;
pub mod target;
pub mod units;
pub mod ws;

pub use hls::{run_hls, HlsLoadConfig, HlsLoadError, HlsMode, HlsReport};
pub use hold::{run_hold, HoldConfig, HoldReport};
pub use http::{run_http, HttpLoadConfig, HttpLoadError};
pub use report::HttpReport;
pub use target::HttpUrl;
pub use ws::{run_ws, run_ws_with, WsLoadConfig, WsLoadError, WsReport, WsUrl};
