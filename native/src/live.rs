//! Live-owner counters and the per-thread ban on FFmpeg calls.
//!
//! Every owner holds a [`LiveGuard`] for its kind: constructing the guard counts the owner in,
//! dropping it counts the owner out. The guard is made only after the C object exists and dies
//! with the owner, so the counts are exactly the owners alive now.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many owners of each kind are alive in this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveOwners {
    /// Live [`crate::Packet`]s.
    pub packets: usize,
    /// Live [`crate::Frame`]s.
    pub frames: usize,
    /// Live [`crate::CodecContext`]s.
    pub codec_contexts: usize,
    /// Live [`crate::Scaler`]s.
    pub scalers: usize,
    /// Live [`crate::HwDevice`]s.
    pub hw_devices: usize,
    /// Live [`crate::HwFrames`]s.
    pub hw_frames: usize,
    /// Live [`crate::Options`].
    pub options: usize,
    /// Live [`crate::FilterGraph`]s.
    pub filter_graphs: usize,
    /// `AVAudioFifo`s.
    pub audio_fifos: usize,
}

impl LiveOwners {
    /// The sum over every kind.
    pub fn total(&self) -> usize {
        self.packets
            + self.frames
            + self.codec_contexts
            + self.scalers
            + self.hw_devices
            + self.hw_frames
            + self.options
            + self.filter_graphs
            + self.audio_fifos
    }
}

/// A snapshot of the live-owner counters. Counts are process-wide: a test that compares two
/// snapshots must not run beside another test that makes owners.
pub fn live_owners() -> LiveOwners {
    let get = |kind: Kind| COUNTS[kind as usize].load(Ordering::Acquire);
    LiveOwners {
        packets: get(Kind::Packet),
        frames: get(Kind::Frame),
        codec_contexts: get(Kind::CodecContext),
        scalers: get(Kind::Scaler),
        hw_devices: get(Kind::HwDevice),
        hw_frames: get(Kind::HwFrames),
        options: get(Kind::Options),
        filter_graphs: get(Kind::FilterGraph),
        audio_fifos: get(Kind::AudioFifo),
    }
}

/// Marks the calling thread as one that must never call FFmpeg (a shard thread). Constructing
/// any owner on it afterwards panics. There is no way back: a thread is a shard for life.
pub fn forbid_ffmpeg_on_this_thread() {
    FORBIDDEN.with(|forbidden| forbidden.set(true));
}

/// Panics when the calling thread was marked by [`forbid_ffmpeg_on_this_thread`]. Called by
/// every owner constructor before it touches FFmpeg.
pub(crate) fn assert_ffmpeg_allowed() {
    let forbidden = FORBIDDEN.with(Cell::get);
    assert!(
        !forbidden,
        "FFmpeg called on a thread marked as a shard; FFmpeg belongs on transcode threads"
    );
}

thread_local! {
    static FORBIDDEN: Cell<bool> = const { Cell::new(false) };
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Packet,
    Frame,
    CodecContext,
    Scaler,
    HwDevice,
    HwFrames,
    Options,
    FilterGraph,
    AudioFifo,
}

const KINDS: usize = 9;
const _: () = assert!(Kind::AudioFifo as usize + 1 == KINDS);

static COUNTS: [AtomicUsize; KINDS] = [const { AtomicUsize::new(0) }; KINDS];

/// Counts one owner of `kind` in for as long as it lives.
#[derive(Debug)]
pub(crate) struct LiveGuard(Kind);

impl LiveGuard {
    pub(crate) fn new(kind: Kind) -> LiveGuard {
        COUNTS[kind as usize].fetch_add(1, Ordering::AcqRel);
        LiveGuard(kind)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let before = COUNTS[self.0 as usize].fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "live-owner count underflow for {:?}", self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_thread_cannot_construct_owners() {
        let result = std::thread::spawn(|| {
            forbid_ffmpeg_on_this_thread();
            crate::Packet::new()
        })
        .join();
        assert!(
            result.is_err(),
            "constructing an owner on a shard thread must panic"
        );
    }
}
