//! Capturing FFmpeg's error log lines on the calling thread, so a probe can say *why* an
//! encoder failed to open ("Cannot load libcuda.so.1") rather than only FFmpeg's generic error
//! code.
//!
//! FFmpeg's log callback is process-wide. The one installed here sends every line to the `log`
//! crate under the target `ffmpeg` (errors as warnings — the caller reports what failed —,
//! warnings as info, FFmpeg's info as debug, the rest as trace), unless the line comes from a
//! thread that is inside [`capture`]; those lines are collected instead.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Once;

use ffmpeg_sys_next as ffi;

/// Routes FFmpeg's log lines into the `log` crate (see the module documentation). Idempotent.
pub fn route_ffmpeg_log() {
    install();
}

/// Runs `f`, returning its result and the FFmpeg error lines logged on this thread meanwhile.
pub(crate) fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    install();
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let result = f();
    let lines = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (result, lines)
}

thread_local! {
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// At most this many lines are kept per capture (an encoder failing to open logs a handful).
const CAPTURE_MAX_LINES: usize = 16;
/// Longest line kept, in bytes; FFmpeg truncates longer ones.
const LINE_MAX_BYTES: usize = 512;

fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `callback` has the signature FFmpeg expects, never unwinds and is valid for
        // the life of the process. Installing happens once, before any capture.
        unsafe { ffi::av_log_set_callback(Some(callback)) };
    });
}

unsafe extern "C" fn callback(
    avcl: *mut c_void,
    level: c_int,
    fmt: *const c_char,
    args: *mut ffi::__va_list_tag,
) {
    let capturing = CAPTURED
        .try_with(|c| c.try_borrow().is_ok_and(|c| c.is_some()))
        .unwrap_or(false);
    let routed = match level {
        l if l <= ffi::AV_LOG_ERROR => log::Level::Warn,
        l if l <= ffi::AV_LOG_WARNING => log::Level::Info,
        l if l <= ffi::AV_LOG_INFO => log::Level::Debug,
        _ => log::Level::Trace,
    };
    if !capturing && !log::log_enabled!(target: "ffmpeg", routed) {
        return;
    }
    if capturing && level > ffi::AV_LOG_ERROR {
        return;
    }
    let mut line = [0 as c_char; LINE_MAX_BYTES];
    // A captured line gets no "[h264_nvenc @ 0x…]" prefix (the caller knows which codec it
    // was opening); a routed one keeps it, to say which codec logged.
    let mut print_prefix: c_int = c_int::from(!capturing);
    // SAFETY: `line` is a writable buffer of `LINE_MAX_BYTES` bytes that FFmpeg fills and
    // NUL-terminates (truncating); the other arguments are FFmpeg's own, passed through.
    unsafe {
        ffi::av_log_format_line2(
            avcl,
            level,
            fmt,
            args,
            line.as_mut_ptr(),
            LINE_MAX_BYTES as c_int,
            &mut print_prefix,
        )
    };
    // SAFETY: `line` was NUL-terminated just above.
    let text = unsafe { CStr::from_ptr(line.as_ptr()) }.to_string_lossy();
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if !capturing {
        log::log!(target: "ffmpeg", routed, "{text}");
        return;
    }
    let _ = CAPTURED.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if let Some(lines) = c.as_mut().filter(|l| l.len() < CAPTURE_MAX_LINES) {
                lines.push(text.to_owned());
            }
        }
    });
}
