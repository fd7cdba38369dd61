//! A Redis subscriber of our own: SUBSCRIBE, UNSUBSCRIBE and the messages, over RESP2 on a
//! blocking TCP socket with a read timeout.
//!
//! Why not the `redis` crate's `PubSub`: it borrows its connection and unsubscribes from
//! everything when dropped, and a read timeout in the middle of a reply loses the bytes read so
//! far. Here the bytes read stay in [`Subscriber`]'s buffer until a whole reply is there, so a
//! timeout costs nothing, and the parser ([`parse`]) is sans-io and tested on its own.
//!
//! Limits: a reply larger than [`REPLY_MAX_BYTES`] (Redis never sends one to a subscriber of
//! shardcast's channels, whose messages are batches of at most `danmaku.batch_max_bytes`) is
//! an error, and the caller reconnects.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest reply read, bytes.
pub const REPLY_MAX_BYTES: usize = 4 << 20;

/// A message from a channel.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub channel: Vec<u8>,
    pub payload: Vec<u8>,
}

/// One RESP2 reply, as far as a subscriber needs it.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// `["message", channel, payload]`.
    Message(Message),
    /// An error reply (`-ERR …`).
    Error(String),
    /// Anything else: subscribe confirmations, `+OK`, pongs.
    Other,
}

/// A reply that is not RESP2, or too large.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("malformed RESP: {0}")]
    Malformed(&'static str),
    #[error("a reply over {REPLY_MAX_BYTES} bytes")]
    TooLarge,
}

/// Parses one reply from the front of `buf`: `Ok(None)` until it is complete, else the reply
/// and how many bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, RespError> {
    let Some((value, used)) = value(buf, 0)? else {
        if buf.len() > REPLY_MAX_BYTES {
            return Err(RespError::TooLarge);
        }
        return Ok(None);
    };
    let reply = match value {
        Value::Error(message) => Reply::Error(message),
        Value::Array(items) => match items.as_slice() {
            [Value::Bulk(kind), Value::Bulk(channel), Value::Bulk(payload)]
                if kind == b"message" =>
            {
                Reply::Message(Message {
                    channel: channel.clone(),
                    payload: payload.clone(),
                })
            }
            _ => Reply::Other,
        },
        _ => Reply::Other,
    };
    Ok(Some((reply, used)))
}

enum Value {
    Simple,
    Error(String),
    Int,
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Value>),
}

/// One value at the front of `buf` (`depth` levels of arrays deep).
fn value(buf: &[u8], depth: usize) -> Result<Option<(Value, usize)>, RespError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > 64 && !buf.starts_with(b"$") && !buf.starts_with(b"*") {
            return Err(RespError::Malformed("line too long"));
        }
        return Ok(None);
    };
    let Some((&kind, line)) = buf[..end].split_first() else {
        return Err(RespError::Malformed("empty line"));
    };
    let head = end + 2;
    let number = || -> Result<i64, RespError> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(RespError::Malformed("bad number"))
    };
    match kind {
        b'+' => Ok(Some((Value::Simple, head))),
        b'-' => Ok(Some((
            Value::Error(String::from_utf8_lossy(line).into_owned()),
            head,
        ))),
        b':' => number().map(|_| Some((Value::Int, head))),
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Ok(Some((Value::Nil, head)));
            }
            let len = usize::try_from(len).map_err(|_| RespError::Malformed("bad length"))?;
            if len > REPLY_MAX_BYTES {
                return Err(RespError::TooLarge);
            }
            if buf.len() < head + len + 2 {
                return Ok(None);
            }
            if &buf[head + len..head + len + 2] != b"\r\n" {
                return Err(RespError::Malformed("bulk string not ended by CRLF"));
            }
            Ok(Some((
                Value::Bulk(buf[head..head + len].to_vec()),
                head + len + 2,
            )))
        }
        b'*' => {
            let count = number()?;
            if count < 0 {
                return Ok(Some((Value::Nil, head)));
            }
            if depth >= 2 || count > 16 {
                return Err(RespError::Malformed("unexpected nesting"));
            }
            let mut items = Vec::with_capacity(count as usize);
            let mut at = head;
            for _ in 0..count {
                let Some((item, used)) = value(&buf[at..], depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                at += used;
            }
            Ok(Some((Value::Array(items), at)))
        }
        _ => Err(RespError::Malformed("unknown type")),
    }
}

/// A command as RESP: an array of bulk strings.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A subscribed connection.
pub struct Subscriber {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Subscriber {
    /// Connects to the Redis that `info` names (TCP only), authenticating when it has a
    /// password.
    pub fn connect(info: &redis::ConnectionInfo, timeout: Duration) -> io::Result<Subscriber> {
        let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "rooms across hosts need a redis:// (TCP) URL",
            ));
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout))?;
        let mut subscriber = Subscriber {
            stream,
            buf: Vec::new(),
        };
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = settings.username() {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            subscriber.stream.write_all(&command(&args))?;
            let mut replies = Vec::new();
            let deadline = std::time::Instant::now() + timeout;
            while replies.is_empty() {
                if std::time::Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "Redis did not answer AUTH",
                    ));
                }
                subscriber.read(timeout, &mut replies)?;
            }
            if let Some(Reply::Error(error)) = replies.first() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    error.clone(),
                ));
            }
        }
        Ok(subscriber)
    }

    /// Sends SUBSCRIBE (or UNSUBSCRIBE) for `channels`; the confirmations arrive later as
    /// [`Reply::Other`].
    pub fn send(&mut self, verb: &[u8], channels: &[&[u8]]) -> io::Result<()> {
        if channels.is_empty() {
            return Ok(());
        }
        let mut args = Vec::with_capacity(channels.len() + 1);
        args.push(verb);
        args.extend_from_slice(channels);
        self.stream.write_all(&command(&args))
    }

    /// Reads what arrives within `wait` (at least one read) and appends every complete reply
    /// to `out`. An error means the connection is no longer usable.
    pub fn read(&mut self, wait: Duration, out: &mut Vec<Reply>) -> io::Result<()> {
        self.stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "Redis closed the connection",
                ))
            }
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        let mut at = 0;
        loop {
            match parse(&self.buf[at..]) {
                Ok(Some((reply, used))) => {
                    out.push(reply);
                    at += used;
                }
                Ok(None) => break,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
        self.buf.drain(..at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_confirmations_parse_whole_and_wait_when_cut() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
        stream.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhe\r\no\r\n");
        stream.extend_from_slice(b"-ERR wrong\r\n");
        let mut replies = Vec::new();
        let mut at = 0;
        while let Some((reply, used)) = parse(&stream[at..]).unwrap() {
            replies.push(reply);
            at += used;
        }
        assert_eq!(at, stream.len());
        assert_eq!(
            replies,
            [
                Reply::Other,
                Reply::Message(Message {
                    channel: b"ch".to_vec(),
                    payload: b"he\r\no".to_vec()
                }),
                Reply::Error("ERR wrong".into())
            ]
        );
        // Every prefix of a reply is incomplete, never an error.
        for cut in 0..stream.len() {
            let mut at = 0;
            while let Some((_, used)) = parse(&stream[at..cut]).unwrap() {
                at += used;
            }
        }
    }

    #[test]
    fn malformed_and_oversized_replies_are_errors() {
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b"$3\r\nabcXY").is_err());
        assert!(parse(b"*1\r\n*1\r\n*1\r\n:1\r\n").is_err(), "nesting");
        assert_eq!(
            parse(format!("${}\r\n", REPLY_MAX_BYTES + 1).as_bytes()),
            Err(RespError::TooLarge)
        );
        assert!(parse(&[b'+'; 100]).is_err(), "a line that never ends");
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            command(&[b"SUBSCRIBE", b"a b"]),
            b"*2\r\n$9\r\nSUBSCRIBE\r\n$3\r\na b\r\n"
        );
    }
}
