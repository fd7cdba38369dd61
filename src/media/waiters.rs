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
use shardcast_engine::{ConnId, Ctx, TimerId};
use shardcast_media::manifest::BlockingReload;
use shardcast_media::{Fetch, StreamIndex};
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
            Wanted::Playlist { .. } => Fetch::Missing,
        }
    }
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
            self.ready
                .push((waiter.conn, MediaResponse::Status(503, "shutting down")));
        }
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
        let waiters = &mut self.waiters;
        waiters.parked.push(waiter);
        if waiters.timer.is_none_or(|(_, at)| deadline < at) {
            if let Some((timer, _)) = waiters.timer.take() {
                cx.timer_cancel(timer);
            }
            let after = deadline.saturating_sub(cx.now_ms()).max(1);
            if let Some(timer) = cx.timer_after(after, TimerKey::Waiters.into()) {
                waiters.timer = Some((timer, deadline));
            }
        }
        MediaResponse::Waiting
    }

    /// Requests parked now.
    pub fn parked_requests(&self) -> usize {
        self.waiters.parked.len()
    }

    /// The connection of a parked request closed: forget the request.
    pub fn unpark(&mut self, conn: ConnId) {
        self.waiters.parked.retain(|w| w.conn != conn);
        self.waiters.ready.retain(|(c, _)| *c != conn);
    }

    /// The index of `stream` changed: answer the requests it satisfies.
    pub(super) fn wake_waiters(&mut self, stream: &Arc<str>) {
        let mut i = 0;
        while i < self.waiters.parked.len() {
            let waiter = &self.waiters.parked[i];
            if &waiter.stream != stream {
                i += 1;
                continue;
            }
            match self.try_answer(waiter) {
                Some(response) => {
                    self.count_served(&response);
                    let waiter = self.waiters.parked.swap_remove(i);
                    self.waiters.ready.push((waiter.conn, response));
                }
                None => i += 1,
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
        let mut next: Option<u64> = None;
        let mut i = 0;
        while i < self.waiters.parked.len() {
            let deadline = self.waiters.parked[i].deadline_ms;
            if deadline <= now {
                let waiter = self.waiters.parked.swap_remove(i);
                bump(&self.counters().blocked_timeouts, 1);
                let response = MediaResponse::Status(503, "not available in time");
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
    }
}
