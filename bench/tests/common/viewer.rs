//! A danmaku viewer over the test WebSocket client: joins a room, sends, and records what
//! the server sends back (Welcome, events with their seqs, errors, Resync, the close).

use super::ws::{Frame, WsClient};
use super::Server;
use shardcast_wire::{
    decode_server, ChatMode, ClientEncoder, EventBodyView, ServerMsg, VerifyLimits,
};
use std::time::{Duration, Instant};

/// What a viewer saw.
#[derive(Default, Debug)]
pub struct Seen {
    pub welcome_seq: u64,
    /// (seq, text) of chat events, in arrival order.
    pub chats: Vec<(u64, String)>,
    /// System notices (a host joined the stage): their text.
    pub notices: Vec<String>,
    /// Every event seq, in arrival order.
    pub seqs: Vec<u64>,
    pub errors: Vec<u16>,
    pub stats: usize,
    pub resync: Option<u64>,
    pub close: Option<u16>,
    /// The cause of each Error, in arrival order.
    pub causes: Vec<String>,
    /// (idempotency key, ledger entry, balance) of each GiftAck.
    pub acks: Vec<(String, u64, u64)>,
}

pub struct Viewer {
    pub ws: WsClient,
    pub enc: ClientEncoder,
    pub seen: Seen,
}

impl Viewer {
    pub fn join(server: &Server, room: &str, token: &str, last_seq: u64) -> Viewer {
        let mut ws = WsClient::connect(server.addr);
        let mut enc = ClientEncoder::new();
        ws.send_binary(enc.hello(room, token, last_seq, "e2e"));
        let mut viewer = Viewer {
            ws,
            enc,
            seen: Seen::default(),
        };
        // The first message is the Welcome (or an Error and a close).
        match viewer.next() {
            Some(ServerKind::Welcome(seq)) => viewer.seen.welcome_seq = seq,
            other => panic!("expected Welcome, got {other:?} / {:?}", viewer.seen),
        }
        viewer
    }

    pub fn send(&mut self, payload: impl FnOnce(&mut ClientEncoder) -> Vec<u8>) {
        let bytes = payload(&mut self.enc);
        self.ws.send_binary(&bytes);
    }

    pub fn chat(&mut self, text: &str) {
        self.send(|e| e.chat(text, 0xffffff, ChatMode::Scroll).to_vec());
    }

    /// Reads one message and records it.
    pub fn next(&mut self) -> Option<ServerKind> {
        loop {
            match self.ws.read_frame()? {
                Frame::Binary(bytes) => return Some(self.record(&bytes)),
                Frame::Ping(p) => {
                    let pong = self.ws.frame_bytes(0xa, true, &p);
                    self.ws.send_raw(&pong);
                }
                Frame::Close(code, _) => {
                    self.seen.close = code;
                    return Some(ServerKind::Close(code));
                }
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    pub fn record(&mut self, bytes: &[u8]) -> ServerKind {
        match decode_server(bytes, &VerifyLimits::server()).expect("valid server message") {
            ServerMsg::Welcome(w) => ServerKind::Welcome(w.seq),
            ServerMsg::Batch { first_seq, events }
            | ServerMsg::HistoryReply {
                first_seq, events, ..
            } => {
                for (i, event) in events.iter().enumerate() {
                    assert_eq!(event.seq, first_seq + i as u64, "events are consecutive");
                    self.seen.seqs.push(event.seq);
                    match event.body {
                        EventBodyView::Chat { text, .. } => {
                            self.seen.chats.push((event.seq, text.to_string()))
                        }
                        EventBodyView::System { text } => self.seen.notices.push(text.to_string()),
                        _ => {}
                    }
                }
                ServerKind::Events
            }
            ServerMsg::RoomStats { .. } => {
                self.seen.stats += 1;
                ServerKind::Other
            }
            ServerMsg::Error { code, cause, .. } => {
                self.seen.errors.push(code);
                self.seen.causes.push(cause.to_string());
                ServerKind::Error
            }
            ServerMsg::GiftAck {
                idempotency_key,
                entry,
                balance,
                ..
            } => {
                self.seen
                    .acks
                    .push((idempotency_key.to_string(), entry, balance));
                ServerKind::Other
            }
            ServerMsg::Resync { seq, .. } => {
                self.seen.resync = Some(seq);
                ServerKind::Other
            }
            _ => ServerKind::Other,
        }
    }

    pub fn summary(&self) -> String {
        let s = &self.seen;
        format!(
            "welcome_seq {} chats {} seqs {} (first {:?}, last {:?}) errors {:?} resync {:?} close {:?}",
            s.welcome_seq,
            s.chats.len(),
            s.seqs.len(),
            s.seqs.first(),
            s.seqs.last(),
            s.errors,
            s.resync,
            s.close
        )
    }

    /// Reads until `done(seen)` or the deadline.
    pub fn read_until(&mut self, within: Duration, done: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + within;
        while !done(&self.seen) {
            assert!(Instant::now() < deadline, "timed out: {}", self.summary());
            if self.next().is_none() {
                panic!("connection closed early: {}", self.summary());
            }
        }
    }
}

#[derive(Debug)]
pub enum ServerKind {
    Welcome(u64),
    Events,
    Error,
    Close(Option<u16>),
    Other,
}
