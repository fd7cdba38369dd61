//! One HTTP/1.1 connection from the fetcher to an origin: non-blocking, edge-triggered (mio),
//! one request at a time, kept open between requests when the origin allows.

use mio::net::TcpStream;
use shardcast_http::{parse_response_head, BodyDecoder, ClientResponseHead};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

/// Longest response head accepted from an origin.
pub const ORIGIN_HEAD_MAX_BYTES: usize = 16 * 1024;

/// Where a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// The TCP handshake is under way.
    Connecting,
    /// A request is out (or waiting to be written).
    Busy,
    /// Open, with nothing to do.
    Idle,
}

/// What reading gave.
pub enum ConnEvent {
    Head(ClientResponseHead),
    /// Body bytes, in order.
    Body(Vec<u8>),
    /// The response is complete.
    Done,
}

pub struct OriginConn {
    pub origin: usize,
    pub socket: TcpStream,
    pub state: ConnState,
    out: Vec<u8>,
    written: usize,
    /// Head bytes received so far.
    head: Vec<u8>,
    body: Option<BodyDecoder>,
    /// Whether this connection served a request before the current one (a keep-alive
    /// connection the origin may have closed meanwhile).
    pub reused: bool,
    /// Whether any byte of the current response has arrived.
    pub answered: bool,
    /// The origin closes after this response.
    pub close_after: bool,
}

impl OriginConn {
    /// Starts connecting to `addr`.
    pub fn connect(origin: usize, addr: SocketAddr) -> std::io::Result<Self> {
        let socket = TcpStream::connect(addr)?;
        let _ = socket.set_nodelay(true);
        Ok(OriginConn {
            origin,
            socket,
            state: ConnState::Connecting,
            out: Vec::new(),
            written: 0,
            head: Vec::new(),
            body: None,
            reused: false,
            answered: false,
            close_after: false,
        })
    }

    /// Queues a request (`GET target`) and writes what it can.
    pub fn start(&mut self, host: &str, target: &str) -> Result<(), &'static str> {
        debug_assert!(self.state != ConnState::Busy);
        self.out.clear();
        self.written = 0;
        self.out.extend_from_slice(
            format!(
                "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: shardcast-edge/{}\r\n\
                 Accept: */*\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
            .as_bytes(),
        );
        self.head.clear();
        self.body = None;
        self.answered = false;
        self.close_after = false;
        if self.state == ConnState::Idle {
            self.reused = true;
            self.state = ConnState::Busy;
            return self.write();
        }
        Ok(())
    }

    /// The socket is writable: finishes connecting, writes the request.
    pub fn on_writable(&mut self) -> Result<(), &'static str> {
        if self.state == ConnState::Connecting {
            if let Ok(Some(_)) | Err(_) = self.socket.take_error() {
                return Err("cannot connect to the origin");
            }
            match self.socket.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(()),
                Err(_) => return Err("cannot connect to the origin"),
            }
            self.state = if self.out.is_empty() {
                ConnState::Idle
            } else {
                ConnState::Busy
            };
        }
        self.write()
    }

    fn write(&mut self) -> Result<(), &'static str> {
        while self.written < self.out.len() {
            match self.socket.write(&self.out[self.written..]) {
                Ok(0) => return Err("the origin closed the connection"),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err("the origin connection failed"),
            }
        }
        Ok(())
    }

    /// The socket is readable: reads until it would block, appending what the bytes mean to
    /// `events`. `Err` ends the connection (the events before it still hold).
    pub fn on_readable(
        &mut self,
        scratch: &mut [u8],
        events: &mut Vec<ConnEvent>,
    ) -> Result<(), &'static str> {
        loop {
            let n = match self.socket.read(scratch) {
                Ok(0) => return self.at_close(events),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Err("the origin connection failed"),
            };
            if self.state != ConnState::Busy {
                // Bytes nobody asked for: the connection is out of step.
                return Err("the origin sent bytes with no request out");
            }
            self.answered = true;
            self.take(&scratch[..n], events)?;
        }
    }

    fn take(&mut self, input: &[u8], events: &mut Vec<ConnEvent>) -> Result<(), &'static str> {
        if self.body.is_some() {
            return self.take_body(input, events);
        }
        self.head.extend_from_slice(input);
        let parsed = parse_response_head(&self.head, ORIGIN_HEAD_MAX_BYTES, false)
            .map_err(|_| "the origin sent a bad response head")?;
        let Some((head, length)) = parsed else {
            return Ok(());
        };
        let rest = self.head.split_off(length);
        self.head.clear();
        if head.status < 200 {
            // 1xx: skip it and read the real head.
            return self.take(&rest, events);
        }
        self.close_after = head.close;
        self.body = Some(BodyDecoder::new(head.framing));
        events.push(ConnEvent::Head(head));
        self.take_body(&rest, events)
    }

    fn take_body(&mut self, input: &[u8], events: &mut Vec<ConnEvent>) -> Result<(), &'static str> {
        let Some(decoder) = self.body.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        let used = decoder
            .decode(input, &mut out)
            .map_err(|_| "the origin sent a bad body")?;
        if !out.is_empty() {
            events.push(ConnEvent::Body(out));
        }
        if decoder.is_done() {
            if used < input.len() {
                return Err("the origin sent bytes after the response");
            }
            self.finish(events);
        }
        Ok(())
    }

    fn finish(&mut self, events: &mut Vec<ConnEvent>) {
        events.push(ConnEvent::Done);
        self.body = None;
        self.out.clear();
        self.state = ConnState::Idle;
    }

    fn at_close(&mut self, events: &mut Vec<ConnEvent>) -> Result<(), &'static str> {
        let finished = self.body.as_mut().map(BodyDecoder::finish_at_close);
        match finished {
            Some(Ok(())) => {
                self.finish(events);
                self.close_after = true;
                Err("closed")
            }
            _ => Err("the origin closed the connection"),
        }
    }
}
