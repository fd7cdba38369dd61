//! The shard's router: which service owns each connection, timer and mesh message.
//!
//! | event | goes to |
//! |---|---|
//! | accept on a listener | the listener's [`Protocol`]: HTTP or RTMP (media ingest) |
//! | bytes, sent, close | the connection's [`ConnKind`]: HTTP, WebSocket (danmaku) or RTMP (media) |
//! | a connection timer | the connection's kind, by slot |
//! | a room timer / a stream timer / the waiters' sweep / index retirement | danmaku / media / media / media |
//! | `ShardMsg::Danmaku` / `Media` / `ControlReply` | danmaku / media / media (webhooks) |
//!
//! A connection changes kind once at most: HTTP → WebSocket, when HTTP answers an upgrade.

use super::addresses::{AddressKind, AddressLimits, Addresses};
use super::msg::ShardMsg;
use super::timer::TimerKey;
use crate::danmaku::settings::DanmakuSettings;
use crate::danmaku::Danmaku;
use crate::http::settings::HttpSettings;
use crate::http::{Http, Input};
use crate::media::settings::MediaSettings;
use crate::media::Media;
use crate::state::msg::StateReply;
use shardcast_engine::{
    CloseReason, ConnId, Ctx, ListenerId, Service, ShardId, ShardInfo, TimerId,
};
use std::sync::Arc;

/// What a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (and WebSocket upgrades).
    Http,
    /// RTMP publishing.
    Rtmp,
    /// WebRTC over TCP (ICE-TCP), a port per shard.
    WebrtcTcp,
}

/// What every shard's router is built from.
pub struct ShardSettings {
    pub http: Arc<HttpSettings>,
    pub danmaku: Arc<DanmakuSettings>,
    pub media: Arc<MediaSettings>,
    /// What each listener speaks, by listener index (the order given to `launch`).
    pub listeners: Vec<Protocol>,
    /// Connections per source address, by kind.
    pub address_limits: AddressLimits,
}

/// Who owns a connection slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnKind {
    /// No connection.
    Free,
    Http,
    /// Upgraded from HTTP: danmaku's.
    WebSocket,
    /// Media ingest's.
    Rtmp,
    /// A WebRTC peer's (ICE over TCP).
    WebrtcTcp,
}

/// The service a shard runs.
pub struct ShardService {
    settings: Arc<ShardSettings>,
    shard: ShardId,
    kinds: Vec<ConnKind>,
    /// Connections per source address.
    addresses: Addresses,
    http: Http,
    danmaku: Danmaku,
    media: Media,
}

impl ShardService {
    /// The router and its services for one shard.
    pub fn new(settings: Arc<ShardSettings>, shard: &ShardInfo, wall_s: u64) -> Self {
        // FFmpeg runs on transcode threads only: any attempt from this shard panics.
        shardcast_native::forbid_ffmpeg_on_this_thread();
        let capacity = shard.runtime.engine.max_connections as usize;
        let shards = shard.runtime.shards();
        let live = crate::common::live::LiveSet::default();
        ShardService {
            http: Http::new(settings.http.clone(), shard, wall_s),
            danmaku: Danmaku::new(
                settings.danmaku.clone(),
                shard.shard,
                shards,
                capacity,
                live.clone(),
            ),
            media: Media::new(settings.media.clone(), shard.shard, shards, capacity, live),
            kinds: vec![ConnKind::Free; capacity],
            addresses: Addresses::new(settings.address_limits, capacity),
            shard: shard.shard,
            settings,
        }
    }

    /// Who owns connection slot `slot`.
    pub fn kind(&self, slot: usize) -> ConnKind {
        self.kinds[slot]
    }

    /// This shard's danmaku.
    pub fn danmaku(&self) -> &Danmaku {
        &self.danmaku
    }

    /// This shard's media.
    pub fn media(&self) -> &Media {
        &self.media
    }

    /// This shard's HTTP counters.
    pub fn http_counters(&self) -> &crate::http::settings::HttpCounters {
        &self.settings.http.counters[self.shard.index()]
    }

    /// HTTP let `conn` go after an upgrade: it is danmaku's from now on.
    fn after_http(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, input: Input) {
        if let Input::Upgraded { leftover } = input {
            self.kinds[conn.slot()] = ConnKind::WebSocket;
            self.danmaku.open(cx, conn);
            let ip = self.addresses.ip(conn.slot()).or(cx.peer_ip(conn));
            if !self
                .addresses
                .admit(conn.slot(), ip, AddressKind::WebSocket)
            {
                return self.danmaku.refuse_over_address(cx, conn);
            }
            if !leftover.is_empty() {
                self.danmaku.on_recv(cx, conn, &leftover);
            }
        }
    }
}

impl Service for ShardService {
    type Msg = ShardMsg;

    fn on_accept(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, listener: ListenerId) {
        match self.settings.listeners.get(usize::from(listener.0)) {
            Some(Protocol::Http) => {
                self.kinds[conn.slot()] = ConnKind::Http;
                let ip = cx.peer_ip(conn);
                if self.addresses.admit(conn.slot(), ip, AddressKind::Http) {
                    self.http.open(cx, conn);
                } else {
                    self.http.open_refused(cx, conn);
                }
            }
            Some(Protocol::Rtmp) => {
                self.kinds[conn.slot()] = ConnKind::Rtmp;
                let ip = cx.peer_ip(conn);
                if self.addresses.admit(conn.slot(), ip, AddressKind::Rtmp) {
                    self.media.rtmp_open(cx, conn);
                } else {
                    self.media.rtmp_refused(cx, conn);
                }
            }
            Some(Protocol::WebrtcTcp) => {
                self.kinds[conn.slot()] = ConnKind::WebrtcTcp;
                let ip = cx.peer_ip(conn);
                if self
                    .addresses
                    .admit(conn.slot(), ip, AddressKind::WebrtcTcp)
                {
                    self.media.rtc_tcp_open(cx, conn);
                } else {
                    cx.close(conn);
                }
            }
            None => {
                // Every listener bound at start has a protocol: this is our bug.
                debug_assert!(false, "listener {listener:?} has no protocol");
                log::error!(
                    "shard {}: accept on unknown listener {listener:?}",
                    self.shard.0
                );
                cx.close(conn);
            }
        }
    }

    fn on_recv(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, data: &[u8]) {
        match self.kinds[conn.slot()] {
            ConnKind::Http => {
                let input = self.http.on_recv(cx, conn, data, &mut self.media);
                self.after_http(cx, conn, input);
            }
            ConnKind::WebSocket => self.danmaku.on_recv(cx, conn, data),
            ConnKind::Rtmp => self.media.rtmp_recv(cx, conn, data),
            ConnKind::WebrtcTcp => self.media.rtc_tcp_recv(cx, conn, data),
            ConnKind::Free => {}
        }
    }

    fn on_sent(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        match self.kinds[conn.slot()] {
            ConnKind::Http => {
                let input = self.http.on_sent(cx, conn, &mut self.media);
                self.after_http(cx, conn, input);
            }
            ConnKind::WebSocket => self.danmaku.on_sent(conn),
            ConnKind::Rtmp | ConnKind::WebrtcTcp | ConnKind::Free => {}
        }
    }

    fn on_close(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, reason: CloseReason) {
        match self.kinds[conn.slot()] {
            ConnKind::Http => {
                if self.http.on_close(cx, conn, reason) == crate::http::Parked::Yes {
                    self.media.unpark(conn);
                }
            }
            ConnKind::WebSocket => self.danmaku.on_close(cx, conn),
            ConnKind::Rtmp => self.media.rtmp_closed(cx, conn),
            ConnKind::WebrtcTcp => self.media.rtc_tcp_closed(cx, conn),
            ConnKind::Free => {}
        }
        self.kinds[conn.slot()] = ConnKind::Free;
        self.addresses.release(conn.slot());
    }

    fn on_datagram(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        _socket: shardcast_engine::UdpId,
        from: std::net::SocketAddr,
        data: &[u8],
    ) {
        self.media.on_datagram(cx, from, data);
    }

    fn on_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, key: u64) {
        let Some(key) = TimerKey::decode(key) else {
            debug_assert!(false, "a timer key this shard did not make: {key:#x}");
            return;
        };
        match key {
            TimerKey::Conn { slot } => {
                let slot = slot as usize;
                match self.kinds.get(slot).copied().unwrap_or(ConnKind::Free) {
                    ConnKind::Http => self.http.on_timer(cx, id, slot),
                    ConnKind::WebSocket => self.danmaku.on_conn_timer(cx, id, slot),
                    ConnKind::Rtmp => self.media.rtmp_timer(cx, id, slot),
                    ConnKind::WebrtcTcp => self.media.rtc_tcp_timer(cx, slot),
                    // The connection closed and its timer was cancelled; a late fire is stale.
                    ConnKind::Free => {}
                }
            }
            TimerKey::Room { index } => self.danmaku.on_room_timer(cx, id, index as usize),
            TimerKey::Stream { index } => self.media.on_stream_timer(cx, id, index as usize),
            TimerKey::Waiters => self.media.on_waiters_timer(cx, id),
            TimerKey::Retire => self.media.on_retire_timer(cx, id),
        }
    }

    fn on_mesh(&mut self, cx: &mut Ctx<ShardMsg>, from: ShardId, msg: ShardMsg) {
        match msg {
            ShardMsg::Danmaku(msg) => self.danmaku.on_mesh(cx, from, msg),
            ShardMsg::Media(msg) => self.media.on_mesh(cx, from, msg),
            ShardMsg::ControlReply(reply) => self.media.on_control_reply(cx, reply),
            ShardMsg::StateReply(StateReply::Gift(done)) => self.danmaku.on_gift_done(cx, *done),
            ShardMsg::StateReply(StateReply::Api(done)) => {
                let conn = done.conn;
                if self.kinds[conn.slot()] == ConnKind::Http {
                    let input =
                        self.http
                            .on_api_done(cx, conn, done.status, done.json, &mut self.media);
                    self.after_http(cx, conn, input);
                }
            }
            ShardMsg::RelayReply(reply) => self.danmaku.on_relay(cx, reply),
            ShardMsg::EdgeReply(reply) => self.media.on_edge_reply(cx, *reply),
            ShardMsg::Transcode(_)
            | ShardMsg::Edge(_)
            | ShardMsg::OriginMap(_)
            | ShardMsg::Control(_)
            | ShardMsg::State(_)
            | ShardMsg::Relay(_)
            | ShardMsg::Record(_) => self.media.mesh_error(
                cx,
                from,
                "a message meant for a worker or the control thread",
            ),
        }
    }

    fn poll(&mut self, cx: &mut Ctx<ShardMsg>) {
        let here = cx.shard();
        self.media.poll_webrtc(cx);
        for msg in self.media.take_for_danmaku() {
            self.danmaku.on_mesh(cx, here, msg);
        }
        for (conn, response) in self.media.take_ready() {
            if self.kinds[conn.slot()] != ConnKind::Http {
                continue;
            }
            let input = self
                .http
                .answer_waiting(cx, conn, response, &mut self.media);
            self.after_http(cx, conn, input);
        }
    }

    fn on_drain(&mut self, cx: &mut Ctx<ShardMsg>) {
        self.danmaku.on_drain(cx);
        self.media.on_drain(cx);
        self.http.on_drain(cx);
    }
}
