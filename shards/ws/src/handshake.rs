//! The opening handshake (RFC 6455 §4.2): checking the client's upgrade request and writing
//! the server's answer.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::BufMut;
use sha1::{Digest, Sha1};
use shardcast_http::{HttpDate, Method, RequestHead, ResponseHead};

use crate::HandshakeError;

/// The only protocol version this server speaks (RFC 6455 §4.1).
pub const WEBSOCKET_VERSION: u16 = 13;

/// The length of a `Sec-WebSocket-Accept` value: the base64 of a 20-byte SHA-1 digest.
pub const ACCEPT_KEY_LEN: usize = 28;

/// Appended to the client's key before hashing (RFC 6455 §1.3).
const KEY_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The length of a valid `Sec-WebSocket-Key`: the base64 of 16 bytes, with its padding.
const KEY_LEN: usize = 24;

/// An accepted opening handshake: what the `101 Switching Protocols` answer needs.
///
/// # Use
///
/// After [`RequestDecoder`](shardcast_http::RequestDecoder) yields a head with
/// [`is_websocket_upgrade`](RequestHead::is_websocket_upgrade), call [`accept`]. On `Ok`,
/// [`write_response`](Self::write_response) into the connection's send queue, stop using the
/// HTTP decoder, and hand every byte after the head (some may have arrived with it) to a new
/// [`Decoder`](crate::Decoder). On `Err`, answer with
/// [`HandshakeError::write_response`] and close.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Accept<'p> {
    key: [u8; ACCEPT_KEY_LEN],
    protocol: Option<&'p str>,
}

/// Checks an opening handshake (RFC 6455 §4.2.1) and picks the subprotocol.
///
/// The request must be a GET over HTTP/1.1 without a body, with a non-empty `Host`, an
/// `Upgrade` list containing `websocket` and a `Connection` list containing `upgrade` (both
/// case-insensitive), exactly one `Sec-WebSocket-Version: 13` and exactly one
/// `Sec-WebSocket-Key` that is the base64 of 16 bytes. Checks run in that order, and the first
/// that fails is the error.
///
/// `subprotocol` is the one subprotocol this server speaks. When the client sends
/// `Sec-WebSocket-Protocol` lists (possibly over several headers) naming it (exact,
/// case-sensitive match), it is selected; when the lists name only others,
/// the handshake is refused with [`HandshakeError::SubprotocolNotOffered`]; when the client
/// names none, the handshake is accepted without a subprotocol.
///
/// `Sec-WebSocket-Extensions` is ignored: no extension is ever negotiated, so frames must have
/// every RSV bit clear.
///
/// # Panics
///
/// If `subprotocol` is not an HTTP token (empty, or with separators or spaces): it is the
/// server's own constant, and an invalid one is a bug.
pub fn accept<'p>(
    head: &RequestHead<'_>,
    subprotocol: &'p str,
) -> Result<Accept<'p>, HandshakeError> {
    assert!(
        is_token(subprotocol),
        "subprotocol {subprotocol:?} is not an HTTP token"
    );
    if head.method() != Method::Get {
        return Err(HandshakeError::MethodNotGet {
            method: head.method(),
        });
    }
    if head.version_minor() != 1 {
        return Err(HandshakeError::HttpVersion {
            minor: head.version_minor(),
        });
    }
    if let Some(content_length @ 1..) = head.content_length() {
        return Err(HandshakeError::BodyNotAllowed { content_length });
    }
    if head.host().is_none_or(str::is_empty) {
        return Err(HandshakeError::MissingHost);
    }
    if !list_contains(head, "upgrade", |token| {
        token.eq_ignore_ascii_case(b"websocket")
    }) {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !list_contains(head, "connection", |token| {
        token.eq_ignore_ascii_case(b"upgrade")
    }) {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    check_version(head)?;
    let key = single_key(head)?;
    let protocol = select_protocol(head, subprotocol)?;

    debug_assert!(head.is_websocket_upgrade());
    Ok(Accept {
        key: accept_key_bytes(key),
        protocol,
    })
}

impl<'p> Accept<'p> {
    /// Appends the whole `101 Switching Protocols` response to `out`: the status line, `Date`,
    /// `Server`, `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept`, and
    /// `Sec-WebSocket-Protocol` when one was selected. Nothing else follows it: the next bytes
    /// on the connection are frames.
    pub fn write_response<B: BufMut>(&self, out: &mut B, date: &HttpDate) {
        let fixed = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", self.accept_key()),
        ];
        let with_protocol;
        let headers: &[(&str, &str)] = match self.protocol {
            Some(protocol) => {
                with_protocol = [
                    fixed[0],
                    fixed[1],
                    fixed[2],
                    ("Sec-WebSocket-Protocol", protocol),
                ];
                &with_protocol
            }
            None => &fixed,
        };
        // 101 has no body, and the connection persists (as WebSocket): `keep_alive` stays true
        // so that `ResponseHead` writes no `Connection: close`; our `Connection: Upgrade`
        // is the only Connection header.
        ResponseHead::new(101, date)
            .keep_alive(true)
            .request_version_minor(1)
            .headers(headers)
            .write_to(out);
    }

    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_key(&self) -> &str {
        std::str::from_utf8(&self.key).expect("base64 is ASCII")
    }

    /// The selected subprotocol; `None` when the client offered none.
    pub fn protocol(&self) -> Option<&'p str> {
        self.protocol
    }
}

impl std::fmt::Debug for Accept<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accept")
            .field("accept_key", &self.accept_key())
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl HandshakeError {
    /// Appends the refusal to `out`: the status from [`status`](Self::status), the headers it
    /// requires (`Allow: GET` for 405, `Sec-WebSocket-Version: 13` for 426),
    /// `Content-Length: 0` and `Connection: close`. Close the connection once it is sent.
    pub fn write_response<B: BufMut>(&self, out: &mut B, date: &HttpDate) {
        ResponseHead::new(self.status(), date)
            .content_length(0)
            .keep_alive(false)
            .headers(self.extra_headers())
            .write_to(out);
    }
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2):
/// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
///
/// [`accept`] computes it without allocating; this is for tests and tools.
pub fn accept_key(key: &str) -> String {
    let bytes = accept_key_bytes(key.as_bytes());
    std::str::from_utf8(&bytes)
        .expect("base64 is ASCII")
        .to_owned()
}

fn accept_key_bytes(key: &[u8]) -> [u8; ACCEPT_KEY_LEN] {
    let digest = Sha1::new()
        .chain_update(key)
        .chain_update(KEY_GUID.as_bytes())
        .finalize();
    let mut out = [0; ACCEPT_KEY_LEN];
    let written = BASE64
        .encode_slice(digest.as_slice(), &mut out)
        .expect("20 bytes encode to 28");
    assert_eq!(written, ACCEPT_KEY_LEN);
    out
}

/// Checks for exactly one `Sec-WebSocket-Version` header, of value 13.
fn check_version(head: &RequestHead<'_>) -> Result<(), HandshakeError> {
    let mut values = header_values(head, "sec-websocket-version");
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(HandshakeError::UnsupportedVersion { seen: None });
    };
    let seen = std::str::from_utf8(value)
        .ok()
        .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u16>().ok());
    if seen != Some(WEBSOCKET_VERSION) {
        return Err(HandshakeError::UnsupportedVersion { seen });
    }
    Ok(())
}

/// The one `Sec-WebSocket-Key`, checked to be the base64 of 16 bytes.
fn single_key<'b>(head: &RequestHead<'b>) -> Result<&'b [u8], HandshakeError> {
    let mut values = header_values(head, "sec-websocket-key");
    let key = values.next().ok_or(HandshakeError::MissingKey)?;
    if values.next().is_some() {
        return Err(HandshakeError::DuplicateKey);
    }
    let invalid = HandshakeError::InvalidKey { len: key.len() };
    if key.len() != KEY_LEN {
        return Err(invalid);
    }
    // 24 base64 characters decode to at most 18 bytes.
    let mut decoded = [0; 18];
    match BASE64.decode_slice(key, &mut decoded) {
        Ok(16) => Ok(key),
        _ => Err(invalid),
    }
}

/// Selects `ours` if the client offers it; see [`accept`].
fn select_protocol<'p>(
    head: &RequestHead<'_>,
    ours: &'p str,
) -> Result<Option<&'p str>, HandshakeError> {
    let mut offered_any = false;
    for value in header_values(head, "sec-websocket-protocol") {
        for token in tokens(value) {
            if token == ours.as_bytes() {
                return Ok(Some(ours));
            }
            offered_any = true;
        }
    }
    if offered_any {
        return Err(HandshakeError::SubprotocolNotOffered);
    }
    Ok(None)
}

/// Whether any element of any `name` header's comma-separated list satisfies `matches`.
fn list_contains(head: &RequestHead<'_>, name: &str, matches: impl Fn(&[u8]) -> bool) -> bool {
    header_values(head, name).any(|value| tokens(value).any(&matches))
}

/// The values of every header named `name` (case-insensitive), in order.
fn header_values<'h, 'b: 'h>(
    head: &'h RequestHead<'b>,
    name: &'h str,
) -> impl Iterator<Item = &'b [u8]> + 'h {
    head.headers()
        .filter(move |(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// The non-empty elements of a comma-separated list (RFC 9110 §5.6.1), without their OWS.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|element| element.trim_ascii())
        .filter(|element| !element.is_empty())
}

/// Whether `text` is an HTTP token (RFC 9110 §5.6.2), as subprotocol names are.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use shardcast_http::{Decoded, Limits, RequestDecoder};

    use super::*;

    const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn date() -> HttpDate {
        HttpDate::from_unix_seconds(784_111_777)
    }

    /// Decodes `request` and runs [`accept`] on it with subprotocol `danmaku.v1`.
    fn check(request: &str) -> Result<Option<String>, HandshakeError> {
        check_with(request, "danmaku.v1")
    }

    fn check_with(request: &str, ours: &str) -> Result<Option<String>, HandshakeError> {
        let mut decoder = RequestDecoder::new(Limits::default());
        let Ok(Decoded::Head { head, .. }) = decoder.decode(request.as_bytes()) else {
            panic!("not a head: {request:?}");
        };
        accept(&head, ours).map(|accept| accept.protocol().map(str::to_owned))
    }

    /// A valid handshake with `extra` header lines added before the blank line.
    fn request(extra: &str) -> String {
        format!(
            "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {RFC_KEY}\r\n\
             Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    /// A handshake built from exactly these header lines.
    fn request_with_headers(request_line: &str, lines: &[&str]) -> String {
        let mut text = format!("{request_line}\r\n");
        for line in lines {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        text
    }

    #[test]
    fn rfc_example_key() {
        assert_eq!(accept_key(RFC_KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn exact_101_response() {
        let mut decoder = RequestDecoder::new(Limits::default());
        let text = request("Sec-WebSocket-Protocol: chat, danmaku.v1\r\n");
        let Ok(Decoded::Head { head, .. }) = decoder.decode(text.as_bytes()) else {
            panic!("a head");
        };
        let accepted = accept(&head, "danmaku.v1").unwrap();
        let mut out = Vec::new();
        accepted.write_response(&mut out, &date());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Server: shardcast\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Sec-WebSocket-Protocol: danmaku.v1\r\n\
             \r\n"
        );

        let text = request("Sec-WebSocket-Extensions: permessage-deflate\r\n");
        let mut decoder = RequestDecoder::new(Limits::default());
        let Ok(Decoded::Head { head, .. }) = decoder.decode(text.as_bytes()) else {
            panic!("a head");
        };
        let accepted = accept(&head, "danmaku.v1").unwrap();
        let mut out = bytes::BytesMut::new();
        accepted.write_response(&mut out, &date());
        assert_eq!(
            &out[..],
            b"HTTP/1.1 101 Switching Protocols\r\n\
              Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
              Server: shardcast\r\n\
              Upgrade: websocket\r\n\
              Connection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
              \r\n",
            "no protocol selected, extensions never echoed"
        );
        assert_eq!(
            format!("{accepted:?}"),
            "Accept { accept_key: \"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\", protocol: None }"
        );
    }

    #[test]
    fn header_names_and_tokens_are_case_insensitive() {
        let text = request_with_headers(
            "GET /ws HTTP/1.1",
            &[
                "host: h",
                "UPGRADE: WebSocket",
                "connection: keep-alive, UPGRADE",
                "sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==",
                "SEC-WEBSOCKET-VERSION: 13",
            ],
        );
        assert_eq!(check(&text), Ok(None));
        // Lists spread over several headers, with empty elements and OWS.
        let text = request_with_headers(
            "GET /ws HTTP/1.1",
            &[
                "Host: h",
                "Upgrade: h2c",
                "Upgrade: , websocket ,",
                "Connection: keep-alive",
                "Connection: Upgrade",
                "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==",
                "Sec-WebSocket-Version: 13",
            ],
        );
        assert_eq!(check(&text), Ok(None));
    }

    #[test]
    fn subprotocol_selection() {
        let cases: &[(&str, Result<Option<&str>, HandshakeError>)] = &[
            ("", Ok(None)),
            (
                "Sec-WebSocket-Protocol: danmaku.v1\r\n",
                Ok(Some("danmaku.v1")),
            ),
            (
                "Sec-WebSocket-Protocol: chat,  danmaku.v1 , superchat\r\n",
                Ok(Some("danmaku.v1")),
            ),
            (
                "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: danmaku.v1\r\n",
                Ok(Some("danmaku.v1")),
            ),
            (
                "Sec-WebSocket-Protocol: chat, superchat\r\n",
                Err(HandshakeError::SubprotocolNotOffered),
            ),
            (
                "Sec-WebSocket-Protocol: DANMAKU.V1\r\n",
                Err(HandshakeError::SubprotocolNotOffered),
            ),
            (
                "Sec-WebSocket-Protocol: danmaku.v10\r\n",
                Err(HandshakeError::SubprotocolNotOffered),
            ),
            // A header with no elements offers nothing.
            ("Sec-WebSocket-Protocol: , \r\n", Ok(None)),
        ];
        for (extra, expected) in cases {
            let expected = expected.map(|protocol| protocol.map(str::to_owned));
            assert_eq!(check(&request(extra)), expected, "{extra:?}");
        }
        assert_eq!(
            HandshakeError::SubprotocolNotOffered.status(),
            400,
            "refused, not accepted without a protocol"
        );
    }

    #[test]
    #[should_panic(expected = "not an HTTP token")]
    fn invalid_server_subprotocol_is_a_bug() {
        let _ = check_with(&request(""), "two words");
    }

    #[test]
    fn every_refusal_with_its_status() {
        let key = "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==";
        let base = [
            "Host: h",
            "Upgrade: websocket",
            "Connection: Upgrade",
            key,
            "Sec-WebSocket-Version: 13",
        ];
        let without = |skip: &str| -> Vec<&str> {
            base.iter()
                .copied()
                .filter(|line| !line.starts_with(skip))
                .collect()
        };
        let with = |line: &'static str| -> Vec<&str> {
            let mut lines = base.to_vec();
            lines.push(line);
            lines
        };
        let replacing = |prefix: &str, line: &'static str| -> Vec<&str> {
            let mut lines = without(prefix);
            lines.push(line);
            lines
        };
        let get = "GET /ws HTTP/1.1";
        let cases: Vec<(&str, Vec<&str>, HandshakeError, u16)> = vec![
            (
                "POST /ws HTTP/1.1",
                base.to_vec(),
                HandshakeError::MethodNotGet {
                    method: Method::Post,
                },
                405,
            ),
            (
                "get /ws HTTP/1.1",
                base.to_vec(),
                HandshakeError::MethodNotGet {
                    method: Method::Other,
                },
                405,
            ),
            (
                "GET /ws HTTP/1.0",
                base.to_vec(),
                HandshakeError::HttpVersion { minor: 0 },
                400,
            ),
            (
                get,
                with("Content-Length: 5"),
                HandshakeError::BodyNotAllowed { content_length: 5 },
                400,
            ),
            (
                get,
                replacing("Host", "Host:"),
                HandshakeError::MissingHost,
                400,
            ),
            (get, without("Upgrade"), HandshakeError::MissingUpgrade, 400),
            (
                get,
                replacing("Upgrade", "Upgrade: websocket/13, h2c"),
                HandshakeError::MissingUpgrade,
                400,
            ),
            (
                get,
                without("Connection"),
                HandshakeError::MissingConnectionUpgrade,
                400,
            ),
            (
                get,
                replacing("Connection", "Connection: keep-alive, upgraded"),
                HandshakeError::MissingConnectionUpgrade,
                400,
            ),
            (
                get,
                without("Sec-WebSocket-Version"),
                HandshakeError::UnsupportedVersion { seen: None },
                426,
            ),
            (
                get,
                replacing("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8"),
                HandshakeError::UnsupportedVersion { seen: Some(8) },
                426,
            ),
            (
                get,
                replacing("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8"),
                HandshakeError::UnsupportedVersion { seen: None },
                426,
            ),
            (
                get,
                replacing("Sec-WebSocket-Version", "Sec-WebSocket-Version: +13"),
                HandshakeError::UnsupportedVersion { seen: None },
                426,
            ),
            (
                get,
                with("Sec-WebSocket-Version: 13"),
                HandshakeError::UnsupportedVersion { seen: None },
                426,
            ),
            (
                get,
                without("Sec-WebSocket-Key"),
                HandshakeError::MissingKey,
                400,
            ),
            (get, with(key), HandshakeError::DuplicateKey, 400),
            (
                get,
                replacing(
                    "Sec-WebSocket-Key",
                    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA",
                ),
                HandshakeError::InvalidKey { len: 22 },
                400,
            ),
            (
                get,
                // 17 bytes: base64 of 24 characters with one padding byte.
                replacing(
                    "Sec-WebSocket-Key",
                    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=",
                ),
                HandshakeError::InvalidKey { len: 24 },
                400,
            ),
            (
                get,
                // 18 bytes, no padding.
                replacing(
                    "Sec-WebSocket-Key",
                    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA",
                ),
                HandshakeError::InvalidKey { len: 24 },
                400,
            ),
            (
                get,
                replacing(
                    "Sec-WebSocket-Key",
                    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAA*==",
                ),
                HandshakeError::InvalidKey { len: 24 },
                400,
            ),
            (
                get,
                // Non-zero bits after the last full byte: not canonical base64.
                replacing(
                    "Sec-WebSocket-Key",
                    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAB==",
                ),
                HandshakeError::InvalidKey { len: 24 },
                400,
            ),
            (
                get,
                with("Sec-WebSocket-Protocol: chat"),
                HandshakeError::SubprotocolNotOffered,
                400,
            ),
        ];
        for (request_line, lines, error, status) in cases {
            let text = request_with_headers(request_line, &lines);
            assert_eq!(check(&text), Err(error), "{text:?}");
            assert_eq!(error.status(), status, "{error:?}");
        }
    }

    #[test]
    fn refusal_responses() {
        let date = date();
        let written = |error: HandshakeError| {
            let mut out = Vec::new();
            error.write_response(&mut out, &date);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            written(HandshakeError::UnsupportedVersion { seen: Some(8) }),
            "HTTP/1.1 426 Upgrade Required\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Server: shardcast\r\n\
             Content-Length: 0\r\n\
             Connection: close\r\n\
             Sec-WebSocket-Version: 13\r\n\
             \r\n"
        );
        assert_eq!(
            written(HandshakeError::MethodNotGet {
                method: Method::Head
            }),
            "HTTP/1.1 405 Method Not Allowed\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Server: shardcast\r\n\
             Content-Length: 0\r\n\
             Connection: close\r\n\
             Allow: GET\r\n\
             \r\n"
        );
        assert_eq!(
            written(HandshakeError::MissingKey),
            "HTTP/1.1 400 Bad Request\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Server: shardcast\r\n\
             Content-Length: 0\r\n\
             Connection: close\r\n\
             \r\n"
        );
    }

    #[test]
    fn keys_are_hashed_as_sent() {
        // Different valid keys give different answers, each the RFC computation.
        let first = request("");
        let second = first.replace(RFC_KEY, "AQIDBAUGBwgJCgsMDQ4PEA==");
        let mut decoder = RequestDecoder::new(Limits::default());
        let Ok(Decoded::Head { head, .. }) = decoder.decode(second.as_bytes()) else {
            panic!("a head");
        };
        let accepted = accept(&head, "danmaku.v1").unwrap();
        assert_eq!(
            accepted.accept_key(),
            accept_key("AQIDBAUGBwgJCgsMDQ4PEA==")
        );
        assert_ne!(accepted.accept_key(), accept_key(RFC_KEY));
        assert_eq!(accepted.accept_key().len(), ACCEPT_KEY_LEN);
    }
}
