use super::*;

/// Small caps, so tests can cross them with short inputs.
const SMALL: Limits = Limits {
    request_line_max_bytes: 40,
    head_max_bytes: 128,
    headers_max_count: 4,
    body_max_bytes: 16,
};

fn decoder() -> RequestDecoder {
    RequestDecoder::new(Limits::default())
}

fn decode_head(bytes: &[u8]) -> (RequestHead<'_>, usize) {
    match decoder().decode(bytes) {
        Ok(Decoded::Head { head, consumed }) => (head, consumed),
        other => panic!("expected a head from {:?}, got {other:?}", lossy(bytes)),
    }
}

fn decode_error(limits: Limits, bytes: &[u8]) -> HttpError {
    match RequestDecoder::new(limits).decode(bytes) {
        Err(error) => error,
        other => panic!("expected an error from {:?}, got {other:?}", lossy(bytes)),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a connection saw, owned, so runs over differently split input can be compared.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Head {
        method: String,
        target: String,
        version_minor: u8,
        keep_alive: bool,
        content_length: Option<u64>,
        headers: Vec<(String, Vec<u8>)>,
    },
    /// A whole body (or what arrived of it), however many `Decoded::Body` items carried it.
    Body(Vec<u8>),
    Error(HttpError),
}

impl Event {
    fn from_head(head: &RequestHead<'_>) -> Event {
        Event::Head {
            method: head.method_name().to_owned(),
            target: head.target().to_owned(),
            version_minor: head.version_minor(),
            keep_alive: head.keep_alive(),
            content_length: head.content_length(),
            headers: head
                .headers()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        }
    }
}

/// Feeds `chunks` to one decoder the way a shard does: decode from the received chunk itself
/// while nothing is pending, otherwise from the pending tail with the chunk appended; keep only
/// what `NeedMore` leaves. Checks on every `NeedMore` that the kept tail is within the caps.
fn drive<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Event> {
    let mut decoder = RequestDecoder::new(limits);
    let mut events = Vec::new();
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
            match decoder.decode(input) {
                Ok(Decoded::Head { head, consumed }) => {
                    assert!(consumed > 0 && consumed <= input.len());
                    events.push(Event::from_head(&head));
                    input = &input[consumed..];
                }
                Ok(Decoded::Body {
                    data,
                    consumed,
                    last,
                }) => {
                    assert!(consumed == data.len() && consumed > 0);
                    body.extend_from_slice(data);
                    if last {
                        events.push(Event::Body(std::mem::take(&mut body)));
                    }
                    input = &input[consumed..];
                }
                Ok(Decoded::NeedMore) => {
                    assert_within_caps(&limits, &decoder, input);
                    tail = input.to_vec();
                    break;
                }
                Err(error) => {
                    events.push(Event::Error(error));
                    return events;
                }
            }
        }
    }
    if !body.is_empty() {
        events.push(Event::Body(body));
    }
    events
}

/// `NeedMore` must never leave the caller holding more than the caps allow.
fn assert_within_caps(limits: &Limits, decoder: &RequestDecoder, tail: &[u8]) {
    if decoder.body_remaining_bytes() > 0 {
        assert!(tail.is_empty(), "a body is never kept");
        return;
    }
    assert!(
        tail.len() <= limits.head_max_bytes,
        "NeedMore with {} bytes kept, cap {}",
        tail.len(),
        limits.head_max_bytes
    );
    let line = RequestLine::find(tail);
    assert!(
        line.len <= limits.request_line_max_bytes,
        "NeedMore with a {}-byte request line, cap {}",
        line.len,
        limits.request_line_max_bytes
    );
    // Every complete line after the request line is a header that passed the parser.
    let mut rest = tail;
    while let Some(after) = rest
        .strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\n"))
    {
        rest = after;
    }
    if let Some(end) = memchr::memchr(b'\n', rest) {
        let header_lines = memchr::memchr_iter(b'\n', &rest[end + 1..]).count();
        assert!(
            header_lines <= limits.headers_max_count,
            "NeedMore with {header_lines} header lines, cap {}",
            limits.headers_max_count
        );
    }
}

/// Every two-piece split, and byte-at-a-time delivery, must give the same events as the whole.
fn assert_split_invariant(limits: Limits, bytes: &[u8]) -> Vec<Event> {
    let whole = drive(limits, [bytes]);
    for split in 0..=bytes.len() {
        let (front, back) = bytes.split_at(split);
        assert_eq!(
            drive(limits, [front, back]),
            whole,
            "split at {split} of {:?}",
            lossy(bytes)
        );
    }
    assert_eq!(drive(limits, bytes.chunks(1)), whole, "byte at a time");
    whole
}

fn status_of(events: &[Event]) -> Option<u16> {
    match events.last() {
        Some(Event::Error(error)) => Some(error.status()),
        _ => None,
    }
}

// --- Simple requests ---

#[test]
fn simple_get() {
    let bytes = b"GET /live/a/index.m3u8?token=t&x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n";
    let (head, consumed) = decode_head(bytes);
    assert_eq!(consumed, bytes.len());
    assert_eq!(head.method(), Method::Get);
    assert_eq!(head.method_name(), "GET");
    assert_eq!(head.target(), "/live/a/index.m3u8?token=t&x=1");
    assert_eq!(head.path(), "/live/a/index.m3u8");
    assert_eq!(head.query(), Some("token=t&x=1"));
    assert_eq!(head.version_minor(), 1);
    assert!(head.keep_alive());
    assert_eq!(head.content_length(), None);
    assert_eq!(head.host(), Some("example.com:8080"));
    assert_eq!(head.header("user-agent"), Some(&b"test"[..]));
    assert_eq!(head.header("USER-AGENT"), Some(&b"test"[..]));
    assert_eq!(head.header_str("accept"), Some("*/*"));
    assert_eq!(head.header("missing"), None);
    assert_eq!(head.range(), None);
    assert_eq!(head.if_none_match(), None);
    assert!(!head.is_websocket_upgrade());
    assert_eq!(head.headers_len(), 3);
    assert_eq!(head.as_bytes(), &bytes[..]);
    let names: Vec<&str> = head.headers().map(|(name, _)| name).collect();
    assert_eq!(names, ["Host", "User-Agent", "Accept"]);
    assert!(format!("{head:?}").contains("example.com:8080"));
}

#[test]
fn methods_targets_and_header_values() {
    let cases = [
        ("GET", Method::Get),
        ("HEAD", Method::Head),
        ("POST", Method::Post),
        ("PUT", Method::Put),
        ("DELETE", Method::Delete),
        ("OPTIONS", Method::Options),
        ("PATCH", Method::Patch),
        ("BREW", Method::Other),
        ("get", Method::Other),
    ];
    for (token, method) in cases {
        let bytes = format!("{token} / HTTP/1.1\r\nHost: a\r\n\r\n");
        let (head, _) = decode_head(bytes.as_bytes());
        assert_eq!(head.method(), method, "{token}");
        assert_eq!(head.method_name(), token);
    }
    let (head, _) = decode_head(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((head.path(), head.query()), ("*", None));
    let (head, _) = decode_head(b"GET /a? HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((head.path(), head.query()), ("/a", Some("")));
    let (head, _) = decode_head(b"GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((head.path(), head.query()), ("/a", Some("b?c")));

    let (head, _) =
        decode_head(b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Pad: \t v a l \t\r\n\r\n");
    assert_eq!(head.header("x-empty"), Some(&b""[..]));
    assert_eq!(head.header("x-pad"), Some(&b"v a l"[..]));
}

#[test]
fn leading_empty_lines_and_bare_lf_are_accepted() {
    let bytes = b"\r\n\r\nGET / HTTP/1.1\nHost: a\n\n";
    let (head, consumed) = decode_head(bytes);
    assert_eq!(consumed, bytes.len());
    assert_eq!(head.host(), Some("a"));
    assert_split_invariant(Limits::default(), bytes);
}

#[test]
fn range_and_if_none_match_accessors() {
    let (head, _) = decode_head(
        b"GET /s.m4s HTTP/1.1\r\nHost: a\r\nRange: bytes=0-99\r\nIf-None-Match: W/\"x\", \"y\"\r\n\r\n",
    );
    assert_eq!(head.range(), Some("bytes=0-99"));
    assert_eq!(head.if_none_match(), Some("W/\"x\", \"y\""));
    assert_eq!(
        crate::parse_range(head.range().unwrap(), 1000),
        crate::RangeOutcome::Partial {
            start: 0,
            end_inclusive: 99
        }
    );
    assert!(crate::etag_matches(head.if_none_match().unwrap(), "\"y\""));
}

#[test]
fn empty_buffer_needs_more() {
    assert_eq!(decoder().decode(b""), Ok(Decoded::NeedMore));
    assert_eq!(decoder().decode(b"\r\n"), Ok(Decoded::NeedMore));
}

// --- Pipelining and split points ---

#[test]
fn pipelined_requests_come_out_in_order() {
    let bytes = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\
                  HEAD /2 HTTP/1.1\r\nHost: a\r\n\r\n\
                  POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
                  GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let mut decoder = decoder();
    let mut rest = &bytes[..];
    let mut seen = Vec::new();
    loop {
        match decoder.decode(rest).unwrap() {
            Decoded::Head { head, consumed } => {
                seen.push(head.target().to_owned());
                rest = &rest[consumed..];
            }
            Decoded::Body {
                data,
                consumed,
                last,
            } => {
                assert_eq!((data, last), (&b"hello"[..], true));
                seen.push("body".to_owned());
                rest = &rest[consumed..];
            }
            Decoded::NeedMore => break,
        }
    }
    assert!(rest.is_empty());
    assert_eq!(seen, ["/1", "/2", "/3", "body", "/4"]);
    assert_split_invariant(Limits::default(), bytes);
}

#[test]
fn every_split_point_of_a_head_decodes_like_the_whole() {
    let bytes: &[u8] = b"\r\nGET /live/room/1080p/17.m4s?token=abc HTTP/1.1\r\n\
        Host: cdn.example:443\r\nUser-Agent: player/1.0\r\nRange: bytes=100-\r\n\
        If-None-Match: \"v1\"\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let (whole, consumed) = decode_head(bytes);
    assert_eq!(consumed, bytes.len());
    for split in 0..bytes.len() {
        let mut decoder = decoder();
        assert_eq!(
            decoder.decode(&bytes[..split]),
            Ok(Decoded::NeedMore),
            "prefix of {split}"
        );
        match decoder.decode(bytes) {
            Ok(Decoded::Head { head, consumed }) => {
                assert_eq!(head, whole, "after split at {split}");
                assert_eq!(consumed, bytes.len());
            }
            other => panic!("after split at {split}: {other:?}"),
        }
    }
    assert_split_invariant(Limits::default(), bytes);
}

// --- Keep-alive ---

#[test]
fn keep_alive_rules() {
    let cases: &[(&str, bool)] = &[
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n",
            false,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
            true,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n",
            false,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
            false,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n",
            true,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX-Connection: close\r\n\r\n",
            true,
        ),
        ("GET / HTTP/1.0\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        (
            "GET / HTTP/1.0\r\nConnection: foo ,\t keep-alive ,\r\n\r\n",
            true,
        ),
        (
            "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
            false,
        ),
        (
            "GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n",
            false,
        ),
        ("GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", false),
    ];
    for (request, keep_alive) in cases {
        let (head, _) = decode_head(request.as_bytes());
        assert_eq!(head.keep_alive(), *keep_alive, "{request:?}");
    }
}

#[test]
fn http10_needs_no_host() {
    let (head, _) = decode_head(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!((head.version_minor(), head.host()), (0, None));
}

// --- Caps ---

/// A request line of exactly `len` bytes.
fn request_line(len: usize) -> String {
    let fixed = "GET / HTTP/1.1".len();
    format!("GET /{} HTTP/1.1", "a".repeat(len - fixed))
}

#[test]
fn request_line_cap_at_limit_and_one_over() {
    let limit = SMALL.request_line_max_bytes;
    let at = format!("{}\r\nHost: a\r\n\r\n", request_line(limit));
    assert_eq!(
        status_of(&assert_split_invariant(SMALL, at.as_bytes())),
        None
    );

    let over = format!("{}\r\nHost: a\r\n\r\n", request_line(limit + 1));
    assert_eq!(
        decode_error(SMALL, over.as_bytes()),
        HttpError::RequestLineTooLong {
            limit,
            seen: limit + 1
        }
    );
    assert_eq!(
        status_of(&assert_split_invariant(SMALL, over.as_bytes())),
        Some(414)
    );

    // Incomplete: `limit` bytes of line (with or without half a CRLF) are fine, one more is not.
    let line = request_line(limit + 1);
    let mut decoder = RequestDecoder::new(SMALL);
    assert_eq!(
        decoder.decode(&line.as_bytes()[..limit]),
        Ok(Decoded::NeedMore)
    );
    let with_cr = format!("{}\r", request_line(limit));
    assert_eq!(decoder.decode(with_cr.as_bytes()), Ok(Decoded::NeedMore));
    assert_eq!(
        RequestDecoder::new(SMALL).decode(&line.as_bytes()[..limit + 1]),
        Err(HttpError::RequestLineTooLong {
            limit,
            seen: limit + 1
        })
    );
    for len in 0..=line.len() {
        let result = RequestDecoder::new(SMALL).decode(&line.as_bytes()[..len]);
        if len <= limit {
            assert_eq!(result, Ok(Decoded::NeedMore), "{len}");
        } else {
            assert_eq!(result.unwrap_err().status(), 414, "{len}");
        }
    }
}

/// A head of exactly `len` bytes: a short request line, `Host`, and one padding header.
fn head_of_len(len: usize) -> String {
    let fixed = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: \r\n\r\n".len();
    format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(len - fixed)
    )
}

#[test]
fn head_cap_at_limit_and_one_over() {
    let limit = SMALL.head_max_bytes;
    let at = head_of_len(limit);
    assert_eq!(at.len(), limit);
    let (head, consumed) = match RequestDecoder::new(SMALL).decode(at.as_bytes()) {
        Ok(Decoded::Head { head, consumed }) => (head, consumed),
        other => panic!("{other:?}"),
    };
    assert_eq!((consumed, head.headers_len()), (limit, 2));
    assert_eq!(
        status_of(&assert_split_invariant(SMALL, at.as_bytes())),
        None
    );

    let over = head_of_len(limit + 1);
    assert_eq!(
        decode_error(SMALL, over.as_bytes()),
        HttpError::HeadTooLarge {
            limit,
            seen: limit + 1
        }
    );
    assert_eq!(
        status_of(&assert_split_invariant(SMALL, over.as_bytes())),
        Some(431)
    );
    // Incomplete: every prefix up to the cap needs more; past it, 431 at once.
    for len in 0..=over.len() {
        let result = RequestDecoder::new(SMALL).decode(&over.as_bytes()[..len]);
        if len <= limit {
            assert_eq!(result, Ok(Decoded::NeedMore), "{len}");
        } else {
            assert_eq!(
                result,
                Err(HttpError::HeadTooLarge { limit, seen: len }),
                "{len}"
            );
        }
    }
}

#[test]
fn head_cap_applies_even_with_a_pipelined_tail() {
    // A complete head within the cap is fine however many bytes follow it.
    let mut bytes = head_of_len(SMALL.head_max_bytes).into_bytes();
    bytes.extend_from_slice(&[b'x'; 1000]);
    assert!(matches!(
        RequestDecoder::new(SMALL).decode(&bytes),
        Ok(Decoded::Head { consumed, .. }) if consumed == SMALL.head_max_bytes
    ));
    // Endless empty lines count against the head.
    let blank = b"\r\n".repeat(SMALL.head_max_bytes);
    assert_eq!(decode_error(SMALL, &blank).status(), 431);
}

/// A head with `count` headers, `Host` first.
fn head_with_headers(count: usize) -> String {
    let mut head = "GET / HTTP/1.1\r\nHost: a\r\n".to_owned();
    for i in 1..count {
        head.push_str(&format!("X-{i}: v\r\n"));
    }
    head + "\r\n"
}

#[test]
fn header_count_cap_at_limit_and_one_over() {
    let limit = SMALL.headers_max_count;
    let at = head_with_headers(limit);
    assert_eq!(
        status_of(&assert_split_invariant(SMALL, at.as_bytes())),
        None
    );

    let over = head_with_headers(limit + 1);
    assert_eq!(
        decode_error(SMALL, over.as_bytes()),
        HttpError::TooManyHeaders {
            limit,
            seen: limit + 1
        }
    );
    assert_eq!(
        status_of(&assert_split_invariant(SMALL, over.as_bytes())),
        Some(431)
    );
    // Incomplete: once the header over the cap has its line ending, no more buffering.
    let without_end = &over.as_bytes()[..over.len() - 2];
    assert_eq!(
        decode_error(SMALL, without_end),
        HttpError::TooManyHeaders {
            limit,
            seen: limit + 1
        }
    );
    let at_without_end = &at.as_bytes()[..at.len() - 2];
    assert_eq!(
        RequestDecoder::new(SMALL).decode(at_without_end),
        Ok(Decoded::NeedMore)
    );
}

#[test]
fn default_caps_hold_at_their_limits() {
    let limits = Limits::default();
    let line = format!(
        "{}\r\nHost: a\r\n\r\n",
        request_line(limits.request_line_max_bytes)
    );
    assert!(matches!(
        RequestDecoder::new(limits).decode(line.as_bytes()),
        Ok(Decoded::Head { .. })
    ));
    let line = format!(
        "{}\r\nHost: a\r\n\r\n",
        request_line(limits.request_line_max_bytes + 1)
    );
    assert_eq!(decode_error(limits, line.as_bytes()).status(), 414);

    let head = head_of_len(limits.head_max_bytes);
    assert!(matches!(
        RequestDecoder::new(limits).decode(head.as_bytes()),
        Ok(Decoded::Head { .. })
    ));
    let head = head_of_len(limits.head_max_bytes + 1);
    assert_eq!(decode_error(limits, head.as_bytes()).status(), 431);

    let head = head_with_headers(limits.headers_max_count);
    assert!(matches!(
        RequestDecoder::new(limits).decode(head.as_bytes()),
        Ok(Decoded::Head { .. })
    ));
    let head = head_with_headers(limits.headers_max_count + 1);
    assert_eq!(decode_error(limits, head.as_bytes()).status(), 431);
}

#[test]
fn widest_limits_fill_the_fixed_header_array() {
    let limits = Limits {
        request_line_max_bytes: HEAD_MAX_BYTES_CEILING_FOR_TEST,
        head_max_bytes: HEAD_MAX_BYTES_CEILING_FOR_TEST,
        headers_max_count: HEADERS_MAX_COUNT,
        body_max_bytes: 0,
    };
    let head = head_with_headers(HEADERS_MAX_COUNT);
    match RequestDecoder::new(limits).decode(head.as_bytes()) {
        Ok(Decoded::Head { head, .. }) => {
            assert_eq!(head.headers_len(), HEADERS_MAX_COUNT);
            assert_eq!(
                head.header(&format!("x-{}", HEADERS_MAX_COUNT - 1)),
                Some(&b"v"[..])
            );
        }
        other => panic!("{other:?}"),
    }
    let head = head_with_headers(HEADERS_MAX_COUNT + 1);
    assert_eq!(decode_error(limits, head.as_bytes()).status(), 431);

    // Offsets near the u16 ceiling still resolve.
    let pad = "p".repeat(HEAD_MAX_BYTES_CEILING_FOR_TEST - 200);
    let head = format!("GET / HTTP/1.1\r\nX-Pad: {pad}\r\nHost: last\r\n\r\n");
    let (head, _) = match RequestDecoder::new(limits).decode(head.as_bytes()) {
        Ok(Decoded::Head { head, consumed }) => (head, consumed),
        other => panic!("{other:?}"),
    };
    assert_eq!(head.host(), Some("last"));
    assert_eq!(head.header("x-pad").map(<[u8]>::len), Some(pad.len()));
}

const HEAD_MAX_BYTES_CEILING_FOR_TEST: usize = crate::HEAD_MAX_BYTES_CEILING;

// --- Bodies ---

#[test]
fn body_across_buffers_then_a_pipelined_request() {
    let mut decoder = decoder();
    let first = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhel";
    let Ok(Decoded::Head { head, consumed }) = decoder.decode(first) else {
        panic!("a head");
    };
    assert_eq!(head.content_length(), Some(10));
    assert_eq!(decoder.body_remaining_bytes(), 10);
    assert_eq!(
        decoder.decode(&first[consumed..]),
        Ok(Decoded::Body {
            data: b"hel",
            consumed: 3,
            last: false
        })
    );
    assert_eq!(decoder.decode(b""), Ok(Decoded::NeedMore));
    assert_eq!(
        decoder.decode(b"lo wo"),
        Ok(Decoded::Body {
            data: b"lo wo",
            consumed: 5,
            last: false
        })
    );
    assert_eq!(decoder.body_remaining_bytes(), 2);
    let last = b"rlGET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(
        decoder.decode(last),
        Ok(Decoded::Body {
            data: b"rl",
            consumed: 2,
            last: true
        })
    );
    assert_eq!(decoder.body_remaining_bytes(), 0);
    match decoder.decode(&last[2..]) {
        Ok(Decoded::Head { head, consumed }) => {
            assert_eq!(head.target(), "/next");
            assert_eq!(consumed, last.len() - 2);
        }
        other => panic!("{other:?}"),
    }

    let mut whole = first.to_vec();
    whole.extend_from_slice(b"lo wo");
    whole.extend_from_slice(last);
    let events = assert_split_invariant(Limits::default(), &whole);
    assert_eq!(events[1], Event::Body(b"hello worl".to_vec()));
    assert_eq!(events.len(), 3);
}

#[test]
fn zero_length_body_and_identical_repeats() {
    let bytes = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    let events = assert_split_invariant(Limits::default(), bytes);
    assert_eq!(events.len(), 2, "{events:?}");

    let (head, _) = decode_head(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
    );
    assert_eq!(head.content_length(), Some(3));
    let (head, _) = decode_head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n");
    assert_eq!(head.content_length(), Some(3));
}

#[test]
fn body_cap_at_limit_and_one_over() {
    let at = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        SMALL.body_max_bytes
    );
    assert!(matches!(
        RequestDecoder::new(SMALL).decode(at.as_bytes()),
        Ok(Decoded::Head { .. })
    ));
    let over = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        SMALL.body_max_bytes + 1
    );
    let error = decode_error(SMALL, over.as_bytes());
    assert_eq!(
        error,
        HttpError::BodyTooLarge {
            limit: SMALL.body_max_bytes,
            seen: SMALL.body_max_bytes + 1
        }
    );
    assert_eq!(error.status(), 413);
    let huge = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n";
    assert_eq!(decode_error(Limits::default(), huge).status(), 413);
}

// --- Framing and host errors ---

#[test]
fn framing_and_host_errors() {
    let cases: &[(&str, HttpError)] = &[
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpError::TransferEncodingNotSupported,
        ),
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            HttpError::TransferEncodingNotSupported,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpError::ContentLengthWithTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            HttpError::ContentLengthWithTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            HttpError::ConflictingContentLength {
                first: 3,
                second: 4,
            },
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n",
            HttpError::ConflictingContentLength {
                first: 3,
                second: 4,
            },
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3,\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        ("GET / HTTP/1.1\r\n\r\n", HttpError::MissingHost),
        (
            "GET / HTTP/1.1\r\nX-Host: a\r\n\r\n",
            HttpError::MissingHost,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            HttpError::DuplicateHost,
        ),
        (
            "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n",
            HttpError::DuplicateHost,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            HttpError::InvalidHost,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            HttpError::InvalidHost,
        ),
        ("GET / HTTP/1.1\r\nHost: é\r\n\r\n", HttpError::InvalidHost),
    ];
    for (request, expected) in cases {
        let error = decode_error(Limits::default(), request.as_bytes());
        assert_eq!(error, *expected, "{request:?}");
        let events = assert_split_invariant(Limits::default(), request.as_bytes());
        assert_eq!(events, [Event::Error(*expected)], "{request:?}");
    }
    let statuses = [
        (HttpError::TransferEncodingNotSupported, 501),
        (HttpError::ContentLengthWithTransferEncoding, 400),
        (HttpError::InvalidContentLength, 400),
        (HttpError::MissingHost, 400),
        (HttpError::DuplicateHost, 400),
        (HttpError::InvalidHost, 400),
    ];
    for (error, status) in statuses {
        assert_eq!(error.status(), status, "{error}");
    }
    // Hosts that are fine: empty, IPv6 literal with port, IPv4.
    for host in ["", "[::1]:8080", "127.0.0.1", "xn--bcher-kva.example"] {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let (head, _) = decode_head(request.as_bytes());
        assert_eq!(head.host(), Some(host));
    }
}

// --- Versions and malformed heads ---

#[test]
fn versions() {
    let cases: &[(&str, u16)] = &[
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/3.0\r\n\r\n", 505),
        ("GET / HTTP/2\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
        ("GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / FOO\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/2.0 x\r\nHost: a\r\n\r\n", 400),
        ("GET /\r\n\r\n", 400),
    ];
    for (request, status) in cases {
        let error = decode_error(Limits::default(), request.as_bytes());
        assert_eq!(error.status(), *status, "{request:?}: {error}");
        let events = assert_split_invariant(Limits::default(), request.as_bytes());
        assert_eq!(status_of(&events), Some(*status), "{request:?}");
    }
    assert_eq!(
        decode_error(Limits::default(), b"GET / HTTP/2.0\r\n\r\n"),
        HttpError::UnsupportedVersion { major: 2, minor: 0 }
    );
    // Half a version that could still become valid is not an error yet.
    assert_eq!(decoder().decode(b"GET / HTTP/2"), Ok(Decoded::NeedMore));
    assert_eq!(decoder().decode(b"GET / HTTP/2.0\r"), Ok(Decoded::NeedMore));
    assert_eq!(
        decoder().decode(b"GET / HTTX").map_err(|e| e.status()),
        Err(400)
    );
}

#[test]
fn malformed_heads_are_400() {
    let cases: &[&[u8]] = &[
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\rHost: a\r\n\r\n",
        b" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
        b"GET / HTTP/1.1\r\n: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\rX",
        b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for request in cases {
        let error = decode_error(Limits::default(), request);
        assert!(
            matches!(error, HttpError::Malformed(_)),
            "{:?}: {error:?}",
            lossy(request)
        );
        assert_eq!(error.status(), 400);
        let events = assert_split_invariant(Limits::default(), request);
        assert_eq!(status_of(&events), Some(400), "{:?}", lossy(request));
    }
}

#[test]
#[should_panic(expected = "after an error")]
fn decoding_after_an_error_is_a_bug() {
    let mut decoder = decoder();
    assert!(decoder.decode(b"BAD\x00").is_err());
    let _ = decoder.decode(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
}

// --- WebSocket upgrade detection ---

#[test]
fn websocket_upgrade_detection() {
    let base =
        "Host: a\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let yes = [
        format!("GET /ws HTTP/1.1\r\n{base}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
        format!("GET /ws HTTP/1.1\r\n{base}Connection: keep-alive, upgrade\r\nUpgrade: WebSocket\r\n\r\n"),
        format!("GET /ws HTTP/1.1\r\n{base}Connection: keep-alive\r\nConnection: UPGRADE\r\nUpgrade: h2c, websocket\r\n\r\n"),
    ];
    for request in &yes {
        let (head, consumed) = decode_head(request.as_bytes());
        assert!(head.is_websocket_upgrade(), "{request:?}");
        assert_eq!(consumed, request.len());
    }
    let no = [
        format!("POST /ws HTTP/1.1\r\n{base}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
        format!("GET /ws HTTP/1.0\r\n{base}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
        format!("GET /ws HTTP/1.1\r\n{base}Upgrade: websocket\r\n\r\n"),
        format!("GET /ws HTTP/1.1\r\n{base}Connection: Upgrade\r\n\r\n"),
        format!("GET /ws HTTP/1.1\r\n{base}Connection: keep-alive\r\nUpgrade: websocket\r\n\r\n"),
        format!("GET /ws HTTP/1.1\r\n{base}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"),
        format!("GET /ws HTTP/1.1\r\n{base}Connection: Upgraded\r\nUpgrade: websocket\r\n\r\n"),
        format!("GET /ws HTTP/1.1\r\n{base}Connection: Upgrade\r\nUpgrade: websocket2\r\n\r\n"),
        format!("GET /ws HTTP/1.1\r\n{base}X-Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
        format!("get /ws HTTP/1.1\r\n{base}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
    ];
    for request in &no {
        let (head, _) = decode_head(request.as_bytes());
        assert!(!head.is_websocket_upgrade(), "{request:?}");
    }
}

#[test]
fn bytes_after_an_upgrade_head_are_left_to_the_caller() {
    let request = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x85frame";
    let (head, consumed) = decode_head(request);
    assert!(head.is_websocket_upgrade());
    assert_eq!(&request[consumed..], b"\x81\x85frame");
}

// --- Property-style tests ---

/// xorshift64*: deterministic, good enough to pick fragments and splits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % to_u64(n)).unwrap()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Cuts `bytes` into random pieces, some of them empty.
    fn chunks<'a>(&mut self, bytes: &'a [u8]) -> Vec<&'a [u8]> {
        let mut chunks = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = match self.below(4) {
                0 => 0,
                1 => 1,
                _ => self.below(rest.len() + 1),
            };
            let (front, back) = rest.split_at(take);
            chunks.push(front);
            rest = back;
        }
        chunks
    }
}

const FRAGMENTS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"/",
    b"/live/a?b=c",
    b" HTTP/1.1",
    b" HTTP/1.0",
    b" HTTP/2.0",
    b" HTTP/1.",
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b"Host: a",
    b"Host:",
    b"Content-Length: 3",
    b"Content-Length: 99",
    b"Content-Length: x",
    b"Transfer-Encoding: chunked",
    b"Connection: close",
    b"Connection: upgrade",
    b"Upgrade: websocket",
    b"X-Pad: aaaaaaaaaaaaaaaaaaaa",
    b": ",
    b" ",
    b"\t",
    b"abc",
    b"\x00",
    b"\xff",
];

/// Fragments glued at random: mostly garbage, sometimes a request.
fn soup(rng: &mut Rng) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..rng.below(24) {
        if rng.below(5) == 0 {
            for _ in 0..=rng.below(4) {
                bytes.push(rng.next() as u8);
            }
        } else {
            let fragment = *rng.pick::<&[u8]>(FRAGMENTS);
            bytes.extend_from_slice(fragment);
        }
    }
    bytes
}

/// One to three plausible requests, some near the caps of [`SMALL`], then a few mutations.
fn mutated_requests(rng: &mut Rng) -> Vec<u8> {
    const LINES: &[&[u8]] = &[
        b"Host: a",
        b"Content-Length: 3",
        b"Content-Length: 17",
        b"Connection: close",
        b"Connection: keep-alive, upgrade",
        b"Upgrade: websocket",
        b"Transfer-Encoding: chunked",
        b"Range: bytes=0-1",
        b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaa",
    ];
    let mut bytes = Vec::new();
    for _ in 0..=rng.below(3) {
        let method = *rng.pick::<&[u8]>(&[b"GET", b"POST", b"HEAD", b"BREW"]);
        bytes.extend_from_slice(method);
        bytes.push(b' ');
        bytes.push(b'/');
        bytes.extend(std::iter::repeat_n(b'a', rng.below(36)));
        let version = *rng.pick::<&[u8]>(&[b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", b" HTTP/1.1\n"]);
        bytes.extend_from_slice(version);
        for _ in 0..rng.below(6) {
            let line = *rng.pick::<&[u8]>(LINES);
            bytes.extend_from_slice(line);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend(std::iter::repeat_n(b'b', rng.below(4)));
    }
    for _ in 0..rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(3) {
            0 => {
                let fragment = *rng.pick::<&[u8]>(FRAGMENTS);
                bytes.splice(at..at, fragment.iter().copied());
            }
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ if at < bytes.len() => bytes[at] = rng.next() as u8,
            _ => {}
        }
    }
    bytes
}

/// Random byte soup in random pieces: decoding never panics, never asks the caller to keep
/// more than the caps allow (checked in `drive`), and gives the same requests, bodies and
/// final status as decoding the whole input at once. Only an error's `seen` may differ, as it
/// counts what had arrived when the cap was crossed.
#[test]
fn random_soup_in_random_pieces() {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    for round in 0..40_000 {
        let bytes = if round % 2 == 0 {
            soup(&mut rng)
        } else {
            mutated_requests(&mut rng)
        };
        let whole = drive(SMALL, [&bytes[..]]);
        let chunks = rng.chunks(&bytes);
        let pieces = drive(SMALL, chunks.iter().copied());
        let context = || format!("round {round}: {:?} in {chunks:?}", lossy(&bytes));
        assert_eq!(pieces.len(), whole.len(), "{}", context());
        assert_eq!(status_of(&pieces), status_of(&whole), "{}", context());
        let n = whole.len() - usize::from(status_of(&whole).is_some());
        assert_eq!(pieces[..n], whole[..n], "{}", context());
    }
}

/// Well-formed pipelined requests with bodies, in random pieces: the same events as the whole,
/// and no errors.
#[test]
fn random_valid_pipelines_in_random_pieces() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let limits = Limits::default();
    for round in 0..2_000 {
        let mut bytes = Vec::new();
        let mut expected_heads = 0;
        for _ in 0..=rng.below(5) {
            let method = *rng.pick(&["GET", "POST", "PUT", "HEAD"]);
            let target = format!("/r{}?q={}", rng.below(1000), rng.below(1000));
            bytes.extend_from_slice(b"\r\n".repeat(rng.below(2)).as_slice());
            bytes
                .extend_from_slice(format!("{method} {target} HTTP/1.1\r\nHost: h\r\n").as_bytes());
            for i in 0..rng.below(6) {
                bytes.extend_from_slice(
                    format!("X-{i}: {}\r\n", "v".repeat(rng.below(40))).as_bytes(),
                );
            }
            let body_len = rng.below(3) * rng.below(50);
            if body_len > 0 || rng.below(2) == 0 {
                bytes.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
            for _ in 0..body_len {
                bytes.push(rng.next() as u8);
            }
            expected_heads += 1;
        }
        let whole = drive(limits, [&bytes[..]]);
        assert_eq!(status_of(&whole), None, "round {round}: {whole:?}");
        let heads = whole
            .iter()
            .filter(|event| matches!(event, Event::Head { .. }))
            .count();
        assert_eq!(heads, expected_heads);
        let chunks = rng.chunks(&bytes);
        assert_eq!(
            drive(limits, chunks.iter().copied()),
            whole,
            "round {round}"
        );
    }
}
