//! shardcast's HTTP/1.1 server codec: sans-io, on `httparse`.
//!
//! This crate sits between a shard's connection service and the application routes (HLS,
//! LL-HLS and DASH delivery, the `/ws` WebSocket upgrade). Bytes go in, parsed request heads,
//! body slices and typed errors come out; response heads are written into the caller's buffer.
//! There are no sockets, clocks or threads in here: the same code runs on io_uring, on epoll, in
//! a fuzzer and in a deterministic test.
//!
//! The pieces, in the order a connection uses them:
//!
//! - [`RequestDecoder`] turns received bytes into [`Decoded`] items. It parses straight from a
//!   borrowed `&[u8]`, so a shard can decode from a pooled receive buffer and hand the buffer
//!   back at once; only an incomplete head (at most [`Limits::head_max_bytes`]) has to be copied
//!   into a per-connection tail. Pipelined requests come out one call at a time, in order.
//! - [`RequestHead`] exposes what routes need: method, target, path and query, keep-alive per
//!   RFC 9112 §9.3, `Content-Length`, `Host`, `Range`, `If-None-Match`, and WebSocket upgrade
//!   detection.
//! - [`HttpError`] says why a request was refused and which status to answer with; after any
//!   error the connection must be closed.
//! - [`ResponseHead`] writes a status line and headers; [`HttpDate`] formats the `Date` value
//!   from seconds the caller passes in.
//! - [`parse_range`], [`ContentRange`] and [`etag_matches`] implement single byte ranges and
//!   conditional GET for segment and playlist delivery.
//!
//! What is deliberately not here: chunked request bodies (a request with `Transfer-Encoding`
//! is answered with 501) and `Expect: 100-continue` handling (the caller decides). The client
//! side ([`parse_response_head`], [`BodyDecoder`]) is only what an edge needs to fetch from an
//! origin. shardcast's requests are GETs for media and upgrades for WebSockets; a small,
//! strict request parser is the point.

#![forbid(unsafe_code)]

mod client;
mod date;
mod error;
mod etag;
mod limits;
mod range;
mod request;
mod response;

pub use client::{
    parse_response_head, BodyDecoder, Framing, ResponseError, ResponseHead as ClientResponseHead,
    CHUNK_LINE_MAX_BYTES, TRAILERS_MAX_BYTES,
};
pub use date::{HttpDate, HttpDateCache};
pub use error::{HttpError, LimitsError};
pub use etag::etag_matches;
pub use limits::{Limits, HEADERS_MAX_COUNT, HEAD_MAX_BYTES_CEILING};
pub use range::{parse_range, ContentRange, RangeOutcome};
pub use request::{Decoded, Method, RequestDecoder, RequestHead};
pub use response::{reason, ResponseHead};
