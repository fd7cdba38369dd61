//! What the writers read: borrowed views over a shard's segment index.
//!
//! Every type here is plain data. Segments and parts are `Copy` records that the index can keep
//! as they are, in a `Vec` or a `VecDeque`; a [`RenditionView`] borrows them through [`Slices`],
//! so building a view for a request copies a handful of pointers and no segment bytes.

use std::collections::VecDeque;

/// A sequence held as two slices, read front to back: the shape of [`VecDeque::as_slices`].
///
/// The index keeps its window in a ring; this lets a writer read the ring without the index
/// first making it contiguous. A plain slice converts with `tail` empty.
#[derive(Debug)]
pub struct Slices<'a, T> {
    head: &'a [T],
    tail: &'a [T],
}

// Derived `Clone`/`Copy` would demand `T: Copy`; a pair of shared slices is always copyable.
impl<T> Clone for Slices<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Slices<'_, T> {}

impl<T> Default for Slices<'_, T> {
    fn default() -> Self {
        Slices::new(&[], &[])
    }
}

impl<'a, T> Slices<'a, T> {
    /// The sequence `head` followed by `tail`.
    pub const fn new(head: &'a [T], tail: &'a [T]) -> Self {
        Slices { head, tail }
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.tail.is_empty()
    }

    /// The item at `index`, counting from the front.
    pub fn get(&self, index: usize) -> Option<&'a T> {
        match index.checked_sub(self.head.len()) {
            None => self.head.get(index),
            Some(in_tail) => self.tail.get(in_tail),
        }
    }

    /// The first item.
    pub fn first(&self) -> Option<&'a T> {
        self.head.first().or(self.tail.first())
    }

    /// The last item.
    pub fn last(&self) -> Option<&'a T> {
        self.tail.last().or(self.head.last())
    }

    /// The items, front to back.
    pub fn iter(&self) -> std::iter::Chain<std::slice::Iter<'a, T>, std::slice::Iter<'a, T>> {
        self.head.iter().chain(self.tail.iter())
    }

    /// The items from `start` on.
    pub fn skip_to(&self, start: usize) -> Slices<'a, T> {
        match start.checked_sub(self.head.len()) {
            None => Slices::new(&self.head[start..], self.tail),
            Some(in_tail) => Slices::new(&[], &self.tail[in_tail.min(self.tail.len())..]),
        }
    }

    /// The index of the first item for which `pred` is false, the items being partitioned so
    /// that `pred` holds for a prefix (as [`slice::partition_point`]).
    pub fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        if self.head.last().is_some_and(&mut pred) {
            self.head.len() + self.tail.partition_point(pred)
        } else {
            self.head.partition_point(pred)
        }
    }
}

impl<'a, T> From<&'a [T]> for Slices<'a, T> {
    fn from(items: &'a [T]) -> Self {
        Slices::new(items, &[])
    }
}

impl<'a, T> From<&'a Vec<T>> for Slices<'a, T> {
    fn from(items: &'a Vec<T>) -> Self {
        Slices::new(items, &[])
    }
}

impl<'a, T> From<&'a VecDeque<T>> for Slices<'a, T> {
    fn from(items: &'a VecDeque<T>) -> Self {
        let (head, tail) = items.as_slices();
        Slices::new(head, tail)
    }
}

impl<'a, T> From<(&'a [T], &'a [T])> for Slices<'a, T> {
    fn from((head, tail): (&'a [T], &'a [T])) -> Self {
        Slices::new(head, tail)
    }
}

/// One complete media segment: a CMAF fragment of one track, `{msn}.m4s`.
///
/// Times are in ticks of the rendition's [`RenditionInfo::timescale`] (the track's `mdhd`
/// timescale), exactly as the muxer wrote them, so the DASH timeline matches the media to the
/// tick and HLS durations do not drift from rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentView {
    /// Media sequence number: the `n` of `n.m4s`. Consecutive within a rendition's window.
    pub msn: u64,
    /// The segment's earliest presentation time. Equal to its `tfdt` for audio, and for video
    /// when the muxer writes negative composition offsets. Must not decrease along the window.
    pub start_ticks: u64,
    /// The segment's duration.
    pub duration_ticks: u64,
    /// Wall-clock time of the segment's first sample, Unix milliseconds, if known.
    pub program_date_time_ms: Option<u64>,
    /// Whether this segment starts a discontinuity (a failover to a backup publisher, a
    /// timestamp reset, an encoding change) relative to the one before it.
    pub discontinuity: bool,
    /// Whether the segment is missing (listed so numbering stays intact, but not fetchable).
    pub gap: bool,
    /// Which initialization segment this segment needs; it changes when the track's decoder
    /// configuration changes. See [`InitPath`](super::InitPath) for the URI each version gets.
    pub init_version: u32,
}

/// One LL-HLS partial segment: `{msn}.{index}.m4s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartView {
    /// The media sequence number of the segment the part belongs to.
    pub msn: u64,
    /// The part's index within its segment, from 0.
    pub index: u32,
    /// The part's duration, in ticks of the rendition's timescale.
    pub duration_ticks: u64,
    /// Whether the part starts with an independent frame (a keyframe; always true for audio).
    pub independent: bool,
}

/// The segment being built: its parts are published before it completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenSegment {
    /// Its media sequence number: one past the last complete segment.
    pub msn: u64,
    /// Whether it starts a discontinuity.
    pub discontinuity: bool,
    /// The initialization segment its parts need.
    pub init_version: u32,
    /// Wall-clock time of its first sample, Unix milliseconds, if known.
    pub program_date_time_ms: Option<u64>,
}

/// A part's address: segment `msn`, part `part_index`. Also used for the preload hint (the next
/// part to be published) and for blocking-reload progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartRef {
    /// The segment's media sequence number. Compared first.
    pub msn: u64,
    /// The part's index within that segment.
    pub part_index: u32,
}

/// A video frame rate as a ratio, so 29.97 is exactly `30000/1001`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRate {
    /// Frames per `den` seconds.
    pub num: u32,
    /// Seconds per `num` frames; never 0.
    pub den: u32,
}

impl FrameRate {
    /// A whole number of frames per second.
    pub const fn fps(fps: u32) -> Self {
        FrameRate { num: fps, den: 1 }
    }
}

/// What a rendition carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenditionKind {
    /// A video track.
    Video {
        /// Coded width in pixels.
        width: u32,
        /// Coded height in pixels.
        height: u32,
        /// Nominal frame rate.
        frame_rate: FrameRate,
    },
    /// An audio track.
    Audio {
        /// Output sample rate in Hz (for HE-AAC, the rate after SBR).
        sample_rate_hz: u32,
        /// Channel count (the DASH channel configuration value).
        channels: u8,
    },
}

/// The fixed facts of one rendition: set when it starts, unchanged while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenditionInfo<'a> {
    /// The rendition's name, used as its URL path component and DASH `Representation@id`
    /// (`source`, `audio`, `720p`). ASCII letters, digits, `-`, `_` and `.`; see
    /// [`is_valid_name`](super::is_valid_name).
    pub name: &'a str,
    /// Video or audio, with the facts each needs.
    pub kind: RenditionKind,
    /// The RFC 6381 codec string, such as `avc1.64001f`, `hvc1.1.6.L93.B0` or `mp4a.40.2`.
    pub codecs: &'a str,
    /// Peak segment bit rate, bits per second.
    pub bandwidth_bps: u64,
    /// Average segment bit rate, bits per second.
    pub average_bandwidth_bps: u64,
    /// Ticks per second of every `*_ticks` value of this rendition.
    pub timescale: u32,
    /// The media time, in ticks, that corresponds to the stream's DASH availability start time
    /// (it becomes `presentationTimeOffset`). 0 when the muxer starts every track at 0.
    pub epoch_ticks: u64,
}

/// One rendition as the index holds it right now.
#[derive(Clone, Copy, Debug)]
pub struct RenditionView<'a> {
    /// The fixed facts.
    pub info: RenditionInfo<'a>,
    /// Complete segments, oldest first, with consecutive media sequence numbers: the window.
    pub segments: Slices<'a, SegmentView>,
    /// Partial segments sorted by (msn, index). May begin anywhere (old parts may have been
    /// dropped) and includes the parts of [`open_segment`](Self::open_segment). Empty when
    /// LL-HLS is off.
    pub parts: Slices<'a, PartView>,
    /// The segment in progress, if one has been started.
    pub open_segment: Option<OpenSegment>,
    /// The discontinuity sequence number of the first segment in `segments`: how many segments
    /// of this rendition with `discontinuity` set have an msn at or below it since the stream
    /// began. Kept per rendition because each playlist counts from its own first segment.
    pub discontinuity_sequence: u64,
}

impl<'a> RenditionView<'a> {
    /// The media sequence number of the last complete segment.
    pub fn last_msn(&self) -> Option<u64> {
        self.segments.last().map(|s| s.msn)
    }

    /// The last published part.
    pub fn last_part(&self) -> Option<PartRef> {
        self.parts.last().map(|p| PartRef {
            msn: p.msn,
            part_index: p.index,
        })
    }

    /// The part the next `EXT-X-PRELOAD-HINT` names: the one after the last published part, or
    /// part 0 of the next segment when the open segment has no parts yet.
    pub fn preload_hint(&self) -> PartRef {
        let next_msn = self
            .open_segment
            .map(|o| o.msn)
            .or(self.last_msn().map(|m| m + 1))
            .unwrap_or(0);
        match self.last_part() {
            Some(last) if last.msn >= next_msn => PartRef {
                msn: last.msn,
                part_index: last.part_index + 1,
            },
            _ => PartRef {
                msn: next_msn,
                part_index: 0,
            },
        }
    }

    /// How far this rendition has got, for blocking playlist reloads.
    pub fn progress(&self, ended: bool) -> super::Progress {
        super::Progress {
            last_msn: self.last_msn(),
            last_part: self.last_part(),
            ended,
        }
    }

    /// The parts of the open segment (those after the last complete segment).
    pub(crate) fn open_parts(&self) -> Slices<'a, PartView> {
        match self.last_msn() {
            None => self.parts,
            Some(last) => self
                .parts
                .skip_to(self.parts.partition_point(|p| p.msn <= last)),
        }
    }
}

/// Facts about the whole stream, kept by the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamFacts {
    /// `EXT-X-TARGETDURATION`, whole seconds: at least every segment's duration rounded to the
    /// nearest second, and never decreasing while the stream lives (the index keeps the maximum
    /// of the ceiling of every segment duration it has seen). Also DASH `maxSegmentDuration`.
    pub target_duration_s: u32,
    /// LL-HLS part target duration in milliseconds; `None` turns LL-HLS off (no parts, no
    /// server control, no preload hints, no rendition reports).
    pub part_target_ms: Option<u32>,
    /// Whether the publisher has gone: playlists get `EXT-X-ENDLIST` and the MPD its final
    /// duration.
    pub ended: bool,
}
