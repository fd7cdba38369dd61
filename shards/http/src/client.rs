//! The client side, as much as an edge needs to fetch from an origin: a response head parser
//! and a body decoder for `Content-Length`, chunked and read-until-close framing (RFC 9112 §6).
//!
//! Sans-io like the server side: the caller reads from its socket, feeds the bytes, and gets
//! the head, then body bytes appended to its buffer, then "done". Every length is bounded:
//! the head by the caller's limit, a chunk-size line by [`CHUNK_LINE_MAX_BYTES`], trailers by
//! [`TRAILERS_MAX_BYTES`].

/// Longest chunk-size line (size, extensions and CRLF) accepted.
pub const CHUNK_LINE_MAX_BYTES: usize = 1024;
/// Most trailer bytes accepted after the last chunk.
pub const TRAILERS_MAX_BYTES: usize = 8192;
/// Most header fields in a response head.
const RESPONSE_HEADERS_MAX: usize = 64;

/// Why a response could not be read. The connection cannot be reused after any of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The status line or a header breaks the grammar.
    #[error("malformed response head: {0}")]
    Malformed(httparse::Error),
    /// The head did not end within the caller's limit.
    #[error("response head of at least {seen} bytes exceeds the limit of {limit}")]
    HeadTooLarge { limit: usize, seen: usize },
    /// `Content-Length` is not a number, or two differ.
    #[error("bad Content-Length")]
    BadContentLength,
    /// A `Transfer-Encoding` other than `chunked` alone.
    #[error("unsupported Transfer-Encoding")]
    UnsupportedTransferEncoding,
    /// A chunk-size line is not hex, or is longer than [`CHUNK_LINE_MAX_BYTES`].
    #[error("bad chunk size line")]
    BadChunk,
    /// Trailers longer than [`TRAILERS_MAX_BYTES`].
    #[error("trailers exceed {TRAILERS_MAX_BYTES} bytes")]
    TrailersTooLarge,
    /// The connection closed before the body's end.
    #[error("the body ended early")]
    Truncated,
}

/// What a response head says that a cache and a body decoder need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// `HTTP/1.{minor}`.
    pub version_minor: u8,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// How the body is framed.
    pub framing: Framing,
    /// The server will close after this response (`Connection: close`, or HTTP/1.0 without
    /// keep-alive, or a body read until close).
    pub close: bool,
}

/// How a response body ends (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: 1xx, 204, 304, or the answer to a HEAD.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the server closes.
    UntilClose,
}

/// Parses a response head from the start of `buf`: `Ok(None)` when more bytes are needed,
/// else the head and its length in bytes. `head_request`: the request was a HEAD (no body).
pub fn parse_response_head(
    buf: &[u8],
    head_max_bytes: usize,
    head_request: bool,
) -> Result<Option<(ResponseHead, usize)>, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; RESPONSE_HEADERS_MAX];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(buf) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buf.len() > head_max_bytes => {
            return Err(ResponseError::HeadTooLarge {
                limit: head_max_bytes,
                seen: buf.len(),
            })
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ResponseError::Malformed(e)),
    };
    if length > head_max_bytes {
        return Err(ResponseError::HeadTooLarge {
            limit: head_max_bytes,
            seen: length,
        });
    }
    let status = response.code.unwrap_or(0);
    let version_minor = response.version.unwrap_or(1);
    let mut head = ResponseHead {
        status,
        version_minor,
        content_type: None,
        cache_control: None,
        framing: Framing::UntilClose,
        close: version_minor == 0,
    };
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value.parse().map_err(|_| ResponseError::BadContentLength)?;
            if content_length.is_some_and(|seen| seen != n) {
                return Err(ResponseError::BadContentLength);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(ResponseError::UnsupportedTransferEncoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && version_minor == 0 {
                    head.close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("cache-control") {
            head.cache_control = Some(value.to_string());
        }
    }
    head.framing = if head_request || matches!(status, 100..=199 | 204 | 304) {
        Framing::Empty
    } else if chunked {
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3, 3).
        Framing::Chunked
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        head.close = true;
        Framing::UntilClose
    };
    Ok(Some((head, length)))
}

/// Decodes a body of a known [`Framing`] from the bytes that follow the head.
#[derive(Debug)]
pub struct BodyDecoder {
    state: BodyState,
    /// Bytes of an unfinished chunk-size or trailer line.
    line: Vec<u8>,
    trailer_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    /// This many body bytes remain (Content-Length).
    Length(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// This many bytes of the current chunk remain.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer lines after the last chunk, up to an empty line.
    Trailers,
    UntilClose,
    Done,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::ChunkSize,
            Framing::UntilClose => BodyState::UntilClose,
        };
        BodyDecoder {
            state,
            line: Vec::new(),
            trailer_bytes: 0,
        }
    }

    /// True once the whole body has been read; bytes after it belong to the next response.
    pub fn is_done(&self) -> bool {
        self.state == BodyState::Done
    }

    /// Feeds received bytes; body bytes are appended to `out`. Returns how many input bytes
    /// were used: all of them unless the body ended inside `input`.
    pub fn decode(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<usize, ResponseError> {
        let total = input.len();
        while !input.is_empty() && self.state != BodyState::Done {
            let used = self.step(input, out)?;
            input = &input[used..];
        }
        Ok(total - input.len())
    }

    /// The connection closed: fine for a body read until close, an error otherwise.
    pub fn finish_at_close(&mut self) -> Result<(), ResponseError> {
        match self.state {
            BodyState::UntilClose | BodyState::Done => {
                self.state = BodyState::Done;
                Ok(())
            }
            _ => Err(ResponseError::Truncated),
        }
    }

    fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ResponseError> {
        match self.state {
            BodyState::Length(remaining) => {
                let (n, left) = take_up_to(input, remaining, out);
                self.state = match left {
                    0 => BodyState::Done,
                    left => BodyState::Length(left),
                };
                Ok(n)
            }
            BodyState::UntilClose => {
                out.extend_from_slice(input);
                Ok(input.len())
            }
            BodyState::ChunkData(remaining) => {
                let (n, left) = take_up_to(input, remaining, out);
                self.state = match left {
                    0 => BodyState::ChunkEnd,
                    left => BodyState::ChunkData(left),
                };
                Ok(n)
            }
            BodyState::ChunkSize | BodyState::ChunkEnd | BodyState::Trailers => {
                self.line_step(input)
            }
            BodyState::Done => Ok(0),
        }
    }

    /// Collects one CRLF-terminated line and acts on it.
    fn line_step(&mut self, input: &[u8]) -> Result<usize, ResponseError> {
        let (used, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (input.len(), false),
        };
        self.line.extend_from_slice(&input[..used]);
        let limit = if self.state == BodyState::Trailers {
            TRAILERS_MAX_BYTES
        } else {
            CHUNK_LINE_MAX_BYTES
        };
        if self.line.len() + self.trailer_bytes > limit {
            return Err(if self.state == BodyState::Trailers {
                ResponseError::TrailersTooLarge
            } else {
                ResponseError::BadChunk
            });
        }
        if !complete {
            return Ok(used);
        }
        let line = std::mem::take(&mut self.line);
        let text = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(&line);
        self.state = match self.state {
            BodyState::ChunkEnd if text.is_empty() => BodyState::ChunkSize,
            BodyState::ChunkEnd => return Err(ResponseError::BadChunk),
            BodyState::ChunkSize => match chunk_size(text)? {
                0 => BodyState::Trailers,
                n => BodyState::ChunkData(n),
            },
            BodyState::Trailers if text.is_empty() => BodyState::Done,
            BodyState::Trailers => {
                self.trailer_bytes += line.len();
                BodyState::Trailers
            }
            other => other,
        };
        Ok(used)
    }
}

/// Moves up to `remaining` bytes of `input` to `out`; returns how many, and how many remain.
fn take_up_to(input: &[u8], remaining: u64, out: &mut Vec<u8>) -> (usize, u64) {
    let n = input
        .len()
        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
    out.extend_from_slice(&input[..n]);
    (n, remaining - n as u64)
}

/// The size of a chunk-size line (`1a3f;ext=1`).
fn chunk_size(line: &[u8]) -> Result<u64, ResponseError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or(b"");
    let digits = std::str::from_utf8(digits)
        .map_err(|_| ResponseError::BadChunk)?
        .trim_matches([' ', '\t']);
    if digits.is_empty() || digits.len() > 15 {
        return Err(ResponseError::BadChunk);
    }
    u64::from_str_radix(digits, 16).map_err(|_| ResponseError::BadChunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> ResponseHead {
        parse_response_head(text.as_bytes(), 8192, false)
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn heads_give_status_framing_and_caching() {
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nCache-Control: public, max-age=600\r\n\
             Content-Length: 12\r\n\r\n",
        );
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(12));
        assert_eq!(h.content_type.as_deref(), Some("video/mp4"));
        assert_eq!(h.cache_control.as_deref(), Some("public, max-age=600"));
        assert!(!h.close);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(h.close);
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n");
        assert!(h.close, "HTTP/1.0 closes unless keep-alive");
        let h = head("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(h.framing, Framing::Empty);
        let h = head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n");
        assert!(h.close);
    }

    #[test]
    fn bad_heads_are_errors_and_partial_ones_ask_for_more() {
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nA: b", 8192, false),
            Ok(None)
        );
        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\nA: b", 10, false).is_err());
        assert!(parse_response_head(b"HTTX/1.1 200 OK\r\n\r\n", 8192, false).is_err());
        let two_lengths = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            parse_response_head(two_lengths, 8192, false),
            Err(ResponseError::BadContentLength)
        );
        let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(
            parse_response_head(gzip, 8192, false),
            Err(ResponseError::UnsupportedTransferEncoding)
        );
    }

    #[test]
    fn chunked_bodies_decode_byte_by_byte_as_in_one_piece() {
        let wire =
            b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let mut whole = Vec::new();
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        let used = decoder.decode(wire, &mut whole).unwrap();
        assert!(decoder.is_done());
        assert_eq!(&wire[used..], b"NEXT");
        assert_eq!(whole, b"Wikipedia in\r\n\r\nchunks.");
        let mut bytewise = Vec::new();
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        let mut used = 0;
        for b in wire.chunks(1) {
            if decoder.is_done() {
                break;
            }
            used += decoder.decode(b, &mut bytewise).unwrap();
        }
        assert_eq!(bytewise, whole);
        assert_eq!(used, wire.len() - 4);
    }

    #[test]
    fn lengths_stop_at_the_end_and_truncation_is_an_error() {
        let mut out = Vec::new();
        let mut decoder = BodyDecoder::new(Framing::Length(3));
        assert_eq!(decoder.decode(b"abcdef", &mut out), Ok(3));
        assert!(decoder.is_done());
        assert_eq!(out, b"abc");
        let mut decoder = BodyDecoder::new(Framing::Length(3));
        decoder.decode(b"ab", &mut out).unwrap();
        assert_eq!(decoder.finish_at_close(), Err(ResponseError::Truncated));
        let mut decoder = BodyDecoder::new(Framing::UntilClose);
        decoder.decode(b"ab", &mut out).unwrap();
        assert_eq!(decoder.finish_at_close(), Ok(()));
    }

    #[test]
    fn bad_chunks_are_errors() {
        let mut out = Vec::new();
        for wire in [
            &b"zz\r\n"[..],
            b"4\r\nabcdX\r\n",
            b"\r\n",
            b"10000000000000000\r\n",
        ] {
            let mut decoder = BodyDecoder::new(Framing::Chunked);
            assert!(decoder.decode(wire, &mut out).is_err(), "{wire:?}");
        }
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        let long = vec![b'1'; CHUNK_LINE_MAX_BYTES + 1];
        assert_eq!(
            decoder.decode(&long, &mut out),
            Err(ResponseError::BadChunk)
        );
    }
}
