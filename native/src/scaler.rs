//! [`Scaler`]: an owned `SwsContext` converting pictures of one size and format to another.

use std::ptr::{self, NonNull};

use ffmpeg_sys_next as ffi;

use crate::error::{check, Error};
use crate::frame::{Frame, VideoFormat};
use crate::live::{assert_ffmpeg_allowed, Kind, LiveGuard};

/// An owned swscale context for one fixed conversion (one ladder rung: source size and format
/// to the rung's size and format). Frames of any other geometry are refused rather than read
/// out of bounds.
#[derive(Debug)]
pub struct Scaler {
    ptr: NonNull<ffi::SwsContext>,
    src: VideoFormat,
    dst: VideoFormat,
    _live: LiveGuard,
}

// SAFETY: the context is exclusively owned and holds no thread-affine state. It is not `Sync`:
// `sws_scale` mutates the context.
unsafe impl Send for Scaler {}

impl Scaler {
    /// A bilinear scaler from `src` to `dst`. Both must be CPU pixel formats.
    pub fn new(src: VideoFormat, dst: VideoFormat) -> Result<Scaler, Error> {
        assert_ffmpeg_allowed();
        let unsupported = || Error::ScalerUnsupported { src, dst };
        let dim = |v: u32| i32::try_from(v).map_err(|_| unsupported());
        // SAFETY: sizes and formats are plain values (swscale validates them and returns NULL
        // when it cannot convert); no filters or extra parameters.
        let raw = unsafe {
            ffi::sws_getContext(
                dim(src.width)?,
                dim(src.height)?,
                src.pixel_format.to_raw(),
                dim(dst.width)?,
                dim(dst.height)?,
                dst.pixel_format.to_raw(),
                ffi::SWS_BILINEAR,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null(),
            )
        };
        let ptr = NonNull::new(raw).ok_or_else(unsupported)?;
        Ok(Scaler {
            ptr,
            src,
            dst,
            _live: LiveGuard::new(Kind::Scaler),
        })
    }

    /// What this scaler takes.
    pub fn src(&self) -> VideoFormat {
        self.src
    }

    /// What this scaler produces.
    pub fn dst(&self) -> VideoFormat {
        self.dst
    }

    /// Scales `src` into a newly allocated frame, carrying its timestamp over.
    pub fn scale(&mut self, src: &Frame) -> Result<Frame, Error> {
        let mut dst = Frame::video(self.dst)?;
        self.scale_into(src, &mut dst)?;
        Ok(dst)
    }

    /// Scales `src` into `dst`, which must already have this scaler's output format (reuse one
    /// from a pool to avoid an allocation per picture).
    pub fn scale_into(&mut self, src: &Frame, dst: &mut Frame) -> Result<(), Error> {
        check_frame(src, self.src)?;
        check_frame(dst, self.dst)?;
        // Make `dst` exclusive before writing, so a frame that shares buffers with another is
        // copied rather than overwritten underneath its other holder.
        dst.plane_mut(0)?;
        let height = i32::try_from(self.src.height).expect("checked in new");
        // SAFETY: `check_frame` proved that both frames have exactly the geometry and format
        // the context was made for and that every one of their planes is CPU memory inside
        // the frame's own buffers, `stride * plane_height` bytes long, which is what swscale
        // reads from `src` and writes to `dst` for slice 0..height. `dst` is exclusive
        // (`plane_mut` above) and mutably borrowed; `src` is only read.
        let ret = unsafe {
            let s = &*src.as_ptr();
            let d = &*dst.as_mut_ptr();
            ffi::sws_scale(
                self.ptr.as_ptr(),
                s.data.as_ptr().cast::<*const u8>(),
                s.linesize.as_ptr(),
                0,
                height,
                d.data.as_ptr(),
                d.linesize.as_ptr(),
            )
        };
        check(ret)?;
        dst.set_pts(src.pts());
        Ok(())
    }
}

/// Checks that `frame` is `expected` and has every CPU plane of that format.
fn check_frame(frame: &Frame, expected: VideoFormat) -> Result<(), Error> {
    let mismatch = |found| Error::FrameMismatch { expected, found };
    let found = frame.format().ok_or_else(|| {
        mismatch(VideoFormat {
            width: frame.width(),
            height: frame.height(),
            pixel_format: expected.pixel_format,
        })
    })?;
    if found != expected {
        return Err(mismatch(found));
    }
    // SAFETY: any valid pixel format.
    let planes = unsafe { ffi::av_pix_fmt_count_planes(expected.pixel_format.to_raw()) };
    let planes = usize::try_from(planes).map_err(|_| mismatch(found))?;
    match (0..planes).find(|&index| frame.plane(index).is_none()) {
        Some(index) => Err(Error::NoPlane { index }),
        None => Ok(()),
    }
}

impl Drop for Scaler {
    fn drop(&mut self) {
        // SAFETY: the context came from `sws_getContext`, is owned only by `self` and is freed
        // once.
        unsafe { ffi::sws_freeContext(self.ptr.as_ptr()) };
    }
}
