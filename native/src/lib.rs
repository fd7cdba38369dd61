//! shardcast's FFmpeg layer: safe owners over FFmpeg's C objects for the transcode threads, and
//! the encoder probe that picks the best available H.264/HEVC encoder at start.
//!
//! This crate sits on the transcode cores (see `ARCHITECTURE.md`, "Threads" and "Media path").
//! A transcode thread decodes a stream once, scales once per rung and encodes each rung; the
//! types here are its vocabulary:
//!
//! | owner | C object | freed by |
//! |---|---|---|
//! | [`Packet`] | `AVPacket` | `av_packet_free` |
//! | [`Frame`] | `AVFrame` | `av_frame_free` |
//! | [`CodecContext`] | `AVCodecContext` (decoder or encoder) | `avcodec_free_context` |
//! | [`Scaler`] | `SwsContext` | `sws_freeContext` |
//! | [`HwDevice`] | `AVBufferRef` of an `AVHWDeviceContext` | `av_buffer_unref` |
//! | [`HwFrames`] | `AVBufferRef` of an `AVHWFramesContext` | `av_buffer_unref` |
//! | [`Options`] | `AVDictionary` | `av_dict_free` |
//! | [`FilterGraph`] | `AVFilterGraph` (and its filter contexts) | `avfilter_graph_free` |
//!
//! Each owner holds its C pointer privately and frees it in `Drop`; views into an owner (a
//! frame's plane, a packet's bytes, an option's value) borrow it, so they cannot outlive it.
//! Every FFmpeg return code is mapped once, where the call is made, into [`Error`], with
//! `EAGAIN` ([`Error::Again`]) and end of stream ([`Error::Eof`]) as their own variants because
//! they are flow control, not failures. [`live_owners`] counts the owners alive in the process,
//! so tests can prove that everything they made was freed.
//!
//! # Transcode threads only
//!
//! No FFmpeg call may run on a shard thread: FFmpeg allocates, may block (hardware device
//! set-up, encoder lookahead) and takes locks, and a shard must never do any of those. The owners
//! are `Send` (an owner may be built on one transcode thread and handed to another) but not
//! `Sync`: FFmpeg contexts are not safe to use from two threads at once. A shard thread calls
//! [`forbid_ffmpeg_on_this_thread`] when it starts; from then on, constructing any owner on that
//! thread panics, which turns a wiring mistake into a test failure rather than a latency spike.
//!
//! ```compile_fail
//! fn shared<T: Sync>() {}
//! shared::<shardcast_native::Frame>(); // owners are not `Sync`
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

mod annexb;
mod audio;
mod codec;
mod error;
mod ffmpeg_log;
mod filter;
mod frame;
mod grid;
mod hw;
mod ladder;
mod live;
mod mixer;
mod options;
mod packet;
mod probe;
mod scaler;
mod thumb;

pub use annexb::{avcc_from_annexb, hvcc_from_annexb, nal_units, to_length_prefixed};
pub use audio::{AudioInput, AudioPacket, AudioTranscoder};
pub use codec::{CodecContext, CodecId, Rational, VideoConfig};
pub use error::Error;
pub use ffmpeg_log::route_ffmpeg_log;
pub use filter::FilterGraph;
pub use frame::{Frame, PixelFormat, VideoFormat};
pub use grid::{grid_layout, Grid, GridConfig, VideoPacket, GRID_INPUTS_MAX};
pub use hw::{HwDevice, HwDeviceKind, HwFrames};
pub use ladder::{rung_size, ActiveRung, Ladder, LadderConfig, LadderStats, RungPacket, RungSpec};
pub use live::{forbid_ffmpeg_on_this_thread, live_owners, LiveOwners};
pub use mixer::{Mixer, MIX_FRAME_SAMPLES};
pub use options::Options;
pub use packet::Packet;
pub use probe::{
    probe_h264, probe_hevc, system_memory_format, ProbeFailure, ProbeOutcome, ProbeReport,
    VAAPI_RENDER_NODE,
};
pub use scaler::Scaler;
pub use thumb::{thumbnail_size, ThumbnailSpec, Thumbnailer};
