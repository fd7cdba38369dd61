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
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Webhook calls running at once; past it a call is refused at once (and logged).
pub const WEBHOOK_IN_FLIGHT_MAX: usize = 16;

/// A stop signal this long after the first forces an immediate exit.
const SECOND_SIGNAL_AFTER: Duration = Duration::from_secs(1);

/// Extra time, past the grace period, the drain may take before the control thread gives up.
const DRAIN_SLACK: Duration = Duration::from_secs(5);

/// The control thread's state.
struct Control {
    runtime: Runtime<ShardMsg>,
    grace_ms: u64,
    done_tx: mpsc::Sender<(ShardId, Option<ControlReply>)>,
    /// Webhook threads running (or refusals not yet delivered).
    in_flight: usize,
    drain_started: Option<Instant>,
}

/// Runs the control loop until a stop signal and the drain that follows complete.
pub fn run(runtime: Runtime<ShardMsg>, grace_ms: u64) -> Result<(), String> {
    let signals = shardcast_engine::sys::termination_signalfd()
        .map_err(|e| format!("cannot open a signalfd: {e}"))?;
    let (done_tx, done_rx) = mpsc::channel::<(ShardId, Option<ControlReply>)>();
    let mut control = Control {
        runtime,
        grace_ms,
        done_tx,
        in_flight: 0,
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
            control.in_flight -= 1;
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
    fn on_signal(&mut self, signal: i32) {
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
    /// shard `from`.
    fn webhook(&mut self, from: ShardId, webhook: Webhook) {
        let Webhook {
            url,
            body,
            timeout_ms,
            token,
        } = webhook;
        if self.in_flight >= WEBHOOK_IN_FLIGHT_MAX {
            log::warn!("webhook {url}: {WEBHOOK_IN_FLIGHT_MAX} calls already running; refusing");
            if let Some(token) = token {
                let detail = "too many webhook calls in flight".into();
                let reply = ControlReply::Webhook {
                    token,
                    verdict: Verdict::Refused,
                    detail,
                };
                self.in_flight += 1;
                let _ = self.done_tx.send((from, Some(reply)));
            }
            return;
        }
        self.in_flight += 1;
        let done = self.done_tx.clone();
        let doorbell = self.runtime.doorbell_fd();
        let spawned = std::thread::Builder::new()
            .name("webhook".to_string())
            .spawn(move || {
                let started = Instant::now();
                let outcome = webhook::post_json(&url, &body, Duration::from_millis(timeout_ms));
                let (verdict, detail) = match outcome {
                    Ok(status) if (200..300).contains(&status) => {
                        (Verdict::Allowed, format!("HTTP {status}"))
                    }
                    Ok(status) => (Verdict::Refused, format!("HTTP {status}")),
                    Err(e) => (Verdict::Refused, e),
                };
                log::info!(
                    "webhook {url}: {detail} in {} ms",
                    started.elapsed().as_millis()
                );
                // The count comes back down with every thread's end, answered or not.
                let reply = token.map(|token| ControlReply::Webhook {
                    token,
                    verdict,
                    detail: detail.into(),
                });
                let _ = done.send((from, reply));
                shardcast_engine::sys::eventfd_signal(doorbell);
            });
        if let Err(e) = spawned {
            self.in_flight -= 1;
            log::error!("cannot start a webhook thread: {e}");
        }
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

fn signal_name(signal: i32) -> &'static str {
    match signal {
        15 => "SIGTERM",
        2 => "SIGINT",
        _ => "signal",
    }
}
