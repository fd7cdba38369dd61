//! [`Frame`]: an owned `AVFrame` (raw pictures), and the pixel-format vocabulary.

use std::ffi::CStr;
use std::fmt;
use std::ptr::NonNull;

use ffi::AVPixelFormat as F;
use ffmpeg_sys_next as ffi;

use crate::error::{check, Error};
use crate::live::{assert_ffmpeg_allowed, Kind, LiveGuard};
use crate::packet::ts;

/// An FFmpeg pixel format. Only valid `AVPixelFormat` values can be represented, so the value
/// can always be handed back to FFmpeg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PixelFormat(F);

impl PixelFormat {
    /// Planar 4:2:0, 8 bit: what the software encoders take and most decoders produce.
    pub const YUV420P: PixelFormat = PixelFormat(F::AV_PIX_FMT_YUV420P);
    /// Planar 4:2:0, 8 bit, full (JPEG) range: what the `mjpeg` encoder takes.
    pub const YUVJ420P: PixelFormat = PixelFormat(F::AV_PIX_FMT_YUVJ420P);
    /// Semi-planar 4:2:0, 8 bit: what hardware encoders take from system memory.
    pub const NV12: PixelFormat = PixelFormat(F::AV_PIX_FMT_NV12);
    /// Frames in CUDA device memory.
    pub const CUDA: PixelFormat = PixelFormat(F::AV_PIX_FMT_CUDA);
    /// Frames as Intel Quick Sync surfaces.
    pub const QSV: PixelFormat = PixelFormat(F::AV_PIX_FMT_QSV);
    /// Frames as VA-API surfaces.
    pub const VAAPI: PixelFormat = PixelFormat(F::AV_PIX_FMT_VAAPI);

    /// Converts a raw `AVFrame::format` value; `None` for `AV_PIX_FMT_NONE` and anything out of
    /// the enum's range.
    pub(crate) fn from_raw(raw: i32) -> Option<PixelFormat> {
        // The C enum runs contiguously from AV_PIX_FMT_NONE (-1) to AV_PIX_FMT_NB, so every
        // value in 0..NB is a declared variant.
        if (0..F::AV_PIX_FMT_NB as i32).contains(&raw) {
            // SAFETY: bindgen declares `AVPixelFormat` as a fieldless `#[repr(i32)]` enum
            // whose variants cover every value in 0..AV_PIX_FMT_NB (the range checked above),
            // so `raw` is the discriminant of a declared variant.
            Some(PixelFormat(unsafe { std::mem::transmute::<i32, F>(raw) }))
        } else {
            None
        }
    }

    pub(crate) fn to_raw(self) -> F {
        self.0
    }

    /// FFmpeg's name for the format (`"yuv420p"`, `"nv12"`, …).
    pub fn name(self) -> &'static str {
        // SAFETY: any valid pixel format; FFmpeg returns NULL or a static string.
        let name = unsafe { ffi::av_get_pix_fmt_name(self.0) };
        if name.is_null() {
            return "unknown";
        }
        // SAFETY: non-NULL names are static NUL-terminated strings in libavutil.
        unsafe { CStr::from_ptr(name) }
            .to_str()
            .unwrap_or("unknown")
    }

    /// Whether frames of this format live in device memory (no CPU planes).
    pub fn is_hardware(self) -> bool {
        self.descriptor()
            .is_none_or(|d| d.flags & ffi::AV_PIX_FMT_FLAG_HWACCEL as u64 != 0)
    }

    fn descriptor(self) -> Option<&'static ffi::AVPixFmtDescriptor> {
        // SAFETY: any valid pixel format; the result is NULL or a static descriptor.
        unsafe { ffi::av_pix_fmt_desc_get(self.0).as_ref() }
    }

    /// The height of plane `index` for a picture `height` rows tall, or `None` when the format
    /// has no such CPU plane (hardware and paletted formats have none we expose).
    fn plane_height(self, index: usize, height: usize) -> Option<usize> {
        let desc = self.descriptor()?;
        let no_cpu_planes = (ffi::AV_PIX_FMT_FLAG_HWACCEL | ffi::AV_PIX_FMT_FLAG_PAL) as u64;
        if desc.flags & no_cpu_planes != 0 {
            return None;
        }
        // SAFETY: any valid pixel format.
        let planes = unsafe { ffi::av_pix_fmt_count_planes(self.0) };
        if index >= usize::try_from(planes).ok()? {
            return None;
        }
        // Chroma planes (1 and 2) are subsampled, rounding up; luma and alpha are full height.
        Some(if index == 1 || index == 2 {
            let shift = desc.log2_chroma_h;
            (height + (1 << shift) - 1) >> shift
        } else {
            height
        })
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A picture's geometry and pixel format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VideoFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixel format.
    pub pixel_format: PixelFormat,
}

impl fmt::Display for VideoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{} {}", self.width, self.height, self.pixel_format)
    }
}

/// An owned `AVFrame`. Reuse one per stream for decoder output:
/// [`crate::CodecContext::receive_frame`] replaces its contents on each call.
#[derive(Debug)]
pub struct Frame {
    ptr: NonNull<ffi::AVFrame>,
    _live: LiveGuard,
}

// SAFETY: the frame and its buffer references are exclusively owned by this value; FFmpeg's
// buffer reference counts are atomic, so releasing them on another thread is sound. It is not
// `Sync`.
unsafe impl Send for Frame {}

impl Frame {
    /// An empty frame (no picture), to receive decoder output into.
    pub fn new() -> Result<Frame, Error> {
        assert_ffmpeg_allowed();
        // SAFETY: plain allocation; NULL is handled below.
        let raw = unsafe { ffi::av_frame_alloc() };
        let ptr = NonNull::new(raw).ok_or(Error::OutOfMemory { what: "AVFrame" })?;
        Ok(Frame {
            ptr,
            _live: LiveGuard::new(Kind::Frame),
        })
    }

    /// A frame with freshly allocated, writable CPU planes for `format` (contents unset).
    pub fn video(format: VideoFormat) -> Result<Frame, Error> {
        let mut frame = Frame::new()?;
        let width = i32::try_from(format.width).map_err(|_| too_big())?;
        let height = i32::try_from(format.height).map_err(|_| too_big())?;
        let raw = frame.raw_mut();
        raw.width = width;
        raw.height = height;
        raw.format = format.pixel_format.to_raw() as i32;
        // SAFETY: the frame is live and owned; width, height and format are set as
        // `av_frame_get_buffer` requires; alignment 0 lets FFmpeg choose for the CPU.
        check(unsafe { ffi::av_frame_get_buffer(frame.ptr.as_ptr(), 0) })?;
        Ok(frame)
    }

    /// An audio frame of `samples` per channel of planar 32-bit float at `sample_rate` with
    /// the default layout of `channels`, freshly allocated and writable (contents unset).
    pub fn audio_fltp(sample_rate: u32, channels: u8, samples: usize) -> Result<Frame, Error> {
        let mut frame = Frame::new()?;
        let raw = frame.raw_mut();
        raw.nb_samples = i32::try_from(samples).map_err(|_| too_big())?;
        raw.sample_rate = i32::try_from(sample_rate).map_err(|_| too_big())?;
        raw.format = ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP as i32;
        // SAFETY: the frame is live and owned; its (plain-data, unallocated) layout gets the
        // default for the channel count.
        unsafe { ffi::av_channel_layout_default(&mut raw.ch_layout, i32::from(channels)) };
        // SAFETY: sample count, format and layout are set as `av_frame_get_buffer` requires.
        check(unsafe { ffi::av_frame_get_buffer(frame.ptr.as_ptr(), 0) })?;
        Ok(frame)
    }

    /// Width in pixels (0 for an empty frame).
    pub fn width(&self) -> u32 {
        u32::try_from(self.raw().width).unwrap_or(0)
    }

    /// Height in pixels (0 for an empty frame).
    pub fn height(&self) -> u32 {
        u32::try_from(self.raw().height).unwrap_or(0)
    }

    /// Pixel format, `None` for an empty frame.
    pub fn pixel_format(&self) -> Option<PixelFormat> {
        PixelFormat::from_raw(self.raw().format)
    }

    /// Geometry and format, `None` for an empty frame.
    pub fn format(&self) -> Option<VideoFormat> {
        Some(VideoFormat {
            width: self.width(),
            height: self.height(),
            pixel_format: self.pixel_format()?,
        })
    }

    /// Audio samples per channel (0 for a picture or an empty frame).
    pub fn samples(&self) -> usize {
        usize::try_from(self.raw().nb_samples).unwrap_or(0)
    }

    /// The `abuffer` arguments describing this audio frame's format (sample rate, sample
    /// format, channel layout), `None` for a frame that is not audio.
    pub(crate) fn abuffer_args(&self) -> Option<String> {
        let raw = self.raw();
        if raw.nb_samples <= 0 || raw.sample_rate <= 0 {
            return None;
        }
        let name = sample_format_name(raw.format)?;
        let mut layout = [0 as std::ffi::c_char; 64];
        // SAFETY: the frame's channel layout is live; `layout` is a writable buffer of its
        // stated size that FFmpeg NUL-terminates.
        let written = unsafe {
            ffi::av_channel_layout_describe(&raw.ch_layout, layout.as_mut_ptr(), layout.len())
        };
        if written <= 0 {
            return None;
        }
        // SAFETY: NUL-terminated by `av_channel_layout_describe` above.
        let layout = unsafe { std::ffi::CStr::from_ptr(layout.as_ptr()) }
            .to_str()
            .ok()?;
        Some(format!(
            "sample_rate={}:sample_fmt={name}:channel_layout={layout}",
            raw.sample_rate
        ))
    }

    /// Presentation timestamp, if set.
    pub fn pts(&self) -> Option<i64> {
        ts(self.raw().pts)
    }

    /// Sets the presentation timestamp (in the encoder's time base when sent to an encoder).
    pub fn set_pts(&mut self, pts: Option<i64>) {
        self.raw_mut().pts = pts.unwrap_or(ffi::AV_NOPTS_VALUE);
    }

    /// The quantiser (in `FF_QP2LAMBDA` units) an encoder opened with fixed quality uses for
    /// this frame.
    pub fn set_quality(&mut self, quality: i32) {
        self.raw_mut().quality = quality;
    }

    /// Asks the encoder to make this frame a keyframe, or clears that request. This is how
    /// rungs are cut on the source's segment boundaries. Open libx264, NVENC and QSV with the
    /// option `forced-idr=1` so the keyframe is an IDR (VAAPI always makes one).
    pub fn set_force_keyframe(&mut self, force: bool) {
        self.raw_mut().pict_type = if force {
            ffi::AVPictureType::AV_PICTURE_TYPE_I
        } else {
            ffi::AVPictureType::AV_PICTURE_TYPE_NONE
        };
    }

    /// Bytes per row of plane `index` (including alignment padding).
    pub fn stride(&self, index: usize) -> Option<usize> {
        self.plane_bounds(index).map(|(_, _, stride)| stride)
    }

    /// Plane `index` of a CPU frame, `stride * plane_height` bytes, borrowed from the frame.
    /// `None` for hardware frames, empty frames and indices past the format's planes.
    pub fn plane(&self, index: usize) -> Option<&[u8]> {
        let (data, len, _) = self.plane_bounds(index)?;
        // SAFETY: `plane_bounds` checked that `data..data+len` lies inside one of the frame's
        // buffers; `&self` keeps the frame, and so its buffer references, alive for the borrow.
        Some(unsafe { std::slice::from_raw_parts(data, len) })
    }

    /// Plane `index`, writable. Makes the frame's buffers exclusive first (copying them if
    /// another frame shares them), so writing never changes a picture someone else holds.
    pub fn plane_mut(&mut self, index: usize) -> Result<&mut [u8], Error> {
        // SAFETY: the frame is live and owned; `av_frame_make_writable` either does nothing
        // (already exclusive) or replaces the buffers with private copies.
        check(unsafe { ffi::av_frame_make_writable(self.ptr.as_ptr()) })?;
        let (data, len, _) = self.plane_bounds(index).ok_or(Error::NoPlane { index })?;
        // SAFETY: the range lies inside one of the frame's buffers (checked by
        // `plane_bounds`), the buffers are exclusive to this frame (made writable above), and
        // `&mut self` keeps any other access away for the borrow.
        Ok(unsafe { std::slice::from_raw_parts_mut(data, len) })
    }

    /// The sample planes of an audio frame (`extended_data`), for FFmpeg's sample functions.
    pub(crate) fn sample_planes(&self) -> *mut *mut u8 {
        self.raw().extended_data
    }

    pub(crate) fn as_ptr(&self) -> *const ffi::AVFrame {
        self.ptr.as_ptr()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut ffi::AVFrame {
        self.ptr.as_ptr()
    }

    /// Start, length and stride of plane `index`, after checking that the whole range lies in
    /// one of the frame's reference-counted buffers.
    fn plane_bounds(&self, index: usize) -> Option<(*mut u8, usize, usize)> {
        let raw = self.raw();
        let format = self.pixel_format()?;
        let rows = format.plane_height(index, usize::try_from(raw.height).ok()?)?;
        let data = *raw.data.get(index)?;
        let stride = usize::try_from(*raw.linesize.get(index)?).ok()?;
        if data.is_null() || stride == 0 {
            return None;
        }
        let len = stride.checked_mul(rows)?;
        let start = data as usize;
        let end = start.checked_add(len)?;
        let inside = raw.buf.iter().any(|&buf| {
            // SAFETY: each non-NULL `buf` entry is a live buffer reference held by the frame.
            let Some(buf) = (unsafe { buf.as_ref() }) else {
                return false;
            };
            let lo = buf.data as usize;
            lo <= start && end <= lo.saturating_add(buf.size)
        });
        inside.then_some((data, len, stride))
    }

    fn raw(&self) -> &ffi::AVFrame {
        // SAFETY: `ptr` is a live frame exclusively owned by `self`.
        unsafe { self.ptr.as_ref() }
    }

    fn raw_mut(&mut self) -> &mut ffi::AVFrame {
        // SAFETY: `ptr` is a live frame exclusively owned by `self`, borrowed mutably.
        unsafe { self.ptr.as_mut() }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let mut raw = self.ptr.as_ptr();
        // SAFETY: `raw` came from `av_frame_alloc`, is owned only by `self` and is freed once;
        // `av_frame_free` also releases the frame's buffer references.
        unsafe { ffi::av_frame_free(&mut raw) };
    }
}

fn too_big() -> Error {
    Error::OutOfMemory {
        what: "AVFrame wider or taller than i32::MAX",
    }
}

/// FFmpeg's name of a sample format value (what `abuffer` takes), `None` for others.
fn sample_format_name(format: i32) -> Option<&'static str> {
    use ffi::AVSampleFormat as S;
    let names = [
        (S::AV_SAMPLE_FMT_U8, "u8"),
        (S::AV_SAMPLE_FMT_S16, "s16"),
        (S::AV_SAMPLE_FMT_S32, "s32"),
        (S::AV_SAMPLE_FMT_FLT, "flt"),
        (S::AV_SAMPLE_FMT_DBL, "dbl"),
        (S::AV_SAMPLE_FMT_U8P, "u8p"),
        (S::AV_SAMPLE_FMT_S16P, "s16p"),
        (S::AV_SAMPLE_FMT_S32P, "s32p"),
        (S::AV_SAMPLE_FMT_FLTP, "fltp"),
        (S::AV_SAMPLE_FMT_DBLP, "dblp"),
        (S::AV_SAMPLE_FMT_S64, "s64"),
        (S::AV_SAMPLE_FMT_S64P, "s64p"),
    ];
    names
        .iter()
        .find(|(f, _)| *f as i32 == format)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_frame_has_three_planes_with_subsampled_chroma() {
        let format = VideoFormat {
            width: 33,
            height: 17,
            pixel_format: PixelFormat::YUV420P,
        };
        let mut frame = Frame::video(format).unwrap();
        assert_eq!(frame.format(), Some(format));
        let y_stride = frame.stride(0).unwrap();
        assert!(y_stride >= 33);
        assert_eq!(frame.plane(0).unwrap().len(), y_stride * 17);
        let u_stride = frame.stride(1).unwrap();
        assert_eq!(frame.plane(1).unwrap().len(), u_stride * 9);
        assert!(frame.plane(3).is_none());
        frame.plane_mut(2).unwrap().fill(128);
        assert!(frame.plane(2).unwrap().iter().all(|&b| b == 128));
        assert!(matches!(
            frame.plane_mut(3),
            Err(Error::NoPlane { index: 3 })
        ));
    }

    #[test]
    fn empty_frame_has_no_planes() {
        let frame = Frame::new().unwrap();
        assert_eq!(frame.format(), None);
        assert!(frame.plane(0).is_none());
    }

    #[test]
    fn pixel_format_names_and_kinds() {
        assert_eq!(PixelFormat::YUV420P.name(), "yuv420p");
        assert_eq!(PixelFormat::NV12.to_string(), "nv12");
        assert!(PixelFormat::VAAPI.is_hardware());
        assert!(!PixelFormat::NV12.is_hardware());
        assert_eq!(PixelFormat::from_raw(-1), None);
        assert_eq!(PixelFormat::from_raw(0), Some(PixelFormat::YUV420P));
        assert_eq!(PixelFormat::from_raw(i32::MAX), None);
    }
}
