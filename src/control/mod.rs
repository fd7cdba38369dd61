//! The control thread: stop signals, the drain, and blocking work the shards must never do
//! themselves (webhooks today; stores and Redis later). It never sits on the data path of a
//! single message and touches no client socket.
//!
//! It waits on two descriptors at once — a signalfd for SIGTERM/SIGINT and the doorbell of its
//! end of the mesh — so a shard's request is picked up at once and a signal is never missed.
//! Blocking calls run on short-lived worker threads (at most [`WEBHOOK_IN_FLIGHT_MAX`] at a
//! time); their answers come back through a channel and the same doorbell.

pub mod msg;
pub mod webhook;

use crate::shard::msg::ShardMsg;
use msg::{ControlReply, ControlRequest, Verdict, Webhook};
use shardcast_engine::{Runtime, ShardId};
use std::os::fd::RawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Webhook calls running at once; past it a call is refused at once (and logged).
pub const WEBHOOK_IN_FLIGHT_MAX: usize = 16;

/// Reads the TLS certificates again; an error leaves the ones in use.
pub type ReloadTls = Box<dyn Fn() -> Result<(), String>>;

/// The reload signal (a stop is SIGTERM or SIGINT).
const SIGHUP: i32 = 1;

/// A stop signal this long after the first forces an immediate exit.
const SECOND_SIGNAL_AFTER: Duration = Duration::from_secs(1);

/// Extra time, past the grace period, the drain may take before the control thread gives up.
const DRAIN_SLACK: Duration = Duration::from_secs(5);

/// What comes back on the control thread's channel for each webhook call (from its thread, or
/// a refusal made without one): the shard that asked, and its answer if one is wanted.
type Done = (ShardId, Option<ControlReply>);

/// The control thread's state.
struct Control {
    runtime: Runtime<ShardMsg>,
    grace_ms: u64,
    /// Reloads the TLS listeners' certificates, on SIGHUP.
    reload_tls: Option<ReloadTls>,
    webhooks: WebhookSlots,
    drain_started: Option<Instant>,
}

/// Runs the control loop until a stop signal and the drain that follows complete.
pub fn run(
    runtime: Runtime<ShardMsg>,
    grace_ms: u64,
    reload_tls: Option<ReloadTls>,
) -> Result<(), String> {
    let signals = shardcast_engine::sys::termination_signalfd()
        .map_err(|e| format!("cannot open a signalfd: {e}"))?;
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let mut control = Control {
        runtime,
        grace_ms,
        reload_tls,
        webhooks: WebhookSlots::new(done_tx),
        drain_started: None,
    };
    let mut inbox = Vec::new();
    loop {
        let parked = control.runtime.park();
        let ready = shardcast_engine::sys::poll_readable(
            &[signals, control.runtime.doorbell_fd()],
            if parked { 200 } else { 0 },
        );
        control.runtime.unpark();
        if ready[0] {
            while let Some(signal) = shardcast_engine::sys::read_signalfd(signals) {
                control.on_signal(signal);
            }
        }
        control
            .runtime
            .receive(1024, |from, msg| inbox.push((from, msg)));
        for (from, msg) in inbox.drain(..) {
            control.on_message(from, msg);
        }
        while let Ok((to, reply)) = done_rx.try_recv() {
            control.webhooks.delivered();
            if let Some(reply) = reply {
                control.runtime.send(to, reply.into());
            }
        }
        control.runtime.flush();
        if control.runtime.is_finished() {
            return control.finish();
        }
        if let Some(started) = control.drain_started {
            if started.elapsed() > Duration::from_millis(grace_ms) + DRAIN_SLACK {
                return Err("drain did not finish within the grace period plus 5 s".to_string());
            }
        }
    }
}

impl Control {
    /// SIGHUP: reads the TLS certificates again; connections opened from now on get them.
    fn reload(&mut self) {
        let Some(reload) = &self.reload_tls else {
            log::info!("SIGHUP received: nothing to reload (no [tls] certificate)");
            return;
        };
        match reload() {
            Ok(()) => log::info!("SIGHUP received: TLS certificates reloaded"),
            Err(error) => log::error!("SIGHUP received: {error}; the certificates in use stay"),
        }
    }

    fn on_signal(&mut self, signal: i32) {
        if signal == SIGHUP {
            self.reload();
            return;
        }
        match self.drain_started {
            None => {
                log::info!(
                    "{} received: draining (grace {} ms; another signal after 1 s exits at once)",
                    signal_name(signal),
                    self.grace_ms
                );
                self.drain_started = Some(Instant::now());
                self.runtime.drain();
            }
            // A terminal's Ctrl-C reaches both a wrapper (just, cargo run) and us, and the
            // wrapper forwards it again: a repeat within a second is the same request.
            Some(started) if started.elapsed() >= SECOND_SIGNAL_AFTER => {
                log::warn!("{} received during drain: exiting now", signal_name(signal));
                std::process::exit(1);
            }
            Some(_) => log::debug!(
                "{} repeated within 1 s: still draining",
                signal_name(signal)
            ),
        }
    }

    fn on_message(&mut self, from: ShardId, msg: ShardMsg) {
        match msg {
            ShardMsg::Control(ControlRequest::Webhook(webhook)) => self.webhook(from, *webhook),
            _ => log::warn!("control thread got a message meant for a shard from {from:?}"),
        }
    }

    /// Runs a webhook call on a thread of its own; its answer (if one is wanted) goes back to
    /// shard `from`. A call that cannot get a thread is refused.
    fn webhook(&mut self, from: ShardId, webhook: Webhook) {
        if self.webhooks.is_full() {
            log::warn!(
                "webhook {}: {WEBHOOK_IN_FLIGHT_MAX} calls already running; refusing",
                webhook.url
            );
            let detail = "too many webhook calls in flight".into();
            self.webhooks.refuse(from, webhook.token, detail);
            return;
        }
        let token = webhook.token;
        let done = self.webhooks.take();
        let doorbell = self.runtime.doorbell_fd();
        let spawned = std::thread::Builder::new()
            .name("webhook".to_string())
            .spawn(move || call_webhook(from, webhook, &done, doorbell));
        self.webhooks.on_spawn(from, token, spawned);
    }

    fn finish(self) -> Result<(), String> {
        let result = self.runtime.join();
        match (self.drain_started, result) {
            (Some(started), Ok(())) => {
                log::info!("drained in {} ms; exiting", started.elapsed().as_millis());
                Ok(())
            }
            (Some(_), Err(e)) => Err(format!("a shard failed while draining: {e}")),
            (None, Ok(())) => Err("shards exited unexpectedly".to_string()),
            (None, Err(e)) => Err(format!("a shard failed: {e}")),
        }
    }
}

/// A webhook thread's work: the call, its log line, and exactly one [`Done`] whatever the
/// outcome (that is what brings the in-flight count back down).
fn call_webhook(from: ShardId, webhook: Webhook, done: &mpsc::Sender<Done>, doorbell: RawFd) {
    let Webhook {
        url,
        body,
        timeout_ms,
        token,
    } = webhook;
    let started = Instant::now();
    let outcome = webhook::post_json(&url, &body, Duration::from_millis(timeout_ms));
    let (verdict, detail) = match outcome {
        Ok(status) if (200..300).contains(&status) => (Verdict::Allowed, format!("HTTP {status}")),
        Ok(status) => (Verdict::Refused, format!("HTTP {status}")),
        Err(e) => (Verdict::Refused, e.to_string()),
    };
    log::info!(
        "webhook {url}: {detail} in {} ms",
        started.elapsed().as_millis()
    );
    let reply = token.map(|token| ControlReply::Webhook {
        token,
        verdict,
        detail: detail.into(),
    });
    let _ = done.send((from, reply));
    shardcast_engine::sys::eventfd_signal(doorbell);
}

/// The webhook calls in flight and the channel their [`Done`]s come back on.
///
/// `in_flight` counts the `Done`s still to come: one per running webhook thread (each sends
/// exactly one, answer wanted or not) and one per refusal sent. The control loop calls
/// [`WebhookSlots::delivered`] for each `Done` it takes off the channel. Order of use for a
/// call: [`is_full`](Self::is_full), then either [`refuse`](Self::refuse), or
/// [`take`](Self::take), the spawn, and [`on_spawn`](Self::on_spawn) with its result.
struct WebhookSlots {
    in_flight: usize,
    done_tx: mpsc::Sender<Done>,
}

impl WebhookSlots {
    fn new(done_tx: mpsc::Sender<Done>) -> Self {
        Self {
            in_flight: 0,
            done_tx,
        }
    }

    /// Whether [`WEBHOOK_IN_FLIGHT_MAX`] calls are in flight already.
    fn is_full(&self) -> bool {
        self.in_flight >= WEBHOOK_IN_FLIGHT_MAX
    }

    /// Counts a thread about to be spawned; it sends its `Done` on the sender returned.
    fn take(&mut self) -> mpsc::Sender<Done> {
        assert!(!self.is_full(), "webhook slot taken past the cap");
        self.in_flight += 1;
        self.done_tx.clone()
    }

    /// Settles the slot [`take`](Self::take) counted: a thread that started sends its own
    /// `Done`; one that did not gives the slot back, and the shard, if it wants an answer, is
    /// refused.
    fn on_spawn(
        &mut self,
        from: ShardId,
        token: Option<u64>,
        spawned: std::io::Result<std::thread::JoinHandle<()>>,
    ) {
        if let Err(e) = spawned {
            log::error!("cannot start a webhook thread: {e}");
            assert!(self.in_flight > 0, "webhook spawn settled without a slot");
            self.in_flight -= 1;
            self.refuse(
                from,
                token,
                format!("cannot start a webhook thread: {e}").into(),
            );
        }
    }

    /// Answers shard `from` with a refusal, if it wants an answer (`token`), through the same
    /// channel as the threads' answers, and counts it until it is delivered.
    fn refuse(&mut self, from: ShardId, token: Option<u64>, detail: Box<str>) {
        let Some(token) = token else { return };
        let reply = ControlReply::Webhook {
            token,
            verdict: Verdict::Refused,
            detail,
        };
        if self.done_tx.send((from, Some(reply))).is_ok() {
            self.in_flight += 1;
        }
    }

    /// One `Done` was taken off the channel.
    fn delivered(&mut self) {
        assert!(
            self.in_flight > 0,
            "a webhook answer arrived that was not counted"
        );
        self.in_flight -= 1;
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        15 => "SIGTERM",
        2 => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARD: ShardId = ShardId(3);

    fn no_thread() -> std::io::Result<std::thread::JoinHandle<()>> {
        Err(std::io::Error::other("no threads left"))
    }

    /// The refusal on the channel, as (shard, token, verdict, detail).
    fn refusal(rx: &mpsc::Receiver<Done>) -> (ShardId, u64, Verdict, String) {
        match rx.try_recv() {
            Ok((
                to,
                Some(ControlReply::Webhook {
                    token,
                    verdict,
                    detail,
                }),
            )) => (to, token, verdict, detail.to_string()),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_failed_spawn_gives_its_slot_back_and_refuses_the_shard() {
        let (tx, rx) = mpsc::channel();
        let mut slots = WebhookSlots::new(tx);
        let _done = slots.take();
        assert_eq!(slots.in_flight, 1);
        slots.on_spawn(SHARD, Some(7), no_thread());
        // The thread's slot is back; the refusal is counted until delivered.
        assert_eq!(slots.in_flight, 1);
        let (to, token, verdict, detail) = refusal(&rx);
        assert_eq!((to, token, verdict), (SHARD, 7, Verdict::Refused));
        assert!(detail.contains("no threads left"), "{detail}");
        slots.delivered();
        assert_eq!(slots.in_flight, 0);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_failed_spawn_without_a_token_only_gives_its_slot_back() {
        let (tx, rx) = mpsc::channel();
        let mut slots = WebhookSlots::new(tx);
        let _done = slots.take();
        slots.on_spawn(SHARD, None, no_thread());
        assert_eq!(slots.in_flight, 0);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_started_thread_keeps_its_slot_until_it_is_done() {
        let (tx, rx) = mpsc::channel();
        let mut slots = WebhookSlots::new(tx);
        let done = slots.take();
        let thread = std::thread::spawn(move || {
            let _ = done.send((SHARD, None));
        });
        slots.on_spawn(SHARD, Some(1), Ok(thread));
        assert_eq!(slots.in_flight, 1);
        let (to, reply) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(to == SHARD && reply.is_none());
        slots.delivered();
        assert_eq!(slots.in_flight, 0);
    }

    #[test]
    fn past_the_cap_calls_are_refused_and_counted_until_delivered() {
        let (tx, rx) = mpsc::channel();
        let mut slots = WebhookSlots::new(tx);
        let _senders: Vec<_> = (0..WEBHOOK_IN_FLIGHT_MAX).map(|_| slots.take()).collect();
        assert!(slots.is_full());
        slots.refuse(SHARD, Some(9), "busy".into());
        slots.refuse(SHARD, None, "busy".into());
        assert_eq!(slots.in_flight, WEBHOOK_IN_FLIGHT_MAX + 1);
        assert_eq!(refusal(&rx).1, 9);
        assert!(rx.try_recv().is_err());
        slots.delivered();
        assert_eq!(slots.in_flight, WEBHOOK_IN_FLIGHT_MAX);
    }
}
