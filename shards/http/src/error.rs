//! The errors of this layer: what a peer did wrong, and what a configuration got wrong.

/// Why a request was refused.
///
/// Every variant is the peer's fault and maps to a status code ([`HttpError::status`]). After
/// an error the [`RequestDecoder`](crate::RequestDecoder) is finished: the caller should write
/// a response head with that status and `Connection: close`, flush it, and close the
/// connection. The framing of whatever follows the bad bytes is unknown, so reading on would
/// invite request smuggling.
///
/// Limit errors carry the limit and the value seen. For a head that is still incomplete,
/// `seen` counts what has arrived so far, which already exceeds the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The head breaks the HTTP/1.1 grammar (RFC 9112 §2–§5): a bad method token or
    /// request-target, a bare CR, whitespace between a header name and its colon, obsolete line
    /// folding, a control byte in a header value, or an HTTP-version not of the form
    /// `HTTP/d.d`. Status 400.
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
    /// The request line is longer than
    /// [`Limits::request_line_max_bytes`](crate::Limits::request_line_max_bytes). Status 414.
    #[error("request line of {seen} bytes exceeds the limit of {limit}")]
    RequestLineTooLong {
        /// The configured limit, in bytes.
        limit: usize,
        /// The line's length, or the bytes of it received so far.
        seen: usize,
    },
    /// The head did not end within [`Limits::head_max_bytes`](crate::Limits::head_max_bytes).
    /// Status 431.
    #[error("request head of at least {seen} bytes exceeds the limit of {limit}")]
    HeadTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
        /// The bytes available without the head having ended within the limit.
        seen: usize,
    },
    /// The head has more header fields than
    /// [`Limits::headers_max_count`](crate::Limits::headers_max_count). Status 431.
    #[error("request has more than {limit} header fields")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
        /// The count at which parsing stopped: always `limit + 1`.
        seen: usize,
    },
    /// The request declares a body larger than
    /// [`Limits::body_max_bytes`](crate::Limits::body_max_bytes). Status 413.
    #[error("request body of {seen} bytes exceeds the limit of {limit}")]
    BodyTooLarge {
        /// The configured limit, in bytes.
        limit: u64,
        /// The declared `Content-Length`.
        seen: u64,
    },
    /// The HTTP-version is well formed but not 1.0 or 1.1 (for example `HTTP/2.0`, which is
    /// never sent in this textual form, or `HTTP/1.2`). Status 505.
    #[error("HTTP/{major}.{minor} is not supported")]
    UnsupportedVersion {
        /// The major version digit.
        major: u8,
        /// The minor version digit.
        minor: u8,
    },
    /// The request has a `Transfer-Encoding` header. Chunked (or any other transfer-coded)
    /// request bodies are not supported: shardcast takes no streamed uploads over HTTP.
    /// Status 501, as RFC 9112 §6.1 asks for a transfer coding the server does not implement.
    #[error("Transfer-Encoding on a request is not supported")]
    TransferEncodingNotSupported,
    /// The request has both `Content-Length` and `Transfer-Encoding`, the classic request
    /// smuggling shape (RFC 9112 §6.1). Status 400.
    #[error("request has both Content-Length and Transfer-Encoding")]
    ContentLengthWithTransferEncoding,
    /// A `Content-Length` value is not a decimal number that fits in 64 bits. Status 400.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Two `Content-Length` values disagree (RFC 9110 §8.6 allows only identical repeats).
    /// Status 400.
    #[error("conflicting Content-Length values {first} and {second}")]
    ConflictingContentLength {
        /// The first value.
        first: u64,
        /// The first value that differed from it.
        second: u64,
    },
    /// An HTTP/1.1 request has no `Host` header (RFC 9112 §3.2). Status 400.
    #[error("HTTP/1.1 request without a Host header")]
    MissingHost,
    /// The request has more than one `Host` header (RFC 9112 §3.2). Status 400.
    #[error("request with more than one Host header")]
    DuplicateHost,
    /// The `Host` value has bytes that cannot appear in `uri-host [ ":" port ]`
    /// (RFC 9112 §3.2). Status 400.
    #[error("invalid Host header")]
    InvalidHost,
}

impl HttpError {
    /// The status code to answer with before closing the connection.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_)
            | HttpError::ContentLengthWithTransferEncoding
            | HttpError::InvalidContentLength
            | HttpError::ConflictingContentLength { .. }
            | HttpError::MissingHost
            | HttpError::DuplicateHost
            | HttpError::InvalidHost => 400,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::RequestLineTooLong { .. } => 414,
            HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders { .. } => 431,
            HttpError::TransferEncodingNotSupported => 501,
            HttpError::UnsupportedVersion { .. } => 505,
        }
    }
}

/// Why a [`Limits`](crate::Limits) value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// A cap that must admit at least something is zero.
    #[error("{field} must be greater than zero")]
    Zero {
        /// The field's name.
        field: &'static str,
    },
    /// `head_max_bytes` is above [`HEAD_MAX_BYTES_CEILING`](crate::HEAD_MAX_BYTES_CEILING).
    #[error("head_max_bytes {head_max_bytes} exceeds the ceiling of {ceiling}")]
    HeadOverCeiling {
        /// The configured value.
        head_max_bytes: usize,
        /// The ceiling.
        ceiling: usize,
    },
    /// `headers_max_count` is above [`HEADERS_MAX_COUNT`](crate::HEADERS_MAX_COUNT).
    #[error("headers_max_count {headers_max_count} exceeds the ceiling of {ceiling}")]
    HeadersOverCeiling {
        /// The configured value.
        headers_max_count: usize,
        /// The ceiling.
        ceiling: usize,
    },
    /// `request_line_max_bytes` is above `head_max_bytes`, so the line cap could never be the
    /// one that fires.
    #[error(
        "request_line_max_bytes {request_line_max_bytes} exceeds head_max_bytes {head_max_bytes}"
    )]
    RequestLineOverHead {
        /// The configured line cap.
        request_line_max_bytes: usize,
        /// The configured head cap.
        head_max_bytes: usize,
    },
}
