//! The fetcher's exchanges with origins: what each connection reads, how a flight's answer
//! is passed on (head, body, end) or goes to the next origin, and the connections' pool.

use super::{Fetcher, Readiness};
use crate::common::counters::{bump, set};
use crate::edge::cache::CachedObject;
use crate::edge::conn::{ConnEvent, ConnState};
use crate::edge::msg::{EdgeReply, ObjectHead, OriginWait};
use crate::edge::origins::Breaker;
use crate::edge::PREFERRED_ORIGIN_MS;
use bytes::Bytes;
use shardcast_http::Framing;
use std::sync::Arc;

impl Fetcher {
    /// A connection's socket is ready.
    pub(super) fn conn_ready(&mut self, conn: usize, readiness: Readiness) {
        let mut events = Vec::new();
        let mut result = Ok(());
        let Some((c, _, serial)) = self.conns.get_mut(conn) else {
            return;
        };
        let serial = *serial;
        if readiness.writable {
            result = c.on_writable();
        }
        if readiness.readable && result.is_ok() {
            result = c.on_readable(&mut self.scratch, &mut events);
        }
        // An event may close the connection (a 404 passed over, an object too big); its slab
        // key may then serve a new connection at once, which the rest must not touch.
        let same = |f: &Self| f.conns.get(conn).is_some_and(|(_, _, s)| *s == serial);
        for event in events {
            if !same(self) {
                return;
            }
            self.conn_event(conn, event);
        }
        if let Err(why) = result {
            if same(self) {
                self.conn_failed(conn, why);
            }
        }
    }

    /// What a connection read, for its flight.
    pub(super) fn conn_event(&mut self, conn: usize, event: ConnEvent) {
        let Some((c, Some(key), _)) = self.conns.get(conn) else {
            return;
        };
        let (key, origin) = (key.clone(), c.origin);
        let now = self.now_ms();
        match event {
            ConnEvent::Head(head) => self.head(conn, &key, origin, head),
            ConnEvent::Body(bytes) => {
                let len = bytes.len() as u64;
                bump(&self.options.counters.origin_bytes, len);
                let Some(flight) = self.flights.get_mut(&key) else {
                    return;
                };
                flight.bytes += len;
                flight.deadline_ms = now + self.options.blocking_timeout_ms;
                if flight.bytes > self.options.object_max_bytes {
                    self.close_conn(conn);
                    return self.abort(&key, "the object exceeds edge.object_max_bytes");
                }
                let bytes = Bytes::from(bytes);
                flight.chunks.push(bytes.clone());
                let shards = flight.shards.clone();
                self.tell(&shards, &key, |key| EdgeReply::Body {
                    key,
                    bytes: bytes.clone(),
                });
            }
            ConnEvent::Done => {
                if let Some((_, attached, _)) = self.conns.get_mut(conn) {
                    *attached = None;
                }
                self.complete(&key);
                let close = self.conns.get(conn).is_none_or(|(c, _, _)| c.close_after);
                if close {
                    self.close_conn(conn);
                } else {
                    self.park_idle(conn);
                }
            }
        }
    }

    /// An origin's head: passed on, or (5xx, or a 404 with origins left) the next origin.
    pub(super) fn head(
        &mut self,
        conn: usize,
        key: &Arc<str>,
        origin: usize,
        head: shardcast_http::ClientResponseHead,
    ) {
        let now = self.now_ms();
        let Some(flight) = self.flights.get_mut(key) else {
            return;
        };
        let more = flight.next < flight.order.len();
        log::debug!(
            "edge: {key}: {} from {}",
            head.status,
            self.origins[origin].name
        );
        if head.status >= 500 || (head.status == 404 && more) {
            flight.conn = None;
            flight.not_found |= head.status == 404;
            if let Some((_, attached, _)) = self.conns.get_mut(conn) {
                *attached = None;
            }
            self.close_conn(conn);
            if head.status >= 500 {
                self.origin_failed(origin, now);
            } else {
                self.origins[origin].succeeded(None);
            }
            return self.attempt(key);
        }
        let latency = (flight.wait == OriginWait::Immediate).then(|| now - flight.asked_ms);
        let object = ObjectHead {
            status: head.status,
            content_type: crate::edge::content_type(head.content_type.as_deref()),
            length: match head.framing {
                Framing::Length(n) => Some(n),
                Framing::Empty => Some(0),
                Framing::Chunked | Framing::UntilClose => None,
            },
            max_age_ms: crate::edge::max_age_ms(head.cache_control.as_deref()),
        };
        flight.head = Some(object);
        flight.deadline_ms = now + self.options.blocking_timeout_ms;
        let (shards, stream) = (flight.shards.clone(), flight.stream.clone());
        self.origins[origin].succeeded(latency);
        if head.status == 200 {
            self.preferred
                .insert(stream, (origin, now + PREFERRED_ORIGIN_MS));
        }
        self.tell(&shards, key, |key| EdgeReply::Head { key, head: object });
    }

    /// The whole object arrived: to every shard, and into the cache.
    pub(super) fn complete(&mut self, key: &Arc<str>) {
        let Some(flight) = self.flights.remove(key) else {
            return;
        };
        set(&self.options.counters.flights, self.flights.len() as u64);
        let Some(head) = flight.head else {
            debug_assert!(false, "a body completed before its head");
            return;
        };
        let o = &self.options;
        let keep_ms = crate::edge::keep_ms(
            &head,
            &flight.chunks,
            o.cache_window_ms,
            o.playlist_cache_ms,
        );
        if keep_ms > 0 {
            let object = CachedObject {
                head,
                chunks: flight.chunks,
                bytes: flight.bytes,
            };
            let now = self.now_ms();
            self.cache.insert(key.clone(), object, now + keep_ms);
            set(&self.options.counters.cache_bytes, self.cache.bytes());
            set(
                &self.options.counters.cache_objects,
                self.cache.len() as u64,
            );
        }
        self.tell(&flight.shards, key, |key| EdgeReply::End {
            key,
            outcome: Ok(keep_ms),
        });
    }

    /// No answer for the flight: its shards get `status`.
    pub(super) fn fail(&mut self, key: &Arc<str>, status: u16, reason: &'static str) {
        let Some(flight) = self.flights.remove(key) else {
            return;
        };
        set(&self.options.counters.flights, self.flights.len() as u64);
        if let Some(conn) = flight.conn {
            self.close_conn(conn);
        }
        if status >= 500 {
            if self.log_budget.allow(self.now_ms()) {
                log::warn!("edge: {key}: {reason}; answering {status}");
            }
        } else {
            log::debug!("edge: {key}: {reason}; answering {status}");
        }
        self.tell(&flight.shards, key, |key| EdgeReply::Failed {
            key,
            status,
            reason,
        });
    }

    /// The flight's body was cut short: its shards end what they sent.
    pub(super) fn abort(&mut self, key: &Arc<str>, why: &'static str) {
        let Some(flight) = self.flights.remove(key) else {
            return;
        };
        set(&self.options.counters.flights, self.flights.len() as u64);
        if self.log_budget.allow(self.now_ms()) {
            log::warn!("edge: {key}: {why}");
        }
        self.tell(&flight.shards, key, |key| EdgeReply::End {
            key,
            outcome: Err(why),
        });
    }

    /// A connection ended with an error: its flight (if any) goes on elsewhere or ends.
    pub(super) fn conn_failed(&mut self, conn: usize, why: &'static str) {
        let Some((c, attached, _)) = self.conns.get(conn) else {
            return;
        };
        let (origin, reused, answered, attached) =
            (c.origin, c.reused, c.answered, attached.clone());
        self.close_conn(conn);
        let Some(key) = attached else {
            return;
        };
        let now = self.now_ms();
        let Some(flight) = self.flights.get_mut(&key) else {
            return;
        };
        flight.conn = None;
        if flight.head.is_some() {
            self.origin_failed(origin, now);
            return self.abort(&key, why);
        }
        if reused && !answered && !flight.resent {
            // A keep-alive connection the origin had closed: send again on a fresh one.
            flight.resent = true;
            flight.next -= 1;
        } else {
            if self.log_budget.allow(now) {
                log::warn!("edge: origin {}: {why}", self.origins[origin].name);
            }
            self.origin_failed(origin, now);
        }
        self.attempt(&key);
    }

    pub(super) fn origin_failed(&mut self, origin: usize, now: u64) {
        bump(&self.options.counters.origin_failures, 1);
        if self.origins[origin].failed(now, self.options.breaker_open_ms) == Breaker::Tripped {
            bump(&self.options.counters.breaker_trips, 1);
            log::warn!(
                "edge: origin {} failed 3 times in a row: skipped for {} ms",
                self.origins[origin].name,
                self.options.breaker_open_ms
            );
        }
    }

    /// `conn` finished its request: it takes the next flight waiting for its origin, or idles.
    pub(super) fn park_idle(&mut self, conn: usize) {
        let Some((c, _, _)) = self.conns.get(conn) else {
            return;
        };
        debug_assert_eq!(c.state, ConnState::Idle);
        let origin = c.origin;
        while let Some(key) = self.pending[origin].pop_front() {
            let waiting = self
                .flights
                .get(&key)
                .is_some_and(|f| f.conn.is_none() && f.origin == Some(origin));
            if waiting {
                if !self.send(conn, &key) {
                    self.attempt(&key);
                }
                return;
            }
        }
        self.idle[origin].push(conn);
    }

    pub(super) fn close_conn(&mut self, conn: usize) {
        if !self.conns.contains(conn) {
            return;
        }
        let (mut c, _, _) = self.conns.remove(conn);
        let _ = self.poll.registry().deregister(&mut c.socket);
        self.origins[c.origin].open -= 1;
        self.idle[c.origin].retain(|&k| k != conn);
    }
}
