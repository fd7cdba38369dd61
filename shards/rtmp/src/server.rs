//! The server side of one RTMP connection: [`ServerSession`], the [`Event`]s it reports and
//! the [`StatusLevel`] of the notices it sends.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::amf0::{decode_all, Amf0Object, Amf0Value};
use crate::chunk::{control_u32, ChunkDecoder, Message, CHUNK_HEADER_MAX_BYTES};
use crate::handshake::ServerHandshake;
use crate::message::{
    stream_id_of, Command, Writer, ACKNOWLEDGEMENT, AGGREGATE, AUDIO, COMMAND_AMF0, COMMAND_AMF3,
    CSID_COMMAND, CSID_STREAM, DATA_AMF0, DATA_AMF3, PING_REQUEST, PING_RESPONSE,
    SET_PEER_BANDWIDTH, STREAM_BEGIN, USER_CONTROL, VIDEO, WINDOW_ACK_SIZE,
};
use crate::{NoPendingPublish, RtmpError, SessionConfig, HANDSHAKE_PACKET_BYTES};

/// What the server announces as its version in the answer to `connect`; clients only log it.
const FMS_VERSION: &str = "FMS/3,0,1,123";
/// The capabilities bit field Flash Media Server announces; clients only log it.
const CAPABILITIES: f64 = 31.0;

/// The longest text the server puts in a notice: a code, a description, or a stream name it
/// echoes. Longer text is cut at a character boundary, so that no peer-chosen name (up to
/// [`SessionConfig::command_max_bytes`] long) and no caller-chosen description can make an
/// answer outgrow the send queue or the 16 MiB message length field.
pub const NOTICE_TEXT_MAX_BYTES: usize = 1024;

/// The server side of one RTMP connection, from the handshake to the end of publishing.
///
/// It speaks just enough of NetConnection and NetStream for ingest: it answers `connect`
/// itself, reports publish requests for the application to accept or reject, and reports the
/// published media and metadata. Play requests are refused.
///
/// # Call order
///
/// 1. [`new`](Self::new) when the TCP connection is accepted, with the current time. Arm a
///    timer for [`poll_timeout`](Self::poll_timeout).
/// 2. For each run of received bytes, [`handle_input`](Self::handle_input) with the current
///    time. It consumes all of its input (a pooled receive buffer can go back right after the
///    call). Then drain [`poll_transmit`](Self::poll_transmit) into the socket's send queue, in
///    order, and [`poll_event`](Self::poll_event) until it returns `None`, acting on each
///    event.
/// 3. Answer each [`Event::PublishRequested`] with [`accept_publish`](Self::accept_publish) or
///    [`reject_publish`](Self::reject_publish), at once or later (after a webhook, say); media
///    sent on the stream before the answer is dropped, and until a publish is accepted the
///    connection may reserve only
///    [`partial_max_bytes_before_publish`](SessionConfig::partial_max_bytes_before_publish)
///    for unfinished messages (a keyframe sent early fails the session). The other answers are
///    [`send_status`](Self::send_status) and [`error_and_close`](Self::error_and_close). Drain
///    `poll_transmit` after these calls too.
/// 4. When the timer fires, [`handle_timeout`](Self::handle_timeout); re-arm it with
///    `poll_timeout` after every call (it is `None` once `connect` is done).
/// 5. After `handle_input` or `handle_timeout` returns an error, close the connection: the
///    session ignores further input and has nothing more to send.
/// 6. Once [`is_finished`](Self::is_finished) turns true after `reject_publish` or
///    `error_and_close`, flush `poll_transmit`, then shut down the write side and keep
///    reading (and discarding) until the client closes or a short grace period (a second or
///    two) ends, and only then close. A publishing client is busy writing: closing at once
///    makes its next write fail with a reset before it reads the refusal, and ffmpeg then
///    reports "Broken pipe" instead of the server's description. Input is ignored from then
///    on.
///
/// When the TCP connection ends, drop the session: any publish on it has ended, and no
/// [`Event::Unpublished`] is reported for it.
///
/// # Memory
///
/// See [`SessionConfig`]: at most `partial_max_bytes_before_publish` of unfinished messages
/// until [`accept_publish`](Self::accept_publish) succeeds and `partial_max_bytes` from then
/// on, chunk stream state, the C1 packet during the handshake, and `transmit_queue_max_bytes`
/// of answers. The events a call reports are bounded by its input; drain them after every
/// call.
///
/// # Timestamps
///
/// [`Event::Audio`] and [`Event::Video`] carry the RTMP timestamp: 32-bit milliseconds, with
/// type 1, 2 and 3 deltas applied modulo 2^32. It wraps after about 49.7 days, and an encoder
/// may restart it (a type 0 header) at any time; turning it into a monotonic media clock is
/// the FLV and segmenter layer's job.
#[derive(Debug)]
pub struct ServerSession {
    config: SessionConfig,
    state: State,
    created_ms: u64,
    handshake: ServerHandshake,
    decoder: ChunkDecoder,
    writer: Writer,
    connected: bool,
    streams: Vec<Stream>,
    next_stream_id: u32,
    /// Every byte received, the handshake included: the sequence number of acknowledgements.
    bytes_received: u64,
    /// The client's Window Acknowledgement Size; 0 until it sends one (no acknowledgements).
    ack_window_bytes: u32,
    /// `bytes_received` when the last acknowledgement was sent.
    acked_bytes: u64,
    events: VecDeque<Event>,
}

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading input.
    Active,
    /// `reject_publish` or `error_and_close` was called: what is queued is the last word.
    Closing,
    /// An error was returned: nothing more is read or sent.
    Failed,
}

/// A message stream made by `createStream`.
#[derive(Debug)]
struct Stream {
    id: u32,
    phase: StreamPhase,
}

#[derive(Debug, PartialEq, Eq)]
enum StreamPhase {
    /// Created, not publishing.
    Idle,
    /// `publish` was reported and awaits the application's answer.
    Pending { name: String },
    /// Accepted: media and metadata on this stream are reported.
    Publishing { name: String },
}

/// What the client did, as reported by [`ServerSession::poll_event`], in the order it
/// happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The client's `connect` was answered with success. Check `app` (and any credentials in
    /// it or in `tc_url`); to refuse, call
    /// [`error_and_close`](ServerSession::error_and_close).
    Connected {
        /// The application name, as sent: for `rtmp://host/live/key` it is `live`. A query
        /// string some encoders add (`live?token=…`) is left in place.
        app: String,
        /// The URL the client connected to, as sent; empty when absent.
        tc_url: String,
        /// The client's `flashVer` ("FMLE/3.0 (compatible; FMSc/1.0)" for OBS and ffmpeg);
        /// empty when absent. For logs.
        flash_ver: String,
    },
    /// The client asked to publish on `stream_id`. Answer with
    /// [`accept_publish`](ServerSession::accept_publish) or
    /// [`reject_publish`](ServerSession::reject_publish).
    PublishRequested {
        /// The message stream, from `createStream`.
        stream_id: u32,
        /// The publishing name: the stream key, for `rtmp://host/live/key` it is `key`, with
        /// any query string left in place.
        name: String,
        /// The publishing type: `live`, `record` or `append` (`live` when absent). Other
        /// values are passed on as sent.
        kind: String,
    },
    /// `onMetaData` on a publishing stream, sent either bare or as `@setDataFrame`: the
    /// encoder's description of the stream (width, height, framerate, codec ids, encoder name).
    Metadata {
        /// The publishing stream.
        stream_id: u32,
        /// The properties, from an object or an ECMA array.
        values: Amf0Object,
    },
    /// An audio message on a publishing stream: an FLV audio tag body.
    Audio {
        /// The publishing stream.
        stream_id: u32,
        /// The RTMP timestamp; see [`ServerSession`] on wrapping.
        timestamp_ms: u32,
        /// The message body, exactly as sent.
        payload: Bytes,
    },
    /// A video message on a publishing stream: an FLV video tag body (legacy or Enhanced
    /// RTMP; the FLV layer tells them apart).
    Video {
        /// The publishing stream.
        stream_id: u32,
        /// The RTMP timestamp; see [`ServerSession`] on wrapping.
        timestamp_ms: u32,
        /// The message body, exactly as sent.
        payload: Bytes,
    },
    /// A publish ended: the client sent `closeStream` or `deleteStream` for a stream that was
    /// publishing or waiting for an answer.
    Unpublished {
        /// The stream.
        stream_id: u32,
    },
}

/// The `level` of an `onStatus` notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusLevel {
    /// Informational: clients carry on.
    Status,
    /// A warning: clients log it and carry on.
    Warning,
    /// An error: ffmpeg logs the description and gives up; librtmp (OBS) closes on the codes
    /// it knows (`NetStream.Failed`, `NetStream.Publish.Denied`,
    /// `NetStream.Publish.Rejected`, `NetConnection.Connect.Rejected`, …) and otherwise waits.
    Error,
}

impl StatusLevel {
    /// The AMF0 string.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusLevel::Status => "status",
            StatusLevel::Warning => "warning",
            StatusLevel::Error => "error",
        }
    }
}

impl ServerSession {
    /// A session for a connection accepted at `now_ms` (any monotonic millisecond clock; the
    /// same one for every later call).
    ///
    /// # Panics
    ///
    /// If `config` fails [`SessionConfig::validate`]; configuration loading should have
    /// refused it.
    pub fn new(config: SessionConfig, now_ms: u64) -> Self {
        if let Err(error) = config.validate() {
            panic!("invalid RTMP session config: {error}");
        }
        // Until a publish is accepted the peer is anonymous: it gets the small cap.
        let mut decoder = ChunkDecoder::new(&config);
        decoder.set_partial_max_bytes(config.partial_max_bytes_before_publish);
        Self {
            config,
            state: State::Active,
            created_ms: now_ms,
            handshake: ServerHandshake::new(now_ms ^ 0x9E37_79B9_7F4A_7C15),
            decoder,
            writer: Writer::new(),
            connected: false,
            streams: Vec::new(),
            next_stream_id: 1,
            bytes_received: 0,
            ack_window_bytes: 0,
            acked_bytes: 0,
            events: VecDeque::new(),
        }
    }

    /// The configuration this session runs with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether `connect` has been answered.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether the session is done reading: after an error, [`reject_publish`] or
    /// [`error_and_close`]. Flush [`poll_transmit`](Self::poll_transmit) and close.
    ///
    /// [`reject_publish`]: Self::reject_publish
    /// [`error_and_close`]: Self::error_and_close
    pub fn is_finished(&self) -> bool {
        self.state != State::Active
    }

    /// Bytes received so far, the handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Bytes held for the peer between calls: the announced lengths of unfinished messages,
    /// a split chunk header and, during the handshake, C1. At most
    /// [`partial_max_bytes`](Self::partial_max_bytes) + 1,536.
    pub fn buffered_bytes(&self) -> usize {
        self.decoder.buffered_bytes() + self.handshake.buffered_bytes()
    }

    /// The cap on bytes reserved for unfinished messages in force now:
    /// [`SessionConfig::partial_max_bytes_before_publish`] until
    /// [`accept_publish`](Self::accept_publish) succeeds, [`SessionConfig::partial_max_bytes`]
    /// from then on (also after that publish ends).
    pub fn partial_max_bytes(&self) -> usize {
        self.decoder.partial_max_bytes()
    }

    /// The chunk size the client uses now (128 until it sends Set Chunk Size).
    pub fn peer_chunk_size(&self) -> u32 {
        self.decoder.chunk_size()
    }

    /// The number of distinct chunk stream ids the client has used.
    pub fn chunk_stream_count(&self) -> usize {
        self.decoder.chunk_stream_count()
    }

    /// Consumes received bytes; see the type's documentation for what to call next.
    ///
    /// Events reported before an error stand: the bytes that carried them were valid.
    pub fn handle_input(&mut self, now_ms: u64, input: &[u8]) -> Result<(), RtmpError> {
        if self.state != State::Active {
            return Ok(());
        }
        self.bytes_received += input.len() as u64;
        let result = self.run(input).and_then(|()| self.after_input(now_ms));
        if result.is_err() {
            self.fail();
        }
        result
    }

    /// Fails the session if the handshake and `connect` are not done by their deadline.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<(), RtmpError> {
        if self.state != State::Active {
            return Ok(());
        }
        let result = self.check_deadline(now_ms);
        if result.is_err() {
            self.fail();
        }
        result
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): the handshake deadline, until
    /// `connect` is done.
    pub fn poll_timeout(&self) -> Option<u64> {
        (self.state == State::Active && !self.connected).then(|| self.deadline_ms())
    }

    /// The next bytes to send, in order: everything queued since the last call, in one
    /// buffer.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.writer.out.is_empty() {
            return None;
        }
        Some(Bytes::from(std::mem::take(&mut self.writer.out)))
    }

    /// The next event, in the order the client's messages arrived.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Accepts the publish pending on `stream_id`: sends User Control Stream Begin and
    /// `onStatus` `NetStream.Publish.Start`, on which OBS and ffmpeg start sending media.
    /// Media and metadata on the stream are reported from then on, and the connection's cap on
    /// unfinished messages rises from [`SessionConfig::partial_max_bytes_before_publish`] to
    /// [`SessionConfig::partial_max_bytes`] for the rest of the connection.
    pub fn accept_publish(&mut self, stream_id: u32) -> Result<(), NoPendingPublish> {
        let name = self.take_pending(stream_id)?;
        self.decoder
            .set_partial_max_bytes(self.config.partial_max_bytes);
        let info = status_object(
            StatusLevel::Status,
            "NetStream.Publish.Start",
            &format!("{} is now published.", clip(&name)),
        )
        .with("details", clip(&name));
        self.stream_mut(stream_id)
            .expect("a pending stream exists")
            .phase = StreamPhase::Publishing { name };
        self.writer.user_control(STREAM_BEGIN, stream_id);
        self.on_status(stream_id, info);
        Ok(())
    }

    /// Refuses the publish pending on `stream_id` with an `onStatus` of level error, such as
    /// `NetStream.Publish.BadName` (the key is unknown or already live) or
    /// `NetStream.Publish.Denied` (not allowed).
    ///
    /// The session is finished afterwards: flush [`poll_transmit`](Self::poll_transmit) and
    /// close the connection as the type's documentation says (step 6). ffmpeg prints "Server
    /// error: {description}" and exits. librtmp (OBS) closes by
    /// itself on `NetStream.Publish.Denied` and `NetStream.Publish.Rejected` but not on
    /// `BadName`, so closing is the server's job; OBS then reports the failure and, if so
    /// configured, retries.
    pub fn reject_publish(
        &mut self,
        stream_id: u32,
        code: &str,
        description: &str,
    ) -> Result<(), NoPendingPublish> {
        self.take_pending(stream_id)?;
        self.stream_mut(stream_id)
            .expect("a pending stream exists")
            .phase = StreamPhase::Idle;
        self.on_status(
            stream_id,
            status_object(StatusLevel::Error, code, description),
        );
        self.close();
        Ok(())
    }

    /// Sends an `onStatus` notice on `stream_id` (texts cut to [`NOTICE_TEXT_MAX_BYTES`]), such as `NetStream.Unpublish.Success` after
    /// the client's `closeStream`. OBS and ffmpeg log notices of level status and warning and
    /// ignore them otherwise; see [`StatusLevel::Error`] for errors. Nothing is sent before the
    /// handshake is done or after the session failed.
    pub fn send_status(
        &mut self,
        stream_id: u32,
        level: StatusLevel,
        code: &str,
        description: &str,
    ) {
        if self.state == State::Failed || !self.handshake.is_done() {
            return;
        }
        self.on_status(stream_id, status_object(level, code, description));
    }

    /// Refuses the connection with a reason, for refusals after the fact: an unsupported
    /// codec, a stream over its bitrate, an unknown app. Sends `onStatus` of level error
    /// with code `NetStream.Failed` on each stream that is publishing or waiting for an
    /// answer, or `NetConnection.Connect.Rejected` on stream 0 when there is none, and
    /// finishes the session: flush [`poll_transmit`](Self::poll_transmit) and close the
    /// connection with a grace period for the client to read the notice (the type's
    /// documentation, step 6).
    ///
    /// ffmpeg prints "Server error: {description}" and exits (or "Broken pipe" if the
    /// connection was reset before it read the notice); librtmp (OBS) closes on both
    /// codes, and OBS reports a disconnection (and reconnects if so configured, which the
    /// server will refuse again). Does nothing once the session is finished.
    pub fn error_and_close(&mut self, description: &str) {
        if self.state != State::Active {
            return;
        }
        if self.handshake.is_done() {
            let active: Vec<u32> = self
                .streams
                .iter()
                .filter(|s| s.phase != StreamPhase::Idle)
                .map(|s| s.id)
                .collect();
            if active.is_empty() {
                let info = status_object(
                    StatusLevel::Error,
                    "NetConnection.Connect.Rejected",
                    description,
                );
                self.on_status(0, info);
            }
            for stream_id in active {
                let info = status_object(StatusLevel::Error, "NetStream.Failed", description);
                self.on_status(stream_id, info);
            }
        }
        self.close();
    }

    fn run(&mut self, mut input: &[u8]) -> Result<(), RtmpError> {
        if !self.handshake.is_done() {
            self.handshake.consume(&mut input, &mut self.writer.out)?;
            if !self.handshake.is_done() {
                return Ok(());
            }
        }
        while let Some(message) = self.decoder.decode(&mut input)? {
            self.handle_message(message)?;
            self.check_transmit()?;
        }
        Ok(())
    }

    fn after_input(&mut self, now_ms: u64) -> Result<(), RtmpError> {
        let window = u64::from(self.ack_window_bytes);
        if window > 0 && self.bytes_received - self.acked_bytes >= window {
            // The sequence number is the byte count modulo 2^32 (it wraps every 4 GiB).
            self.writer.acknowledgement(self.bytes_received as u32);
            self.acked_bytes = self.bytes_received;
        }
        self.check_transmit()?;
        self.check_deadline(now_ms)
    }

    fn check_deadline(&self, now_ms: u64) -> Result<(), RtmpError> {
        if !self.connected && now_ms >= self.deadline_ms() {
            return Err(RtmpError::HandshakeTimeout {
                limit_ms: self.config.handshake_timeout_ms,
                elapsed_ms: now_ms.saturating_sub(self.created_ms),
            });
        }
        Ok(())
    }

    fn deadline_ms(&self) -> u64 {
        self.created_ms
            .saturating_add(self.config.handshake_timeout_ms)
    }

    fn check_transmit(&self) -> Result<(), RtmpError> {
        let queued = self.writer.out.len();
        if queued > self.config.transmit_queue_max_bytes {
            return Err(RtmpError::TransmitQueueFull {
                limit: self.config.transmit_queue_max_bytes,
                seen: queued,
            });
        }
        Ok(())
    }

    fn fail(&mut self) {
        self.state = State::Failed;
        self.decoder.clear();
        self.writer.out = Vec::new();
    }

    fn close(&mut self) {
        self.state = State::Closing;
        self.decoder.clear();
    }

    fn handle_message(&mut self, message: Message) -> Result<(), RtmpError> {
        match message.type_id {
            ACKNOWLEDGEMENT => {
                control_u32(&message)?;
            }
            WINDOW_ACK_SIZE => self.ack_window_bytes = control_u32(&message)?,
            // Advisory; this server does not throttle what it sends.
            SET_PEER_BANDWIDTH if message.payload.len() < 5 => return Err(too_short(&message)),
            USER_CONTROL => self.handle_user_control(&message)?,
            AUDIO | VIDEO => {
                self.push_media(
                    message.type_id,
                    message.stream_id,
                    message.timestamp,
                    message.payload,
                );
            }
            DATA_AMF0 => self.handle_data(message.stream_id, &message.payload)?,
            DATA_AMF3 => self.handle_data(message.stream_id, amf3_body(&message)?)?,
            COMMAND_AMF0 => self.handle_command(&message, &message.payload)?,
            COMMAND_AMF3 => self.handle_command(&message, amf3_body(&message)?)?,
            AGGREGATE => self.handle_aggregate(&message)?,
            // Shared objects (16, 19) and unassigned types: nothing an encoder needs answered.
            _ => {}
        }
        Ok(())
    }

    fn handle_user_control(&mut self, message: &Message) -> Result<(), RtmpError> {
        let p = &message.payload;
        if p.len() < 2 {
            return Err(too_short(message));
        }
        if u16::from_be_bytes([p[0], p[1]]) == PING_REQUEST {
            if p.len() < 6 {
                return Err(too_short(message));
            }
            let timestamp = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
            self.writer.user_control(PING_RESPONSE, timestamp);
        }
        // Set Buffer Length (librtmp sends it), Ping Response and the rest need no answer.
        Ok(())
    }

    fn push_media(&mut self, type_id: u8, stream_id: u32, timestamp_ms: u32, payload: Bytes) {
        if !self.is_publishing(stream_id) {
            // Before the publish is accepted, or on a stream that is not publishing.
            return;
        }
        self.events.push_back(if type_id == AUDIO {
            Event::Audio {
                stream_id,
                timestamp_ms,
                payload,
            }
        } else {
            Event::Video {
                stream_id,
                timestamp_ms,
                payload,
            }
        });
    }

    fn handle_data(&mut self, stream_id: u32, body: &[u8]) -> Result<(), RtmpError> {
        if !self.is_publishing(stream_id) {
            return Ok(());
        }
        let mut values = decode_all(body, &self.config.amf_limits())?.into_iter();
        let mut name = values.next();
        if name.as_ref().and_then(Amf0Value::as_str) == Some("@setDataFrame") {
            name = values.next();
        }
        if name.as_ref().and_then(Amf0Value::as_str) != Some("onMetaData") {
            // Cue points, captions and other data: not needed for ingest.
            return Ok(());
        }
        if let Some(Amf0Value::Object(values) | Amf0Value::EcmaArray(values)) = values.next() {
            self.events.push_back(Event::Metadata { stream_id, values });
        }
        Ok(())
    }

    /// Splits an aggregate message (RTMP 1.0 §7.1.6) into the audio, video and data messages
    /// it carries. Sub-message timestamps are offsets from the first one, applied to the
    /// aggregate's own timestamp.
    fn handle_aggregate(&mut self, message: &Message) -> Result<(), RtmpError> {
        if !self.is_publishing(message.stream_id) {
            return Ok(());
        }
        let payload = &message.payload;
        let mut at = 0;
        let mut first_timestamp = None;
        while at < payload.len() {
            let h = payload
                .get(at..at + 11)
                .ok_or(RtmpError::ProtocolViolation(
                    "an aggregate sub-message header is truncated",
                ))?;
            let type_id = h[0];
            let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
            let start = at + 11;
            let end = start + size;
            if end > payload.len() {
                return Err(RtmpError::ProtocolViolation(
                    "an aggregate sub-message is truncated",
                ));
            }
            let base = *first_timestamp.get_or_insert(timestamp);
            let timestamp_ms = message.timestamp.wrapping_add(timestamp.wrapping_sub(base));
            match type_id {
                AUDIO | VIDEO => self.push_media(
                    type_id,
                    message.stream_id,
                    timestamp_ms,
                    payload.slice(start..end),
                ),
                DATA_AMF0 => self.handle_data(message.stream_id, &payload[start..end])?,
                _ => {}
            }
            // Each sub-message is followed by a four-byte back pointer (its size plus 11).
            at = end + 4;
        }
        Ok(())
    }

    fn handle_command(&mut self, message: &Message, body: &[u8]) -> Result<(), RtmpError> {
        let values = decode_all(body, &self.config.amf_limits())?;
        let command = Command::from_values(values).ok_or(RtmpError::ProtocolViolation(
            "a command whose name is not a string",
        ))?;
        if !self.connected && command.name != "connect" {
            return Err(RtmpError::ProtocolViolation("a command before connect"));
        }
        let txn = command.transaction_id;
        match command.name.as_str() {
            "connect" => self.handle_connect(&command)?,
            "releaseStream" => self.result(txn, Amf0Value::Undefined),
            "FCPublish" => {
                let name = first_str(&command.args);
                let info = Amf0Object::new()
                    .with("code", "NetStream.Publish.Start")
                    .with("description", clip(name));
                self.notify("onFCPublish", info);
                self.result(txn, Amf0Value::Undefined);
            }
            "FCUnpublish" => {
                let name = first_str(&command.args);
                let info = Amf0Object::new()
                    .with("code", "NetStream.Unpublish.Success")
                    .with("description", clip(name));
                self.notify("onFCUnpublish", info);
                self.result(txn, Amf0Value::Undefined);
            }
            "createStream" => self.handle_create_stream(txn),
            "publish" => self.handle_publish(message.stream_id, &command)?,
            "closeStream" => self.end_publish(message.stream_id),
            "deleteStream" => {
                if let Some(stream_id) = command.args.first().and_then(stream_id_of) {
                    self.end_publish(stream_id);
                    self.streams.retain(|s| s.id != stream_id);
                }
            }
            "play" | "play2" => {
                let info = status_object(
                    StatusLevel::Error,
                    "NetStream.Play.Failed",
                    "This server only accepts publishing.",
                );
                self.on_status(message.stream_id, info);
                self.call_failed(txn, "This server only accepts publishing.");
            }
            // Answers and notices from the client: never answer an answer.
            "_result" | "_error" | "onStatus" | "onBWDone" => {}
            // getStreamLength, _checkbw, FCSubscribe and anything else.
            _ => self.call_failed(txn, "Method not found."),
        }
        Ok(())
    }

    fn handle_connect(&mut self, command: &Command) -> Result<(), RtmpError> {
        if self.connected {
            return Err(RtmpError::ProtocolViolation("a second connect"));
        }
        let object = command
            .object
            .as_object()
            .ok_or(RtmpError::ProtocolViolation(
                "connect without a command object",
            ))?;
        let app = object
            .get_str("app")
            .ok_or(RtmpError::ProtocolViolation("connect without an app"))?
            .to_owned();
        let tc_url = object.get_str("tcUrl").unwrap_or_default().to_owned();
        let flash_ver = object.get_str("flashVer").unwrap_or_default().to_owned();
        // Enhanced RTMP clients add fourCcList and videoFourCcInfoMap; the codecs they
        // announce are what they may send, which the FLV layer checks per tag, so nothing in
        // the answer changes.
        self.writer
            .window_ack_size(self.config.window_ack_size_bytes);
        self.writer
            .set_peer_bandwidth(self.config.peer_bandwidth_bytes);
        self.writer.set_chunk_size(self.config.chunk_size_out);
        let properties = Amf0Object::new()
            .with("fmsVer", FMS_VERSION)
            .with("capabilities", CAPABILITIES);
        let information = status_object(
            StatusLevel::Status,
            "NetConnection.Connect.Success",
            "Connection succeeded.",
        )
        .with("objectEncoding", 0.0);
        self.writer.command(
            CSID_COMMAND,
            0,
            &[
                "_result".into(),
                command.transaction_id.into(),
                properties.into(),
                information.into(),
            ],
        );
        self.connected = true;
        self.events.push_back(Event::Connected {
            app,
            tc_url,
            flash_ver,
        });
        Ok(())
    }

    fn handle_create_stream(&mut self, txn: f64) {
        if self.streams.len() >= self.config.streams_max {
            self.call_failed(txn, "Too many streams on this connection.");
            return;
        }
        let Some(next) = self.next_stream_id.checked_add(1) else {
            self.call_failed(txn, "Stream ids exhausted.");
            return;
        };
        let stream_id = self.next_stream_id;
        self.next_stream_id = next;
        self.streams.push(Stream {
            id: stream_id,
            phase: StreamPhase::Idle,
        });
        self.writer.command(
            CSID_COMMAND,
            0,
            &[
                "_result".into(),
                txn.into(),
                Amf0Value::Null,
                f64::from(stream_id).into(),
            ],
        );
    }

    fn handle_publish(&mut self, stream_id: u32, command: &Command) -> Result<(), RtmpError> {
        let name = command
            .args
            .first()
            .and_then(Amf0Value::as_str)
            .ok_or(RtmpError::ProtocolViolation("publish without a name"))?
            .to_owned();
        let kind = command
            .args
            .get(1)
            .and_then(Amf0Value::as_str)
            .unwrap_or("live")
            .to_owned();
        let stream = self
            .stream_mut(stream_id)
            .ok_or(RtmpError::ProtocolViolation(
                "publish on a stream that was not created",
            ))?;
        if stream.phase != StreamPhase::Idle {
            return Err(RtmpError::ProtocolViolation(
                "publish on a stream that is already publishing",
            ));
        }
        stream.phase = StreamPhase::Pending { name: name.clone() };
        self.events.push_back(Event::PublishRequested {
            stream_id,
            name,
            kind,
        });
        Ok(())
    }

    /// Ends the publish on `stream_id`, if there is one, reporting it.
    fn end_publish(&mut self, stream_id: u32) {
        if let Some(stream) = self.stream_mut(stream_id) {
            if stream.phase != StreamPhase::Idle {
                stream.phase = StreamPhase::Idle;
                self.events.push_back(Event::Unpublished { stream_id });
            }
        }
    }

    fn take_pending(&mut self, stream_id: u32) -> Result<String, NoPendingPublish> {
        if self.state != State::Active {
            return Err(NoPendingPublish { stream_id });
        }
        match self.stream_mut(stream_id).map(|s| &mut s.phase) {
            Some(phase @ StreamPhase::Pending { .. }) => {
                match std::mem::replace(phase, StreamPhase::Idle) {
                    StreamPhase::Pending { name } => Ok(name),
                    _ => unreachable!(),
                }
            }
            _ => Err(NoPendingPublish { stream_id }),
        }
    }

    fn is_publishing(&self, stream_id: u32) -> bool {
        self.streams
            .iter()
            .any(|s| s.id == stream_id && matches!(s.phase, StreamPhase::Publishing { .. }))
    }

    fn stream_mut(&mut self, stream_id: u32) -> Option<&mut Stream> {
        self.streams.iter_mut().find(|s| s.id == stream_id)
    }

    /// `_result` with a null command object and one value, when the call has a transaction id.
    fn result(&mut self, txn: f64, value: Amf0Value) {
        if txn != 0.0 {
            self.writer.command(
                CSID_COMMAND,
                0,
                &["_result".into(), txn.into(), Amf0Value::Null, value],
            );
        }
    }

    /// `_error` with `NetConnection.Call.Failed`, when the call has a transaction id.
    fn call_failed(&mut self, txn: f64, description: &str) {
        if txn != 0.0 {
            let info = status_object(StatusLevel::Error, "NetConnection.Call.Failed", description);
            self.writer.command(
                CSID_COMMAND,
                0,
                &["_error".into(), txn.into(), Amf0Value::Null, info.into()],
            );
        }
    }

    /// A notification such as `onFCPublish`: transaction 0, a null command object, `info`.
    fn notify(&mut self, name: &str, info: Amf0Object) {
        self.writer.command(
            CSID_COMMAND,
            0,
            &[name.into(), 0.0.into(), Amf0Value::Null, info.into()],
        );
    }

    fn on_status(&mut self, stream_id: u32, info: Amf0Object) {
        self.writer.command(
            CSID_STREAM,
            stream_id,
            &["onStatus".into(), 0.0.into(), Amf0Value::Null, info.into()],
        );
    }
}

/// The information object of an `onStatus` or `_error`.
fn status_object(level: StatusLevel, code: &str, description: &str) -> Amf0Object {
    Amf0Object::new()
        .with("level", level.as_str())
        .with("code", clip(code))
        .with("description", clip(description))
}

/// `text`, cut to at most [`NOTICE_TEXT_MAX_BYTES`] at a character boundary.
fn clip(text: &str) -> &str {
    if text.len() <= NOTICE_TEXT_MAX_BYTES {
        return text;
    }
    let mut end = NOTICE_TEXT_MAX_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The AMF0 body of an AMF3 command or data message: what follows a leading zero byte.
fn amf3_body(message: &Message) -> Result<&[u8], RtmpError> {
    match message.payload.split_first() {
        Some((0, body)) => Ok(body),
        _ => Err(RtmpError::Amf3Unsupported {
            type_id: message.type_id,
        }),
    }
}

fn first_str(args: &[Amf0Value]) -> &str {
    args.first().and_then(Amf0Value::as_str).unwrap_or_default()
}

fn too_short(message: &Message) -> RtmpError {
    RtmpError::MessageTooShort {
        type_id: message.type_id,
        len: message.payload.len(),
    }
}

const _: () = assert!(CHUNK_HEADER_MAX_BYTES < HANDSHAKE_PACKET_BYTES);
