//! LL-HLS requests parked on this shard until the index has what they ask for (a blocking
//! playlist reload, a preload-hinted part or segment) or their deadline passes (503). Each is
//! answered on the shard that received it; the router hands the answers to HTTP.
//!
//! Bounds: one waiter per HTTP connection at most (a waiting connection reads no further
//! requests), so `http.max_connections_per_shard` bounds the list.

use super::serve::{media_body, media_playlist};
use super::{Media, MediaResponse};
use crate::common::counters::bump;
use crate::shard::msg::ShardMsg;
use crate::shard::timer::TimerKey;
use bytes::Bytes;
use shardcast_engine::{ConnId, Ctx, TimerId};
use shardcast_media::cmaf::STYP;
use shardcast_media::manifest::{self, BlockingReload};
use shardcast_media::{Fetch, Progressive, StreamIndex};
use std::sync::Arc;

/// What a waiting request waits for.
pub(super) enum Wanted {
    Playlist {
        rendition: Arc<str>,
        reload: BlockingReload,
        /// `token=…` to carry on the playlist's URIs.
        query: Option<String>,
    },
    Part {
        rendition: Arc<str>,
        msn: u64,
        part: u32,
    },
    Segment {
        rendition: Arc<str>,
        msn: u64,
    },
    /// A segment sent as it is made (low-latency DASH): the parts from `next_part` on, the
    /// head already sent once `started`.
    AsMade {
        rendition: Arc<str>,
        msn: u64,
        next_part: u32,
        started: bool,
    },
}

impl Wanted {
    /// The part or segment from `index` (a playlist is never fetched this way).
    pub fn fetch(&self, index: &StreamIndex) -> Fetch {
        match self {
            Wanted::Part {
                rendition,
                msn,
                part,
            } => index.part(rendition, *msn, *part),
            Wanted::Segment { rendition, msn } => index.segment(rendition, *msn),
            Wanted::Playlist { .. } | Wanted::AsMade { .. } => Fetch::Missing,
        }
    }
}

/// What a segment sent as it is made does next.
enum Step {
    /// Nothing new yet: stay parked.
    Wait,
    /// Send this and stay parked.
    Send(MediaResponse),
    /// Send this; the response is complete (or failed).
    Finish(MediaResponse),
}

/// A request parked until the index has what it asks for, or its deadline.
pub(super) struct Waiter {
    pub conn: ConnId,
    pub stream: Arc<str>,
    pub wanted: Wanted,
    pub deadline_ms: u64,
}

/// The parked requests of one shard and the answers ready for them.
#[derive(Default)]
pub(super) struct Waiters {
    parked: Vec<Waiter>,
    /// The sweep timer and its deadline.
    timer: Option<(TimerId, u64)>,
    ready: Vec<(ConnId, MediaResponse)>,
}

impl Waiters {
    /// Answers every parked request with 503 (the shard drains).
    pub fn drain_all(&mut self) {
        for waiter in self.parked.drain(..) {
            let response = match waiter.wanted {
                // Mid-body: only closing ends it.
                Wanted::AsMade { started: true, .. } => MediaResponse::StreamAbort,
                _ => MediaResponse::Status(503, "shutting down"),
            };
            self.ready.push((waiter.conn, response));
        }
    }

    /// An answer that came from elsewhere (the recorder) for a waiting connection.
    pub fn push_ready(&mut self, conn: ConnId, response: MediaResponse) {
        self.ready.push((conn, response));
    }

    pub fn take_ready(&mut self) -> Vec<(ConnId, MediaResponse)> {
        std::mem::take(&mut self.ready)
    }
}

impl Media {
    /// Parks a request; its answer comes from [`Media::take_ready`].
    pub(super) fn park(&mut self, cx: &mut Ctx<ShardMsg>, waiter: Waiter) -> MediaResponse {
        bump(&self.counters().blocked_requests, 1);
        let deadline = waiter.deadline_ms;
        self.waiters.parked.push(waiter);
        self.arm_waiters_timer(cx, deadline);
        MediaResponse::Waiting
    }

    /// Makes the waiters' timer fire by `deadline` (it serves the edge's flights too).
    pub(super) fn arm_waiters_timer(&mut self, cx: &mut Ctx<ShardMsg>, deadline: u64) {
        let waiters = &mut self.waiters;
        if waiters.timer.is_none_or(|(_, at)| deadline < at) {
            if let Some((timer, _)) = waiters.timer.take() {
                cx.timer_cancel(timer);
            }
            let after = deadline.saturating_sub(cx.now_ms()).max(1);
            if let Some(timer) = cx.timer_after(after, TimerKey::Waiters.into()) {
                waiters.timer = Some((timer, deadline));
            }
        }
    }

    /// Requests parked now.
    pub fn parked_requests(&self) -> usize {
        self.waiters.parked.len()
    }

    /// The connection of a parked request closed: forget the request.
    pub fn unpark(&mut self, conn: ConnId) {
        self.waiters.parked.retain(|w| w.conn != conn);
        self.waiters.ready.retain(|(c, _)| *c != conn);
        if let Some(edge) = self.edge.as_mut() {
            edge.unpark(conn);
        }
    }

    /// Starts sending segment `msn` of `rendition` as it is made: its parts so far now (with
    /// the head), the rest as they come. The request stays parked until the segment is
    /// complete, or its deadline (the longest segment plus a blocking reload's wait) passes.
    pub(super) fn stream_segment(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        stream: Arc<str>,
        rendition: Arc<str>,
        msn: u64,
    ) -> MediaResponse {
        let Some(index) = self.index.stream(&stream) else {
            return MediaResponse::Status(404, "no such stream");
        };
        let wait_ms = u64::from(self.settings.segmenter.segment_max_ms)
            + manifest::blocking_reload_timeout_ms(index.target_duration_s);
        let mut waiter = Waiter {
            conn,
            stream,
            wanted: Wanted::AsMade {
                rendition,
                msn,
                next_part: 0,
                started: false,
            },
            deadline_ms: cx.now_ms() + wait_ms,
        };
        match self.advance(&mut waiter) {
            Step::Finish(response) => response,
            Step::Wait => self.park(cx, waiter),
            Step::Send(response) => {
                self.park(cx, waiter);
                response
            }
        }
    }

    /// The next step of a segment sent as it is made.
    fn advance(&self, waiter: &mut Waiter) -> Step {
        let Wanted::AsMade {
            rendition,
            msn,
            next_part,
            started,
        } = &mut waiter.wanted
        else {
            return Step::Wait;
        };
        let Some(index) = self.index.stream(&waiter.stream) else {
            return Step::Finish(if *started {
                MediaResponse::StreamAbort
            } else {
                MediaResponse::Status(404, "stream gone")
            });
        };
        let (chunks, next, done) = match index.segment_from(rendition, *msn, *next_part) {
            Progressive::Soon => return Step::Wait,
            Progressive::Missing if *started => return Step::Finish(MediaResponse::StreamAbort),
            Progressive::Missing => {
                return Step::Finish(MediaResponse::Status(404, "not in the window"));
            }
            Progressive::Parts {
                chunks,
                next_part,
                complete,
            } => (chunks, next_part, complete),
        };
        if chunks.is_empty() && !done {
            return Step::Wait;
        }
        let bytes: usize = chunks.iter().map(Bytes::len).sum();
        bump(&self.counters().media_bytes_served, bytes as u64);
        *next_part = next;
        let response = if *started {
            MediaResponse::StreamMore { chunks, done }
        } else {
            *started = true;
            bump(&self.counters().media_served, 1);
            let mut all = Vec::with_capacity(chunks.len() + 1);
            all.push(Bytes::from_static(STYP));
            all.extend(chunks);
            MediaResponse::StreamStart {
                cache_control: self.media_cache_control(),
                chunks: all,
                done,
            }
        };
        if done {
            Step::Finish(response)
        } else {
            Step::Send(response)
        }
    }

    /// The index of `stream` changed: answer the requests it satisfies, and send segments
    /// being made their new parts.
    pub(super) fn wake_waiters(&mut self, stream: &Arc<str>) {
        let parked = std::mem::take(&mut self.waiters.parked);
        for mut waiter in parked {
            if &waiter.stream != stream {
                self.waiters.parked.push(waiter);
                continue;
            }
            if matches!(waiter.wanted, Wanted::AsMade { .. }) {
                match self.advance(&mut waiter) {
                    Step::Wait => self.waiters.parked.push(waiter),
                    Step::Send(response) => {
                        self.waiters.ready.push((waiter.conn, response));
                        self.waiters.parked.push(waiter);
                    }
                    Step::Finish(response) => self.waiters.ready.push((waiter.conn, response)),
                }
                continue;
            }
            match self.try_answer(&waiter) {
                Some(response) => {
                    self.count_served(&response);
                    self.waiters.ready.push((waiter.conn, response));
                }
                None => self.waiters.parked.push(waiter),
            }
        }
    }

    /// The answer for a waiter if it can be given now.
    fn try_answer(&self, waiter: &Waiter) -> Option<MediaResponse> {
        let Some(index) = self.index.stream(&waiter.stream) else {
            return Some(MediaResponse::Status(404, "stream gone"));
        };
        if let Wanted::Playlist {
            rendition,
            reload,
            query,
        } = &waiter.wanted
        {
            let progress = index.progress(rendition)?;
            return (reload.is_satisfied(&progress) || index.is_ended())
                .then(|| media_playlist(index, rendition, query.as_deref()));
        }
        match waiter.wanted.fetch(index) {
            Fetch::Ready(chunks) => Some(media_body(chunks, self.media_cache_control())),
            Fetch::Missing => Some(MediaResponse::Status(404, "not in the window")),
            Fetch::Soon => None,
        }
    }

    /// The sweep timer fired: requests past their deadline get 503.
    pub fn on_waiters_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId) {
        if self.waiters.timer.is_none_or(|(t, _)| t != id) {
            return;
        }
        self.waiters.timer = None;
        let now = cx.now_ms();
        let mut next: Option<u64> = self.edge.as_mut().and_then(|e| e.expire(now));
        if let Some(webrtc) = self.webrtc.as_mut() {
            if let Some(at) = webrtc.on_timer(cx) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        let mut i = 0;
        while i < self.waiters.parked.len() {
            let deadline = self.waiters.parked[i].deadline_ms;
            if deadline <= now {
                let waiter = self.waiters.parked.swap_remove(i);
                bump(&self.counters().blocked_timeouts, 1);
                let response = match waiter.wanted {
                    // The head went out: only closing tells the client the body is cut short.
                    Wanted::AsMade { started: true, .. } => MediaResponse::StreamAbort,
                    _ => MediaResponse::Status(503, "not available in time"),
                };
                self.waiters.ready.push((waiter.conn, response));
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
                i += 1;
            }
        }
        if let Some(deadline) = next {
            let after = deadline.saturating_sub(now).max(1);
            if let Some(timer) = cx.timer_after(after, TimerKey::Waiters.into()) {
                self.waiters.timer = Some((timer, deadline));
            }
        }
        // Sessions that timed out: their streams' homes hear of it.
        self.webrtc_settle(cx);
    }
}
