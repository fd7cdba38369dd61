//! The `http_response` target: the client side an edge reads origins with
//! ([`shardcast_http::parse_response_head`], [`shardcast_http::BodyDecoder`]), fed one
//! response's bytes whole, at fuzzer-chosen cuts and one byte at a time, the way the edge's
//! fetcher does (head bytes kept until the head parses, then the body decoder).

use shardcast_http::{parse_response_head, BodyDecoder, Framing};

use crate::{Input, BYTE_AT_A_TIME_MAX_BYTES};

/// Longest head the target allows (the edge allows 16 KiB; short inputs reach this one).
const HEAD_MAX_BYTES: usize = 512;

/// What reading a response gave.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The head's status and framing, the body, whether it ended (and the bytes after its
    /// end), or whether the connection's close ends it well.
    Read {
        status: u16,
        framing: Framing,
        body: Vec<u8>,
        ended: Option<usize>,
        fine_at_close: bool,
    },
    /// The head never completed.
    NoHead,
    /// Bad bytes (the kind of error may differ with the cuts: a head over the limit is seen
    /// before a bad byte past the limit).
    Error,
}

/// Checks that the three ways of feeding give the same outcome, and the decoder's contract:
/// a head within the limit, bodies of exactly `Content-Length` bytes, nothing consumed past a
/// body's end.
pub fn http_response(data: &[u8]) {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let head_request = input.config & 1 == 1;
    let whole = drive([input.payload], head_request);
    let pieces = drive(input.pieces(), head_request);
    assert_eq!(pieces, whole, "split at the chosen cuts");
    if input.payload.len() <= BYTE_AT_A_TIME_MAX_BYTES {
        let bytes = drive(input.payload.chunks(1), head_request);
        assert_eq!(bytes, whole, "one byte at a time");
    }
    if let Outcome::Read {
        framing: Framing::Length(n),
        body,
        ended,
        ..
    } = &whole
    {
        assert!(body.len() as u64 <= *n);
        assert_eq!(ended.is_some(), body.len() as u64 == *n);
    }
}

fn drive<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, head_request: bool) -> Outcome {
    let mut head_bytes = Vec::new();
    let mut read: Option<(u16, Framing, BodyDecoder)> = None;
    let mut body = Vec::new();
    let mut after_end = 0;
    for chunk in chunks {
        let mut fresh = chunk.to_vec();
        if read.is_none() {
            head_bytes.extend_from_slice(chunk);
            match parse_response_head(&head_bytes, HEAD_MAX_BYTES, head_request) {
                Err(_) => return Outcome::Error,
                Ok(None) => {
                    assert!(
                        head_bytes.len() <= HEAD_MAX_BYTES,
                        "kept more than the limit"
                    );
                    continue;
                }
                Ok(Some((head, length))) => {
                    assert!(length <= HEAD_MAX_BYTES && length <= head_bytes.len());
                    fresh = head_bytes.split_off(length);
                    read = Some((head.status, head.framing, BodyDecoder::new(head.framing)));
                }
            }
        }
        let Some((_, _, decoder)) = read.as_mut() else {
            continue;
        };
        if decoder.is_done() {
            after_end += fresh.len();
            continue;
        }
        let before = body.len();
        match decoder.decode(&fresh, &mut body) {
            Ok(used) => {
                assert!(used <= fresh.len());
                assert!(used == fresh.len() || decoder.is_done(), "stopped early");
                assert!(body.len() - before <= used, "more body than input");
                after_end += fresh.len() - used;
            }
            Err(_) => return Outcome::Error,
        }
    }
    match read {
        None => Outcome::NoHead,
        Some((status, framing, mut decoder)) => {
            let ended = decoder.is_done().then_some(after_end);
            Outcome::Read {
                status,
                framing,
                body,
                ended,
                fine_at_close: decoder.finish_at_close().is_ok(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn responses_of_every_framing_pass() {
        let mut data = vec![0u8; crate::CONTROL_BYTES];
        data.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nNEXT",
        );
        super::http_response(&data);
        let mut data = vec![0u8; crate::CONTROL_BYTES];
        data.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope");
        super::http_response(&data);
    }
}
