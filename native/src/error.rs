//! The crate's one error type, and the single place where FFmpeg return codes become it.

use std::ffi::{c_char, c_int, CStr};

use ffmpeg_sys_next as ffi;

/// An FFmpeg call that did not succeed, or a precondition this crate checks before calling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `AVERROR(EAGAIN)`: the codec wants the other half of the send/receive pair first
    /// (read output before sending more input, or send more input before output appears).
    /// Flow control, not a failure.
    #[error("resource temporarily unavailable (send more input or read output first)")]
    Again,
    /// `AVERROR_EOF`: the codec has been drained and will produce no more output.
    #[error("end of stream")]
    Eof,
    /// `AVERROR_INVALIDDATA`: the input is corrupt or not what the codec expects. A decoder
    /// refusing one access unit is not fatal to the stream.
    #[error("invalid data found when processing input")]
    InvalidData,
    /// Something this crate does not do (yet), with what it is.
    #[error("not supported: {what}")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// An encoder's out-of-band header lacks what packaging needs.
    #[error("encoder header unusable: {what}")]
    BadHeader {
        /// What is missing.
        what: &'static str,
    },
    /// Any other negative FFmpeg return code, with FFmpeg's own description of it.
    #[error("{message} (AVERROR {code})")]
    Ffmpeg {
        /// The negative return code.
        code: i32,
        /// `av_strerror`'s text for `code`.
        message: String,
    },
    /// No encoder or decoder of that name or id is compiled into this FFmpeg.
    #[error("codec {name} is not registered in this FFmpeg build")]
    NotRegistered {
        /// The name (or id name) that was looked up.
        name: String,
    },
    /// An FFmpeg allocator returned NULL.
    #[error("out of memory allocating {what}")]
    OutOfMemory {
        /// The object that could not be allocated.
        what: &'static str,
    },
    /// A string passed to FFmpeg contains a NUL byte, so it cannot become a C string.
    #[error("string {value:?} contains a NUL byte")]
    InteriorNul {
        /// The offending string.
        value: String,
    },
    /// A frame does not have the geometry or pixel format the operation was set up for.
    #[error("frame is {found}, expected {expected}")]
    FrameMismatch {
        /// What the scaler (or other consumer) was configured for.
        expected: crate::VideoFormat,
        /// What the frame actually is.
        found: crate::VideoFormat,
    },
    /// The frame has no CPU-addressable plane with that index (hardware frame, unallocated
    /// frame, or an index past the format's plane count).
    #[error("frame has no CPU plane {index}")]
    NoPlane {
        /// The plane index asked for.
        index: usize,
    },
    /// `sws_getContext` refused the conversion (unsupported format or size).
    #[error("swscale cannot convert {src} to {dst}")]
    ScalerUnsupported {
        /// Source geometry and format.
        src: crate::VideoFormat,
        /// Destination geometry and format.
        dst: crate::VideoFormat,
    },
}

impl Error {
    /// Maps a negative FFmpeg return code to an error. `EAGAIN` and `AVERROR_EOF` get their own
    /// variants; everything else keeps its code and `av_strerror` text.
    pub fn from_averror(code: i32) -> Error {
        debug_assert!(code < 0, "not an error code: {code}");
        if code == ffi::AVERROR(libc::EAGAIN) {
            Error::Again
        } else if code == ffi::AVERROR_EOF {
            Error::Eof
        } else if code == ffi::AVERROR_INVALIDDATA {
            Error::InvalidData
        } else {
            Error::Ffmpeg {
                code,
                message: strerror(code),
            }
        }
    }
}

/// The one place a raw FFmpeg return value is interpreted: negative is an error, anything else
/// is passed through (some calls return a count).
pub(crate) fn check(ret: c_int) -> Result<c_int, Error> {
    if ret < 0 {
        Err(Error::from_averror(ret))
    } else {
        Ok(ret)
    }
}

/// Turns a Rust string into a C string for FFmpeg, refusing interior NULs.
pub(crate) fn c_string(value: &str) -> Result<std::ffi::CString, Error> {
    std::ffi::CString::new(value).map_err(|_| Error::InteriorNul {
        value: value.to_owned(),
    })
}

fn strerror(code: c_int) -> String {
    const LEN: usize = 256;
    let mut buf = [0 as c_char; LEN];
    // SAFETY: `buf` is a writable buffer of `LEN` bytes; `av_strerror` writes at most `LEN`
    // bytes including the terminating NUL, and always terminates (it falls back to a generic
    // "Error number N occurred" text for unknown codes).
    unsafe { ffi::av_strerror(code, buf.as_mut_ptr(), LEN) };
    // SAFETY: `buf` holds a NUL-terminated string written just above and lives for this call.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn again_and_eof_have_their_own_variants() {
        assert_eq!(
            Error::from_averror(ffi::AVERROR(libc::EAGAIN)),
            Error::Again
        );
        assert_eq!(Error::from_averror(ffi::AVERROR_EOF), Error::Eof);
    }

    #[test]
    fn other_codes_keep_code_and_message() {
        let code = ffi::AVERROR(libc::EINVAL);
        match Error::from_averror(code) {
            Error::Ffmpeg { code: c, message } => {
                assert_eq!(c, code);
                assert_eq!(message, "Invalid argument");
            }
            other => panic!("unexpected {other:?}"),
        }
        let Error::Ffmpeg { message, .. } = Error::from_averror(ffi::AVERROR_ENCODER_NOT_FOUND)
        else {
            panic!("expected Ffmpeg");
        };
        assert_eq!(message, "Encoder not found");
    }

    #[test]
    fn check_passes_non_negative_values_through() {
        assert_eq!(check(0), Ok(0));
        assert_eq!(check(7), Ok(7));
        assert_eq!(check(ffi::AVERROR_EOF), Err(Error::Eof));
    }

    #[test]
    fn nul_in_string_is_refused() {
        assert!(matches!(c_string("a\0b"), Err(Error::InteriorNul { .. })));
    }
}
