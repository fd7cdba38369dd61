//! [`Packet`]: an owned `AVPacket` (compressed data: one access unit).

use std::ptr::NonNull;

use ffmpeg_sys_next as ffi;

use crate::error::{check, Error};
use crate::live::{assert_ffmpeg_allowed, Kind, LiveGuard};

/// An owned `AVPacket`. Reuse one per stream: [`crate::CodecContext::receive_packet`] replaces
/// its contents on each call.
#[derive(Debug)]
pub struct Packet {
    ptr: NonNull<ffi::AVPacket>,
    _live: LiveGuard,
}

// SAFETY: the packet and its buffer reference are exclusively owned by this value; FFmpeg's
// buffer reference counts are atomic, so dropping a reference on another thread is sound. It is
// not `Sync`.
unsafe impl Send for Packet {}

impl Packet {
    /// An empty packet.
    pub fn new() -> Result<Packet, Error> {
        assert_ffmpeg_allowed();
        // SAFETY: plain allocation; NULL is handled below.
        let raw = unsafe { ffi::av_packet_alloc() };
        let ptr = NonNull::new(raw).ok_or(Error::OutOfMemory { what: "AVPacket" })?;
        Ok(Packet {
            ptr,
            _live: LiveGuard::new(Kind::Packet),
        })
    }

    /// A packet holding a copy of `data` (plus FFmpeg's zeroed input padding), for feeding an
    /// access unit from ingest to a decoder.
    pub fn copy_from(data: &[u8]) -> Result<Packet, Error> {
        let packet = Packet::new()?;
        let size = i32::try_from(data.len()).map_err(|_| Error::OutOfMemory {
            what: "AVPacket data over 2 GiB",
        })?;
        // SAFETY: `packet.ptr` is a live, empty packet we own; `av_new_packet` allocates
        // `size` bytes plus zeroed padding and points `data` at them.
        check(unsafe { ffi::av_new_packet(packet.ptr.as_ptr(), size) })?;
        if !data.is_empty() {
            // SAFETY: the packet's buffer was just allocated with room for `data.len()` bytes
            // and cannot overlap the caller's slice.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    data.as_ptr(),
                    (*packet.ptr.as_ptr()).data,
                    data.len(),
                )
            };
        }
        Ok(packet)
    }

    /// The packet's bytes, borrowed from it. Empty for an empty packet.
    pub fn data(&self) -> &[u8] {
        let p = self.raw();
        let len = usize::try_from(p.size).unwrap_or(0);
        if p.data.is_null() || len == 0 {
            return &[];
        }
        // SAFETY: FFmpeg guarantees `data` points to at least `size` readable bytes while the
        // packet holds them; `&self` keeps the packet alive and unmodified for the borrow.
        unsafe { std::slice::from_raw_parts(p.data, len) }
    }

    /// Presentation timestamp in the codec's time base, if set.
    pub fn pts(&self) -> Option<i64> {
        ts(self.raw().pts)
    }

    /// Decoding timestamp in the codec's time base, if set.
    pub fn dts(&self) -> Option<i64> {
        ts(self.raw().dts)
    }

    /// Sets the presentation timestamp.
    pub fn set_pts(&mut self, pts: Option<i64>) {
        self.raw_mut().pts = pts.unwrap_or(ffi::AV_NOPTS_VALUE);
    }

    /// Sets the decoding timestamp.
    pub fn set_dts(&mut self, dts: Option<i64>) {
        self.raw_mut().dts = dts.unwrap_or(ffi::AV_NOPTS_VALUE);
    }

    /// The packet's duration in its time base (0: unknown).
    pub fn duration(&self) -> i64 {
        self.raw().duration
    }

    /// Whether the packet starts with a keyframe.
    pub fn is_key(&self) -> bool {
        self.raw().flags & ffi::AV_PKT_FLAG_KEY != 0
    }

    /// Marks the packet as a keyframe (or not).
    pub fn set_key(&mut self, key: bool) {
        let p = self.raw_mut();
        if key {
            p.flags |= ffi::AV_PKT_FLAG_KEY;
        } else {
            p.flags &= !ffi::AV_PKT_FLAG_KEY;
        }
    }

    pub(crate) fn as_ptr(&self) -> *const ffi::AVPacket {
        self.ptr.as_ptr()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut ffi::AVPacket {
        self.ptr.as_ptr()
    }

    fn raw(&self) -> &ffi::AVPacket {
        // SAFETY: `ptr` is a live packet exclusively owned by `self`.
        unsafe { self.ptr.as_ref() }
    }

    fn raw_mut(&mut self) -> &mut ffi::AVPacket {
        // SAFETY: `ptr` is a live packet exclusively owned by `self`, borrowed mutably.
        unsafe { self.ptr.as_mut() }
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        let mut raw = self.ptr.as_ptr();
        // SAFETY: `raw` came from `av_packet_alloc`, is owned only by `self` and is freed once.
        unsafe { ffi::av_packet_free(&mut raw) };
    }
}

pub(crate) fn ts(value: i64) -> Option<i64> {
    (value != ffi::AV_NOPTS_VALUE).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_from_keeps_bytes_and_timestamps() {
        let mut p = Packet::copy_from(&[0, 0, 0, 1, 0x65]).unwrap();
        assert_eq!(p.data(), &[0, 0, 0, 1, 0x65]);
        assert_eq!(p.pts(), None);
        p.set_pts(Some(3000));
        p.set_dts(Some(1500));
        p.set_key(true);
        assert_eq!(
            (p.pts(), p.dts(), p.is_key()),
            (Some(3000), Some(1500), true)
        );
        p.set_key(false);
        assert!(!p.is_key());
        assert!(Packet::new().unwrap().data().is_empty());
    }
}
