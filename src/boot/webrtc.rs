//! The `[webrtc]` section made into the engine's UDP socket and the shards' WebRTC settings.

use super::config::Config;
use std::sync::Arc;

/// The UDP socket WebRTC binds on every shard (one port per shard), unless it is off.
pub(super) fn webrtc_udp(config: &Config) -> Option<shardcast_engine::UdpSpec> {
    let listen = &config.webrtc.udp_listen;
    if listen == "off" {
        return None;
    }
    Some(shardcast_engine::UdpSpec {
        name: "webrtc".to_string(),
        addr: listen.parse().ok()?,
        port_per_shard: true,
    })
}

/// The listener WebRTC over TCP gets (see `webrtc.tcp`): after HTTP's and RTMP's (when there
/// is one), one per shard at its UDP port. None when WebRTC or its TCP is off.
pub(super) fn webrtc_tcp_listener(config: &Config) -> Option<shardcast_engine::ListenerId> {
    webrtc_udp(config)?;
    let rtmp = !config.rtmp.listen.is_empty() && !crate::boot::edge::is_edge(config);
    config
        .webrtc
        .tcp
        .then_some(shardcast_engine::ListenerId(1 + u16::from(rtmp)))
}

/// What each shard's WebRTC runs with; None when it is off.
/// `publish_video`: the video codecs a WHIP publisher may send, best first.
pub fn webrtc_settings(
    config: &Config,
    publish_video: &'static [str0m::format::Codec],
) -> Option<Arc<crate::webrtc::WebrtcSettings>> {
    webrtc_udp(config)?;
    let w = &config.webrtc;
    let bound = webrtc_udp(config)?.addr.ip();
    let public_ip = match w.public_ip.parse().ok() {
        Some(ip) => Some(ip),
        None if bound.is_unspecified() => Some(route_ip()),
        None => None,
    };
    Some(Arc::new(crate::webrtc::WebrtcSettings {
        socket: shardcast_engine::UdpId(0),
        public_ip,
        max_sessions_per_shard: w.max_sessions_per_shard,
        max_sessions: w.max_sessions,
        sessions_total: Default::default(),
        keyframe_interval_ms: u64::from(config.media.segment_target_ms),
        abr_start_bps: super::settings::adaptive_webrtc(config)
            .then(|| u64::from(w.abr_start_kbps) * 1000),
        tcp_listener: webrtc_tcp_listener(config),
        publish_video,
    }))
}

/// The address this host sends from by its routing table (a UDP "connect" sends nothing),
/// or 127.0.0.1 when there is no route.
fn route_ip() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
        .and_then(|s| s.local_addr());
    match probe {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip(),
        _ => std::net::IpAddr::from([127, 0, 0, 1]),
    }
}
