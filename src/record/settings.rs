//! Which streams the recorder writes and how long recordings are kept, and its counters
//! (shared by the homes, which send, and the recorder thread).

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;

/// Which streams are recorded, and how recordings are kept.
pub struct RecordSettings {
    /// `state.data_dir/recordings`.
    pub dir: PathBuf,
    /// `media.record`: every stream.
    pub all: bool,
    /// `media.record_streams`: names, or prefixes ending in `*`.
    pub streams: Vec<String>,
    pub queue_max_bytes: usize,
    /// Bytes the homes have queued for the recorder and it has not written yet.
    pub queued: AtomicUsize,
    pub keep_s: u64,
    pub max_bytes: u64,
    pub counters: RecordCounters,
}

impl RecordSettings {
    /// True when `stream` is recorded.
    pub fn records(&self, stream: &str) -> bool {
        self.all
            || self
                .streams
                .iter()
                .any(|rule| match rule.strip_suffix('*') {
                    Some(prefix) => stream.starts_with(prefix),
                    None => rule == stream,
                })
    }
}

crate::service_counters! {
    /// The recorder thread's counters.
    pub struct RecordCounters {
        /// Recordings begun.
        recordings: "counter",
        /// Segments written whole.
        segments_written: "counter",
        /// Segments left out of a recording: a part did not fit the queue
        /// (`media.record_queue_max_bytes`) or could not be written.
        segments_lost: "counter",
        /// Bytes written.
        bytes_written: "counter",
        /// Writes that failed (a full or failing disk).
        write_errors: "counter",
        /// Recordings deleted by retention (`media.record_keep_s`, `media.record_max_bytes`).
        recordings_deleted: "counter",
        /// Bytes queued for the recorder and not yet written.
        queue_bytes: "gauge",
    }
}
