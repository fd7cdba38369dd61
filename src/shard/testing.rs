//! Scenario-test support: whole shards on the engine's harness (`shardcast_engine::testing`,
//! no sockets, a virtual clock) built from a real configuration, and clients that speak to
//! them: HTTP requests, WebSocket viewers and RTMP publishers.

use super::msg::ShardMsg;
use super::router::ShardService;
use crate::boot::config::Config;
use crate::common::auth::{Claims, Role, TokenKey};
use bytes::Bytes;
use shardcast_engine::testing::TestShards;
use shardcast_engine::{ConnId, EngineConfig, ListenerId, ShardId};
use shardcast_wire::{ClientEncoder, ServerMsg, VerifyLimits};

/// The HTTP listener (first in the order `shard_settings` lists them).
pub const HTTP: ListenerId = ListenerId(0);
/// The RTMP listener.
pub const RTMP: ListenerId = ListenerId(1);

/// The token secret of test configurations.
pub const SECRET: &str = "scenario-test-secret";

/// The defaults with a known token secret, small tables, and `extra` TOML on top.
pub fn config(extra: &str) -> Config {
    let base = format!(
        "[auth]\nsecret = \"{SECRET}\"\n[http]\nmax_connections_per_shard = 48\n\
         [engine]\nconnection_reserve = 16\n[transcode]\nenabled = false\n\
         [media]\npublish_open = true\n"
    );
    let mut table: toml::Table = toml::from_str(&base).expect("base test config");
    let more: toml::Table = toml::from_str(extra).expect("extra test config");
    for (section, values) in more {
        match (table.get_mut(&section), values) {
            (Some(toml::Value::Table(into)), toml::Value::Table(values)) => into.extend(values),
            (_, values) => {
                table.insert(section, values);
            }
        }
    }
    let config: Config = toml::Value::Table(table)
        .try_into()
        .expect("merged test config");
    config.validate().expect("valid test config");
    config
}

/// `shards` shards serving `config`, with `workers` transcode endpoints after the control
/// thread's, and the ledger's after them (answer it with [`serve_ledger`]).
pub fn shards(shards: usize, config: &Config, workers: usize) -> TestShards<ShardService> {
    shards_with(shards, config, workers, None)
}

/// [`shards`] with transcode settings of the test's own.
pub fn shards_with(
    shards: usize,
    config: &Config,
    workers: usize,
    transcode: Option<std::sync::Arc<crate::transcode::settings::TranscodeSettings>>,
) -> TestShards<ShardService> {
    let (settings, _) =
        crate::boot::settings::shard_settings(config, shards, transcode, None).expect("settings");
    let engine = EngineConfig {
        // The ledger, the recorder, and with Redis the relay (answer them with
        // `take_outside`).
        worker_endpoints: workers
            + 2
            + usize::from(!config.state.redis.is_empty())
            + usize::from(crate::boot::edge::is_edge(config)),
        ..crate::boot::settings::engine_config(config)
    };
    TestShards::new(shards, engine, move |shard| {
        let wall_s = shardcast_engine::testing::WALL_ORIGIN_MS / 1000;
        ShardService::new(settings.clone(), shard, wall_s)
    })
}

/// Answers every request waiting for the ledger thread with `ledger`, as the ledger thread
/// does (one batch), and delivers the answers. Returns how many it answered.
pub fn serve_ledger(
    t: &mut TestShards<ShardService>,
    ledger: &mut dyn shardcast_ledger::Ledger,
) -> usize {
    let id = ledger_id(t);
    let requests: Vec<(ShardId, crate::state::msg::StateRequest)> = t
        .take_outside(id)
        .into_iter()
        .filter_map(|(from, msg)| match msg {
            ShardMsg::State(request) => Some((from, request)),
            _ => None,
        })
        .collect();
    let answered = requests.len();
    for (to, reply) in crate::state::answer(ledger, requests) {
        t.send_from_outside(id, to, ShardMsg::StateReply(reply));
    }
    answered
}

/// The ledger's mesh endpoint on the harness: the last worker endpoint.
pub fn ledger_id(t: &TestShards<ShardService>) -> ShardId {
    t.service(ShardId(0)).danmaku().state_threads().0
}

/// A token for `user` in `room` (valid for a day of virtual time).
pub fn token(user: &str, room: &str, role: Role) -> String {
    let claims = Claims {
        user: user.into(),
        room: room.into(),
        role,
        expires_unix_s: shardcast_engine::testing::WALL_ORIGIN_MS / 1000 + 86_400,
        audience: crate::common::auth::Audience::Chat,
    };
    TokenKey::new(SECRET.as_bytes()).mint(&claims)
}

/// Sends one HTTP request on a new connection to `shard` and returns what came back, up to
/// the end of the first response's head and its `Content-Length` body (or what there is).
/// A viewer of `room` on `shard`, joined with a viewer token for `user` (the Welcome read).
pub fn member(t: &mut TestShards<ShardService>, shard: u16, room: &str, user: &str) -> Viewer {
    let mut viewer = Viewer::connect(t, ShardId(shard));
    viewer.hello(t, room, &token(user, room, Role::Viewer), 0);
    let got = viewer.received(t);
    assert!(matches!(got.first(), Some(Got::Welcome { .. })), "{got:?}");
    viewer
}

/// Sends `request` (a whole HTTP request) on a new connection to `shard`, answering the
/// ledger with `ledger` when the request waits for it; returns what came back.
pub fn request_with_ledger(
    t: &mut TestShards<ShardService>,
    shard: ShardId,
    request: &str,
    ledger: &mut shardcast_ledger::MemoryLedger,
) -> (u16, String) {
    let conn = t.connect(shard, HTTP).expect("a free slot");
    t.write(shard, conn, request.as_bytes());
    serve_ledger(t, ledger);
    let response = String::from_utf8_lossy(&t.read(shard, conn)).into_owned();
    (status_of(&response), response)
}

pub fn get(t: &mut TestShards<ShardService>, shard: ShardId, target: &str) -> (u16, String) {
    let conn = t.connect(shard, HTTP).expect("a free slot");
    let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n");
    t.write(shard, conn, request.as_bytes());
    let response = String::from_utf8_lossy(&t.read(shard, conn)).into_owned();
    (status_of(&response), response)
}

/// The status code of a response's status line (0 when there is none).
pub fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// What a viewer received, decoded and owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    Welcome {
        user: String,
        seq: u64,
        online: u64,
    },
    /// Chat texts (other events as their kind) with their seqs.
    Batch(Vec<(u64, String)>),
    History {
        events: Vec<(u64, String)>,
        more: bool,
    },
    Stats {
        online: u64,
    },
    Resync {
        seq: u64,
        epoch: String,
    },
    Pong,
    Error {
        code: u16,
        message: String,
        cause: String,
    },
    Kick {
        reason: String,
    },
    GiftAck {
        key: String,
        seq: u64,
        entry: u64,
        balance: u64,
    },
    Ping,
    /// A WebSocket pong frame (the answer to the client's ping).
    WsPong,
    Close(Option<u16>),
}

/// A WebSocket viewer on the harness.
pub struct Viewer {
    pub shard: ShardId,
    pub conn: ConnId,
    /// The epoch of the last Welcome or Resync received.
    pub epoch: String,
    buffer: Vec<u8>,
    encoder: ClientEncoder,
}

impl Viewer {
    /// Connects to `shard` and upgrades (asserting the 101).
    pub fn connect(t: &mut TestShards<ShardService>, shard: ShardId) -> Viewer {
        let conn = t.connect(shard, HTTP).expect("a free slot");
        t.write(
            shard,
            conn,
            b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Protocol: shardcast.v1\r\n\r\n",
        );
        let head = t.read(shard, conn);
        let text = String::from_utf8_lossy(&head);
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "nothing after the 101: {text}");
        Viewer {
            shard,
            conn,
            epoch: String::new(),
            buffer: Vec::new(),
            encoder: ClientEncoder::new(),
        }
    }

    /// Sends one binary message (a masked frame).
    pub fn send(&mut self, t: &mut TestShards<ShardService>, payload: &[u8]) {
        t.write(self.shard, self.conn, &masked_frame(0x2, payload));
    }

    pub fn hello(
        &mut self,
        t: &mut TestShards<ShardService>,
        room: &str,
        token: &str,
        last_seq: u64,
    ) {
        let message = self.encoder.hello(room, token, last_seq, "test").to_vec();
        self.send(t, &message);
    }

    /// Hello resuming after `last_seq` of `epoch`.
    pub fn hello_in_epoch(
        &mut self,
        t: &mut TestShards<ShardService>,
        room: &str,
        (last_seq, epoch): (u64, &str),
    ) {
        let message = self
            .encoder
            .hello_in_epoch(room, "", last_seq, epoch, "test")
            .to_vec();
        self.send(t, &message);
    }

    pub fn chat(&mut self, t: &mut TestShards<ShardService>, text: &str) {
        let message = self
            .encoder
            .chat(text, 0xffffff, shardcast_wire::ChatMode::Scroll)
            .to_vec();
        self.send(t, &message);
    }

    pub fn gift(&mut self, t: &mut TestShards<ShardService>, gift_id: u32, key: &str) {
        let message = self.encoder.gift(gift_id, 1, key).to_vec();
        self.send(t, &message);
    }

    pub fn kick(&mut self, t: &mut TestShards<ShardService>, user: &str, reason: &str) {
        let message = self.encoder.kick_user(user, reason).to_vec();
        self.send(t, &message);
    }

    pub fn history(&mut self, t: &mut TestShards<ShardService>, from_seq: u64, limit: u32) {
        let message = self.encoder.history(from_seq, limit).to_vec();
        self.send(t, &message);
    }

    /// Everything received since the last call, decoded.
    pub fn received(&mut self, t: &mut TestShards<ShardService>) -> Vec<Got> {
        self.buffer.extend(t.read(self.shard, self.conn));
        let mut out = Vec::new();
        while let Some((opcode, payload, used)) = server_frame(&self.buffer) {
            match shardcast_wire::decode_server(&payload, &VerifyLimits::server()) {
                Ok(ServerMsg::Welcome(welcome)) => self.epoch = welcome.epoch.to_string(),
                Ok(ServerMsg::Resync { epoch, .. }) => self.epoch = epoch.to_string(),
                _ => {}
            }
            out.push(decode(opcode, &payload));
            self.buffer.drain(..used);
        }
        out
    }

    /// The chat texts of every Batch received since the last call, with their seqs.
    pub fn chats(&mut self, t: &mut TestShards<ShardService>) -> Vec<(u64, String)> {
        self.received(t)
            .into_iter()
            .flat_map(|got| match got {
                Got::Batch(events) => events,
                _ => Vec::new(),
            })
            .collect()
    }
}

/// One masked client frame.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
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
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The first complete server frame in `buf`: (opcode, payload, bytes used).
fn server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&first, &second) = (buf.first()?, buf.get(1)?);
    assert_eq!(second & 0x80, 0, "server frames are never masked");
    let (len, at) = match second & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((first & 0x0f, payload, at + len))
}

fn decode(opcode: u8, payload: &[u8]) -> Got {
    match opcode {
        0x8 => {
            return Got::Close(
                (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            )
        }
        0x9 => return Got::Ping,
        0xA => return Got::WsPong,
        0x2 => {}
        other => panic!("unexpected opcode {other}"),
    }
    let message = shardcast_wire::decode_server(payload, &VerifyLimits::server()).expect("valid");
    let events = |events: shardcast_wire::Events<'_>| -> Vec<(u64, String)> {
        events
            .iter()
            .map(|e| {
                let what = match e.body {
                    shardcast_wire::EventBodyView::Chat { text, .. } => text.to_string(),
                    shardcast_wire::EventBodyView::Gift { user, gift_id, .. } => {
                        format!("gift {gift_id} from {user}")
                    }
                    shardcast_wire::EventBodyView::Like { total, .. } => format!("likes {total}"),
                    shardcast_wire::EventBodyView::System { text } => format!("system: {text}"),
                };
                (e.seq, what)
            })
            .collect()
    };
    match message {
        ServerMsg::Welcome(w) => Got::Welcome {
            user: w.user.to_string(),
            seq: w.seq,
            online: w.online,
        },
        ServerMsg::Batch { events: e, .. } => Got::Batch(events(e)),
        ServerMsg::HistoryReply {
            events: e, more, ..
        } => Got::History {
            events: events(e),
            more,
        },
        ServerMsg::RoomStats { online, .. } => Got::Stats { online },
        ServerMsg::Resync { seq, epoch } => Got::Resync {
            seq,
            epoch: epoch.to_string(),
        },
        ServerMsg::Pong { .. } => Got::Pong,
        ServerMsg::Error {
            code,
            message,
            cause,
        } => Got::Error {
            code,
            message: message.to_string(),
            cause: cause.to_string(),
        },
        ServerMsg::Kick { reason } => Got::Kick {
            reason: reason.to_string(),
        },
        ServerMsg::GiftAck {
            idempotency_key,
            seq,
            entry,
            balance,
        } => Got::GiftAck {
            key: idempotency_key.to_string(),
            seq,
            entry,
            balance,
        },
    }
}

/// The mesh messages in flight, by kind, for assertions on routing.
pub fn in_flight_kinds(t: &TestShards<ShardService>) -> Vec<(ShardId, ShardId, &'static str)> {
    t.in_flight()
        .map(|m| {
            let kind = match &m.msg {
                ShardMsg::Danmaku(d) => match d {
                    crate::danmaku::msg::DanmakuMsg::Join(_) => "join",
                    crate::danmaku::msg::DanmakuMsg::Members { .. } => "members",
                    crate::danmaku::msg::DanmakuMsg::Chat(_) => "chat",
                    crate::danmaku::msg::DanmakuMsg::Joined(_) => "joined",
                    crate::danmaku::msg::DanmakuMsg::Broadcast(_) => "broadcast",
                    crate::danmaku::msg::DanmakuMsg::Reply { .. } => "reply",
                    _ => "danmaku",
                },
                ShardMsg::Media(_) => "media",
                ShardMsg::Transcode(_) => "transcode",
                ShardMsg::Control(_) => "control",
                ShardMsg::ControlReply(_) => "control reply",
                ShardMsg::State(_) => "state",
                ShardMsg::StateReply(_) => "state reply",
                ShardMsg::Relay(_) => "relay",
                ShardMsg::RelayReply(_) => "relay reply",
                ShardMsg::Record(_) => "record",
                ShardMsg::Edge(_) => "edge",
                ShardMsg::EdgeReply(_) => "edge reply",
                ShardMsg::OriginMap(_) => "origin map",
            };
            (m.from, m.to, kind)
        })
        .collect()
}

/// The tags of the test fixture `avc_aac.flv` (2 s of 320x180 H.264 and AAC): (type,
/// timestamp, body).
pub fn fixture_tags() -> Vec<(shardcast_media::flv::TagKind, u32, Bytes)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shards/media/tests/fixtures/avc_aac.flv"
    );
    let file = Bytes::from(std::fs::read(path).expect("fixture"));
    shardcast_media::flv::read_file(&file)
        .expect("an FLV file")
        .into_iter()
        .map(|tag| (tag.kind, tag.timestamp_ms, tag.body))
        .collect()
}

/// An RTMP publisher on the harness (`shardcast-rtmp`'s client session).
pub struct Publisher {
    pub shard: ShardId,
    pub conn: ConnId,
    pub client: shardcast_rtmp::ClientSession,
    /// What the server said (`onStatus`, errors), in order.
    pub events: Vec<shardcast_rtmp::ClientEvent>,
}

impl Publisher {
    /// Connects to `shard` and asks to publish `name` (`stream` or `stream?role=backup`).
    /// Returns once the server answered the publish (accepted or not).
    pub fn connect(t: &mut TestShards<ShardService>, shard: ShardId, name: &str) -> Publisher {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        Publisher::connect_from(t, shard, name, ip)
    }

    /// [`Publisher::connect`] from the source address `ip`.
    pub fn connect_from(
        t: &mut TestShards<ShardService>,
        shard: ShardId,
        name: &str,
        ip: std::net::IpAddr,
    ) -> Publisher {
        let conn = t.connect_from(shard, RTMP, ip).expect("a free slot");
        let config = shardcast_rtmp::ClientConfig::new("live", name);
        let mut publisher = Publisher {
            shard,
            conn,
            client: shardcast_rtmp::ClientSession::new(config),
            events: Vec::new(),
        };
        for _ in 0..20 {
            publisher.pump(t);
            let answered = publisher.events.iter().any(|e| {
                matches!(
                    e,
                    shardcast_rtmp::ClientEvent::Publishing { .. }
                        | shardcast_rtmp::ClientEvent::Status { .. }
                )
            });
            if answered {
                break;
            }
        }
        publisher
    }

    /// True once the server accepted the publish.
    pub fn is_publishing(&self) -> bool {
        self.client.is_publishing()
    }

    /// Exchanges bytes with the server until neither side has anything more to say.
    pub fn pump(&mut self, t: &mut TestShards<ShardService>) {
        loop {
            let mut moved = false;
            while let Some(bytes) = self.client.poll_transmit() {
                t.write(self.shard, self.conn, &bytes);
                moved = true;
            }
            let input = t.read(self.shard, self.conn);
            if !input.is_empty() {
                self.client.handle_input(&input).expect("a valid server");
                moved = true;
            }
            while let Some(event) = self.client.poll_event() {
                self.events.push(event);
            }
            if !moved {
                return;
            }
        }
    }

    /// Sends the tags whose timestamps are in `from_ms..to_ms`, each at its timestamp plus
    /// `offset_ms`.
    pub fn send(
        &mut self,
        t: &mut TestShards<ShardService>,
        tags: &[(shardcast_media::flv::TagKind, u32, Bytes)],
        range_ms: std::ops::Range<u32>,
        offset_ms: u32,
    ) {
        use shardcast_media::flv::TagKind;
        for (kind, ts, body) in tags.iter().filter(|(_, ts, _)| range_ms.contains(ts)) {
            let at = ts + offset_ms;
            match kind {
                TagKind::Video => self.client.send_video(at, body).expect("send video"),
                TagKind::Audio => self.client.send_audio(at, body).expect("send audio"),
                _ => continue,
            }
            self.pump(t);
        }
    }

    /// Ends the publish (the connection stays).
    pub fn unpublish(&mut self, t: &mut TestShards<ShardService>) {
        self.client.unpublish();
        self.pump(t);
    }
}
