//! A publishing client: [`ClientSession`], for tests and the load generator. It does what
//! ffmpeg does when it publishes: handshake, `connect`, `releaseStream`, `FCPublish`,
//! `createStream`, `publish`, then audio, video and metadata messages, and `FCUnpublish` plus
//! `deleteStream` at the end.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::amf0::{encode_all, Amf0Object, Amf0Value};
use crate::chunk::{control_u32, ChunkDecoder, Message, CHUNK_STREAM_ID_MAX, CHUNK_STREAM_ID_MIN};
use crate::config::{CHUNK_SIZE_CEILING, MESSAGE_LENGTH_CEILING};
use crate::handshake::ClientHandshake;
use crate::message::{
    stream_id_of, Command, Writer, AUDIO, COMMAND_AMF0, CSID_COMMAND, DATA_AMF0, PING_REQUEST,
    PING_RESPONSE, USER_CONTROL, VIDEO, WINDOW_ACK_SIZE,
};
use crate::{RtmpError, SessionConfig};

/// The transaction ids of the client's calls, in the order it makes them.
const TXN_CONNECT: f64 = 1.0;
const TXN_RELEASE_STREAM: f64 = 2.0;
const TXN_FC_PUBLISH: f64 = 3.0;
const TXN_CREATE_STREAM: f64 = 4.0;
const TXN_PUBLISH: f64 = 5.0;
const TXN_FC_UNPUBLISH: f64 = 6.0;
const TXN_DELETE_STREAM: f64 = 7.0;

/// The chunk stream for `publish`, which goes on the new message stream (ffmpeg's choice).
const CSID_PUBLISH: u32 = 8;

/// What a [`ClientSession`] publishes and how it sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The application name sent in `connect` (`live` for `rtmp://host/live/key`).
    pub app: String,
    /// The URL sent as `tcUrl`.
    pub tc_url: String,
    /// The `flashVer` sent in `connect`.
    pub flash_ver: String,
    /// The publishing name (the stream key).
    pub stream_name: String,
    /// The publishing type: `live`, `record` or `append`.
    pub publish_kind: String,
    /// The chunk size announced right after the handshake; 128 sends no Set Chunk Size.
    pub chunk_size: u32,
    /// The chunk stream for audio messages.
    pub audio_chunk_stream_id: u32,
    /// The chunk stream for video messages.
    pub video_chunk_stream_id: u32,
    /// The chunk stream for data messages (`@setDataFrame`).
    pub data_chunk_stream_id: u32,
    /// Whether chunks of audio, video and data messages are interleaved, one chunk per chunk
    /// stream in turn, as a sender that keeps audio flowing during a large keyframe does.
    /// Otherwise each message is sent whole, in the order of the calls.
    pub interleave: bool,
    /// Seeds the random bytes of C1.
    pub seed: u64,
}

impl ClientConfig {
    /// Publishing `stream_name` to `app` on `rtmp://localhost/{app}`, the way ffmpeg does:
    /// chunk size 4096, audio on chunk stream 4, video on 6, data on 8, no interleaving.
    pub fn new(app: &str, stream_name: &str) -> Self {
        Self {
            app: app.to_owned(),
            tc_url: format!("rtmp://localhost/{app}"),
            flash_ver: "FMLE/3.0 (compatible; FMSc/1.0)".to_owned(),
            stream_name: stream_name.to_owned(),
            publish_kind: "live".to_owned(),
            chunk_size: 4096,
            audio_chunk_stream_id: 4,
            video_chunk_stream_id: 6,
            data_chunk_stream_id: 8,
            interleave: false,
            seed: 1,
        }
    }
}

/// What the server said, as reported by [`ClientSession::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// `connect` succeeded; the client has asked for a stream.
    Connected,
    /// `NetStream.Publish.Start`: media may be sent.
    Publishing {
        /// The message stream the server created.
        stream_id: u32,
    },
    /// Any other `onStatus`, or an `_error` answer to one of the client's calls.
    Status {
        /// `status`, `warning` or `error`.
        level: String,
        /// The code, such as `NetStream.Publish.BadName`.
        code: String,
        /// The server's description.
        description: String,
    },
}

/// The publishing side of one RTMP connection, sans-io like [`ServerSession`].
///
/// # Call order
///
/// 1. [`new`](Self::new); send what [`poll_transmit`](Self::poll_transmit) returns (C0 and
///    C1) once the TCP connection is up.
/// 2. Feed received bytes to [`handle_input`](Self::handle_input); after every call drain
///    `poll_transmit` and [`poll_event`](Self::poll_event). The session answers the handshake
///    and moves through `connect`, `createStream` and `publish` by itself.
/// 3. After [`ClientEvent::Publishing`], send media with [`send_audio`](Self::send_audio),
///    [`send_video`](Self::send_video) and [`send_metadata`](Self::send_metadata); change the
///    chunk size with [`set_chunk_size`](Self::set_chunk_size); end with
///    [`unpublish`](Self::unpublish). Drain `poll_transmit` after these calls.
///
/// There are no timers: the load generator owns its deadlines.
///
/// [`ServerSession`]: crate::ServerSession
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    handshake: ClientHandshake,
    decoder: ChunkDecoder,
    writer: Writer,
    stream_id: Option<u32>,
    publishing: bool,
    failed: bool,
    /// Chunks waiting to be interleaved, one queue per chunk stream.
    queues: Vec<(u32, VecDeque<Bytes>)>,
    /// The queue to take the next interleaved chunk from.
    turn: usize,
    bytes_received: u64,
    ack_window_bytes: u32,
    acked_bytes: u64,
    events: VecDeque<ClientEvent>,
}

impl ClientSession {
    /// A client for a connection being opened; C0 and C1 are queued.
    ///
    /// # Panics
    ///
    /// If the configured chunk size is outside 1..=16,777,215 or a chunk stream id is outside
    /// 3..=65599 (2 is for protocol control messages).
    pub fn new(config: ClientConfig) -> Self {
        assert!(
            (1..=CHUNK_SIZE_CEILING).contains(&config.chunk_size),
            "chunk size {}",
            config.chunk_size
        );
        let ids = [
            config.audio_chunk_stream_id,
            config.video_chunk_stream_id,
            config.data_chunk_stream_id,
        ];
        for id in ids {
            assert!(
                (CHUNK_STREAM_ID_MIN + 1..=CHUNK_STREAM_ID_MAX).contains(&id),
                "chunk stream id {id}"
            );
        }
        let (handshake, c0c1) = ClientHandshake::new(config.seed);
        let mut writer = Writer::new();
        writer.out = c0c1;
        Self {
            queues: ids.iter().map(|&id| (id, VecDeque::new())).collect(),
            config,
            handshake,
            decoder: ChunkDecoder::new(&SessionConfig::DEFAULT),
            writer,
            stream_id: None,
            publishing: false,
            failed: false,
            turn: 0,
            bytes_received: 0,
            ack_window_bytes: 0,
            acked_bytes: 0,
            events: VecDeque::new(),
        }
    }

    /// The message stream, once `createStream` has been answered.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    /// Whether the server has said `NetStream.Publish.Start`.
    pub fn is_publishing(&self) -> bool {
        self.publishing
    }

    /// The chunk size used for messages queued from now on.
    pub fn chunk_size(&self) -> u32 {
        self.writer.encoder.chunk_size()
    }

    /// The encoder's header statistics; see `ChunkEncoder::stats`.
    #[cfg(test)]
    pub(crate) fn encoder_stats(&self) -> ([u64; 4], u64) {
        self.writer.encoder.stats
    }

    /// Consumes bytes from the server. After an error the session ignores further input.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<(), RtmpError> {
        if self.failed {
            return Ok(());
        }
        self.bytes_received += input.len() as u64;
        let result = self.run(input);
        if result.is_err() {
            self.failed = true;
            self.decoder.clear();
        }
        result
    }

    /// The next bytes to send: queued control messages and whole messages first, then one
    /// interleaved chunk at a time.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if !self.writer.out.is_empty() {
            return Some(Bytes::from(std::mem::take(&mut self.writer.out)));
        }
        self.next_chunk()
    }

    /// The next thing the server said.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Queues an audio message (an FLV audio tag body). Servers drop media sent before
    /// [`ClientEvent::Publishing`].
    pub fn send_audio(&mut self, timestamp_ms: u32, payload: &[u8]) -> Result<(), RtmpError> {
        let csid = self.config.audio_chunk_stream_id;
        self.send_media(csid, AUDIO, timestamp_ms, payload)
    }

    /// Queues a video message (an FLV video tag body).
    pub fn send_video(&mut self, timestamp_ms: u32, payload: &[u8]) -> Result<(), RtmpError> {
        let csid = self.config.video_chunk_stream_id;
        self.send_media(csid, VIDEO, timestamp_ms, payload)
    }

    /// Queues `@setDataFrame` `onMetaData` with these properties, as an ECMA array (what
    /// ffmpeg sends).
    pub fn send_metadata(&mut self, values: &Amf0Object) -> Result<(), RtmpError> {
        let mut payload = Vec::new();
        encode_all(
            &[
                "@setDataFrame".into(),
                "onMetaData".into(),
                Amf0Value::EcmaArray(values.clone()),
            ],
            &mut payload,
        );
        let csid = self.config.data_chunk_stream_id;
        self.send_media(csid, DATA_AMF0, 0, &payload)
    }

    /// Sends Set Chunk Size and uses `size` for every chunk after it. Chunks already queued
    /// for interleaving are sent first, at the old size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        if size == 0 || size > CHUNK_SIZE_CEILING {
            return Err(RtmpError::InvalidChunkSize { seen: size });
        }
        self.flush_queues();
        self.writer.set_chunk_size(size);
        Ok(())
    }

    /// Sends a command message as is: for tests of how a server treats unusual commands.
    pub fn send_command(&mut self, stream_id: u32, values: &[Amf0Value]) {
        self.flush_queues();
        let csid = if stream_id == 0 {
            CSID_COMMAND
        } else {
            CSID_PUBLISH
        };
        self.writer.command(csid, stream_id, values);
    }

    /// Ends publishing: `FCUnpublish` and `deleteStream`, after every queued chunk.
    pub fn unpublish(&mut self) {
        self.flush_queues();
        let name = Amf0Value::from(self.config.stream_name.as_str());
        self.writer.command(
            CSID_COMMAND,
            0,
            &[
                "FCUnpublish".into(),
                TXN_FC_UNPUBLISH.into(),
                Amf0Value::Null,
                name,
            ],
        );
        if let Some(stream_id) = self.stream_id.take() {
            self.writer.command(
                CSID_COMMAND,
                0,
                &[
                    "deleteStream".into(),
                    TXN_DELETE_STREAM.into(),
                    Amf0Value::Null,
                    f64::from(stream_id).into(),
                ],
            );
        }
        self.publishing = false;
    }

    fn send_media(
        &mut self,
        csid: u32,
        type_id: u8,
        timestamp_ms: u32,
        payload: &[u8],
    ) -> Result<(), RtmpError> {
        let stream_id = self.stream_id.ok_or(RtmpError::ProtocolViolation(
            "media before the stream was created",
        ))?;
        if payload.len() > MESSAGE_LENGTH_CEILING {
            return Err(RtmpError::MessageTooLarge {
                limit: MESSAGE_LENGTH_CEILING,
                seen: payload.len(),
            });
        }
        if !self.config.interleave {
            self.writer.encoder.encode(
                csid,
                type_id,
                stream_id,
                timestamp_ms,
                payload,
                &mut self.writer.out,
                None,
            );
            return Ok(());
        }
        let mut bytes = Vec::new();
        let mut boundaries = Vec::new();
        self.writer.encoder.encode(
            csid,
            type_id,
            stream_id,
            timestamp_ms,
            payload,
            &mut bytes,
            Some(&mut boundaries),
        );
        let bytes = Bytes::from(bytes);
        let queue = &mut self
            .queues
            .iter_mut()
            .find(|(id, _)| *id == csid)
            .expect("a queue per configured chunk stream")
            .1;
        let mut start = 0;
        for end in boundaries {
            queue.push_back(bytes.slice(start..end));
            start = end;
        }
        Ok(())
    }

    /// One chunk from the next non-empty queue in turn.
    fn next_chunk(&mut self) -> Option<Bytes> {
        for _ in 0..self.queues.len() {
            let index = self.turn;
            self.turn = (self.turn + 1) % self.queues.len();
            if let Some(chunk) = self.queues[index].1.pop_front() {
                return Some(chunk);
            }
        }
        None
    }

    /// Moves every queued chunk, interleaved, behind what is already in the send buffer.
    fn flush_queues(&mut self) {
        while let Some(chunk) = self.next_chunk() {
            self.writer.out.extend_from_slice(&chunk);
        }
    }

    fn run(&mut self, mut input: &[u8]) -> Result<(), RtmpError> {
        if !self.handshake.is_done() {
            self.handshake.consume(&mut input, &mut self.writer.out)?;
            if !self.handshake.is_done() {
                return Ok(());
            }
            self.connect();
        }
        while let Some(message) = self.decoder.decode(&mut input)? {
            self.handle_message(message)?;
        }
        let window = u64::from(self.ack_window_bytes);
        if window > 0 && self.bytes_received - self.acked_bytes >= window {
            self.writer.acknowledgement(self.bytes_received as u32);
            self.acked_bytes = self.bytes_received;
        }
        Ok(())
    }

    fn connect(&mut self) {
        if self.config.chunk_size != self.writer.encoder.chunk_size() {
            self.writer.set_chunk_size(self.config.chunk_size);
        }
        let object = Amf0Object::new()
            .with("app", self.config.app.as_str())
            .with("type", "nonprivate")
            .with("flashVer", self.config.flash_ver.as_str())
            .with("tcUrl", self.config.tc_url.as_str());
        self.writer.command(
            CSID_COMMAND,
            0,
            &["connect".into(), TXN_CONNECT.into(), object.into()],
        );
    }

    fn handle_message(&mut self, message: Message) -> Result<(), RtmpError> {
        match message.type_id {
            WINDOW_ACK_SIZE => self.ack_window_bytes = control_u32(&message)?,
            USER_CONTROL => {
                let p = &message.payload;
                if p.len() >= 6 && u16::from_be_bytes([p[0], p[1]]) == PING_REQUEST {
                    let timestamp = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
                    self.writer.user_control(PING_RESPONSE, timestamp);
                }
            }
            COMMAND_AMF0 => {
                let values = crate::amf0::decode_all(
                    &message.payload,
                    &SessionConfig::DEFAULT.amf_limits(),
                )?;
                if let Some(command) = Command::from_values(values) {
                    self.handle_command(command)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_command(&mut self, command: Command) -> Result<(), RtmpError> {
        let txn = command.transaction_id;
        match command.name.as_str() {
            "_result" if txn == TXN_CONNECT => {
                self.events.push_back(ClientEvent::Connected);
                let name = Amf0Value::from(self.config.stream_name.as_str());
                for (call, txn) in [
                    ("releaseStream", TXN_RELEASE_STREAM),
                    ("FCPublish", TXN_FC_PUBLISH),
                ] {
                    self.writer.command(
                        CSID_COMMAND,
                        0,
                        &[call.into(), txn.into(), Amf0Value::Null, name.clone()],
                    );
                }
                self.writer.command(
                    CSID_COMMAND,
                    0,
                    &[
                        "createStream".into(),
                        TXN_CREATE_STREAM.into(),
                        Amf0Value::Null,
                    ],
                );
            }
            "_result" if txn == TXN_CREATE_STREAM => {
                let stream_id = command.args.first().and_then(stream_id_of).ok_or(
                    RtmpError::ProtocolViolation("createStream result without an id"),
                )?;
                self.stream_id = Some(stream_id);
                self.writer.command(
                    CSID_PUBLISH,
                    stream_id,
                    &[
                        "publish".into(),
                        TXN_PUBLISH.into(),
                        Amf0Value::Null,
                        self.config.stream_name.as_str().into(),
                        self.config.publish_kind.as_str().into(),
                    ],
                );
            }
            "onStatus" | "_error" => {
                let info = command.args.first().and_then(Amf0Value::as_object);
                let field = |name| {
                    info.and_then(|o| o.get_str(name))
                        .unwrap_or_default()
                        .to_owned()
                };
                let code = field("code");
                if code == "NetStream.Publish.Start" {
                    if let Some(stream_id) = self.stream_id {
                        self.publishing = true;
                        self.events.push_back(ClientEvent::Publishing { stream_id });
                        return Ok(());
                    }
                }
                self.events.push_back(ClientEvent::Status {
                    level: field("level"),
                    code,
                    description: field("description"),
                });
            }
            _ => {}
        }
        Ok(())
    }
}
