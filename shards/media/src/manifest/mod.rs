//! Playlist and manifest writers: HLS media playlists (with LL-HLS parts), the HLS multivariant
//! playlist, the DASH MPD, and the LL-HLS blocking-reload decision.
//!
//! Where this sits: each shard keeps an index of every live stream's recent segments, per
//! rendition. To answer a playlist request it builds a [`RenditionView`] per rendition — borrowed
//! [`Slices`] over the index's own records, no segment bytes — and calls a writer, which appends
//! text to a `String` the caller owns (and may reuse). Everything here is a pure function of its
//! arguments: no clock, no I/O. Wall-clock times come in as Unix milliseconds.
//!
//! What the caller provides:
//!
//! - Per rendition, a [`RenditionInfo`] (name, kind, RFC 6381 codec string, bandwidths,
//!   timescale, DASH epoch) and its window: complete [`SegmentView`]s with consecutive msns, the
//!   recent [`PartView`]s sorted by (msn, index), the [`OpenSegment`] in progress, and the
//!   discontinuity sequence number of the first listed segment. Durations and times are integer
//!   ticks of the track's timescale, exactly as muxed.
//! - Per stream, [`StreamFacts`]: a target duration that never decreases, the part target
//!   (`None` turns LL-HLS off), whether the stream has ended.
//! - For DASH, an [`MpdClock`]: a fixed availability start, the last publish time, and now.
//! - Optionally a [`UriQuery`] (a playback token) appended to every URI written. It is
//!   validated at construction, since it usually comes from the viewer's request.
//!
//! The entry points, in the order a request meets them:
//!
//! - [`parse_blocking_reload`] and [`BlockingReload::is_satisfied`] decide whether a media
//!   playlist request must wait (LL-HLS `_HLS_msn` / `_HLS_part`), and for what.
//! - [`write_media_playlist`] answers `/live/{stream}/{rendition}/index.m3u8`.
//! - [`write_multivariant_playlist`] answers `/live/{stream}/index.m3u8`.
//! - [`write_mpd`] answers `/live/{stream}/manifest.mpd`.
//!
//! Protocol choices (each is explained where it is made):
//!
//! - `EXT-X-VERSION` is [`HLS_VERSION`] = 6, the minimum for `EXT-X-MAP`; LL-HLS tags need no
//!   higher version, and delta updates (`EXT-X-SKIP`, version 9) are not implemented.
//! - LL-HLS parts are listed for whole segments that start within three target durations of the
//!   playlist end, plus the open segment; `PART-HOLD-BACK` and `HOLD-BACK` are three part
//!   targets and three target durations.
//! - HLS discontinuities: `EXT-X-DISCONTINUITY`, then `EXT-X-MAP` again if the init version
//!   changed, then `EXT-X-PROGRAM-DATE-TIME`. Init version `v` lives at `init.mp4?v={v}`.
//! - DASH: `isoff-live:2011`, one Period, `SegmentTimeline` with `$Number$`, `UTCTiming` direct;
//!   on end the MPD stays dynamic, loses `minimumUpdatePeriod` and gains
//!   `mediaPresentationDuration`. [`write_mpd`] gives the reasons, and what a single Period
//!   means on discontinuities.
//!
//! Invalid names and codec strings are configuration bugs: they panic in debug builds and are
//! sanitized (bad bytes become `_`) in release builds. Nothing here panics on request input.

mod dash;
mod hls;
mod model;
mod reload;
mod text;

#[cfg(test)]
mod tests;

pub use dash::{
    availability_start_ms, write_mpd, MpdClock, DASH_PROFILES, PRESENTATION_DELAY_TARGET_DURATIONS,
};
pub use hls::{
    write_media_playlist, write_multivariant_playlist, InitPath, HLS_VERSION, HOLD_BACK_MULTIPLE,
    PART_WINDOW_TARGET_DURATIONS,
};
pub use model::{
    FrameRate, OpenSegment, PartRef, PartView, RenditionInfo, RenditionKind, RenditionView,
    SegmentView, Slices, StreamFacts,
};
pub use reload::{
    advance_part_limit_parts, blocking_reload_timeout_ms, parse_blocking_reload, BlockingReload,
    Progress, ReloadError,
};
pub use text::{
    is_valid_codecs, is_valid_name, Iso8601Ms, UriQuery, UriQueryError, CODECS_MAX_BYTES,
    NAME_MAX_BYTES, URI_QUERY_MAX_BYTES,
};
