//! The listeners every shard serves and what each speaks.

use super::config::{parse_addr, Config};
use super::tls::TlsSetup;
use crate::shard::router::Protocol;
use shardcast_engine::{ListenerSpec, TlsAcceptor};
use std::sync::Arc;

/// A TLS listener: its name, address, protocol and acceptor.
type TlsListener = (
    &'static str,
    std::net::SocketAddr,
    Protocol,
    Arc<TlsAcceptor>,
);

/// The TLS listeners `[tls]` asks for: HTTPS (HTTP and WebSocket over TLS) and RTMPS, each at
/// its address, at its default port once a certificate is set, or not at all ("off").
fn tls_listeners(config: &Config, tls: Option<&TlsSetup>) -> Result<Vec<TlsListener>, String> {
    let Some(tls) = tls else {
        return Ok(Vec::new());
    };
    let t = &config.tls;
    let mut out = Vec::new();
    let https = match t.https_listen.as_str() {
        "off" => None,
        "" => Some("0.0.0.0:443"),
        addr => Some(addr),
    };
    if let Some(addr) = https {
        let addr = parse_addr("tls.https_listen", addr).map_err(|e| e.to_string())?;
        out.push(("https", addr, Protocol::Http, tls.https.clone()));
    }
    let rtmps = match t.rtmps_listen.as_str() {
        "off" => None,
        "" if config.rtmp.listen.is_empty() || crate::boot::edge::is_edge(config) => None,
        "" => Some("0.0.0.0:1936"),
        addr => Some(addr),
    };
    if let Some(addr) = rtmps {
        let addr = parse_addr("tls.rtmps_listen", addr).map_err(|e| e.to_string())?;
        out.push(("rtmps", addr, Protocol::Rtmp, tls.rtmps.clone()));
    }
    Ok(out)
}

/// The listeners every shard serves, in order, and what each speaks: HTTP, RTMP (not on an
/// edge), WebRTC over TCP (one port per shard), then the TLS ones.
pub(super) fn listeners(
    config: &Config,
    tls: Option<&TlsSetup>,
) -> Result<(Vec<ListenerSpec>, Vec<Protocol>), String> {
    let h = &config.http;
    let mut listeners = vec![ListenerSpec {
        name: "http".to_string(),
        addr: parse_addr("http.listen", &h.listen).map_err(|e| e.to_string())?,
        tls: None,
        at_udp_port: None,
    }];
    let mut protocols = vec![Protocol::Http];
    if !config.rtmp.listen.is_empty() && !crate::boot::edge::is_edge(config) {
        listeners.push(ListenerSpec {
            name: "rtmp".to_string(),
            addr: parse_addr("rtmp.listen", &config.rtmp.listen).map_err(|e| e.to_string())?,
            tls: None,
            at_udp_port: None,
        });
        protocols.push(Protocol::Rtmp);
    }
    if let Some(id) = super::webrtc::webrtc_tcp_listener(config) {
        assert_eq!(
            usize::from(id.0),
            listeners.len(),
            "WebRTC's TCP listener's place"
        );
        listeners.push(ListenerSpec {
            name: "webrtc-tcp".to_string(),
            addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            tls: None,
            at_udp_port: Some(shardcast_engine::UdpId(0)),
        });
        protocols.push(Protocol::WebrtcTcp);
    }
    for (name, addr, protocol, acceptor) in tls_listeners(config, tls)? {
        listeners.push(ListenerSpec {
            name: name.to_string(),
            addr,
            tls: Some(acceptor),
            at_udp_port: None,
        });
        protocols.push(protocol);
    }
    Ok((listeners, protocols))
}
