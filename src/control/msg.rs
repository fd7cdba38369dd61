//! What shards ask of the control thread (blocking work they must never do themselves), and
//! its answers.

/// Largest control message, in bytes (asserted below).
pub const CONTROL_MSG_MAX_BYTES: usize = 32;
const _: () = assert!(std::mem::size_of::<ControlRequest>() <= CONTROL_MSG_MAX_BYTES);
const _: () = assert!(std::mem::size_of::<ControlReply>() <= CONTROL_MSG_MAX_BYTES);

/// Shard → control.
#[derive(Debug)]
pub enum ControlRequest {
    /// POST `body` (JSON) to `url`; answer with whether it returned 2xx.
    Webhook(Box<Webhook>),
}

/// A webhook call.
#[derive(Debug)]
pub struct Webhook {
    pub url: String,
    pub body: String,
    pub timeout_ms: u64,
    /// Handed back in the reply so the shard can match it; `None`: no reply wanted.
    pub token: Option<u64>,
}

/// Control → shard.
#[derive(Debug)]
pub enum ControlReply {
    /// A webhook's outcome.
    Webhook {
        token: u64,
        verdict: Verdict,
        /// What the call returned ("HTTP 403") or why it failed.
        detail: Box<str>,
    },
}

/// A webhook's verdict on what it was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It answered 2xx.
    Allowed,
    /// It answered anything else, or did not answer in time.
    Refused,
}
