//! The `http_request` target: [`shardcast_http::RequestDecoder`] against its documented
//! contract, with the routes' accessors and the WebSocket handshake check on every head.

use shardcast_http::{
    etag_matches, parse_range, Decoded, HttpDate, HttpError, Limits, Method, RangeOutcome,
    RequestDecoder, RequestHead, HEADERS_MAX_COUNT,
};

use crate::{Input, BYTE_AT_A_TIME_MAX_BYTES};

/// The caps an input can select (by its config byte, modulo the length): the defaults, and
/// caps that short inputs reach, one of them allowing a single header and no body at all.
const LIMITS: [Limits; 3] = [
    Limits::DEFAULT,
    Limits {
        request_line_max_bytes: 64,
        head_max_bytes: 256,
        headers_max_count: 4,
        body_max_bytes: 64,
    },
    Limits {
        request_line_max_bytes: 24,
        head_max_bytes: 48,
        headers_max_count: 1,
        body_max_bytes: 0,
    },
];

/// The subprotocol shardcast's WebSocket endpoint speaks.
const SUBPROTOCOL: &str = "danmaku.v1";

/// Decodes the payload of `data` (see [`Input`]) whole, in the pieces the input chose, and one
/// byte per call, each time the way a shard does (decode from the received bytes, keep only
/// what `NeedMore` leaves and append the next read to it), and checks:
///
/// - the three runs give the same heads, bodies and error (up to how many bytes of an
///   over-long line or head had arrived, which the error reports as `seen`);
/// - `NeedMore` never leaves the caller holding more than the caps allow: at most
///   `head_max_bytes`, a request line of at most `request_line_max_bytes`, at most
///   `headers_max_count` complete header lines, and nothing at all inside a body;
/// - each head is the `consumed` bytes it claims, within the caps, self-consistent (path and
///   query rebuild the target, HTTP/1.1 has a Host, a WebSocket upgrade is a GET over
///   HTTP/1.1), and its `Range`, `If-None-Match` and handshake headers are handled without a
///   panic, the range within the representation;
/// - bodies come out in non-empty slices that add up to `Content-Length`, and limit errors
///   carry the limit and a value beyond it.
pub fn http_request(data: &[u8]) {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let limits = LIMITS[usize::from(input.config) % LIMITS.len()];
    let whole = drive(limits, [input.payload]);
    let pieces = drive(limits, input.pieces());
    assert_eq!(pieces, whole, "split at the chosen cuts");
    if input.payload.len() <= BYTE_AT_A_TIME_MAX_BYTES {
        let bytes = drive(limits, input.payload.chunks(1));
        assert_eq!(bytes, whole, "one byte at a time");
    }
}

/// What a connection saw, owned, so that runs over differently split input can be compared.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Head {
        bytes: Vec<u8>,
        method: Method,
        target: String,
        version_minor: u8,
        keep_alive: bool,
        content_length: Option<u64>,
        host: Option<String>,
        websocket_upgrade: bool,
        /// The handshake answer's status: 101 or the refusal's.
        handshake_status: u16,
    },
    /// A whole body (or what arrived of it), however many `Decoded::Body` items carried it.
    Body(Vec<u8>),
    Error(HttpError),
}

/// Feeds `chunks` to one decoder the way a shard does, checking every item it returns.
fn drive<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Seen> {
    let mut decoder = RequestDecoder::new(limits);
    let mut seen = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut body = Vec::new();
    for chunk in chunks {
        let pending;
        let mut input: &[u8] = if tail.is_empty() {
            chunk
        } else {
            tail.extend_from_slice(chunk);
            pending = std::mem::take(&mut tail);
            &pending
        };
        loop {
            let remaining_before = decoder.body_remaining_bytes();
            match decoder.decode(input) {
                Ok(Decoded::Head { head, consumed }) => {
                    assert_eq!(remaining_before, 0, "a head inside a body");
                    assert!(consumed > 0 && consumed <= input.len());
                    assert_eq!(head.as_bytes(), &input[..consumed]);
                    seen.push(check_head(&limits, &head));
                    assert_eq!(
                        decoder.body_remaining_bytes(),
                        head.content_length().unwrap_or(0)
                    );
                    input = &input[consumed..];
                }
                Ok(Decoded::Body {
                    data,
                    consumed,
                    last,
                }) => {
                    assert!(consumed == data.len() && consumed > 0);
                    assert!(consumed as u64 <= remaining_before);
                    let remaining = decoder.body_remaining_bytes();
                    assert_eq!(remaining, remaining_before - consumed as u64);
                    assert_eq!(last, remaining == 0);
                    assert_eq!(data, &input[..consumed]);
                    body.extend_from_slice(data);
                    if last {
                        seen.push(Seen::Body(std::mem::take(&mut body)));
                    }
                    input = &input[consumed..];
                }
                Ok(Decoded::NeedMore) => {
                    check_kept(&limits, &decoder, input);
                    tail = input.to_vec();
                    break;
                }
                Err(error) => {
                    check_error(&limits, &error);
                    seen.push(Seen::Error(comparable(error)));
                    return seen;
                }
            }
        }
    }
    if !body.is_empty() {
        seen.push(Seen::Body(body));
    }
    seen
}

/// Reads everything a route would from `head` and checks it against the caps.
fn check_head(limits: &Limits, head: &RequestHead<'_>) -> Seen {
    let bytes = head.as_bytes();
    assert!(bytes.len() <= limits.head_max_bytes);
    assert!(head.headers_len() <= limits.headers_max_count);
    assert!(head.headers_len() <= HEADERS_MAX_COUNT);
    assert_eq!(head.headers().count(), head.headers_len());
    for (name, value) in head.headers() {
        assert!(!name.is_empty());
        assert!(name.len() + value.len() < bytes.len());
    }
    // "METHOD SP target SP HTTP/1.x": the request line within its cap.
    let line_len = head.method_name().len() + 1 + head.target().len() + 1 + 8;
    assert!(
        line_len <= limits.request_line_max_bytes,
        "{line_len}-byte request line"
    );
    assert_eq!(Method::from_token(head.method_name()), head.method());
    assert!(head.version_minor() <= 1);
    if head.version_minor() == 1 {
        assert!(head.host().is_some(), "HTTP/1.1 without a Host");
    }
    let rebuilt = match head.query() {
        Some(query) => format!("{}?{query}", head.path()),
        None => head.path().to_owned(),
    };
    assert_eq!(rebuilt, head.target());
    if let Some(length) = head.content_length() {
        assert!(length <= limits.body_max_bytes);
    }
    if head.is_websocket_upgrade() {
        assert!(head.method() == Method::Get && head.version_minor() == 1);
    }
    if let Some(range) = head.range() {
        check_range(range);
    }
    if let Some(tags) = head.if_none_match() {
        let _ = etag_matches(tags, "\"3-abc\"");
        let _ = etag_matches(tags, "W/\"x\"");
    }
    Seen::Head {
        bytes: bytes.to_vec(),
        method: head.method(),
        target: head.target().to_owned(),
        version_minor: head.version_minor(),
        keep_alive: head.keep_alive(),
        content_length: head.content_length(),
        host: head.host().map(str::to_owned),
        websocket_upgrade: head.is_websocket_upgrade(),
        handshake_status: handshake(head),
    }
}

/// A satisfiable range lies within the representation, for a few representation sizes.
fn check_range(range: &str) {
    for len in [0, 1, 100, 1 << 40, u64::MAX] {
        if let RangeOutcome::Partial {
            start,
            end_inclusive,
        } = parse_range(range, len)
        {
            assert!(
                start <= end_inclusive && end_inclusive < len,
                "{range:?} on {len} bytes gave {start}..={end_inclusive}"
            );
        }
    }
}

/// Runs the WebSocket opening-handshake check on the head and writes its answer; returns the
/// status written.
fn handshake(head: &RequestHead<'_>) -> u16 {
    let date = HttpDate::from_unix_seconds(0);
    let mut response = Vec::new();
    let status = match shardcast_ws::accept(head, SUBPROTOCOL) {
        Ok(accept) => {
            assert!(head.is_websocket_upgrade(), "accepted a non-upgrade");
            assert_eq!(accept.accept_key().len(), shardcast_ws::ACCEPT_KEY_LEN);
            accept.write_response(&mut response, &date);
            101
        }
        Err(error) => {
            error.write_response(&mut response, &date);
            error.status()
        }
    };
    let status_line = format!("HTTP/1.1 {status} ");
    assert!(response.starts_with(status_line.as_bytes()));
    assert!(response.ends_with(b"\r\n\r\n"));
    status
}

/// `NeedMore` must never leave the caller holding more than the caps allow.
fn check_kept(limits: &Limits, decoder: &RequestDecoder, kept: &[u8]) {
    if decoder.body_remaining_bytes() > 0 {
        assert!(kept.is_empty(), "body bytes kept");
        return;
    }
    assert!(
        kept.len() <= limits.head_max_bytes,
        "NeedMore with {} bytes kept, cap {}",
        kept.len(),
        limits.head_max_bytes
    );
    // Leading empty lines are skipped (RFC 9112 §2.2); the request line follows.
    let mut rest = kept;
    while let Some(after) = rest
        .strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\n"))
    {
        rest = after;
    }
    let (line, after_line) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => (&rest[..end], Some(&rest[end + 1..])),
        None => (rest, None),
    };
    let line_len = line.strip_suffix(b"\r").unwrap_or(line).len();
    assert!(
        line_len <= limits.request_line_max_bytes,
        "NeedMore with a {line_len}-byte request line, cap {}",
        limits.request_line_max_bytes
    );
    // Every complete line after the request line is a header that the parser has accepted.
    if let Some(after_line) = after_line {
        let header_lines = after_line.iter().filter(|&&b| b == b'\n').count();
        assert!(
            header_lines <= limits.headers_max_count,
            "NeedMore with {header_lines} header lines, cap {}",
            limits.headers_max_count
        );
    }
}

/// The error with what may differ between splits taken out.
///
/// For a request line or head still incomplete when a cap is crossed, `seen` is documented as
/// "the bytes of it received so far": a peer trickling bytes is refused at the first byte over
/// the cap, a whole buffer reports more. Only the verdict (the variant and its limit) must not
/// depend on the split; `check_error` has already checked that `seen` exceeds the limit.
fn comparable(error: HttpError) -> HttpError {
    match error {
        HttpError::RequestLineTooLong { limit, .. } => {
            HttpError::RequestLineTooLong { limit, seen: 0 }
        }
        HttpError::HeadTooLarge { limit, .. } => HttpError::HeadTooLarge { limit, seen: 0 },
        other => other,
    }
}

/// Limit errors carry the limit and a value beyond it; every error has a status.
fn check_error(limits: &Limits, error: &HttpError) {
    match *error {
        HttpError::RequestLineTooLong { limit, seen } => {
            assert_eq!(limit, limits.request_line_max_bytes);
            assert!(seen > limit, "{error:?}");
        }
        HttpError::HeadTooLarge { limit, seen } => {
            assert_eq!(limit, limits.head_max_bytes);
            assert!(seen > limit, "{error:?}");
        }
        HttpError::TooManyHeaders { limit, seen } => {
            assert_eq!(limit, limits.headers_max_count);
            assert_eq!(seen, limit + 1);
        }
        HttpError::BodyTooLarge { limit, seen } => {
            assert_eq!(limit, limits.body_max_bytes);
            assert!(seen > limit, "{error:?}");
        }
        _ => {}
    }
    assert!(matches!(error.status(), 400 | 413 | 414 | 431 | 501 | 505));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<Seen> {
        let path = format!("{}/seeds/http_request/{name}", env!("CARGO_MANIFEST_DIR"));
        let data = std::fs::read(path).expect("seed");
        let input = Input::parse(&data).unwrap();
        drive(
            LIMITS[usize::from(input.config) % LIMITS.len()],
            [input.payload],
        )
    }

    fn shape(seen: &[Seen]) -> Vec<String> {
        seen.iter()
            .map(|seen| match seen {
                Seen::Head {
                    target,
                    handshake_status,
                    ..
                } => format!("head {target} {handshake_status}"),
                Seen::Body(body) => format!("body {}", String::from_utf8_lossy(body)),
                Seen::Error(error) => format!("error {}", error.status()),
            })
            .collect()
    }

    /// The seeds are the requests they are named after, not early errors.
    #[test]
    fn seeds_decode_as_named() {
        let cases: [(&str, &[&str]); 7] = [
            (
                "get_playlist",
                &["head /live/a/index.m3u8?_HLS_msn=12&_HLS_part=3 400"],
            ),
            ("websocket_upgrade", &["head /ws 101"]),
            ("range_etag", &["head /live/a/seg_42.m4s 400"]),
            (
                "post_body_then_pipelined",
                &["head /api 405", "body hello", "head /x 405"],
            ),
            ("http10_close", &["head / 400"]),
            ("chunked_refused", &["error 501"]),
            ("request_line_over_cap", &["error 414"]),
        ];
        for (name, expected) in cases {
            assert_eq!(shape(&seed(name)), expected, "{name}");
        }
    }
}
