//! A small blocking WebSocket client for end-to-end tests: masked frames out, frames in, and
//! the shardcast.v1 messages through `shardcast-wire`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct WsClient {
    pub stream: TcpStream,
    mask_seed: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Binary(Vec<u8>),
    Text(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

impl WsClient {
    /// Connects and completes the handshake offering shardcast.v1.
    pub fn connect(addr: SocketAddr) -> WsClient {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        write!(
            stream,
            "GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: shardcast.v1\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).unwrap(), 1, "EOF in handshake");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{head}"
        );
        assert!(
            head.contains("Sec-WebSocket-Protocol: shardcast.v1"),
            "{head}"
        );
        WsClient {
            stream,
            mask_seed: 0x1234_5678,
        }
    }

    fn next_mask(&mut self) -> [u8; 4] {
        self.mask_seed ^= self.mask_seed << 13;
        self.mask_seed ^= self.mask_seed >> 17;
        self.mask_seed ^= self.mask_seed << 5;
        self.mask_seed.to_be_bytes()
    }

    /// One masked frame.
    pub fn frame_bytes(&mut self, opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = self.next_mask();
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    pub fn send_binary(&mut self, payload: &[u8]) {
        let frame = self.frame_bytes(0x2, true, payload);
        self.stream.write_all(&frame).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one frame, or returns `Err` when nothing arrives within `within`.
    pub fn try_read_frame(&mut self, within: Duration) -> Result<Option<Frame>, ()> {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut first = [0u8; 1];
        let n = match self.stream.peek(&mut first) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                self.stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                return Err(());
            }
            Err(_) => 0,
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        if n == 0 {
            return Ok(None);
        }
        Ok(self.read_frame())
    }

    /// Reads one frame; `None` on EOF.
    pub fn read_frame(&mut self) -> Option<Frame> {
        let mut header = [0u8; 2];
        if let Err(e) = self.stream.read_exact(&mut header) {
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) {
                return None;
            }
            panic!("read frame: {e}");
        }
        assert_eq!(header[1] & 0x80, 0, "server frames are never masked");
        let len = match header[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).unwrap();
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).unwrap();
        assert_eq!(header[0] & 0x80, 0x80, "server frames are not fragmented");
        Some(match header[0] & 0x0f {
            0x1 => Frame::Text(payload),
            0x2 => Frame::Binary(payload),
            0x8 => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or(&[])).to_string();
                Frame::Close(code, reason)
            }
            0x9 => Frame::Ping(payload),
            0xa => Frame::Pong(payload),
            op => panic!("unexpected opcode {op}"),
        })
    }

    /// Reads frames until a close frame (answering pings); returns its code. `None` on EOF
    /// without a close frame.
    pub fn read_until_close(&mut self) -> Option<u16> {
        loop {
            match self.read_frame()? {
                Frame::Close(code, _) => return code,
                _ => continue,
            }
        }
    }
}
