//! What the recorder thread receives: a recorded stream's index events from its home shard,
//! and reads of recordings from HTTP shards. It answers reads with
//! `MediaMsg::RecordingAnswer` (see `media::msg`).

use shardcast_engine::ConnId;
use shardcast_media::IndexEvent;
use std::sync::Arc;

/// Largest record message, in bytes (asserted below).
pub const RECORD_MSG_MAX_BYTES: usize = 32;
const _: () = assert!(std::mem::size_of::<RecordMsg>() <= RECORD_MSG_MAX_BYTES);

/// Shard → recorder thread.
pub enum RecordMsg {
    /// A recorded stream's index event, as its home published it to every shard. Parts and
    /// init segments count in the recorder's queue (`bytes`, taken off once written).
    Event {
        stream: Arc<str>,
        event: Box<IndexEvent>,
    },
    /// The home could not queue a part of segment `msn` of `rendition` (the queue was full):
    /// that segment is left out of the recording.
    Lost(Box<Lost>),
    /// An HTTP shard: read a file of a recording, or list them, for `conn`.
    Read(Box<ReadRequest>),
}

/// A part that did not reach the recorder.
pub struct Lost {
    pub stream: Arc<str>,
    pub rendition: Arc<str>,
    pub msn: u64,
}

/// What an HTTP shard asks the recorder.
pub struct ReadRequest {
    pub conn: ConnId,
    pub what: ReadWhat,
}

/// A file of a recording, or the list.
pub enum ReadWhat {
    /// `/vod/{stream}/{start}/{path}` (path relative to the recording, query-free).
    File {
        stream: String,
        start: String,
        path: String,
        /// `token=…` for every URI of a playlist or MPD read (signed playback URLs).
        token_query: Option<String>,
    },
    /// `GET /api/v1/recordings`.
    List,
}
