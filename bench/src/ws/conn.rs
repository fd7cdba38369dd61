//! The connections of one load thread: one monoio (io_uring) runtime, one task per
//! connection.
//!
//! A connection's life: connect (from its source address), upgrade to WebSocket offering
//! `shardcast.v1`, send `Hello` (with the token if it is a sender, anonymous otherwise), wait
//! for `Welcome`. The thread then reports how many joined and waits for the run's start time,
//! which every thread of every process shares ([`Timeline`], in `CLOCK_MONOTONIC`
//! microseconds). From the start each connection reads and accounts for everything the server
//! sends; senders also write their chats on schedule, and every connection sends `Heartbeat`
//! at half the server's `heartbeat_ms` and answers pings.
//!
//! Like the `http` load, a connection is one task that alternates between writing what is due
//! and reading until the next deadline (next chat, next heartbeat, end of run). When the
//! deadline passes first, the pending read is cancelled and awaited, so bytes it did receive
//! are still counted.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncWriteRentExt, CancelableAsyncReadRent, CancelableAsyncWriteRentExt, Canceller,
};
use monoio::net::TcpStream;
use monoio::time::Sleep;
use monoio::BufResult;
use shardcast_wire::{
    decode_server, ChatMode, ClientEncoder, EventBodyView, ServerMsg, VerifyLimits, SUBPROTOCOL,
};

use crate::net::{self, CONNECTS_IN_FLIGHT_MAX};
use crate::ws::chat::{monotonic_us, ChatText, Clock};
use crate::ws::codec::{self, CodecError, Event, FrameDecoder, Masks};
use crate::ws::plan::{self, Assignment, Schedule};
use crate::ws::socketio::{self, Packet};
use crate::ws::stats::WsStats;
use crate::ws::tracker::{Arrival, SenderTrack};
use crate::ws::{WsLoadConfig, WsProtocol};

/// Free space offered to each read. Batches of a busy room are larger; the buffer then grows
/// to the largest frame seen (at most the protocol's 1 MiB message plus its header).
const READ_CHUNK_BYTES: usize = 4096;

/// How early a chat may go out: the timer ticks in milliseconds (as in the `http` load).
const SEND_AHEAD_US: u64 = 1000;

/// Submission ring entries per load thread.
const RING_ENTRIES: u32 = 4096;

/// Color of benchmark chats (white).
const CHAT_COLOR: u32 = 0xffffff;

/// A far deadline, for waits that only a signal or a read ends.
const FAR: Duration = Duration::from_secs(3600);

/// The shared timeline of a run, fixed once every process has joined its connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    /// The send phase starts (warm-up).
    start_us: u64,
    /// The measurement window starts.
    measure_us: u64,
    /// The send phase (and the window) ends.
    send_end_us: u64,
    /// The grace period ends: connections stop.
    finish: Instant,
}

impl Timeline {
    /// The timeline from `start_us` (`CLOCK_MONOTONIC` µs); [`ABORT_US`] makes one that is
    /// already over and sends nothing.
    fn new(start_us: u64, config: &WsLoadConfig, clock: &Clock) -> Self {
        if start_us == ABORT_US {
            return Self {
                start_us: 0,
                measure_us: 0,
                send_end_us: 0,
                finish: Instant::now(),
            };
        }
        let us = |d: Duration| d.as_micros() as u64;
        let measure_us = start_us + us(config.warmup);
        let send_end_us = measure_us + us(config.duration);
        Self {
            start_us,
            measure_us,
            send_end_us,
            finish: clock.instant_of(send_end_us + us(config.grace)),
        }
    }

    fn is_measured(&self, us: u64) -> bool {
        (self.measure_us..self.send_end_us).contains(&us)
    }
}

/// The start time that means "stop": the coordinating process gave up (or went away).
pub(crate) const ABORT_US: u64 = u64::MAX;

/// How many of a thread's connections joined, reported before the start.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ThreadJoined {
    pub connections: u64,
    pub joined: u64,
    pub errors: u64,
}

/// What every connection of a thread shares (single-threaded).
struct ThreadShared {
    config: WsLoadConfig,
    assignment: Assignment,
    schedule: Schedule,
    clock: Clock,
    begin: Instant,
    stats: RefCell<WsStats>,
    encoder: RefCell<ClientEncoder>,
    connecting: Cell<usize>,
    attempts_done: Cell<usize>,
    timeline: Cell<Option<Timeline>>,
    started: Signal,
}

/// Runs the connections of thread `thread` of process `process`. `joined` is called once
/// every attempt has finished; `start` is then polled (every millisecond) until it returns
/// the start time.
pub(crate) fn run_thread(
    config: &WsLoadConfig,
    process: u64,
    thread: u64,
    joined: impl FnOnce(ThreadJoined),
    start: impl Fn() -> Option<u64>,
) -> io::Result<WsStats> {
    let mut runtime = match net::build_runtime(RING_ENTRIES) {
        Ok(runtime) => runtime,
        Err(error) => {
            joined(ThreadJoined::default());
            return Err(error);
        }
    };
    let assignment = config.assignment();
    let indices: Vec<u64> = assignment.connections_of(process, thread).collect();
    let shared = Rc::new(ThreadShared {
        config: config.clone(),
        assignment,
        schedule: Schedule::new(config.senders, config.rate_per_sec),
        clock: Clock::new(),
        begin: Instant::now(),
        stats: RefCell::new(WsStats::new(config.senders)),
        encoder: RefCell::new(ClientEncoder::new()),
        connecting: Cell::new(0),
        attempts_done: Cell::new(0),
        timeline: Cell::new(None),
        started: Signal::new(indices.len()),
    });
    shared.stats.borrow_mut().connections = indices.len() as u64;
    runtime.block_on(drive(shared.clone(), indices, joined, start));
    let stats = shared.stats.replace(WsStats::new(0));
    Ok(stats)
}

async fn drive(
    shared: Rc<ThreadShared>,
    indices: Vec<u64>,
    joined: impl FnOnce(ThreadJoined),
    start: impl Fn() -> Option<u64>,
) {
    let config = &shared.config;
    let mut tasks = Vec::with_capacity(indices.len());
    for (slot, &index) in indices.iter().enumerate() {
        if config.ramp_per_sec > 0 {
            let due =
                shared.begin + Duration::from_secs_f64(index as f64 / config.ramp_per_sec as f64);
            if due > Instant::now() + Duration::from_millis(1) {
                sleep_until(due).await;
            }
        }
        while shared.connecting.get() >= CONNECTS_IN_FLIGHT_MAX {
            sleep_until(Instant::now() + Duration::from_millis(1)).await;
        }
        let connection = Connection::new(shared.clone(), index, slot);
        tasks.push(monoio::spawn(connection.run()));
    }
    while shared.attempts_done.get() < tasks.len() {
        sleep_until(Instant::now() + Duration::from_millis(5)).await;
    }
    {
        let mut stats = shared.stats.borrow_mut();
        stats.join_s = shared.begin.elapsed().as_secs_f64();
        joined(ThreadJoined {
            connections: stats.connections,
            joined: stats.joined,
            errors: stats.connect_errors + stats.handshake_errors + stats.join_errors,
        });
    }
    let start_us = loop {
        if let Some(start_us) = start() {
            break start_us;
        }
        sleep_until(Instant::now() + Duration::from_millis(1)).await;
    };
    shared
        .timeline
        .set(Some(Timeline::new(start_us, config, &shared.clock)));
    shared.started.fire();
    for task in tasks {
        task.await;
    }
}

async fn sleep_until(deadline: Instant) {
    monoio::time::sleep_until(deadline.into()).await;
}

/// Why a connection stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The run is over.
    RunOver,
    /// The server closed or reset the connection, or sent a close frame.
    Closed,
    /// The server's frames broke RFC 6455.
    Protocol,
}

/// What a read came back with.
enum ReadOutcome {
    Data(usize),
    /// The deadline passed or the start signal fired.
    Interrupted,
    Closed,
}

struct Connection {
    shared: Rc<ThreadShared>,
    index: u64,
    slot: usize,
    room: u64,
    sender: Option<u64>,
    next_counter: u64,
    /// Chats in `out` not yet written: all of them, and those due in the window.
    pending_chats: (u64, u64),
    tracks: Vec<SenderTrack>,
    buf: Vec<u8>,
    needed: usize,
    decoder: FrameDecoder,
    masks: Masks,
    canceller: Canceller,
    out: Vec<u8>,
    text: String,
    /// A Socket.IO event being written.
    event: String,
    last_seq: Option<u64>,
    joined: bool,
    server_closed: bool,
    heartbeat: Option<Duration>,
    next_heartbeat: Instant,
}

impl Connection {
    fn new(shared: Rc<ThreadShared>, index: u64, slot: usize) -> Self {
        let assignment = shared.assignment;
        let room = assignment.room_of(index);
        Self {
            room,
            sender: assignment.sender_of(index),
            next_counter: 0,
            pending_chats: (0, 0),
            tracks: vec![SenderTrack::new(); assignment.senders_in_room(room) as usize],
            buf: Vec::new(),
            needed: 0,
            decoder: FrameDecoder::new(),
            masks: Masks::new(index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5bd1_e995),
            canceller: Canceller::new(),
            out: Vec::new(),
            text: String::new(),
            event: String::new(),
            last_seq: None,
            joined: false,
            server_closed: false,
            heartbeat: None,
            next_heartbeat: Instant::now() + FAR,
            shared,
            index,
            slot,
        }
    }

    async fn run(mut self) {
        let shared = self.shared.clone();
        let config = &shared.config;
        shared.connecting.set(shared.connecting.get() + 1);
        let deadline = Instant::now() + config.connect_timeout;
        let source = plan::source_of(&config.source_addrs, self.index);
        let url = config.url_of(self.index);
        let connected = net::connect(url.addr, source, deadline).await;
        shared.connecting.set(shared.connecting.get() - 1);
        let mut stream = match connected {
            Ok(stream) => stream,
            Err(_) => {
                shared.stats.borrow_mut().connect_errors += 1;
                return self.attempt_done();
            }
        };
        if let Err(failure) = self.join(&mut stream, deadline).await {
            let mut stats = shared.stats.borrow_mut();
            match failure {
                JoinFailure::Handshake => stats.handshake_errors += 1,
                JoinFailure::NoWelcome => stats.join_errors += 1,
            }
            drop(stats);
            return self.attempt_done();
        }
        shared.stats.borrow_mut().joined += 1;
        self.attempt_done();
        let ended = self.serve(&mut stream).await;
        let mut stats = shared.stats.borrow_mut();
        match ended {
            Ended::RunOver => {}
            Ended::Closed => stats.closed_by_server += 1,
            Ended::Protocol => stats.protocol_errors += 1,
        }
        for (slot, track) in self.tracks.iter().enumerate() {
            let sender = shared.assignment.sender_at(self.room, slot as u64);
            stats.senders[sender as usize].add_receiver(track);
        }
    }

    fn attempt_done(&self) {
        let done = &self.shared.attempts_done;
        done.set(done.get() + 1);
    }

    /// Upgrades the connection and waits for `Welcome`.
    async fn join(&mut self, stream: &mut TcpStream, deadline: Instant) -> Result<(), JoinFailure> {
        let shared = self.shared.clone();
        let config = &shared.config;
        let key = codec::handshake_key(self.index ^ 0xa076_1d64_78bd_642f);
        let url = config.url_of(self.index);
        let subprotocol = match config.protocol {
            WsProtocol::Shardcast => SUBPROTOCOL,
            WsProtocol::SocketIo => "",
        };
        let request = codec::handshake_request(&url.authority, &url.path, &key, subprotocol);
        let (written, _) = AsyncWriteRentExt::write_all(stream, request).await;
        written.map_err(|_| JoinFailure::Handshake)?;
        let mut sleep = std::pin::pin!(monoio::time::sleep_until(deadline.into()));
        let head = loop {
            match codec::check_handshake(&self.buf, &key, subprotocol) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(_) => return Err(JoinFailure::Handshake),
            }
            match self.read_more(stream, sleep.as_mut(), false).await {
                ReadOutcome::Data(received) => self.count_received(received),
                ReadOutcome::Interrupted | ReadOutcome::Closed => {
                    return Err(JoinFailure::Handshake)
                }
            }
        };
        self.buf.drain(..head);

        if config.protocol == WsProtocol::Shardcast {
            let token = if self.sender.is_some() {
                config.token.as_str()
            } else {
                ""
            };
            let room = Assignment::room_name(self.room);
            let mut encoder = self.shared.encoder.borrow_mut();
            let hello = encoder.hello(&room, token, 0, "shardcast-bench");
            codec::encode_binary(&mut self.out, hello, self.masks.next_mask());
        }
        // Socket.IO: the server speaks first (open), then connect and join follow from
        // `handle_text`.
        loop {
            if self.handle_received().is_err() || self.server_closed {
                return Err(JoinFailure::NoWelcome);
            }
            if self.joined {
                return Ok(());
            }
            if !self.out.is_empty() {
                let out = std::mem::take(&mut self.out);
                let (written, mut out) = AsyncWriteRentExt::write_all(stream, out).await;
                out.clear();
                self.out = out;
                written.map_err(|_| JoinFailure::NoWelcome)?;
            }
            match self.read_more(stream, sleep.as_mut(), false).await {
                ReadOutcome::Data(received) => self.count_received(received),
                ReadOutcome::Interrupted | ReadOutcome::Closed => {
                    return Err(JoinFailure::NoWelcome)
                }
            }
        }
    }

    /// Sends what is due and reads everything until the run is over.
    async fn serve(&mut self, stream: &mut TcpStream) -> Ended {
        let shared = self.shared.clone();
        let mut sleep = std::pin::pin!(monoio::time::sleep_until((Instant::now() + FAR).into()));
        loop {
            let timeline = shared.timeline.get();
            let now = Instant::now();
            if timeline.is_some_and(|t| now >= t.finish) {
                return Ended::RunOver;
            }
            if self.server_closed {
                return Ended::Closed;
            }
            if let Some(timeline) = &timeline {
                self.queue_due_chats(timeline, monotonic_us());
            }
            if now >= self.next_heartbeat {
                self.queue_heartbeat(now);
            }
            if !self.out.is_empty() {
                let finish = timeline.map_or(now + FAR, |t| t.finish);
                sleep.as_mut().reset(finish.into());
                let out = std::mem::take(&mut self.out);
                let write =
                    CancelableAsyncWriteRentExt::write_all(stream, out, self.canceller.handle());
                let (result, mut out) =
                    op_or_wake(write, &mut self.canceller, sleep.as_mut(), None).await;
                out.clear();
                self.out = out;
                if result.is_err() {
                    return if Instant::now() >= finish {
                        Ended::RunOver
                    } else {
                        Ended::Closed
                    };
                }
                self.count_sent_chats();
            }
            sleep.as_mut().reset(self.deadline(timeline).into());
            match self
                .read_more(stream, sleep.as_mut(), timeline.is_none())
                .await
            {
                ReadOutcome::Data(received) => {
                    self.count_received(received);
                    if self.handle_received().is_err() {
                        return Ended::Protocol;
                    }
                }
                ReadOutcome::Interrupted => {}
                ReadOutcome::Closed => {
                    let over = timeline.is_some_and(|t| Instant::now() >= t.finish);
                    return if over { Ended::RunOver } else { Ended::Closed };
                }
            }
        }
    }

    /// The next moment this connection must act even if nothing arrives.
    fn deadline(&self, timeline: Option<Timeline>) -> Instant {
        let now = Instant::now();
        let Some(timeline) = timeline else {
            // Waiting for the start: the start signal ends the wait.
            return self.next_heartbeat.min(now + FAR);
        };
        let mut deadline = timeline.finish.min(self.next_heartbeat);
        if let Some(sender) = self.sender {
            let due_us = timeline.start_us + self.shared.schedule.due_us(sender, self.next_counter);
            if due_us < timeline.send_end_us {
                let due = self
                    .shared
                    .clock
                    .instant_of(due_us.saturating_sub(SEND_AHEAD_US));
                deadline = deadline.min(due);
            }
        }
        deadline
    }

    /// Encodes every chat due by now (and within the next timer tick) into `out`. A chat that
    /// goes out late carries its due time, so the latency of a delayed send is charged in
    /// full; one that goes out early carries the actual time.
    fn queue_due_chats(&mut self, timeline: &Timeline, now_us: u64) {
        let Some(sender) = self.sender else {
            return;
        };
        let mut encoder = self.shared.encoder.borrow_mut();
        loop {
            let due_us = timeline.start_us + self.shared.schedule.due_us(sender, self.next_counter);
            if due_us >= timeline.send_end_us || due_us > now_us + SEND_AHEAD_US {
                break;
            }
            ChatText {
                sender,
                counter: self.next_counter,
                sent_us: due_us.min(now_us),
            }
            .write(&mut self.text);
            match self.shared.config.protocol {
                WsProtocol::Shardcast => {
                    let chat = encoder.chat(&self.text, CHAT_COLOR, ChatMode::Scroll);
                    codec::encode_binary(&mut self.out, chat, self.masks.next_mask());
                }
                WsProtocol::SocketIo => {
                    socketio::write_event(&mut self.event, "chat", "text", &self.text);
                    let mask = self.masks.next_mask();
                    codec::encode_text(&mut self.out, self.event.as_bytes(), mask);
                }
            }
            self.next_counter += 1;
            self.pending_chats.0 += 1;
            if due_us >= timeline.measure_us {
                self.pending_chats.1 += 1;
            }
        }
    }

    fn queue_heartbeat(&mut self, now: Instant) {
        let Some(interval) = self.heartbeat else {
            return;
        };
        let mut encoder = self.shared.encoder.borrow_mut();
        let heartbeat = encoder.heartbeat(monotonic_us() / 1000);
        codec::encode_binary(&mut self.out, heartbeat, self.masks.next_mask());
        self.next_heartbeat = now + interval;
    }

    fn count_sent_chats(&mut self) {
        let (all, measured) = std::mem::take(&mut self.pending_chats);
        if all == 0 {
            return;
        }
        let sender = self.sender.expect("only senders queue chats") as usize;
        let mut stats = self.shared.stats.borrow_mut();
        stats.chats_sent += all;
        stats.chats_sent_measured += measured;
        stats.senders[sender].sent += all;
    }

    /// Reads into the free space after the unconsumed bytes, growing the buffer to hold the
    /// next frame whole. `wake`: the start signal also interrupts the read.
    async fn read_more(
        &mut self,
        stream: &mut TcpStream,
        sleep: Pin<&mut Sleep>,
        wake: bool,
    ) -> ReadOutcome {
        let len = self.buf.len();
        let want = self.needed.max(len + READ_CHUNK_BYTES);
        self.buf.reserve(want - len);
        let tail = std::mem::take(&mut self.buf).slice_mut(len..);
        let read = stream.cancelable_read(tail, self.canceller.handle());
        let shared = self.shared.clone();
        let signal = wake.then_some((&shared.started, self.slot));
        let (result, tail) = op_or_wake(read, &mut self.canceller, sleep, signal).await;
        self.buf = tail.into_inner();
        match result {
            Ok(0) => ReadOutcome::Closed,
            Ok(received) => ReadOutcome::Data(received),
            Err(error) if error.raw_os_error() == Some(libc::ECANCELED) => ReadOutcome::Interrupted,
            Err(_) => ReadOutcome::Closed,
        }
    }

    fn count_received(&self, received: usize) {
        let mut stats = self.shared.stats.borrow_mut();
        stats.bytes_received += received as u64;
        let measuring = self
            .shared
            .timeline
            .get()
            .is_some_and(|t| t.is_measured(monotonic_us()));
        if measuring {
            stats.bytes_received_measured += received as u64;
        }
    }

    /// Decodes and accounts for every whole frame in the buffer.
    fn handle_received(&mut self) -> Result<(), CodecError> {
        let recv_us = monotonic_us();
        let buf = std::mem::take(&mut self.buf);
        let mut decoder = std::mem::take(&mut self.decoder);
        let mut needed = 0;
        let socket_io = self.shared.config.protocol == WsProtocol::SocketIo;
        let result = decoder.handle_bytes(&buf, &mut needed, |event| match event {
            Event::Binary(message) => self.handle_message(message, recv_us),
            Event::Text(message) if socket_io => self.handle_text(message, recv_us),
            Event::Text(_) => self.shared.stats.borrow_mut().foreign_events += 1,
            Event::Ping(payload) => {
                codec::encode_pong(&mut self.out, payload, self.masks.next_mask())
            }
            Event::Pong => {}
            Event::Close(_) => self.server_closed = true,
        });
        self.decoder = decoder;
        self.buf = buf;
        let consumed = result?;
        self.buf.drain(..consumed);
        self.needed = needed;
        Ok(())
    }

    fn handle_message(&mut self, message: &[u8], recv_us: u64) {
        let Ok(msg) = decode_server(message, &VerifyLimits::server()) else {
            self.shared.stats.borrow_mut().protocol_errors += 1;
            return;
        };
        match msg {
            ServerMsg::Welcome(welcome) if !self.joined => {
                self.joined = true;
                self.last_seq = Some(welcome.seq);
                if welcome.heartbeat_ms > 0 {
                    let interval = Duration::from_millis(u64::from(welcome.heartbeat_ms) / 2);
                    // Spread the connections' heartbeats over the interval.
                    let phase = interval.mul_f64((self.index % 64) as f64 / 64.0);
                    self.heartbeat = Some(interval);
                    self.next_heartbeat = Instant::now() + interval / 2 + phase / 2;
                }
            }
            ServerMsg::Batch { first_seq, events } => {
                {
                    let mut stats = self.shared.stats.borrow_mut();
                    stats.batches += 1;
                    stats.events += events.len() as u64;
                    if self.last_seq.is_some_and(|last| first_seq != last + 1) {
                        stats.seq_gaps += 1;
                    }
                }
                if !events.is_empty() {
                    self.last_seq = Some(first_seq + events.len() as u64 - 1);
                }
                for event in events.iter() {
                    if let EventBodyView::Chat { text, .. } = event.body {
                        self.handle_chat(text, recv_us);
                    }
                }
            }
            ServerMsg::RoomStats { .. } => self.shared.stats.borrow_mut().room_stats += 1,
            ServerMsg::Pong { .. } => self.shared.stats.borrow_mut().pongs += 1,
            ServerMsg::Error { code, .. } => {
                *self
                    .shared
                    .stats
                    .borrow_mut()
                    .server_errors
                    .entry(code)
                    .or_default() += 1;
            }
            ServerMsg::Kick { .. } => self.shared.stats.borrow_mut().kicks += 1,
            _ => {}
        }
    }

    /// One Engine.IO packet from a Socket.IO server: answers pings, walks the join (open →
    /// connect → join → welcome), and accounts for chats, each a batch of one.
    fn handle_text(&mut self, message: &[u8], recv_us: u64) {
        let packet = match socketio::parse(message) {
            Ok(packet) => packet,
            Err(_) => {
                self.shared.stats.borrow_mut().protocol_errors += 1;
                return;
            }
        };
        match packet {
            Packet::Open { .. } if !self.joined => {
                let mask = self.masks.next_mask();
                codec::encode_text(&mut self.out, socketio::CONNECT, mask);
            }
            Packet::Connected if !self.joined => {
                let room = Assignment::room_name(self.room);
                socketio::write_event(&mut self.event, "join", "room", &room);
                let mask = self.masks.next_mask();
                codec::encode_text(&mut self.out, self.event.as_bytes(), mask);
            }
            Packet::Welcome if !self.joined => self.joined = true,
            Packet::Ping => {
                codec::encode_text(&mut self.out, socketio::PONG, self.masks.next_mask());
                self.shared.stats.borrow_mut().pongs += 1;
            }
            Packet::Close => self.server_closed = true,
            Packet::Chat(text) => {
                {
                    let mut stats = self.shared.stats.borrow_mut();
                    stats.batches += 1;
                    stats.events += 1;
                }
                self.handle_chat(&text, recv_us);
            }
            _ => {}
        }
    }

    fn handle_chat(&mut self, text: &str, recv_us: u64) {
        let assignment = self.shared.assignment;
        let mut stats = self.shared.stats.borrow_mut();
        let chat = match ChatText::parse(text) {
            Some(chat)
                if chat.sender < assignment.senders
                    && assignment.room_of(chat.sender) == self.room =>
            {
                chat
            }
            _ => {
                stats.foreign_events += 1;
                return;
            }
        };
        let slot = assignment.slot_of(chat.sender) as usize;
        let arrival = self.tracks[slot].handle(chat.counter);
        match arrival {
            Arrival::Duplicate => {
                stats.duplicated += 1;
                return;
            }
            Arrival::Late => stats.out_of_order += 1,
            Arrival::InOrder | Arrival::AfterGap { .. } => {}
        }
        stats.delivered += 1;
        if self
            .shared
            .timeline
            .get()
            .is_some_and(|t| t.is_measured(chat.sent_us))
        {
            stats.delivered_measured += 1;
            stats.record_latency_us(recv_us.saturating_sub(chat.sent_us));
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum JoinFailure {
    Handshake,
    NoWelcome,
}

/// Runs a cancelable operation until it completes, `sleep` fires, or `wake`'s signal fires.
/// In the two last cases the operation is cancelled and still awaited: io_uring may have
/// completed it meanwhile, and the buffer comes back either way.
async fn op_or_wake<T, F>(
    op: F,
    canceller: &mut Canceller,
    mut sleep: Pin<&mut Sleep>,
    wake: Option<(&Signal, usize)>,
) -> BufResult<usize, T>
where
    F: Future<Output = BufResult<usize, T>>,
{
    let mut op = std::pin::pin!(op);
    let finished = std::future::poll_fn(|cx| {
        if let Poll::Ready(done) = op.as_mut().poll(cx) {
            return Poll::Ready(Some(done));
        }
        if let Some((signal, slot)) = wake {
            if signal.poll_fired(slot, cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        sleep.as_mut().poll(cx).map(|()| None)
    })
    .await;
    match finished {
        Some(done) => done,
        None => {
            *canceller = std::mem::take(canceller).cancel();
            op.await
        }
    }
}

/// A one-time event that wakes every connection task waiting for it (the start of the run).
/// One waker slot per connection, so a task that polls many times registers once.
struct Signal {
    fired: Cell<bool>,
    wakers: RefCell<Vec<Option<Waker>>>,
}

impl Signal {
    fn new(slots: usize) -> Self {
        Self {
            fired: Cell::new(false),
            wakers: RefCell::new(vec![None; slots]),
        }
    }

    fn fire(&self) {
        self.fired.set(true);
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }

    fn poll_fired(&self, slot: usize, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired.get() {
            return Poll::Ready(());
        }
        if let Some(entry) = self.wakers.borrow_mut().get_mut(slot) {
            *entry = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}
