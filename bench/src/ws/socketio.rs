//! The client side of Socket.IO 5 over Engine.IO 4 on the WebSocket transport, sans-io: what
//! the load generator needs to measure a Socket.IO server with the same workload as shardcast.
//!
//! A client connects straight over WebSocket (`/socket.io/?EIO=4&transport=websocket`, no
//! long-polling first, as production clients do after the upgrade). Each WebSocket text
//! message is one Engine.IO packet: the server opens with `0{"sid":…,"pingInterval":…}`, the
//! client connects to the main namespace with `40` and is answered `40{"sid":…}`; events are
//! `42["name",payload]`. The server pings (`2`) and the client answers (`3`).
//!
//! The benchmark's own events (see `bench/peers/socketio-redis/server.mjs`): `join` {room},
//! answered by `welcome`; `chat` {text}, which the server emits to the room on every host as
//! `chat` {user, text}.

use serde::Deserialize;

/// The request path of a WebSocket-only Engine.IO 4 connection.
pub const PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// Engine.IO's answer to a server ping.
pub const PONG: &[u8] = b"3";

/// Socket.IO's connect to the main namespace.
pub const CONNECT: &[u8] = b"40";

/// Why a packet from the server was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketIoError {
    /// An empty message, or one whose Engine.IO type is not 0..=6.
    #[error("not an Engine.IO packet")]
    Packet,
    /// The open packet's JSON did not parse.
    #[error("malformed open packet")]
    Open,
    /// A Socket.IO packet of a type other than connect, event or connect error, or an event
    /// whose JSON did not parse.
    #[error("malformed Socket.IO packet")]
    SocketIo,
    /// The server refused the namespace connection (`44…`).
    #[error("connection refused by the server")]
    Refused,
}

/// One packet from the server, as far as the load generator cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet {
    /// Engine.IO open: the session exists; the server pings every `ping_interval_ms`.
    Open {
        /// The server's ping interval.
        ping_interval_ms: u64,
    },
    /// Engine.IO ping: answer with [`PONG`].
    Ping,
    /// Engine.IO close.
    Close,
    /// Socket.IO connect acknowledged for the main namespace.
    Connected,
    /// Socket.IO `welcome` event: the join took.
    Welcome,
    /// Socket.IO `chat` event, with the text as sent.
    Chat(String),
    /// Any other event or packet (noop, message to another namespace, …).
    Other,
}

#[derive(Deserialize)]
struct OpenBody {
    #[serde(rename = "pingInterval")]
    ping_interval: u64,
}

#[derive(Deserialize)]
struct ChatBody {
    text: String,
}

/// Reads one WebSocket text message from a Socket.IO server.
pub fn parse(message: &[u8]) -> Result<Packet, SocketIoError> {
    let (&kind, rest) = message.split_first().ok_or(SocketIoError::Packet)?;
    match kind {
        b'0' => {
            let open: OpenBody = serde_json::from_slice(rest).map_err(|_| SocketIoError::Open)?;
            Ok(Packet::Open {
                ping_interval_ms: open.ping_interval,
            })
        }
        b'1' => Ok(Packet::Close),
        b'2' => Ok(Packet::Ping),
        b'3' | b'5' | b'6' => Ok(Packet::Other),
        b'4' => parse_socketio(rest),
        _ => Err(SocketIoError::Packet),
    }
}

/// A Socket.IO packet (inside an Engine.IO message packet).
fn parse_socketio(packet: &[u8]) -> Result<Packet, SocketIoError> {
    let (&kind, rest) = packet.split_first().ok_or(SocketIoError::SocketIo)?;
    match kind {
        // Connect for the main namespace carries `{"sid":…}`; another namespace starts `/`.
        b'0' if !rest.starts_with(b"/") => Ok(Packet::Connected),
        b'2' if rest.starts_with(b"[") => parse_event(rest),
        b'4' => Err(SocketIoError::Refused),
        b'0'..=b'6' => Ok(Packet::Other),
        _ => Err(SocketIoError::SocketIo),
    }
}

/// An event `["name", payload, …]` of the main namespace without an ack id.
fn parse_event(array: &[u8]) -> Result<Packet, SocketIoError> {
    let name_end = array
        .iter()
        .skip(2)
        .position(|&b| b == b'"' || b == b'\\')
        .map(|at| at + 2);
    // The common case: a plain name, no escapes. Anything else goes through serde.
    if array.get(1) == Some(&b'"') {
        if let Some(end) = name_end.filter(|&end| array[end] == b'"') {
            let name = &array[2..end];
            return match name {
                b"welcome" => Ok(Packet::Welcome),
                b"chat" => {
                    let (_, body): (serde::de::IgnoredAny, ChatBody) =
                        serde_json::from_slice(array).map_err(|_| SocketIoError::SocketIo)?;
                    Ok(Packet::Chat(body.text))
                }
                _ => Ok(Packet::Other),
            };
        }
    }
    let value: serde_json::Value =
        serde_json::from_slice(array).map_err(|_| SocketIoError::SocketIo)?;
    match value.get(0).and_then(|name| name.as_str()) {
        Some("welcome") => Ok(Packet::Welcome),
        Some("chat") => value
            .get(1)
            .and_then(|body| body.get("text"))
            .and_then(|text| text.as_str())
            .map(|text| Packet::Chat(text.to_owned()))
            .ok_or(SocketIoError::SocketIo),
        Some(_) => Ok(Packet::Other),
        None => Err(SocketIoError::SocketIo),
    }
}

/// Writes the event `42["name",{"key":"value"}]` into `out` (cleared first). `value` is
/// JSON-escaped.
pub fn write_event(out: &mut String, name: &str, key: &str, value: &str) {
    out.clear();
    out.push_str("42[\"");
    out.push_str(name);
    out.push_str("\",{\"");
    out.push_str(key);
    out.push_str("\":");
    out.push_str(&serde_json::to_string(value).expect("a string serialises"));
    out.push_str("}]");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_io_packets() {
        let open = br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(
            parse(open),
            Ok(Packet::Open {
                ping_interval_ms: 25000
            })
        );
        assert_eq!(parse(b"2"), Ok(Packet::Ping));
        assert_eq!(parse(b"1"), Ok(Packet::Close));
        assert_eq!(parse(b"6"), Ok(Packet::Other));
        assert_eq!(parse(b""), Err(SocketIoError::Packet));
        assert_eq!(parse(b"9"), Err(SocketIoError::Packet));
        assert_eq!(parse(b"0{"), Err(SocketIoError::Open));
    }

    #[test]
    fn socket_io_packets() {
        assert_eq!(
            parse(br#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#),
            Ok(Packet::Connected)
        );
        assert_eq!(parse(br#"40/admin,{"sid":"x"}"#), Ok(Packet::Other));
        assert_eq!(
            parse(br#"44{"message":"Not authorized"}"#),
            Err(SocketIoError::Refused)
        );
        assert_eq!(
            parse(br#"42["welcome",{"user":"u","room":"bench-0","seq":0}]"#),
            Ok(Packet::Welcome)
        );
        assert_eq!(
            parse(br#"42["chat",{"user":"user-1","text":"b:1:2:3"}]"#),
            Ok(Packet::Chat("b:1:2:3".to_owned()))
        );
        // Escapes, in the name and in the text.
        assert_eq!(
            parse(br#"42["ch\u0061t",{"text":"a\"b"}]"#),
            Ok(Packet::Chat("a\"b".to_owned()))
        );
        assert_eq!(parse(br#"42["other",1]"#), Ok(Packet::Other));
        assert_eq!(
            parse(br#"42["chat",{"user":"u"}]"#),
            Err(SocketIoError::SocketIo)
        );
        assert_eq!(parse(br#"42["chat""#), Err(SocketIoError::SocketIo));
        assert_eq!(parse(b"4x"), Err(SocketIoError::SocketIo));
    }

    #[test]
    fn events_are_written_as_the_server_reads_them() {
        let mut out = String::from("stale");
        write_event(&mut out, "chat", "text", "b:0:1:2");
        assert_eq!(out, r#"42["chat",{"text":"b:0:1:2"}]"#);
        write_event(&mut out, "join", "room", "a\"b");
        assert_eq!(out, r#"42["join",{"room":"a\"b"}]"#);
        assert_eq!(
            parse(format!("4{}", &out[1..]).as_bytes()).ok(),
            Some(Packet::Other)
        );
    }
}
