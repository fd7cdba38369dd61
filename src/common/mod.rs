//! Small things several services share and nothing else owns: signed tokens, the wall clock
//! for threads outside the shards, counter blocks, query strings, the keyed table, the log
//! budget, and where a room or stream lives.
//!
//! Nothing here knows a service, a socket or a thread; everything here is tested beside it.

pub mod auth;
pub mod clock;
pub mod counters;
pub mod epoch;
pub mod live;
pub mod log_budget;
pub mod placement;
pub mod query;
pub mod strikes;
pub mod table;
