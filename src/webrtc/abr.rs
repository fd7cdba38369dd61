//! Adaptive WHEP viewers: a viewer of a stream with H.264 rungs moves between the stream's
//! layers (the source and each rung, each a feed of its own on the shard) following its
//! bandwidth estimate, which str0m's estimator makes from the viewer's transport-wide
//! congestion feedback (TWCC). Nothing is encoded per viewer: a layer is a feed every viewer
//! of it shares.
//!
//! A switch is made at a keyframe of the new layer: the viewer is subscribed to both feeds
//! until one comes (asked for at once: the transcode thread makes a rung's), then leaves the
//! old one. Down is at once, when the estimate falls below the current layer's rate; up only
//! when the estimate clears the higher layer's rate by [`UP_HEADROOM_PERCENT`] and the last
//! switch is [`UP_GAP`] old, so that a viewer does not flap between two layers.

use super::shard::Webrtc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A higher layer is taken when the estimate is at least its rate plus this share.
pub const UP_HEADROOM_PERCENT: u64 = 20;
/// Down, the viewer takes the largest layer within this share of the estimate.
pub const DOWN_FILL_PERCENT: u64 = 85;
/// The least time after a switch before a viewer goes up again.
pub const UP_GAP: Duration = Duration::from_secs(4);
/// The estimator probes up to the largest layer's rate plus this share.
pub const PROBE_HEADROOM_PERCENT: u64 = 50;

/// A layer a viewer can be on: its feed (`{stream}` for the source, `{stream}/{rung}`) and
/// its bit rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub feed: Arc<str>,
    pub bps: u64,
}

/// An adaptive viewer's place among its stream's layers.
#[derive(Debug)]
pub(super) struct Abr {
    /// By rate, lowest first.
    layers: Vec<Layer>,
    /// The layer it gets now.
    current: usize,
    /// The layer it waits for a keyframe of.
    pending: Option<usize>,
    switched_at: Instant,
    /// The newest estimate (bit/s), kept to act on again when the layers change: the
    /// estimator reports an estimate only when it moves, so a viewer whose estimate had
    /// settled before a rung came would otherwise never move to it.
    estimate: Option<u64>,
}

impl Abr {
    /// A viewer of `layers` (two at least) whose estimate starts at `start_bps`: it starts on
    /// the largest layer within it (the lowest if none is).
    pub(super) fn new(mut layers: Vec<Layer>, start_bps: u64, now: Instant) -> Abr {
        layers.sort_by_key(|l| l.bps);
        let current = layers.iter().rposition(|l| l.bps <= start_bps).unwrap_or(0);
        Abr {
            layers,
            current,
            pending: None,
            switched_at: now,
            estimate: None,
        }
    }

    /// The stream's layers now (a rung appeared, or the rates were measured again): taken
    /// when they still hold the layer it is on and the one it waits for, else ignored.
    /// Returns whether they were taken.
    pub(super) fn set_layers(&mut self, mut layers: Vec<Layer>) -> bool {
        layers.sort_by_key(|l| l.bps);
        let place = |feed: &Arc<str>| layers.iter().position(|l| l.feed == *feed);
        let Some(current) = place(&self.layers[self.current].feed) else {
            return false;
        };
        let pending = self.pending.map(|p| place(&self.layers[p].feed));
        if pending == Some(None) {
            return false;
        }
        (self.layers, self.current, self.pending) = (layers, current, pending.flatten());
        true
    }

    /// [`Abr::set_layers`], then the newest estimate acted on again with them: `None` when
    /// they were not taken.
    fn relayer(&mut self, layers: Vec<Layer>, now: Instant) -> Option<Move> {
        if !self.set_layers(layers) {
            return None;
        }
        Some(
            self.estimate
                .map_or(Move::Stay, |e| self.on_estimate(e, now)),
        )
    }

    /// The feed it gets now.
    pub(super) fn current_feed(&self) -> &Arc<str> {
        &self.layers[self.current].feed
    }

    /// The feed it waits for a keyframe of, if any.
    pub(super) fn pending_feed(&self) -> Option<&Arc<str>> {
        self.pending.map(|p| &self.layers[p].feed)
    }

    /// The rates its estimator works with (bit/s): what to keep sending, padding what the
    /// media leaves (the rate that would take it a layer up, so that the estimate can grow
    /// there: an estimate cannot grow far past what is sent), and what to probe for (the
    /// largest layer's rate with headroom).
    pub(super) fn bitrates(&self) -> (u64, u64) {
        let with_headroom = |bps: u64| bps + bps * UP_HEADROOM_PERCENT / 100;
        let next = self
            .layers
            .get(self.current + 1)
            .map_or(0, |l| with_headroom(l.bps));
        let top = self.layers.last().map_or(0, |l| l.bps);
        (next, top + top * PROBE_HEADROOM_PERCENT / 100)
    }

    /// The layer an estimate of `estimate` bit/s calls for.
    fn choose(&self, estimate: u64, now: Instant) -> usize {
        let bps = |i: usize| self.layers[i].bps;
        if estimate < bps(self.current) {
            let fill = estimate * DOWN_FILL_PERCENT / 100;
            return (0..self.current)
                .rev()
                .find(|&i| bps(i) <= fill)
                .unwrap_or(0);
        }
        if now.saturating_duration_since(self.switched_at) < UP_GAP {
            return self.current;
        }
        let up = (self.current + 1..self.layers.len())
            .rev()
            .find(|&i| bps(i) + bps(i) * UP_HEADROOM_PERCENT / 100 <= estimate);
        up.unwrap_or(self.current)
    }
}

/// What a new estimate changes for a viewer.
#[derive(Debug, PartialEq, Eq)]
enum Move {
    /// Nothing.
    Stay,
    /// Wait for a keyframe of this feed (and stop waiting for the one before, if any).
    Await {
        feed: Arc<str>,
        instead_of: Option<Arc<str>>,
    },
    /// Stop waiting for this feed: the current layer fits again.
    Cancel(Arc<str>),
}

impl Abr {
    fn on_estimate(&mut self, estimate: u64, now: Instant) -> Move {
        self.estimate = Some(estimate);
        let target = self.choose(estimate, now);
        if Some(target) == self.pending {
            return Move::Stay;
        }
        let before = self.pending.take().map(|p| self.layers[p].feed.clone());
        if target == self.current {
            return before.map_or(Move::Stay, Move::Cancel);
        }
        self.pending = Some(target);
        Move::Await {
            feed: self.layers[target].feed.clone(),
            instead_of: before,
        }
    }

    /// A keyframe of the pending layer came: it is the current one now. Returns the feed it
    /// leaves.
    fn switched(&mut self, now: Instant) -> Option<Arc<str>> {
        let pending = self.pending.take()?;
        let left = self.layers[self.current].feed.clone();
        self.current = pending;
        self.switched_at = now;
        Some(left)
    }
}

impl Webrtc {
    /// Session `key`'s newest bandwidth estimate, if any, acted on: it may start waiting for
    /// another layer's keyframe.
    pub(super) fn adapt(&mut self, key: usize, now: Instant) {
        let entry = &mut self.sessions[key];
        let Some(estimate) = entry.session.take_estimate() else {
            return;
        };
        let Some(abr) = entry.abr.as_deref_mut() else {
            return;
        };
        log::trace!(
            "webrtc: a viewer of {} estimated at {estimate} bit/s",
            entry.stream
        );
        let to = abr.on_estimate(estimate, now);
        self.make_move(key, to, now);
    }

    /// Acts on what an estimate changed for session `key`.
    fn make_move(&mut self, key: usize, to: Move, now: Instant) {
        match to {
            Move::Stay => {}
            Move::Cancel(feed) => self.unsubscribe(key, &feed),
            Move::Await { feed, instead_of } => {
                let entry = &self.sessions[key];
                log::debug!(
                    "webrtc: a viewer of {} estimated at {} kbit/s moves to {feed}",
                    entry.stream,
                    entry.abr.as_ref().and_then(|a| a.estimate).unwrap_or(0) / 1000
                );
                if let Some(old) = instead_of {
                    self.unsubscribe(key, &old);
                }
                self.subscribe(key, &feed);
                self.want_keyframe(&feed, now);
            }
        }
    }

    /// Whether any session here gets `stream` or one of its rungs.
    pub fn has_viewers_of(&self, stream: &str) -> bool {
        self.feeds_of(stream).next().is_some()
    }

    /// `stream`'s layers now, for its adaptive viewers here (a viewer that joined before
    /// the first rung can then move to it), each acting on its newest estimate at once.
    /// Returns how many took them.
    pub fn update_layers(&mut self, stream: &str, layers: &[Layer], now: Instant) -> usize {
        // A viewer waiting for a switch is in two of the stream's feeds.
        let mut keys: Vec<usize> = self.feeds_of(stream).flatten().copied().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut moves = Vec::new();
        for key in keys {
            let entry = &mut self.sessions[key];
            let Some(abr) = entry.abr.as_deref_mut() else {
                continue;
            };
            if let Some(to) = abr.relayer(layers.to_vec(), now) {
                entry.session.set_bitrates(abr.bitrates());
                moves.push((key, to));
            }
        }
        let updated = moves.len();
        for (key, to) in moves {
            self.make_move(key, to, now);
        }
        updated
    }

    /// Session `key` got a keyframe of the layer it waited for (`feed`): it leaves the one
    /// it was on.
    pub(super) fn complete_switch(&mut self, key: usize, feed: &Arc<str>, now: Instant) {
        let entry = &mut self.sessions[key];
        let Some(left) = entry.abr.as_deref_mut().and_then(|abr| abr.switched(now)) else {
            return;
        };
        entry.stream = feed.clone();
        let abr = entry.abr.as_deref().expect("switched above");
        entry.session.set_bitrates(abr.bitrates());
        self.layer_switches += 1;
        self.unsubscribe(key, &left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Vec<Layer> {
        [("s/240p", 300_000), ("s", 2_000_000), ("s/480p", 900_000)]
            .into_iter()
            .map(|(feed, bps)| Layer {
                feed: Arc::from(feed),
                bps,
            })
            .collect()
    }

    /// A stream's source alone, as a viewer who joined before any rung has it.
    fn source_alone() -> Vec<Layer> {
        vec![Layer {
            feed: Arc::from("s"),
            bps: 2_000_000,
        }]
    }

    fn awaits(feed: &str, instead_of: Option<&str>) -> Move {
        Move::Await {
            feed: Arc::from(feed),
            instead_of: instead_of.map(Arc::from),
        }
    }

    #[test]
    fn a_viewer_starts_within_its_start_estimate_and_goes_down_at_once() {
        let t0 = Instant::now();
        let mut abr = Abr::new(layers(), 1_000_000, t0);
        assert_eq!(
            &**abr.current_feed(),
            "s/480p",
            "the largest within 1 Mbit/s"
        );
        assert_eq!(&*Abr::new(layers(), 100_000, t0).layers[0].feed, "s/240p");
        assert_eq!(Abr::new(layers(), 100_000, t0).current, 0, "the lowest");
        assert_eq!(
            abr.bitrates(),
            (2_400_000, 3_000_000),
            "padding towards the source"
        );
        // A fitting estimate changes nothing.
        assert_eq!(abr.on_estimate(950_000, t0), Move::Stay);
        // Below the layer's rate: down to the largest within 85 % of it, at once.
        assert_eq!(abr.on_estimate(500_000, t0), awaits("s/240p", None));
        assert_eq!(abr.pending_feed().map(|f| &**f), Some("s/240p"));
        assert_eq!(abr.on_estimate(400_000, t0), Move::Stay, "already waiting");
        // It fits again before the keyframe came: the wait is called off.
        assert_eq!(
            abr.on_estimate(950_000, t0),
            Move::Cancel(Arc::from("s/240p"))
        );
        assert_eq!(abr.on_estimate(200_000, t0), awaits("s/240p", None));
        assert_eq!(abr.switched(t0).as_deref(), Some("s/480p"));
        assert_eq!(&**abr.current_feed(), "s/240p");
        assert_eq!(abr.switched(t0), None, "nothing pending");
    }

    #[test]
    fn layers_that_come_later_are_taken_when_they_hold_the_viewer_s_layer() {
        let t0 = Instant::now();
        // Joined before any rung: the source alone, nothing to pad towards.
        let mut abr = Abr::new(source_alone(), 1_000_000, t0);
        assert_eq!(&**abr.current_feed(), "s");
        assert_eq!(abr.bitrates().0, 0);
        assert_eq!(abr.on_estimate(500_000, t0), Move::Stay, "nowhere to go");
        // The rungs came: it stays on the source, and can now go down.
        assert!(abr.set_layers(layers()));
        assert_eq!(&**abr.current_feed(), "s");
        assert_eq!(abr.on_estimate(500_000, t0), awaits("s/240p", None));
        // Layers without the one it waits for are not taken.
        let without: Vec<Layer> = layers()
            .into_iter()
            .filter(|l| &*l.feed != "s/240p")
            .collect();
        assert!(!abr.set_layers(without));
        assert_eq!(abr.pending_feed().map(|f| &**f), Some("s/240p"));
    }

    #[test]
    fn a_settled_estimate_is_acted_on_when_the_layers_change() {
        let t0 = Instant::now();
        let mut abr = Abr::new(source_alone(), 1_000_000, t0);
        assert_eq!(
            abr.relayer(layers(), t0),
            Some(Move::Stay),
            "no estimate yet"
        );
        let mut abr = Abr::new(source_alone(), 1_000_000, t0);
        assert_eq!(abr.on_estimate(500_000, t0), Move::Stay, "nowhere to go");
        // The rungs come and the estimator says nothing new (it reports only a change):
        // the viewer moves all the same.
        assert_eq!(abr.relayer(layers(), t0), Some(awaits("s/240p", None)));
        assert_eq!(abr.relayer(vec![], t0), None, "not taken");
    }

    #[test]
    fn a_viewer_goes_up_only_with_headroom_and_not_straight_after_a_switch() {
        let t0 = Instant::now();
        let mut abr = Abr::new(layers(), 300_000, t0);
        assert_eq!(&**abr.current_feed(), "s/240p");
        assert_eq!(abr.on_estimate(5_000_000, t0), Move::Stay, "too soon");
        let later = t0 + UP_GAP;
        // 900 kbit/s needs 1.08 Mbit/s.
        assert_eq!(abr.on_estimate(1_000_000, later), Move::Stay);
        assert_eq!(abr.on_estimate(1_100_000, later), awaits("s/480p", None));
        // A better estimate before the keyframe: straight to the top instead.
        assert_eq!(
            abr.on_estimate(2_400_000, later),
            awaits("s", Some("s/480p"))
        );
        abr.switched(later);
        assert_eq!(&**abr.current_feed(), "s");
        assert_eq!(abr.bitrates(), (0, 3_000_000), "no padding at the top");
    }
}
