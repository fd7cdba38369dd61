//! The shard: the one [`shardcast_engine::Service`] each shard runs ([`router`]), the mesh
//! message that names every service ([`msg`]), and the keys of its timers ([`timer`]).
//!
//! The router owns the per-connection kind (HTTP, WebSocket, RTMP) and hands every event to
//! the service that owns the connection, room or stream. It holds no protocol state itself
//! and never does a service's work.

pub mod addresses;
pub mod msg;
pub mod router;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
pub mod timer;
