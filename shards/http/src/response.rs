//! Response heads: the status line and the headers every response carries.

use bytes::BufMut;

use crate::{HttpDate, RequestHead};

/// A response head to write into an output buffer.
///
/// # Use
///
/// Build it with [`new`](Self::new), set what applies, then [`write_to`](Self::write_to) a
/// `Vec<u8>` or `BytesMut` that the caller queues for sending, followed by the body (if any):
///
/// ```
/// # use shardcast_http::{HttpDate, ResponseHead};
/// let date = HttpDate::from_unix_seconds(784_111_777);
/// let mut out = Vec::new();
/// ResponseHead::new(200, &date)
///     .content_length(5)
///     .headers(&[("Content-Type", "text/plain")])
///     .write_to(&mut out);
/// out.extend_from_slice(b"hello");
/// ```
///
/// It writes, in order: `HTTP/1.1 {status} {reason}`, `Date`, `Server: shardcast`,
/// `Content-Length` when set, `Connection: close` when the connection will not persist (or
/// `Connection: keep-alive` when it will and the request was HTTP/1.0, which persists only when
/// told), then the extra headers, then the blank line.
///
/// The caller's part of the contract:
/// - Extra headers must not repeat `Date`, `Server`, `Content-Length` or `Connection`
///   (a 101 response may carry `Connection: upgrade` with [`keep_alive`](Self::keep_alive)
///   left true), and must hold no CR or LF: that would split the response, so it panics.
/// - Without a `Content-Length`, a response that has a body can only end by closing the
///   connection: set `keep_alive(false)`. 1xx, 204 and 304 responses, and responses to HEAD,
///   have no body.
#[derive(Clone, Copy, Debug)]
pub struct ResponseHead<'a> {
    status: u16,
    date: &'a HttpDate,
    content_length: Option<u64>,
    keep_alive: bool,
    request_version_minor: u8,
    headers: &'a [(&'a str, &'a str)],
}

impl<'a> ResponseHead<'a> {
    /// A head with this status and date, no `Content-Length`, no extra headers, for an HTTP/1.1
    /// connection that persists.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit code.
    pub fn new(status: u16, date: &'a HttpDate) -> Self {
        assert!((100..=999).contains(&status), "status {status}");
        Self {
            status,
            date,
            content_length: None,
            keep_alive: true,
            request_version_minor: 1,
            headers: &[],
        }
    }

    /// Takes persistence and version from the request being answered.
    pub fn for_request(self, request: &RequestHead<'_>) -> Self {
        self.keep_alive(request.keep_alive())
            .request_version_minor(request.version_minor())
    }

    /// Sets `Content-Length`.
    pub fn content_length(mut self, content_length: u64) -> Self {
        self.content_length = Some(content_length);
        self
    }

    /// Whether the connection persists after this response; `false` writes
    /// `Connection: close`, and the caller closes after sending.
    pub fn keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// The request's minor version (0 or 1), so an HTTP/1.0 client is told when the connection
    /// persists.
    pub fn request_version_minor(mut self, request_version_minor: u8) -> Self {
        self.request_version_minor = request_version_minor;
        self
    }

    /// Extra headers, written after the standard ones in the order given.
    pub fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    /// Appends the head, ending with its blank line, to `out`.
    pub fn write_to<B: BufMut>(&self, out: &mut B) {
        let mut status = itoa::Buffer::new();
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(status.format(self.status).as_bytes());
        out.put_slice(b" ");
        out.put_slice(reason(self.status).as_bytes());
        out.put_slice(b"\r\nDate: ");
        out.put_slice(self.date.as_bytes());
        out.put_slice(b"\r\nServer: shardcast\r\n");
        if let Some(content_length) = self.content_length {
            let mut digits = itoa::Buffer::new();
            out.put_slice(b"Content-Length: ");
            out.put_slice(digits.format(content_length).as_bytes());
            out.put_slice(b"\r\n");
        }
        if !self.keep_alive {
            out.put_slice(b"Connection: close\r\n");
        } else if self.request_version_minor == 0 {
            out.put_slice(b"Connection: keep-alive\r\n");
        }
        for &(name, value) in self.headers {
            check_extra_header(name, value);
            out.put_slice(name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the connection persists after this response.
    pub fn is_keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether a `Content-Length` was set.
    pub fn has_content_length(&self) -> bool {
        self.content_length.is_some()
    }
}

fn check_extra_header(name: &str, value: &str) {
    let splits = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
    assert!(
        !name.is_empty() && !splits(name) && !splits(value) && !name.contains(':'),
        "header {name:?} would corrupt the response head"
    );
    debug_assert!(
        !["date", "server", "content-length"]
            .iter()
            .any(|written| name.eq_ignore_ascii_case(written)),
        "{name} is written by ResponseHead itself"
    );
}

/// The reason phrase for `status`; empty for codes without one here, which RFC 9112 §4
/// allows.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoded, Limits, RequestDecoder};

    fn date() -> HttpDate {
        HttpDate::from_unix_seconds(784_111_777)
    }

    fn written(head: ResponseHead<'_>) -> String {
        let mut out = Vec::new();
        head.write_to(&mut out);
        let mut bytes = bytes::BytesMut::new();
        head.write_to(&mut bytes);
        assert_eq!(out, &bytes[..], "Vec and BytesMut agree");
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ok_with_length_and_headers() {
        let date = date();
        let head = ResponseHead::new(200, &date)
            .content_length(1234)
            .headers(&[
                ("Content-Type", "video/mp4"),
                ("Cache-Control", "max-age=31536000"),
            ]);
        assert_eq!(
            written(head),
            "HTTP/1.1 200 OK\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Server: shardcast\r\n\
             Content-Length: 1234\r\n\
             Content-Type: video/mp4\r\n\
             Cache-Control: max-age=31536000\r\n\
             \r\n"
        );
    }

    #[test]
    fn close_and_http10_keep_alive() {
        let date = date();
        assert_eq!(
            written(
                ResponseHead::new(404, &date)
                    .content_length(0)
                    .keep_alive(false)
            ),
            "HTTP/1.1 404 Not Found\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Server: shardcast\r\n\
             Content-Length: 0\r\n\
             Connection: close\r\n\
             \r\n"
        );
        assert_eq!(
            written(
                ResponseHead::new(304, &date)
                    .request_version_minor(0)
                    .headers(&[("ETag", "\"v1\"")])
            ),
            "HTTP/1.1 304 Not Modified\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Server: shardcast\r\n\
             Connection: keep-alive\r\n\
             ETag: \"v1\"\r\n\
             \r\n"
        );
        assert_eq!(
            written(
                ResponseHead::new(599, &date)
                    .keep_alive(false)
                    .request_version_minor(0)
            ),
            "HTTP/1.1 599 \r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Server: shardcast\r\n\
             Connection: close\r\n\
             \r\n"
        );
    }

    #[test]
    fn for_request_copies_persistence() {
        let date = date();
        let mut decoder = RequestDecoder::new(Limits::default());
        let Ok(Decoded::Head { head, .. }) =
            decoder.decode(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        else {
            panic!("a head");
        };
        let text = written(ResponseHead::new(200, &date).for_request(&head));
        assert!(text.contains("Connection: keep-alive\r\n"), "{text}");

        let mut decoder = RequestDecoder::new(Limits::default());
        let Ok(Decoded::Head { head, .. }) =
            decoder.decode(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        else {
            panic!("a head");
        };
        let text = written(ResponseHead::new(200, &date).for_request(&head));
        assert!(text.contains("Connection: close\r\n"), "{text}");
    }

    #[test]
    fn reasons_for_every_status_this_crate_answers_with() {
        for status in [400, 413, 414, 431, 501, 505, 206, 304, 416, 101, 503] {
            assert!(!reason(status).is_empty(), "{status}");
        }
    }

    #[test]
    #[should_panic(expected = "would corrupt")]
    fn header_injection_panics() {
        let date = date();
        let mut out = Vec::new();
        ResponseHead::new(302, &date)
            .headers(&[("Location", "/a\r\nSet-Cookie: x=y")])
            .write_to(&mut out);
    }
}
