//! Boot: what runs once on the main thread before the shards start, and only then — the
//! command line, the configuration (sections and validation), logging, and building every
//! service's settings. Nothing here runs on a shard or sits on the data path.

pub mod cli;
pub mod config;
pub mod edge;
mod listeners;
pub mod logging;
pub mod publish_key;
pub mod serve;
pub mod settings;
pub mod tls;
mod webrtc;
