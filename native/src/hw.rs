//! [`HwDevice`] and [`HwFrames`]: owned references to FFmpeg hardware device and frame-pool
//! contexts, for the NVENC/QSV/VAAPI encoders.

use std::ptr::{self, NonNull};

use ffmpeg_sys_next as ffi;

use crate::error::{c_string, check, Error};
use crate::frame::PixelFormat;
use crate::live::{assert_ffmpeg_allowed, Kind, LiveGuard};

/// The hardware APIs shardcast can encode with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HwDeviceKind {
    /// NVIDIA (NVENC), through CUDA.
    Cuda,
    /// Intel Quick Sync Video.
    Qsv,
    /// VA-API (Intel and AMD on Linux), through a DRM render node.
    Vaapi,
}

impl HwDeviceKind {
    fn to_raw(self) -> ffi::AVHWDeviceType {
        match self {
            HwDeviceKind::Cuda => ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
            HwDeviceKind::Qsv => ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_QSV,
            HwDeviceKind::Vaapi => ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI,
        }
    }

    /// The pixel format of frames that live on this kind of device.
    pub fn pixel_format(self) -> PixelFormat {
        match self {
            HwDeviceKind::Cuda => PixelFormat::CUDA,
            HwDeviceKind::Qsv => PixelFormat::QSV,
            HwDeviceKind::Vaapi => PixelFormat::VAAPI,
        }
    }
}

/// An owned reference to an opened hardware device (`AVHWDeviceContext` inside an
/// `AVBufferRef`). Codec contexts and frame pools made from it take their own references, so
/// dropping this owner early is safe: the device closes when the last reference goes.
#[derive(Debug)]
pub struct HwDevice {
    buf: NonNull<ffi::AVBufferRef>,
    kind: HwDeviceKind,
    _live: LiveGuard,
}

// SAFETY: the reference is exclusively owned; FFmpeg's buffer reference counts are atomic and
// hardware device contexts are designed to be shared by codecs on different threads (each API
// locks internally). This owner exposes no unsynchronised mutation, but it is still not `Sync`
// to keep every owner's threading story the same.
unsafe impl Send for HwDevice {}

impl HwDevice {
    /// Opens a device. `device` selects which one (a DRM render node such as
    /// `/dev/dri/renderD128` for VAAPI, a GPU index such as `"0"` for CUDA); `None` lets
    /// FFmpeg pick its default.
    pub fn create(kind: HwDeviceKind, device: Option<&str>) -> Result<HwDevice, Error> {
        assert_ffmpeg_allowed();
        let device = device.map(c_string).transpose()?;
        let device_ptr = device.as_ref().map_or(ptr::null(), |d| d.as_ptr());
        let mut raw: *mut ffi::AVBufferRef = ptr::null_mut();
        // SAFETY: `raw` is an out-pointer FFmpeg fills on success (and leaves NULL on
        // failure); `device_ptr` is NULL or a NUL-terminated string alive for the call; no
        // options dictionary, no flags.
        let ret = unsafe {
            ffi::av_hwdevice_ctx_create(&mut raw, kind.to_raw(), device_ptr, ptr::null_mut(), 0)
        };
        check(ret)?;
        let buf = NonNull::new(raw).ok_or(Error::OutOfMemory {
            what: "AVHWDeviceContext",
        })?;
        Ok(HwDevice {
            buf,
            kind,
            _live: LiveGuard::new(Kind::HwDevice),
        })
    }

    /// Which API this device belongs to.
    pub fn kind(&self) -> HwDeviceKind {
        self.kind
    }

    /// A pool of `width`x`height` device frames holding `sw_format` pictures (e.g. NV12), to
    /// upload into and to give an encoder through [`crate::CodecContext::set_hw_frames`].
    pub fn frames(
        &self,
        sw_format: PixelFormat,
        width: u32,
        height: u32,
        pool_size: u32,
    ) -> Result<HwFrames, Error> {
        HwFrames::new(self, sw_format, width, height, pool_size)
    }

    /// A new counted reference for a context that keeps the device (the caller owns it).
    pub(crate) fn new_ref(&self) -> Result<*mut ffi::AVBufferRef, Error> {
        new_ref(self.buf)
    }
}

impl Drop for HwDevice {
    fn drop(&mut self) {
        let mut raw = self.buf.as_ptr();
        // SAFETY: `raw` is the reference this owner holds, released exactly once.
        unsafe { ffi::av_buffer_unref(&mut raw) };
    }
}

/// An owned reference to an initialised pool of hardware frames (`AVHWFramesContext` inside an
/// `AVBufferRef`), holding its own reference to the device.
#[derive(Debug)]
pub struct HwFrames {
    buf: NonNull<ffi::AVBufferRef>,
    _live: LiveGuard,
}

// SAFETY: as for `HwDevice`: an exclusively owned reference to a context FFmpeg shares across
// threads with atomic reference counts. Not `Sync`.
unsafe impl Send for HwFrames {}

impl HwFrames {
    fn new(
        device: &HwDevice,
        sw_format: PixelFormat,
        width: u32,
        height: u32,
        pool_size: u32,
    ) -> Result<HwFrames, Error> {
        assert_ffmpeg_allowed();
        // SAFETY: `device.buf` is a live device reference; FFmpeg takes its own reference to
        // it for the new frames context.
        let raw = unsafe { ffi::av_hwframe_ctx_alloc(device.buf.as_ptr()) };
        let buf = NonNull::new(raw).ok_or(Error::OutOfMemory {
            what: "AVHWFramesContext",
        })?;
        // Owned from here, so an error below still releases it.
        let frames = HwFrames {
            buf,
            _live: LiveGuard::new(Kind::HwFrames),
        };
        // SAFETY: the buffer made by `av_hwframe_ctx_alloc` holds an `AVHWFramesContext`; we
        // hold the only reference, so writing its parameters before init is unshared.
        let ctx = unsafe { &mut *(*buf.as_ptr()).data.cast::<ffi::AVHWFramesContext>() };
        ctx.format = device.kind.pixel_format().to_raw();
        ctx.sw_format = sw_format.to_raw();
        ctx.width = i32::try_from(width).expect("width fits i32");
        ctx.height = i32::try_from(height).expect("height fits i32");
        ctx.initial_pool_size = i32::try_from(pool_size).expect("pool size fits i32");
        // SAFETY: a live, not yet initialised frames context with its parameters set.
        check(unsafe { ffi::av_hwframe_ctx_init(buf.as_ptr()) })?;
        Ok(frames)
    }

    /// A new counted reference for a context that keeps the pool (the caller owns it).
    pub(crate) fn new_ref(&self) -> Result<*mut ffi::AVBufferRef, Error> {
        new_ref(self.buf)
    }
}

impl Drop for HwFrames {
    fn drop(&mut self) {
        let mut raw = self.buf.as_ptr();
        // SAFETY: `raw` is the reference this owner holds, released exactly once.
        unsafe { ffi::av_buffer_unref(&mut raw) };
    }
}

fn new_ref(buf: NonNull<ffi::AVBufferRef>) -> Result<*mut ffi::AVBufferRef, Error> {
    // SAFETY: `buf` is a live reference held by the calling owner.
    let raw = unsafe { ffi::av_buffer_ref(buf.as_ptr()) };
    if raw.is_null() {
        Err(Error::OutOfMemory {
            what: "AVBufferRef",
        })
    } else {
        Ok(raw)
    }
}
