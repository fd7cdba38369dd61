//! Sans-io HTTP/1.1 response framing, just enough to drive a load: the status line, the
//! headers that decide framing, and `Content-Length` bodies.
//!
//! Bytes go in through [`ResponseParser::handle_bytes`]; what comes out is how many bytes
//! were consumed and, when one finished, the [`Response`]. Bodies are counted, never copied,
//! so a 1 MiB body costs the same as a 200 B one apart from the read calls. Heads are parsed
//! in place from the caller's buffer; only a head split across two reads is copied (into a
//! buffer of at most [`HEAD_MAX_BYTES`]).
//!
//! Anything outside that subset (chunked bodies, bodies delimited by close, informational
//! responses) is a [`ParseError`]: the load generator requests static files, and a server that
//! answers them in another framing is measured as failing.

/// Largest response head (status line and headers) accepted. A head that is still incomplete
/// after this many bytes is an error; the split-head buffer never grows beyond it.
pub const HEAD_MAX_BYTES: usize = 16 * 1024;

/// One complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Bytes of the status line and headers, including the blank line.
    pub head_bytes: usize,
    /// Bytes of the body (the `Content-Length`).
    pub body_bytes: u64,
    /// The server announced `Connection: close`: it will close after this response.
    pub close: bool,
}

/// What one call to [`ResponseParser::handle_bytes`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// How many bytes of the input were used. The caller feeds the rest in the next call.
    pub consumed: usize,
    /// A response that finished within those bytes.
    pub response: Option<Response>,
}

/// Why a response could not be framed. The connection is unusable afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The head was not complete within [`HEAD_MAX_BYTES`].
    #[error("response head exceeds {limit} bytes")]
    HeadTooLarge {
        /// [`HEAD_MAX_BYTES`].
        limit: usize,
    },
    /// The status line was not `HTTP/1.x NNN ...`.
    #[error("malformed status line")]
    StatusLine,
    /// A header line had no colon.
    #[error("malformed header line")]
    HeaderLine,
    /// `Content-Length` was not a number, or two of them disagreed.
    #[error("malformed Content-Length")]
    ContentLength,
    /// The body is chunked or runs until close, or the response is informational (1xx).
    #[error("unsupported response framing")]
    UnsupportedFraming,
}

/// Frames a stream of responses. Feed every byte received, in order.
#[derive(Debug, Default)]
pub struct ResponseParser {
    state: State,
    /// The start of a head that did not fit in one input; empty otherwise.
    partial_head: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy)]
enum State {
    #[default]
    Head,
    Body {
        response: Response,
        remaining_bytes: u64,
    },
}

const HEAD_END: &[u8] = b"\r\n\r\n";

impl ResponseParser {
    /// Creates a parser expecting the start of a response.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes bytes of the stream until one response finishes or the input ends. Call again
    /// with `&data[progress.consumed..]` while input remains. Consumes at least one byte of a
    /// non-empty input unless it returns an error.
    pub fn handle_bytes(&mut self, data: &[u8]) -> Result<Progress, ParseError> {
        match self.state {
            State::Head if self.partial_head.is_empty() => self.handle_head_start(data),
            State::Head => self.handle_head_rest(data),
            State::Body {
                response,
                remaining_bytes,
            } => Ok(self.handle_body(data, response, remaining_bytes)),
        }
    }

    /// True between responses: no partial head or body is pending. A connection closed while
    /// idle lost nothing.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head) && self.partial_head.is_empty()
    }

    /// Body bytes still to come of the response being read, when in a body: the caller may
    /// discard that many from the socket unread ([`ResponseParser::skip_body`]).
    pub fn body_remaining(&self) -> Option<u64> {
        match self.state {
            State::Body {
                remaining_bytes, ..
            } => Some(remaining_bytes),
            State::Head => None,
        }
    }

    /// `n` body bytes were discarded unread (recv with MSG_TRUNC): counts them as received.
    /// Returns the response when they end it. `n` is at most [`ResponseParser::body_remaining`].
    pub fn skip_body(&mut self, n: u64) -> Option<Response> {
        let State::Body {
            response,
            remaining_bytes,
        } = self.state
        else {
            debug_assert!(false, "skip_body outside a body");
            return None;
        };
        debug_assert!(n <= remaining_bytes);
        let remaining_bytes = remaining_bytes.saturating_sub(n);
        if remaining_bytes == 0 {
            self.state = State::Head;
            return Some(response);
        }
        self.state = State::Body {
            response,
            remaining_bytes,
        };
        None
    }

    /// Forgets any partial response (after the connection it belonged to closed).
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.partial_head.clear();
    }

    fn handle_head_start(&mut self, data: &[u8]) -> Result<Progress, ParseError> {
        match find_head_end(data, 0) {
            Some(head_len) => self.finish_head(&data[..head_len], head_len),
            None if data.len() >= HEAD_MAX_BYTES => Err(ParseError::HeadTooLarge {
                limit: HEAD_MAX_BYTES,
            }),
            None => {
                self.partial_head.extend_from_slice(data);
                Ok(Progress {
                    consumed: data.len(),
                    response: None,
                })
            }
        }
    }

    fn handle_head_rest(&mut self, data: &[u8]) -> Result<Progress, ParseError> {
        let old_len = self.partial_head.len();
        let take = data.len().min(HEAD_MAX_BYTES - old_len);
        self.partial_head.extend_from_slice(&data[..take]);
        let search_from = old_len.saturating_sub(HEAD_END.len() - 1);
        match find_head_end(&self.partial_head, search_from) {
            Some(head_len) => {
                let head = std::mem::take(&mut self.partial_head);
                let progress = self.finish_head(&head[..head_len], head_len - old_len);
                // Keep the allocation for the next split head.
                self.partial_head = head;
                self.partial_head.clear();
                progress
            }
            None if self.partial_head.len() >= HEAD_MAX_BYTES => Err(ParseError::HeadTooLarge {
                limit: HEAD_MAX_BYTES,
            }),
            None => Ok(Progress {
                consumed: take,
                response: None,
            }),
        }
    }

    /// Parses a complete head; `consumed` is how many bytes of the current input it used.
    fn finish_head(&mut self, head: &[u8], consumed: usize) -> Result<Progress, ParseError> {
        let response = parse_head(head)?;
        if response.body_bytes == 0 {
            self.state = State::Head;
            return Ok(Progress {
                consumed,
                response: Some(response),
            });
        }
        self.state = State::Body {
            response,
            remaining_bytes: response.body_bytes,
        };
        Ok(Progress {
            consumed,
            response: None,
        })
    }

    fn handle_body(&mut self, data: &[u8], response: Response, remaining_bytes: u64) -> Progress {
        let take = remaining_bytes.min(data.len() as u64);
        let remaining_bytes = remaining_bytes - take;
        if remaining_bytes == 0 {
            self.state = State::Head;
            return Progress {
                consumed: take as usize,
                response: Some(response),
            };
        }
        self.state = State::Body {
            response,
            remaining_bytes,
        };
        Progress {
            consumed: take as usize,
            response: None,
        }
    }
}

/// The length of the head (through the blank line) if `data` holds all of it. The search
/// starts at `from` so that appending to a partial head does not rescan it.
fn find_head_end(data: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = data.get(at..)?.iter().position(|&b| b == b'\n') {
        let newline = at + offset;
        if newline >= 3 && &data[newline - 3..=newline] == HEAD_END {
            return Some(newline + 1);
        }
        at = newline + 1;
    }
    None
}

/// Parses `HTTP/1.x NNN reason\r\n(name: value\r\n)*\r\n`.
fn parse_head(head: &[u8]) -> Result<Response, ParseError> {
    let mut lines = head[..head.len() - HEAD_END.len()].split(|&b| b == b'\n');
    let status = parse_status_line(lines.next().ok_or(ParseError::StatusLine)?)?;
    let mut content_length: Option<u64> = None;
    let mut close = false;
    let mut chunked = false;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::HeaderLine)?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_decimal(value).ok_or(ParseError::ContentLength)?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(ParseError::ContentLength);
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= contains_ignore_case(value, b"close");
        }
    }
    let body_bytes = match status {
        100..=199 => return Err(ParseError::UnsupportedFraming),
        204 | 304 => 0,
        _ if chunked => return Err(ParseError::UnsupportedFraming),
        _ => content_length.ok_or(ParseError::UnsupportedFraming)?,
    };
    Ok(Response {
        status,
        head_bytes: head.len(),
        body_bytes,
        close,
    })
}

fn parse_status_line(line: &[u8]) -> Result<u16, ParseError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .ok_or(ParseError::StatusLine)?;
    match rest {
        [minor, b' ', a, b, c, tail @ ..]
            if minor.is_ascii_digit()
                && [a, b, c].iter().all(|d| d.is_ascii_digit())
                && (tail.is_empty() || tail[0] == b' ') =>
        {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(ParseError::StatusLine),
    }
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u64::from(digit - b'0'))
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK_5: &[u8] = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn a_body_discarded_unread_ends_its_response_like_one_read() {
        let mut parser = ResponseParser::new();
        let head = &OK_5[..OK_5.len() - 5];
        assert!(feed(&mut parser, head, 7).is_empty());
        assert_eq!(parser.body_remaining(), Some(5));
        assert!(parser.skip_body(2).is_none());
        assert_eq!(parser.body_remaining(), Some(3));
        let response = parser
            .skip_body(3)
            .expect("the body's end ends the response");
        assert_eq!(response.body_bytes, 5);
        assert_eq!(parser.body_remaining(), None);
        assert!(parser.is_idle());
        assert_eq!(
            feed(&mut parser, OK_5, 3).len(),
            1,
            "the next response parses as usual"
        );
    }

    /// Feeds `input` in pieces of `step` bytes and returns every response.
    fn feed(parser: &mut ResponseParser, input: &[u8], step: usize) -> Vec<Response> {
        let mut responses = Vec::new();
        for piece in input.chunks(step) {
            let mut rest = piece;
            while !rest.is_empty() {
                let progress = parser.handle_bytes(rest).unwrap();
                assert!(progress.consumed > 0 || progress.response.is_some());
                rest = &rest[progress.consumed..];
                responses.extend(progress.response);
            }
        }
        responses
    }

    #[test]
    fn one_response_in_one_piece() {
        let mut parser = ResponseParser::new();
        let responses = feed(&mut parser, OK_5, OK_5.len());
        assert_eq!(
            responses,
            vec![Response {
                status: 200,
                head_bytes: OK_5.len() - 5,
                body_bytes: 5,
                close: false
            }]
        );
        assert!(parser.is_idle());
    }

    #[test]
    fn pipelined_responses_split_at_every_byte() {
        let mut input = Vec::new();
        for _ in 0..3 {
            input.extend_from_slice(OK_5);
        }
        input.extend_from_slice(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
        input.extend_from_slice(b"HTTP/1.0 204 No Content\r\nConnection: Close\r\n\r\n");
        for step in 1..=input.len() {
            let mut parser = ResponseParser::new();
            let responses = feed(&mut parser, &input, step);
            let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
            assert_eq!(statuses, vec![200, 200, 200, 404, 204], "step {step}");
            assert_eq!(responses[2].body_bytes, 5);
            assert!(responses[4].close);
            assert!(parser.is_idle());
        }
    }

    #[test]
    fn large_body_is_counted_not_buffered() {
        let body_bytes = 8 * 1024 * 1024;
        let mut parser = ResponseParser::new();
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {body_bytes}\r\n\r\n");
        assert_eq!(parser.handle_bytes(head.as_bytes()).unwrap().response, None);
        let chunk = vec![0u8; 256 * 1024];
        let mut seen = 0;
        let mut done = None;
        while done.is_none() {
            let progress = parser.handle_bytes(&chunk).unwrap();
            seen += progress.consumed;
            done = progress.response;
        }
        assert_eq!(seen, body_bytes);
        assert_eq!(done.unwrap().body_bytes, body_bytes as u64);
        assert_eq!(parser.partial_head.capacity(), 0);
    }

    #[test]
    fn body_followed_by_next_head_in_same_input() {
        let mut parser = ResponseParser::new();
        let mut input = OK_5.to_vec();
        input.extend_from_slice(&OK_5[..10]);
        let first = parser.handle_bytes(&input).unwrap();
        assert_eq!(first.consumed, OK_5.len() - 5);
        let second = parser.handle_bytes(&input[first.consumed..]).unwrap();
        assert_eq!(second.consumed, 5);
        assert_eq!(second.response.unwrap().status, 200);
        let third = parser
            .handle_bytes(&input[first.consumed + second.consumed..])
            .unwrap();
        assert_eq!(third.consumed, 10);
        assert!(!parser.is_idle());
    }

    #[test]
    fn framing_refusals() {
        let cases: [(&[u8], ParseError); 7] = [
            (b"HTTP/2 200 OK\r\n\r\n", ParseError::StatusLine),
            (b"HTTP/1.1 2x0 OK\r\n\r\n", ParseError::StatusLine),
            (b"HTTP/1.1 200 OK\r\nbogus\r\n\r\n", ParseError::HeaderLine),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ParseError::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                ParseError::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                ParseError::UnsupportedFraming,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n", ParseError::UnsupportedFraming),
        ];
        for (input, expected) in cases {
            let mut parser = ResponseParser::new();
            assert_eq!(parser.handle_bytes(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn head_limit() {
        let mut parser = ResponseParser::new();
        let filler = vec![b'a'; HEAD_MAX_BYTES / 2];
        assert!(parser.handle_bytes(b"HTTP/1.1 200 OK\r\nX: ").is_ok());
        assert!(parser.handle_bytes(&filler).is_ok());
        assert_eq!(
            parser.handle_bytes(&filler),
            Err(ParseError::HeadTooLarge {
                limit: HEAD_MAX_BYTES
            })
        );
        assert!(parser.partial_head.len() <= HEAD_MAX_BYTES);
    }

    #[test]
    fn reset_forgets_partial_response() {
        let mut parser = ResponseParser::new();
        parser.handle_bytes(&OK_5[..OK_5.len() - 2]).unwrap();
        assert!(!parser.is_idle());
        parser.reset();
        assert!(parser.is_idle());
        assert_eq!(feed(&mut parser, OK_5, 7).len(), 1);
    }
}
