//! Sans-io scenario tests: a client and a server paired in memory on a virtual clock, byte
//! fixtures, every cap at its limit and one over, and deterministic fuzz loops.

mod before_publish;
mod caps;
mod commands;
mod fixtures;
mod fuzz;
mod scenario;

use crate::amf0::Amf0Value;
use crate::message::{Writer, COMMAND_AMF0, CSID_COMMAND};
use crate::{
    ClientConfig, ClientEvent, ClientSession, Event, RtmpError, ServerSession, SessionConfig,
    HANDSHAKE_PACKET_BYTES, RTMP_VERSION,
};

/// xorshift64*: deterministic, good enough to pick sizes, timestamps and splits.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Cuts `bytes` into random pieces, some empty, some single bytes.
    pub(crate) fn pieces<'a>(&mut self, bytes: &'a [u8]) -> Vec<&'a [u8]> {
        let mut pieces = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = match self.below(6) {
                0 => 0,
                1 => 1,
                2 => self.below(20.min(rest.len()) + 1),
                3 => self.below(rest.len() + 1),
                _ => self.below(5000.min(rest.len()) + 1),
            };
            let (front, back) = rest.split_at(take);
            pieces.push(front);
            rest = back;
        }
        pieces
    }
}

/// A client and a server paired in memory. Client bytes reach the server cut at random points
/// (when `rng` is set); the server's memory is checked against its caps after every piece.
pub(crate) struct Pair {
    pub(crate) server: ServerSession,
    pub(crate) client: ClientSession,
    pub(crate) now_ms: u64,
    /// What the server reported, in order.
    pub(crate) events: Vec<Event>,
    pub(crate) client_events: Vec<ClientEvent>,
    /// Whether publish requests are accepted as they come.
    pub(crate) accept: bool,
    pub(crate) rng: Option<Rng>,
    /// The most the server ever buffered.
    pub(crate) buffered_max: usize,
    /// Every byte the client sent, in order.
    pub(crate) sent: Vec<u8>,
}

impl Pair {
    pub(crate) fn new(config: SessionConfig, client: ClientConfig) -> Self {
        Self {
            server: ServerSession::new(config, 0),
            client: ClientSession::new(client),
            now_ms: 0,
            events: Vec::new(),
            client_events: Vec::new(),
            accept: true,
            rng: None,
            buffered_max: 0,
            sent: Vec::new(),
        }
    }

    /// A pair that has done the handshake, `connect` and an accepted `publish`.
    pub(crate) fn publishing(config: SessionConfig, client: ClientConfig) -> Self {
        let mut pair = Self::new(config, client);
        pair.drive();
        assert!(pair.client.is_publishing(), "{:?}", pair.client_events);
        pair
    }

    /// Moves bytes both ways until both sides are quiet; panics on any error.
    pub(crate) fn drive(&mut self) {
        self.try_drive().expect("a valid exchange");
    }

    /// Moves bytes both ways until both sides are quiet, or the server fails.
    pub(crate) fn try_drive(&mut self) -> Result<(), RtmpError> {
        loop {
            let mut moved = false;
            let mut sent = Vec::new();
            while let Some(bytes) = self.client.poll_transmit() {
                sent.extend_from_slice(&bytes);
            }
            if !sent.is_empty() {
                moved = true;
                self.sent.extend_from_slice(&sent);
                self.now_ms += 1;
                let pieces = match &mut self.rng {
                    Some(rng) => rng.pieces(&sent),
                    None => vec![&sent[..]],
                };
                for piece in pieces {
                    self.server.handle_input(self.now_ms, piece)?;
                    self.check_memory();
                    self.take_server_output();
                }
            }
            self.take_server_output();
            if !moved && self.server.poll_transmit().is_none() {
                return Ok(());
            }
        }
    }

    fn take_server_output(&mut self) {
        while let Some(event) = self.server.poll_event() {
            if let Event::PublishRequested { stream_id, .. } = &event {
                if self.accept {
                    self.server.accept_publish(*stream_id).expect("pending");
                }
            }
            self.events.push(event);
        }
        while let Some(bytes) = self.server.poll_transmit() {
            self.client.handle_input(&bytes).expect("a valid server");
        }
        while let Some(event) = self.client.poll_event() {
            self.client_events.push(event);
        }
    }

    fn check_memory(&mut self) {
        let buffered = self.server.buffered_bytes();
        assert!(
            buffered <= self.server.partial_max_bytes() + HANDSHAKE_PACKET_BYTES,
            "{buffered} bytes buffered"
        );
        self.buffered_max = self.buffered_max.max(buffered);
    }

    /// The server's events after `Connected` and `PublishRequested`.
    pub(crate) fn media_events(&self) -> &[Event] {
        let start = self
            .events
            .iter()
            .position(|e| matches!(e, Event::PublishRequested { .. }))
            .map_or(0, |i| i + 1);
        &self.events[start..]
    }
}

/// C0, C1 and C2, all zeros after the version: a valid client handshake.
pub(crate) fn handshake_bytes() -> Vec<u8> {
    let mut bytes = vec![RTMP_VERSION];
    bytes.resize(1 + 2 * HANDSHAKE_PACKET_BYTES, 0);
    bytes
}

/// A hand-driven client: a chunk encoder for crafting exactly the chunks a test needs.
pub(crate) struct Raw {
    pub(crate) server: ServerSession,
    pub(crate) writer: Writer,
    pub(crate) now_ms: u64,
    pub(crate) events: Vec<Event>,
    /// Everything the server sent after S0, S1 and S2, concatenated.
    pub(crate) received: Vec<u8>,
    /// How many of the messages in `received` [`sent_messages`](Self::sent_messages) skips.
    pub(crate) seen: usize,
}

impl Raw {
    /// A server that has seen a valid handshake.
    pub(crate) fn handshaken(config: SessionConfig) -> Self {
        let mut raw = Self {
            server: ServerSession::new(config, 0),
            writer: Writer::new(),
            now_ms: 0,
            events: Vec::new(),
            received: Vec::new(),
            seen: 0,
        };
        raw.writer.out = handshake_bytes();
        raw.flush().expect("a valid handshake");
        assert_eq!(raw.received.len(), 1 + 2 * HANDSHAKE_PACKET_BYTES);
        raw.received.clear();
        raw
    }

    /// A server that has answered `connect`.
    pub(crate) fn connected(config: SessionConfig) -> Self {
        let mut raw = Self::handshaken(config);
        raw.command(0, &connect_command());
        raw.flush().expect("a valid connect");
        assert!(raw.server.is_connected());
        raw.events.clear();
        raw.mark();
        raw
    }

    /// A server with stream 1 publishing `key`.
    pub(crate) fn publishing(config: SessionConfig) -> Self {
        let mut raw = Self::connected(config);
        raw.command(0, &call("createStream", 2.0, &[]));
        raw.command(1, &call("publish", 0.0, &["key".into(), "live".into()]));
        raw.flush().expect("a valid publish");
        raw.server.accept_publish(1).expect("pending");
        raw.feed(&[]).expect("nothing");
        raw.events.clear();
        raw.mark();
        raw
    }

    /// Queues an AMF0 command on chunk stream 3.
    pub(crate) fn command(&mut self, stream_id: u32, values: &[Amf0Value]) {
        let mut payload = Vec::new();
        crate::amf0::encode_all(values, &mut payload);
        self.message(CSID_COMMAND, COMMAND_AMF0, stream_id, 0, &payload);
    }

    /// Queues one message.
    pub(crate) fn message(
        &mut self,
        csid: u32,
        type_id: u8,
        stream_id: u32,
        timestamp: u32,
        payload: &[u8],
    ) {
        self.writer.encoder.encode(
            csid,
            type_id,
            stream_id,
            timestamp,
            payload,
            &mut self.writer.out,
            None,
        );
    }

    /// Feeds the queued bytes to the server in one call, collecting its output.
    pub(crate) fn flush(&mut self) -> Result<(), RtmpError> {
        let bytes = std::mem::take(&mut self.writer.out);
        self.feed(&bytes)
    }

    /// Feeds `bytes` in one call, collecting the server's events and output.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<(), RtmpError> {
        let result = self.server.handle_input(self.now_ms, bytes);
        while let Some(event) = self.server.poll_event() {
            self.events.push(event);
        }
        while let Some(bytes) = self.server.poll_transmit() {
            self.received.extend_from_slice(&bytes);
        }
        result
    }

    /// The messages the server sent since the last [`mark`](Self::mark), decoded.
    pub(crate) fn sent_messages(&self) -> Vec<crate::chunk::Message> {
        decode_messages(&self.received).split_off(self.seen)
    }

    /// Makes [`sent_messages`](Self::sent_messages) start after what was sent so far.
    pub(crate) fn mark(&mut self) {
        self.seen = decode_messages(&self.received).len();
    }
}

/// Decodes server output (after the handshake) into messages, applying Set Chunk Size.
pub(crate) fn decode_messages(bytes: &[u8]) -> Vec<crate::chunk::Message> {
    let mut decoder = crate::chunk::ChunkDecoder::new(&SessionConfig::DEFAULT);
    let mut input = bytes;
    let mut messages = Vec::new();
    while let Some(message) = decoder.decode(&mut input).expect("valid server output") {
        messages.push(message);
    }
    assert!(input.is_empty());
    messages
}

/// A command message's values: name, transaction id, null command object, arguments.
pub(crate) fn call(name: &str, txn: f64, args: &[Amf0Value]) -> Vec<Amf0Value> {
    let mut values = vec![name.into(), txn.into(), Amf0Value::Null];
    values.extend_from_slice(args);
    values
}

/// `connect` as ffmpeg sends it for `rtmp://localhost/live`.
pub(crate) fn connect_command() -> Vec<Amf0Value> {
    let object = crate::Amf0Object::new()
        .with("app", "live")
        .with("type", "nonprivate")
        .with("flashVer", "FMLE/3.0 (compatible; FMSc/1.0)")
        .with("tcUrl", "rtmp://localhost/live");
    vec!["connect".into(), 1.0.into(), object.into()]
}

/// The AMF0 values of a command message the server sent.
pub(crate) fn values_of(message: &crate::chunk::Message) -> Vec<Amf0Value> {
    crate::amf0::decode_all(&message.payload, &SessionConfig::DEFAULT.amf_limits())
        .expect("valid AMF0 from the server")
}

/// The command name of each command message the server sent, in order.
pub(crate) fn command_names(messages: &[crate::chunk::Message]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.type_id == COMMAND_AMF0)
        .map(|m| values_of(m)[0].as_str().expect("a name").to_owned())
        .collect()
}

/// The `code` of the information object of a command message the server sent.
pub(crate) fn code_of(message: &crate::chunk::Message) -> String {
    values_of(message)[3]
        .as_object()
        .and_then(|o| o.get_str("code"))
        .expect("an information object with a code")
        .to_owned()
}
