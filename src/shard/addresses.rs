//! Connections per source address on one shard, by kind (HTTP, WebSocket, RTMP, WebRTC over
//! TCP), each kind with its own limit (`http.`, `ws.`, `rtmp.max_connections_per_address` and
//! `webrtc.tcp_connections_per_address`).
//!
//! Memory: one map entry (about 48 B) per distinct address with a connection open, so at most
//! one per connection slot; an address's entry goes when its last connection closes.

use std::collections::HashMap;
use std::net::IpAddr;

/// What a connection is counted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    Http,
    WebSocket,
    Rtmp,
    WebrtcTcp,
}

/// Kinds counted.
const KINDS: usize = 4;

impl AddressKind {
    fn index(self) -> usize {
        match self {
            AddressKind::Http => 0,
            AddressKind::WebSocket => 1,
            AddressKind::Rtmp => 2,
            AddressKind::WebrtcTcp => 3,
        }
    }
}

/// The limits, by kind.
#[derive(Clone, Copy, Debug)]
pub struct AddressLimits {
    pub http: u32,
    pub websocket: u32,
    pub rtmp: u32,
    pub webrtc_tcp: u32,
}

impl AddressLimits {
    fn of(&self, kind: AddressKind) -> u32 {
        match kind {
            AddressKind::Http => self.http,
            AddressKind::WebSocket => self.websocket,
            AddressKind::Rtmp => self.rtmp,
            AddressKind::WebrtcTcp => self.webrtc_tcp,
        }
    }
}

/// The counts, and what each connection slot is counted as.
pub struct Addresses {
    limits: AddressLimits,
    counts: HashMap<IpAddr, [u32; KINDS]>,
    slots: Vec<Option<(IpAddr, AddressKind)>>,
}

impl Addresses {
    /// Counts for a connection table of `capacity` slots.
    pub fn new(limits: AddressLimits, capacity: usize) -> Addresses {
        Addresses {
            limits,
            counts: HashMap::new(),
            slots: vec![None; capacity],
        }
    }

    /// Counts `slot` as a `kind` connection from `ip`; false (and nothing counted) when `ip`
    /// already has its limit of them. A connection without a known address is not counted.
    pub fn admit(&mut self, slot: usize, ip: Option<IpAddr>, kind: AddressKind) -> bool {
        self.release(slot);
        let Some(ip) = ip else {
            return true;
        };
        let counts = self.counts.entry(ip).or_insert([0; KINDS]);
        if counts[kind.index()] >= self.limits.of(kind) {
            if counts.iter().all(|&c| c == 0) {
                self.counts.remove(&ip);
            }
            return false;
        }
        counts[kind.index()] += 1;
        self.slots[slot] = Some((ip, kind));
        true
    }

    /// The connection in `slot` closed (or changes kind): it no longer counts.
    pub fn release(&mut self, slot: usize) {
        let Some((ip, kind)) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if let Some(counts) = self.counts.get_mut(&ip) {
            counts[kind.index()] = counts[kind.index()].saturating_sub(1);
            if counts.iter().all(|&c| c == 0) {
                self.counts.remove(&ip);
            }
        }
    }

    /// The address `slot` is counted under, if any.
    pub fn ip(&self, slot: usize) -> Option<IpAddr> {
        self.slots.get(slot).copied().flatten().map(|(ip, _)| ip)
    }

    /// Distinct addresses with a connection open.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when no address has a connection open.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_limit_and_closing_frees_the_place() {
        let limits = AddressLimits {
            http: 2,
            websocket: 1,
            rtmp: 1,
            webrtc_tcp: 1,
        };
        let mut a = Addresses::new(limits, 8);
        let ip: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let other: Option<IpAddr> = Some("10.0.0.2".parse().unwrap());
        assert!(a.admit(0, ip, AddressKind::Http));
        assert!(a.admit(1, ip, AddressKind::Http));
        assert!(
            !a.admit(2, ip, AddressKind::Http),
            "a third from one address"
        );
        assert!(
            a.admit(2, other, AddressKind::Http),
            "another address is not affected"
        );
        assert!(a.admit(3, ip, AddressKind::Rtmp), "RTMP counts apart");
        assert!(
            a.admit(7, ip, AddressKind::WebrtcTcp),
            "and WebRTC over TCP"
        );
        // An upgrade moves slot 0 from HTTP to WebSocket.
        assert!(a.admit(0, ip, AddressKind::WebSocket));
        assert!(
            a.admit(4, ip, AddressKind::Http),
            "slot 0 no longer counts as HTTP"
        );
        assert!(!a.admit(5, ip, AddressKind::WebSocket));
        assert!(
            !a.admit(5, ip, AddressKind::WebrtcTcp),
            "past its own limit"
        );
        for slot in 0..8 {
            a.release(slot);
        }
        assert_eq!(a.len(), 0, "nothing left behind");
        assert!(
            a.admit(6, None, AddressKind::Http),
            "no address: not counted"
        );
        assert_eq!(a.len(), 0);
    }
}
