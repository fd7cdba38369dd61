//! The sockets of the soak's clients: reads and writes that give up at a deadline (the
//! operation is cancelled and still awaited, so no byte io_uring delivered is lost), a
//! minimal keep-alive HTTP/1.1 `GET`, and a WebSocket client connection speaking
//! `shardcast.v1`.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use monoio::buf::IoBufMut;
use monoio::io::{CancelableAsyncReadRent, CancelableAsyncWriteRentExt, Canceller};
use monoio::net::TcpStream;
use shardcast_wire::SUBPROTOCOL;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::net;
use crate::ws::codec::{self, Event, FrameDecoder, Masks};

/// Free space offered to each read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Largest HTTP response head or body the soak keeps (playlists and the fixture's segments
/// are far smaller).
pub const HTTP_BODY_MAX_BYTES: usize = 4 * 1024 * 1024;

/// What a read came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// This many bytes were appended.
    Data(usize),
    /// The deadline passed first.
    TimedOut,
    /// The peer closed (end of file).
    Eof,
    /// The connection failed (reset, or any other error).
    Failed,
}

/// A TCP stream with its canceller and the bytes received and not yet consumed.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    canceller: Canceller,
}

impl Conn {
    /// Connects to `addr`, giving up at `deadline`.
    pub async fn connect(addr: SocketAddr, deadline: Instant) -> io::Result<Conn> {
        let stream = net::connect(addr, None, deadline).await?;
        Ok(Conn::from_stream(stream))
    }

    /// Connects with a receive buffer of `rcvbuf_bytes` (set before the connect, so the
    /// window it advertises is small from the start): a reader that stops reading then
    /// holds little in the kernel and the server's own queue fills sooner. The connect is
    /// blocking, which on loopback returns at once.
    pub fn connect_small(addr: SocketAddr, rcvbuf_bytes: usize) -> io::Result<Conn> {
        let domain = Domain::for_address(addr);
        let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_recv_buffer_size(rcvbuf_bytes)?;
        socket.set_nodelay(true)?;
        socket.connect(&SockAddr::from(addr))?;
        let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
        Ok(Conn::from_stream(stream))
    }

    fn from_stream(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            canceller: Canceller::new(),
        }
    }

    /// Reads once into the free space after `buf`, waiting until `deadline` at most.
    pub async fn read_more(&mut self, deadline: Instant) -> Read {
        let len = self.buf.len();
        self.buf.reserve(READ_CHUNK_BYTES);
        let tail = std::mem::take(&mut self.buf).slice_mut(len..);
        let read = self.stream.cancelable_read(tail, self.canceller.handle());
        let sleep = std::pin::pin!(monoio::time::sleep_until(deadline.into()));
        let (result, tail) = net::op_or_deadline(read, &mut self.canceller, sleep).await;
        self.buf = tail.into_inner();
        match result {
            Ok(0) => Read::Eof,
            Ok(n) => Read::Data(n),
            Err(error) if error.raw_os_error() == Some(libc::ECANCELED) => Read::TimedOut,
            Err(_) => Read::Failed,
        }
    }

    /// Writes all of `data`, giving up at `deadline` (a peer that does not read).
    pub async fn write_all(&mut self, data: Vec<u8>, deadline: Instant) -> io::Result<()> {
        let write =
            CancelableAsyncWriteRentExt::write_all(&mut self.stream, data, self.canceller.handle());
        let sleep = std::pin::pin!(monoio::time::sleep_until(deadline.into()));
        let (result, _) = net::op_or_deadline(write, &mut self.canceller, sleep).await;
        result.map(|_| ())
    }

    /// Reads and discards until the peer closes or `deadline`: `Ok(bytes)` when it closed
    /// (end of file or reset), `Err(bytes)` when the deadline came first.
    pub async fn until_closed(&mut self, deadline: Instant) -> Result<usize, usize> {
        let mut total = self.buf.len();
        loop {
            if self.buf.len() > READ_CHUNK_BYTES {
                self.buf.clear();
            }
            match self.read_more(deadline).await {
                Read::Data(n) => total += n,
                Read::Eof | Read::Failed => return Ok(total),
                Read::TimedOut => return Err(total),
            }
        }
    }
}

/// Why a `GET` produced no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    /// Connecting failed.
    Connect,
    /// The server closed or reset the connection before the response ended.
    Closed,
    /// No complete response by the deadline.
    Timeout,
    /// The response could not be framed (no `Content-Length`, a bad head, too large).
    Parse,
}

/// A keep-alive HTTP/1.1 client of one server: reconnects when the server closed.
pub struct HttpClient {
    addr: SocketAddr,
    authority: String,
    conn: Option<Conn>,
}

/// One response: status and body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            authority: addr.to_string(),
            conn: None,
        }
    }

    /// `GET path`, waiting until `deadline` at most. A kept-alive connection the server
    /// closed meanwhile (its idle timeout) is retried once on a new one.
    pub async fn get(&mut self, path: &str, deadline: Instant) -> Result<Response, FetchError> {
        let reused = self.conn.is_some();
        match self.get_once(path, deadline).await {
            Err(FetchError::Closed) if reused => self.get_once(path, deadline).await,
            result => result,
        }
    }

    async fn get_once(&mut self, path: &str, deadline: Instant) -> Result<Response, FetchError> {
        if self.conn.is_none() {
            let conn = Conn::connect(self.addr, deadline).await;
            self.conn = Some(conn.map_err(|_| FetchError::Connect)?);
        }
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shardcast-bench soak\r\n\r\n",
            self.authority
        );
        let conn = self.conn.as_mut().expect("connected above");
        let result = match conn.write_all(request.into_bytes(), deadline).await {
            Ok(()) => read_response(conn, deadline).await,
            Err(_) => Err(FetchError::Closed),
        };
        match &result {
            Ok((_, keep_alive)) if *keep_alive => {}
            _ => self.conn = None,
        }
        result.map(|(response, _)| response)
    }
}

/// Reads one `Content-Length` response; also says whether the connection stays open.
async fn read_response(conn: &mut Conn, deadline: Instant) -> Result<(Response, bool), FetchError> {
    loop {
        if let Some(head) = parse_head(&conn.buf)? {
            let total = head.head_bytes + head.body_bytes;
            while conn.buf.len() < total {
                read_or_fail(conn, deadline).await?;
            }
            let body = conn.buf[head.head_bytes..total].to_vec();
            conn.buf.drain(..total);
            let response = Response {
                status: head.status,
                body,
            };
            return Ok((response, !head.close));
        }
        read_or_fail(conn, deadline).await?;
    }
}

async fn read_or_fail(conn: &mut Conn, deadline: Instant) -> Result<(), FetchError> {
    match conn.read_more(deadline).await {
        Read::Data(_) => Ok(()),
        Read::TimedOut => Err(FetchError::Timeout),
        Read::Eof | Read::Failed => Err(FetchError::Closed),
    }
}

/// A parsed response head.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub head_bytes: usize,
    pub body_bytes: usize,
    pub close: bool,
}

/// Parses the response head at the start of `buf`; `Ok(None)` while it is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, FetchError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > HTTP_BODY_MAX_BYTES {
            Err(FetchError::Parse)
        } else {
            Ok(None)
        };
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| FetchError::Parse)?;
    let mut lines = text.split("\r\n");
    let status = status_of(lines.next().unwrap_or("")).ok_or(FetchError::Parse)?;
    let mut body_bytes = None;
    let mut close = false;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(FetchError::Parse)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body_bytes = Some(value.parse::<usize>().map_err(|_| FetchError::Parse)?);
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let body_bytes = body_bytes.ok_or(FetchError::Parse)?;
    if body_bytes > HTTP_BODY_MAX_BYTES {
        return Err(FetchError::Parse);
    }
    Ok(Some(Head {
        status,
        head_bytes: end + 4,
        body_bytes,
        close,
    }))
}

/// The status code of an `HTTP/1.x NNN ...` line.
pub fn status_of(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// What a WebSocket connection received, owned.
#[derive(Debug)]
pub enum Incoming {
    /// A binary message.
    Binary(Vec<u8>),
    /// The server's close frame and its code.
    Close(Option<u16>),
}

/// Why reading a WebSocket stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsEnd {
    /// The server closed or reset the TCP connection.
    Closed,
    /// The server's frames broke RFC 6455.
    Protocol,
}

/// A WebSocket client connection (`GET /ws`, `shardcast.v1`). Pings are answered by the
/// next [`flush`](WsConn::flush).
pub struct WsConn {
    pub conn: Conn,
    decoder: FrameDecoder,
    masks: Masks,
    needed: usize,
    out: Vec<u8>,
}

impl WsConn {
    /// Upgrades `conn`: sends the handshake and waits for its `101` until `deadline`.
    pub async fn upgrade(mut conn: Conn, seed: u64, deadline: Instant) -> Result<WsConn, WsEnd> {
        let authority = conn
            .stream
            .peer_addr()
            .map_err(|_| WsEnd::Closed)?
            .to_string();
        let key = codec::handshake_key(seed);
        let request = codec::handshake_request(&authority, "/ws", &key, SUBPROTOCOL);
        conn.write_all(request, deadline)
            .await
            .map_err(|_| WsEnd::Closed)?;
        loop {
            match codec::check_handshake(&conn.buf, &key, SUBPROTOCOL) {
                Ok(Some(head)) => {
                    conn.buf.drain(..head);
                    break;
                }
                Ok(None) => {}
                Err(_) => return Err(WsEnd::Protocol),
            }
            if !matches!(conn.read_more(deadline).await, Read::Data(_)) {
                return Err(WsEnd::Closed);
            }
        }
        Ok(WsConn {
            conn,
            decoder: FrameDecoder::new(),
            masks: Masks::new(seed ^ 0x5bd1_e995),
            needed: 0,
            out: Vec::new(),
        })
    }

    /// Queues a binary message.
    pub fn queue_binary(&mut self, payload: &[u8]) {
        codec::encode_binary(&mut self.out, payload, self.masks.next_mask());
    }

    /// Queues a close frame with `code`.
    pub fn queue_close(&mut self, code: u16) {
        codec::encode_masked(
            &mut self.out,
            0x8,
            &code.to_be_bytes(),
            self.masks.next_mask(),
        );
    }

    /// Queues a frame as is (for clients that break the protocol on purpose).
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Writes what is queued.
    pub async fn flush(&mut self, deadline: Instant) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        self.conn.write_all(out, deadline).await
    }

    /// Reads until at least one message arrives or `deadline`; every whole message read is
    /// appended to `into` (an empty `into` and `Ok` mean the deadline came).
    pub async fn recv(&mut self, deadline: Instant, into: &mut Vec<Incoming>) -> Result<(), WsEnd> {
        loop {
            self.decode(into)?;
            if !into.is_empty() {
                return Ok(());
            }
            if self.conn.buf.capacity() < self.needed {
                self.conn.buf.reserve(self.needed - self.conn.buf.len());
            }
            match self.conn.read_more(deadline).await {
                Read::Data(_) => {}
                Read::TimedOut => return Ok(()),
                Read::Eof | Read::Failed => return Err(WsEnd::Closed),
            }
        }
    }

    fn decode(&mut self, into: &mut Vec<Incoming>) -> Result<(), WsEnd> {
        let buf = std::mem::take(&mut self.conn.buf);
        let mut needed = 0;
        let (out, masks) = (&mut self.out, &mut self.masks);
        let result = self
            .decoder
            .handle_bytes(&buf, &mut needed, |event| match event {
                Event::Binary(message) => into.push(Incoming::Binary(message.to_vec())),
                Event::Ping(payload) => codec::encode_pong(out, payload, masks.next_mask()),
                Event::Close(code) => into.push(Incoming::Close(code)),
                Event::Text(_) | Event::Pong => {}
            });
        self.conn.buf = buf;
        let consumed = result.map_err(|_| WsEnd::Protocol)?;
        self.conn.buf.drain(..consumed);
        self.needed = needed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads_are_framed() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        assert_eq!(
            parse_head(head),
            Ok(Some(Head {
                status: 200,
                head_bytes: head.len() - 5,
                body_bytes: 5,
                close: true
            }))
        );
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-"), Ok(None));
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(FetchError::Parse)
        );
        assert_eq!(status_of("HTTP/1.1 408 Request Timeout"), Some(408));
        assert_eq!(status_of("SSH-2.0"), None);
    }
}
