//! Request decoding: [`RequestDecoder`], [`Decoded`], [`RequestHead`] and [`Method`].

use std::fmt;
use std::mem::MaybeUninit;

use crate::{HttpError, Limits, HEADERS_MAX_COUNT};

/// Decodes the requests of one connection from the bytes it receives.
///
/// # Call order
///
/// 1. Call [`decode`](Self::decode) with everything received and not yet consumed.
/// 2. On [`Decoded::Head`] or [`Decoded::Body`], act on the item, drop `consumed` bytes from
///    the front, and call `decode` again with the rest (it may be empty). Pipelined requests
///    come out one per call, in order.
/// 3. On [`Decoded::NeedMore`], keep the unconsumed bytes, wait for more, append them and call
///    `decode` again with the whole of it. The bytes kept are always a prefix of one request
///    head, never more than [`Limits::head_max_bytes`]; bodies are never kept, because body
///    bytes come out as soon as they arrive.
/// 4. On `Err`, answer with [`HttpError::status`] and `Connection: close`, then close the
///    connection. The decoder is finished; calling `decode` again is a bug and panics.
///
/// A caller that decodes from a pooled receive buffer can therefore hand the buffer back after
/// step 3 once it has copied the (small) tail, or after step 2 once it has acted on the items
/// that borrow from it.
///
/// The decoder does not stop at a request whose [`RequestHead::keep_alive`] is false, nor after
/// a WebSocket upgrade: the caller stops calling it (after the response for the former; at once
/// for the latter, handing the bytes after the head to the WebSocket codec).
///
/// Each call re-parses a buffered head from its start, so a head that arrives in `n` pieces
/// costs up to `n × head_max_bytes` bytes of parsing; the caller's header timeout bounds `n`.
#[derive(Debug)]
pub struct RequestDecoder {
    limits: Limits,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Inside a `Content-Length` body with this many bytes still to come (never zero).
    Body { remaining_bytes: u64 },
    /// An error was returned; the connection must be closed.
    Failed,
}

/// One item decoded from the front of a buffer.
///
/// A `Head` is about 1.1 KiB (its fixed header array) and is returned by value: that is the
/// price of decoding without allocating, and the value is consumed at once, never stored.
#[derive(Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a head is returned by value so that decoding never allocates"
)]
pub enum Decoded<'b> {
    /// A complete request head was parsed from the first `consumed` bytes.
    ///
    /// If it declares a non-zero `Content-Length`, the next calls yield its body as
    /// [`Decoded::Body`] before the next head.
    Head {
        /// The parsed head, borrowing from the buffer.
        head: RequestHead<'b>,
        /// The head's length in bytes, including leading empty lines and the final blank line.
        consumed: usize,
    },
    /// Request body bytes (`Content-Length` bodies only). The caller may ignore them, but must
    /// still drop `consumed` bytes.
    Body {
        /// The body bytes at the front of the buffer.
        data: &'b [u8],
        /// Always `data.len()`.
        consumed: usize,
        /// Whether these are the body's last bytes.
        last: bool,
    },
    /// Nothing can be decoded until more bytes arrive: the buffer holds an incomplete head
    /// (to be kept and extended) or is empty.
    NeedMore,
}

impl RequestDecoder {
    /// A decoder for a new connection.
    ///
    /// # Panics
    ///
    /// If `limits` fails [`Limits::validate`]; configuration loading should have refused it.
    pub fn new(limits: Limits) -> Self {
        if let Err(error) = limits.validate() {
            panic!("invalid HTTP limits: {error}");
        }
        Self {
            limits,
            state: State::Head,
        }
    }

    /// The caps this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The body bytes still expected for the current request; zero between requests.
    pub fn body_remaining_bytes(&self) -> u64 {
        match self.state {
            State::Body { remaining_bytes } => remaining_bytes,
            State::Head | State::Failed => 0,
        }
    }

    /// Decodes one item from the front of `buf`; see the type's documentation for the order.
    ///
    /// # Panics
    ///
    /// If called again after it returned an error.
    pub fn decode<'b>(&mut self, buf: &'b [u8]) -> Result<Decoded<'b>, HttpError> {
        let result = match self.state {
            State::Head => self.decode_head(buf),
            State::Body { remaining_bytes } => Ok(self.decode_body(buf, remaining_bytes)),
            State::Failed => panic!("decode called after an error; the connection must close"),
        };
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn decode_head<'b>(&mut self, buf: &'b [u8]) -> Result<Decoded<'b>, HttpError> {
        let limits = self.limits;
        // Nothing past the head cap is parsed: a head that has not ended inside this window is
        // refused, however much more the caller holds.
        let window = &buf[..buf.len().min(limits.head_max_bytes)];
        // Until the request line has ended within its cap, only the part of it the cap allows
        // is parsed. A peer's fault is thus judged by whichever comes first in the byte stream,
        // a grammar error or a cap, and the verdict does not depend on how the bytes were split.
        let line = RequestLine::find(window);
        let line_too_long = line.len > limits.request_line_max_bytes;
        let input = if line_too_long || !line.terminated {
            &window[..line.start + line.len.min(limits.request_line_max_bytes)]
        } else {
            window
        };

        let mut scratch = [const { MaybeUninit::uninit() }; HEADERS_MAX_COUNT];
        let mut request = httparse::Request::new(&mut []);
        let parsed =
            request.parse_with_uninit_headers(input, &mut scratch[..limits.headers_max_count]);
        let status = match parsed {
            Ok(status) => status,
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HttpError::TooManyHeaders {
                    limit: limits.headers_max_count,
                    seen: limits.headers_max_count + 1,
                })
            }
            Err(httparse::Error::Version) => match version_error(input) {
                Some(error) => return Err(error),
                None => httparse::Status::Partial,
            },
            Err(error) => return Err(HttpError::Malformed(error)),
        };
        let consumed = match status {
            httparse::Status::Complete(consumed) => consumed,
            httparse::Status::Partial if line_too_long => {
                return Err(HttpError::RequestLineTooLong {
                    limit: limits.request_line_max_bytes,
                    seen: line.len,
                })
            }
            httparse::Status::Partial if buf.len() > limits.head_max_bytes => {
                return Err(HttpError::HeadTooLarge {
                    limit: limits.head_max_bytes,
                    seen: buf.len(),
                })
            }
            httparse::Status::Partial => return Ok(Decoded::NeedMore),
        };
        assert!(consumed <= window.len() && !line_too_long && line.terminated);

        let head = RequestHead::from_parsed(&buf[..consumed], &request)?;
        let body_bytes = head.content_length.unwrap_or(0);
        if body_bytes > limits.body_max_bytes {
            return Err(HttpError::BodyTooLarge {
                limit: limits.body_max_bytes,
                seen: body_bytes,
            });
        }
        if body_bytes > 0 {
            self.state = State::Body {
                remaining_bytes: body_bytes,
            };
        }
        Ok(Decoded::Head { head, consumed })
    }

    fn decode_body<'b>(&mut self, buf: &'b [u8], remaining_bytes: u64) -> Decoded<'b> {
        assert!(remaining_bytes > 0);
        if buf.is_empty() {
            return Decoded::NeedMore;
        }
        let take = usize::try_from(remaining_bytes).map_or(buf.len(), |r| r.min(buf.len()));
        let left = remaining_bytes - to_u64(take);
        self.state = if left == 0 {
            State::Head
        } else {
            State::Body {
                remaining_bytes: left,
            }
        };
        Decoded::Body {
            data: &buf[..take],
            consumed: take,
            last: left == 0,
        }
    }
}

/// The request method. Methods are case-sensitive: `get` is [`Method::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `PATCH`
    Patch,
    /// Any other token; [`RequestHead::method_name`] has it.
    Other,
}

impl Method {
    /// The method named by `token`.
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }
}

/// A parsed request head, borrowing from the buffer it was decoded from.
///
/// The head has passed every check of this layer: the grammar, the caps, one consistent
/// `Content-Length`, no `Transfer-Encoding`, and a single valid `Host` (required on HTTP/1.1).
/// Headers are kept as offsets into the head, in a fixed array, so nothing is allocated.
///
/// It lives as long as the buffer does: act on it (or copy what you need) before handing a
/// pooled buffer back.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestHead<'b> {
    bytes: &'b [u8],
    method: Method,
    method_name: &'b str,
    target: &'b str,
    version_minor: u8,
    keep_alive: bool,
    content_length: Option<u64>,
    host: Option<&'b str>,
    connection_upgrade: bool,
    upgrade_websocket: bool,
    headers_len: usize,
    headers: [HeaderSpan; HEADERS_MAX_COUNT],
}

impl<'b> RequestHead<'b> {
    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The method token as sent, for [`Method::Other`] and for logs.
    pub fn method_name(&self) -> &'b str {
        self.method_name
    }

    /// The request-target as sent: usually origin-form (`/live/a/index.m3u8?token=x`), but
    /// absolute-form and asterisk-form (`*`) pass through unchanged.
    pub fn target(&self) -> &'b str {
        self.target
    }

    /// The target up to its first `?`, still percent-encoded.
    pub fn path(&self) -> &'b str {
        self.target
            .split_once('?')
            .map_or(self.target, |(path, _)| path)
    }

    /// The target after its first `?`, still percent-encoded; `None` without a `?`.
    pub fn query(&self) -> Option<&'b str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub fn version_minor(&self) -> u8 {
        self.version_minor
    }

    /// Whether the connection may carry another request after this one (RFC 9112 §9.3).
    ///
    /// A `close` option in `Connection` ends it; otherwise HTTP/1.1 persists by default and
    /// HTTP/1.0 persists only with a `keep-alive` option. Options are matched as
    /// case-insensitive tokens across every `Connection` header.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The declared body length; `None` when there is no `Content-Length` (and thus no body).
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The `Host` value (`uri-host [ ":" port ]`); `None` only on HTTP/1.0 without one.
    pub fn host(&self) -> Option<&'b str> {
        self.host
    }

    /// Whether this is a WebSocket opening handshake (RFC 6455 §4.2.1): a GET over HTTP/1.1
    /// whose `Connection` options include `upgrade` and whose `Upgrade` protocols include
    /// `websocket`, both case-insensitive. The `Sec-WebSocket-*` headers are the WebSocket
    /// codec's to check.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.method == Method::Get
            && self.version_minor == 1
            && self.connection_upgrade
            && self.upgrade_websocket
    }

    /// The value of the first header named `name` (case-insensitive), without surrounding
    /// whitespace. For headers that may repeat, use [`headers`](Self::headers).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        let bytes = self.bytes;
        self.spans()
            .iter()
            .find(|span| span.name(bytes).eq_ignore_ascii_case(name.as_bytes()))
            .map(|span| span.value(bytes))
    }

    /// The first header named `name` as text; `None` if absent or not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&'b str> {
        self.header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The `Range` value, for [`parse_range`](crate::parse_range).
    pub fn range(&self) -> Option<&'b str> {
        self.header_str("range")
    }

    /// The `If-None-Match` value, for [`etag_matches`](crate::etag_matches).
    pub fn if_none_match(&self) -> Option<&'b str> {
        self.header_str("if-none-match")
    }

    /// Every header as (name, value), in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&'b str, &'b [u8])> + '_ {
        let bytes = self.bytes;
        self.spans().iter().map(move |span| {
            let name = std::str::from_utf8(span.name(bytes))
                .expect("httparse admits only token bytes in header names");
            (name, span.value(bytes))
        })
    }

    /// The number of headers.
    pub fn headers_len(&self) -> usize {
        self.headers_len
    }

    /// The head's bytes as received, including the final blank line.
    pub fn as_bytes(&self) -> &'b [u8] {
        self.bytes
    }

    fn spans(&self) -> &[HeaderSpan] {
        &self.headers[..self.headers_len]
    }

    /// Builds a head from a complete parse of `bytes`, checking the headers that frame the
    /// message and name its host.
    fn from_parsed(
        bytes: &'b [u8],
        request: &httparse::Request<'_, 'b>,
    ) -> Result<RequestHead<'b>, HttpError> {
        let (Some(method_name), Some(target), Some(version_minor)) =
            (request.method, request.path, request.version)
        else {
            unreachable!("httparse fills the request line of a complete head");
        };
        assert!(version_minor <= 1);
        assert!(request.headers.len() <= HEADERS_MAX_COUNT);

        let mut head = RequestHead {
            bytes,
            method: Method::from_token(method_name),
            method_name,
            target,
            version_minor,
            keep_alive: false,
            content_length: None,
            host: None,
            connection_upgrade: false,
            upgrade_websocket: false,
            headers_len: request.headers.len(),
            headers: [HeaderSpan::EMPTY; HEADERS_MAX_COUNT],
        };
        let mut options = ConnectionOptions::default();
        let mut transfer_encoding = false;
        for (slot, header) in head.headers.iter_mut().zip(request.headers.iter()) {
            *slot = HeaderSpan::new(bytes, header);
            let (name, value) = (header.name, header.value);
            if name.eq_ignore_ascii_case("content-length") {
                let length = parse_content_length(value)?;
                match head.content_length {
                    Some(first) if first != length => {
                        return Err(HttpError::ConflictingContentLength {
                            first,
                            second: length,
                        })
                    }
                    _ => head.content_length = Some(length),
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoding = true;
            } else if name.eq_ignore_ascii_case("host") {
                if head.host.is_some() {
                    return Err(HttpError::DuplicateHost);
                }
                head.host = Some(parse_host(value)?);
            } else if name.eq_ignore_ascii_case("connection") {
                options.add(value);
            } else if name.eq_ignore_ascii_case("upgrade") {
                head.upgrade_websocket |=
                    tokens(value).any(|t| t.eq_ignore_ascii_case(b"websocket"));
            }
        }

        if transfer_encoding && head.content_length.is_some() {
            return Err(HttpError::ContentLengthWithTransferEncoding);
        }
        if transfer_encoding {
            return Err(HttpError::TransferEncodingNotSupported);
        }
        if version_minor == 1 && head.host.is_none() {
            return Err(HttpError::MissingHost);
        }
        head.keep_alive = !options.close && (version_minor == 1 || options.keep_alive);
        head.connection_upgrade = options.upgrade;
        Ok(head)
    }
}

impl fmt::Debug for RequestHead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a, 'b>(&'a RequestHead<'b>);
        impl fmt::Debug for Headers<'_, '_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(
                        self.0
                            .headers()
                            .map(|(name, value)| (name, String::from_utf8_lossy(value))),
                    )
                    .finish()
            }
        }
        f.debug_struct("RequestHead")
            .field("method", &self.method_name)
            .field("target", &self.target)
            .field("version_minor", &self.version_minor)
            .field("keep_alive", &self.keep_alive)
            .field("content_length", &self.content_length)
            .field("host", &self.host)
            .field("headers", &Headers(self))
            .finish()
    }
}

/// Where one header's name and value lie in the head, as offsets from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeaderSpan {
    name_start: u16,
    name_end: u16,
    value_start: u16,
    value_end: u16,
}

impl HeaderSpan {
    const EMPTY: HeaderSpan = HeaderSpan {
        name_start: 0,
        name_end: 0,
        value_start: 0,
        value_end: 0,
    };

    fn new(head: &[u8], header: &httparse::Header<'_>) -> HeaderSpan {
        let (name_start, name_end) = offsets_in(head, header.name.as_bytes());
        let (value_start, value_end) = offsets_in(head, header.value);
        HeaderSpan {
            name_start,
            name_end,
            value_start,
            value_end,
        }
    }

    fn name<'b>(&self, head: &'b [u8]) -> &'b [u8] {
        &head[usize::from(self.name_start)..usize::from(self.name_end)]
    }

    fn value<'b>(&self, head: &'b [u8]) -> &'b [u8] {
        &head[usize::from(self.value_start)..usize::from(self.value_end)]
    }
}

/// The start and end of `part` as offsets into `base`, which must contain it.
///
/// The offsets fit in `u16` because a head is at most `HEAD_MAX_BYTES_CEILING` bytes.
fn offsets_in(base: &[u8], part: &[u8]) -> (u16, u16) {
    let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    assert!(start <= base.len() && part.len() <= base.len() - start);
    let end = start + part.len();
    let narrow = |offset: usize| u16::try_from(offset).expect("a head fits in u16 offsets");
    (narrow(start), narrow(end))
}

/// `Connection` options that decide persistence and upgrades.
#[derive(Default)]
struct ConnectionOptions {
    close: bool,
    keep_alive: bool,
    upgrade: bool,
}

impl ConnectionOptions {
    fn add(&mut self, value: &[u8]) {
        for token in tokens(value) {
            self.close |= token.eq_ignore_ascii_case(b"close");
            self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            self.upgrade |= token.eq_ignore_ascii_case(b"upgrade");
        }
    }
}

/// The non-empty elements of a comma-separated list (RFC 9110 §5.6.1), without their OWS.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|token| !token.is_empty())
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Parses `1*DIGIT`, or a list of identical ones (`5, 5`), which RFC 9110 §8.6 lets a
/// recipient accept as one value.
fn parse_content_length(value: &[u8]) -> Result<u64, HttpError> {
    let mut length = None;
    for element in value.split(|&b| b == b',').map(trim_ows) {
        let parsed = parse_decimal(element).ok_or(HttpError::InvalidContentLength)?;
        match length {
            Some(first) if first != parsed => {
                return Err(HttpError::ConflictingContentLength {
                    first,
                    second: parsed,
                })
            }
            _ => length = Some(parsed),
        }
    }
    length.ok_or(HttpError::InvalidContentLength)
}

/// `1*DIGIT` as a `u64`; `None` if empty, not all digits, or too large.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Checks a `Host` value against the characters of `uri-host [ ":" port ]` (RFC 3986: reg-name,
/// IPv4 and bracketed IP literals). An empty value is allowed (RFC 9112 §3.2).
fn parse_host(value: &[u8]) -> Result<&str, HttpError> {
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(b);
    if !value.iter().all(allowed) {
        return Err(HttpError::InvalidHost);
    }
    std::str::from_utf8(value).map_err(|_| HttpError::InvalidHost)
}

/// Where the request line lies in a buffered head.
struct RequestLine {
    /// Its first byte, after any leading empty lines (RFC 9112 §2.2).
    start: usize,
    /// Its length without the line ending; for an unterminated line, without a trailing CR
    /// either, as that may be the first half of a CRLF.
    len: usize,
    /// Whether its line ending has arrived.
    terminated: bool,
}

impl RequestLine {
    fn find(window: &[u8]) -> RequestLine {
        let mut start = 0;
        loop {
            match &window[start..] {
                [b'\r', b'\n', ..] => start += 2,
                [b'\n', ..] => start += 1,
                _ => break,
            }
        }
        let rest = &window[start..];
        let (line, terminated) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], true),
            None => (rest, false),
        };
        let len = line.strip_suffix(b"\r").unwrap_or(line).len();
        RequestLine {
            start,
            len,
            terminated,
        }
    }

    fn bytes<'a>(&self, window: &'a [u8]) -> &'a [u8] {
        &window[self.start..self.start + self.len]
    }
}

/// Tells an HTTP-version of another number (505) from one that is not a version at all (400).
///
/// `httparse` refuses both as soon as a byte differs from `HTTP/1.0` or `HTTP/1.1`. Returns
/// `None` when the line has not ended and what has arrived could still be `HTTP/d.d`: the
/// answer then depends on bytes not yet received, and deciding early would make a split head
/// decode differently from a whole one.
fn version_error(window: &[u8]) -> Option<HttpError> {
    let malformed = Some(HttpError::Malformed(httparse::Error::Version));
    let line = RequestLine::find(window);
    let terminated = line.terminated;
    let line = line.bytes(window);
    // The method and the target contain no spaces, so the version is what follows the second.
    let Some(version) = line.splitn(3, |&b| b == b' ').nth(2) else {
        return malformed;
    };
    let shaped = version.len() <= VERSION_SHAPE.len()
        && version.iter().zip(VERSION_SHAPE).all(|(&b, &shape)| {
            if shape == b'#' {
                b.is_ascii_digit()
            } else {
                b == shape
            }
        });
    if !terminated {
        return if shaped { None } else { malformed };
    }
    if shaped && version.len() == VERSION_SHAPE.len() {
        return Some(HttpError::UnsupportedVersion {
            major: version[5] - b'0',
            minor: version[7] - b'0',
        });
    }
    malformed
}

/// The form of an HTTP-version (RFC 9112 §2.3), `#` standing for a digit.
const VERSION_SHAPE: &[u8; 8] = b"HTTP/#.#";

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).expect("usize fits in u64 on every supported target")
}

#[cfg(test)]
mod tests;
