//! The caps a [`RequestDecoder`](crate::RequestDecoder) enforces, and the ceilings on them.

use crate::LimitsError;

/// The most header fields any [`Limits`] may allow.
///
/// [`RequestHead`](crate::RequestHead) keeps each header as an 8-byte span in a fixed array of
/// this many slots (1 KiB), so decoding a request allocates nothing; the parser's scratch array
/// of the same length lives on the stack during a call (32 bytes a slot, 4 KiB, uninitialised).
pub const HEADERS_MAX_COUNT: usize = 128;

/// The largest request head any [`Limits`] may allow.
///
/// Header spans are stored as `u16` offsets into the head, which is what keeps a span at 8
/// bytes; a head larger than this could not be described by them.
pub const HEAD_MAX_BYTES_CEILING: usize = u16::MAX as usize;

/// Caps on what a peer may send in one request.
///
/// Every cap is checked while a head is still incomplete, so a peer that trickles bytes (a
/// slowloris) is refused as soon as it crosses a cap instead of making the caller buffer more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest request line (method, target and version, without its line ending).
    ///
    /// Costs no memory of its own: the line lives inside the head, which
    /// [`head_max_bytes`](Self::head_max_bytes) bounds. It bounds the URL that routes and logs
    /// see; a longer line is answered with 414. Must not exceed `head_max_bytes`.
    pub request_line_max_bytes: usize,
    /// The longest request head: leading empty lines, the request line, every header line and
    /// the blank line that ends the head.
    ///
    /// This is the most a connection ever buffers for an incomplete head, so the worst case is
    /// `connections × head_max_bytes` (10,000 connections each mid-head at the default 16 KiB:
    /// 160 MiB). It also bounds the parse work per call, as each call re-parses the buffered
    /// head from its start. A longer head is answered with 431. At most
    /// [`HEAD_MAX_BYTES_CEILING`].
    pub head_max_bytes: usize,
    /// The most header fields in one request.
    ///
    /// Costs no memory: [`RequestHead`](crate::RequestHead) has room for
    /// [`HEADERS_MAX_COUNT`] regardless. It bounds the linear scans done by header lookups.
    /// More headers are answered with 431. Between 1 and `HEADERS_MAX_COUNT`.
    pub headers_max_count: usize,
    /// The largest `Content-Length` a request may declare.
    ///
    /// The decoder never buffers a body (it hands out slices of the caller's buffer), so this
    /// costs nothing here; it bounds what the application may be asked to accept. A larger
    /// declared body is answered with 413 before any of it is read.
    pub body_max_bytes: u64,
}

impl Limits {
    /// The defaults: an 8 KiB request line, a 16 KiB head, 64 headers and a 1 MiB body.
    pub const DEFAULT: Limits = Limits {
        request_line_max_bytes: 8192,
        head_max_bytes: 16384,
        headers_max_count: 64,
        body_max_bytes: 1 << 20,
    };

    /// Checks the relations between the caps and their ceilings.
    ///
    /// Configuration loading should call this to report a bad value;
    /// [`RequestDecoder::new`](crate::RequestDecoder::new) asserts it.
    pub fn validate(&self) -> Result<(), LimitsError> {
        if self.request_line_max_bytes == 0 {
            return Err(LimitsError::Zero {
                field: "request_line_max_bytes",
            });
        }
        if self.head_max_bytes > HEAD_MAX_BYTES_CEILING {
            return Err(LimitsError::HeadOverCeiling {
                head_max_bytes: self.head_max_bytes,
                ceiling: HEAD_MAX_BYTES_CEILING,
            });
        }
        if self.request_line_max_bytes > self.head_max_bytes {
            return Err(LimitsError::RequestLineOverHead {
                request_line_max_bytes: self.request_line_max_bytes,
                head_max_bytes: self.head_max_bytes,
            });
        }
        if self.headers_max_count == 0 {
            return Err(LimitsError::Zero {
                field: "headers_max_count",
            });
        }
        if self.headers_max_count > HEADERS_MAX_COUNT {
            return Err(LimitsError::HeadersOverCeiling {
                headers_max_count: self.headers_max_count,
                ceiling: HEADERS_MAX_COUNT,
            });
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

const _: () = assert!(HEAD_MAX_BYTES_CEILING <= u16::MAX as usize);
const _: () = assert!(Limits::DEFAULT.head_max_bytes <= HEAD_MAX_BYTES_CEILING);
const _: () = assert!(Limits::DEFAULT.request_line_max_bytes <= Limits::DEFAULT.head_max_bytes);
const _: () = assert!(Limits::DEFAULT.headers_max_count <= HEADERS_MAX_COUNT);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Limits::default().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_limits_are_refused() {
        let base = Limits::DEFAULT;
        let cases = [
            Limits {
                request_line_max_bytes: 0,
                ..base
            },
            Limits {
                headers_max_count: 0,
                ..base
            },
            Limits {
                headers_max_count: HEADERS_MAX_COUNT + 1,
                ..base
            },
            Limits {
                head_max_bytes: HEAD_MAX_BYTES_CEILING + 1,
                ..base
            },
            Limits {
                request_line_max_bytes: base.head_max_bytes + 1,
                ..base
            },
        ];
        for limits in cases {
            assert!(limits.validate().is_err(), "{limits:?}");
        }
        let widest = Limits {
            request_line_max_bytes: HEAD_MAX_BYTES_CEILING,
            head_max_bytes: HEAD_MAX_BYTES_CEILING,
            headers_max_count: HEADERS_MAX_COUNT,
            body_max_bytes: u64::MAX,
        };
        assert_eq!(widest.validate(), Ok(()));
    }
}
