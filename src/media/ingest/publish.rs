//! Publish requests of RTMP connections: the name and the credential (stream keys, publish
//! tokens, the server's key; refused credentials counted per address), the `on_publish`
//! webhook, the claim at the stream's home and its answer.

use super::{Ingest, Pace, PublishRequest};
use crate::common::auth::{constant_time_eq, Audience, Role};
use crate::common::counters::bump;
use crate::common::query::Query;
use crate::common::strikes::Strike;
use crate::control::msg::{ControlRequest, Verdict, Webhook};
use crate::media::msg::{MediaMsg, PublishFrom, PublishRole, PublisherId};
use crate::media::names::{home_of, is_valid_stream_name, stage_feed};
use crate::media::settings::PublishAccess;
use crate::media::Media;
use crate::shard::msg::ShardMsg;
use shardcast_engine::{ConnId, Ctx};
use std::sync::Arc;

impl Media {
    /// `publish STREAM?key=…&role=backup`: checks the name and the key or token, then asks
    /// the webhook (when configured) or claims the stream at its home.
    pub(super) fn publish_requested(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        slot: usize,
        stream_id: u32,
        name: &str,
    ) {
        let Some(rc) = self.conns[slot].as_mut() else {
            return;
        };
        if !matches!(rc.state, Ingest::Connected) {
            let _ = rc.session.reject_publish(
                stream_id,
                "NetStream.Publish.BadName",
                "already publishing",
            );
            return;
        }
        let (stream, query) = Query::split(name);
        let role = match query.get("role").as_deref() {
            Some("backup") => PublishRole::Backup,
            _ => PublishRole::Primary,
        };
        let ip = cx.peer_ip(rc.conn);
        let checked = if ip.is_some_and(|ip| self.guesses.is_blocked(ip, cx.now_ms())) {
            bump(&self.counters().publish_guesses_blocked, 1);
            Err((
                "NetStream.Publish.Denied",
                "too many refused credentials from your address; try again in a minute",
            ))
        } else {
            self.publish_allowed(cx, stream, query)
        };
        if let Err((code, why)) = checked {
            self.refuse_publish(cx, slot, stream_id, stream, (code, why));
            return;
        }
        let title = query
            .get("title")
            .and_then(|t| crate::media::names::publish_title(&t));
        let request = PublishRequest {
            stream: Arc::from(stream),
            stream_id,
            role,
            title,
        };
        match self.settings.on_publish.clone() {
            Some(url) => self.ask_webhook(cx, slot, request, query, url),
            None => self.claim(cx, slot, request),
        }
    }

    /// Answers a publish with an RTMP error and closes; a refused credential is a strike
    /// against the address (`rtmp.publish_failures_per_minute`).
    fn refuse_publish(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        slot: usize,
        stream_id: u32,
        stream: &str,
        (code, why): (&'static str, &'static str),
    ) {
        bump(&self.counters().publishes_refused, 1);
        let now = cx.now_ms();
        let ip = self.conns[slot].as_ref().and_then(|rc| cx.peer_ip(rc.conn));
        let strike = match (ip, code) {
            (Some(ip), "NetStream.Publish.Denied") if !self.guesses.is_blocked(ip, now) => {
                Some(self.guesses.strike(ip, now))
            }
            _ => None,
        };
        if strike == Some(Strike::Blocked) {
            log::warn!(
                "rtmp: {} presented {} refused publish credentials in a minute; its publishes \
                 are refused until the minute ends",
                ip.map_or_else(|| "?".to_string(), |ip| ip.to_string()),
                self.settings.rtmp_limits.publish_failures_per_minute
            );
        } else if self.log_budget.allow(now) {
            log::info!("rtmp conn {slot}: publish {stream:?} refused: {why}");
        }
        if let Some(rc) = self.conns[slot].as_mut() {
            let _ = rc.session.reject_publish(stream_id, code, why);
            rc.state = Ingest::Closing;
        }
    }

    /// Whether `stream` may be published with `query`'s key or token: `Err((RTMP status
    /// code, reason))` when not.
    pub(in crate::media) fn publish_allowed(
        &self,
        cx: &Ctx<ShardMsg>,
        stream: &str,
        query: Query<'_>,
    ) -> Result<(), (&'static str, &'static str)> {
        if !is_valid_stream_name(stream) {
            return Err(("NetStream.Publish.BadName", "invalid stream name"));
        }
        let settings = &self.settings;
        // A stage feed `{program}~{slot}` is the program's: its key, or a token for it (one
        // of role `cohost` for a guest's slot only).
        let (program, slot) = stage_feed(stream).map_or((stream, None), |(p, s)| (p, Some(s)));
        if slot.is_some_and(|s| usize::from(s) >= settings.stage_hosts_max) {
            return Err(match settings.stage_hosts_max {
                0 => ("NetStream.Publish.BadName", "co-hosting is off here"),
                _ => (
                    "NetStream.Publish.BadName",
                    "no such co-host slot (webrtc.max_cohosts)",
                ),
            });
        }
        let expected_key = match &settings.publish_access {
            PublishAccess::Open => return Ok(()),
            PublishAccess::ServerKey(key) => Some(key.as_str()),
            PublishAccess::Configured => settings.publish_keys.get(program).map(String::as_str),
        };
        let key_ok = match (query.get("key"), expected_key) {
            (Some(given), Some(key)) => constant_time_eq(given.as_bytes(), key.as_bytes()),
            _ => false,
        };
        let token_ok = match (&settings.publish_tokens, query.get("token")) {
            (Some(key), Some(token)) => key
                .verify_for(&token, cx.wall_ms() / 1000, Audience::Publish)
                .is_ok_and(|c| {
                    let guest = slot.is_some_and(|s| s >= 1);
                    c.allows_room(program) && (c.role != Role::Cohost || guest)
                }),
            _ => false,
        };
        if key_ok || token_ok {
            Ok(())
        } else {
            Err(("NetStream.Publish.Denied", "bad or missing stream key"))
        }
    }

    /// Asks the `on_publish` webhook (on the control thread) before claiming the stream.
    fn ask_webhook(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        slot: usize,
        request: PublishRequest,
        query: Query<'_>,
        url: String,
    ) {
        self.webhooks_sent += 1;
        // The slot in the low bits finds the connection; the count tells a stale answer (for
        // an earlier connection in the slot) from the awaited one.
        let token = self.webhooks_sent << 32 | slot as u64;
        let body = serde_json::json!({
            "action": "publish",
            "app": self.settings.app,
            "stream": &*request.stream,
            "role": match request.role {
                PublishRole::Backup => "backup",
                PublishRole::Primary => "primary",
            },
            "query": query.without(&["key", "token"]),
        })
        .to_string();
        if let Some(rc) = self.conns[slot].as_mut() {
            rc.state = Ingest::Authorizing { request, token };
        }
        self.send_webhook(cx, url, body, token);
    }

    /// Sends an `on_publish` webhook call to the control thread; its answer comes back with
    /// `token`.
    pub(in crate::media) fn send_webhook(
        &self,
        cx: &mut Ctx<ShardMsg>,
        url: String,
        body: String,
        token: u64,
    ) {
        let webhook = Webhook {
            url,
            body,
            timeout_ms: self.settings.webhook_timeout_ms,
            token: Some(token),
        };
        cx.mesh_send_control(ControlRequest::Webhook(Box::new(webhook)).into());
    }

    /// Asks the stream's home to let this connection publish.
    fn claim(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize, request: PublishRequest) {
        let Some(rc) = self.conns[slot].as_mut() else {
            return;
        };
        let PublishRequest {
            stream,
            stream_id,
            role,
            title,
        } = request;
        rc.state = Ingest::Claiming {
            stream: stream.clone(),
            stream_id,
        };
        let (conn, remote) = (rc.conn, rc.remote.clone());
        let home = home_of(&stream, self.shards);
        let msg = MediaMsg::Publish {
            stream,
            conn: PublisherId::Rtmp(conn),
            role,
            from: Box::new(PublishFrom {
                remote,
                title,
                vp8: false,
            }),
        };
        self.send_to(cx, home, msg);
    }

    /// The `on_publish` webhook answered.
    pub(in crate::media) fn webhook_answered(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        token: u64,
        verdict: Verdict,
        detail: &str,
    ) {
        if token & super::super::whip::WHIP_WEBHOOK != 0 {
            return self.whip_webhook_answered(cx, token, verdict, detail);
        }
        let slot = (token & 0xffff_ffff) as usize;
        let Some(rc) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Ingest::Authorizing {
            request,
            token: awaited,
        } = &rc.state
        else {
            return;
        };
        if *awaited != token {
            return;
        }
        let request = request.clone();
        if verdict == Verdict::Allowed {
            return self.claim(cx, slot, request);
        }
        let stream = &request.stream;
        log::info!("rtmp conn {slot}: publish {stream} refused by on_publish: {detail}");
        bump(
            &self.settings.counters[self.shard.index()].publishes_refused,
            1,
        );
        let _ = rc.session.reject_publish(
            request.stream_id,
            "NetStream.Publish.Denied",
            "refused by on_publish",
        );
        rc.state = Ingest::Closing;
        self.pump(cx, slot);
        self.close_rtmp_after_flush(cx, slot);
    }

    /// The home answered a claim.
    pub(in crate::media) fn publish_decision(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        decision: Result<(), &'static str>,
    ) {
        let slot = conn.slot();
        let Some(rc) = self.conns[slot].as_mut().filter(|rc| rc.conn == conn) else {
            return;
        };
        let (stream_id, stream) = match (&rc.state, decision) {
            (Ingest::Claiming { stream, stream_id }, _) => (*stream_id, stream.clone()),
            // The home ended this publish (replaced by a new primary): an RTMP error naming
            // why, and the connection closed.
            (Ingest::Publishing { .. }, Err(reason)) => return self.replaced(cx, slot, reason),
            _ => return,
        };
        match decision {
            Ok(()) => {
                if rc.session.accept_publish(stream_id).is_err() {
                    // The client closed or deleted the stream while its claim was out: give
                    // the stream back at once instead of holding it until the idle timeout.
                    rc.state = Ingest::Connected;
                    log::info!("rtmp conn {slot}: publish {stream} withdrawn before its answer");
                    let home = home_of(&stream, self.shards);
                    self.rtmp_unpublish(cx, home, stream, conn);
                    return;
                }
                rc.state = Ingest::Publishing {
                    home: home_of(&stream, self.shards),
                    stream: stream.clone(),
                };
                rc.pace = Pace::default();
                bump(&self.counters().publishes, 1);
                log::info!("rtmp conn {slot}: publishing stream {stream}");
                self.pump(cx, slot);
                // From the publish deadline to the idle one.
                self.arm_rtmp_timer(cx, slot);
            }
            Err(reason) => {
                let _ = rc
                    .session
                    .reject_publish(stream_id, "NetStream.Publish.BadName", reason);
                rc.state = Ingest::Closing;
                bump(&self.counters().publishes_refused, 1);
                log::info!("rtmp conn {slot}: publish {stream} refused: {reason}");
                self.pump(cx, slot);
                self.close_rtmp_after_flush(cx, slot);
            }
        }
    }
}
