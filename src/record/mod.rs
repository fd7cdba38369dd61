//! Recordings: the recorder thread writes every rendition's init and segments of the streams
//! it is told to record under `state.data_dir/recordings/{stream}/{start}/`, as they are made,
//! with playlists and an MPD; it serves them back (`/vod/…`, through HTTP shards) and keeps
//! them within `media.record_keep_s` and `media.record_max_bytes`.
//!
//! A recorded stream's home shard sends the recorder the same index events it sends every
//! shard ([`msg::RecordMsg::Event`]: parts and inits are shared `Bytes`, no copy). The home
//! counts what it has queued and not yet been written in [`RecordSettings::queued`]; past
//! `media.record_queue_max_bytes` it sends [`msg::RecordMsg::Lost`] instead of the part, so a
//! disk that cannot keep up costs that segment (a gap in the recording, counted and logged),
//! never memory. Disk I/O happens here only: never on a shard.
//!
//! Layout of one recording (`{start}` is the publish time, `YYYYMMDDTHHMMSSZ`):
//!
//! | file | what |
//! |---|---|
//! | `recording.json` | stream, start and end times, duration, bytes, renditions, lost segments, whether it is complete (and `interrupted` when the server stopped without ending it: the next start closes its playlists) |
//! | `index.m3u8`, `manifest.mpd` | multivariant playlist (at each rendition's first segment and at the end) and static MPD (at the end) |
//! | `{rendition}/index.m3u8` | its media playlist, rewritten after every segment; `EXT-X-ENDLIST` at the end |
//! | `{rendition}/init.mp4`, `init-{v}.mp4` | init segments (`init.mp4?v={v}` in the playlists) |
//! | `{rendition}/{n}.m4s` | segments (`{n}.m4s.part` while being written) |
//! | `thumb.jpg` | the stream's first thumbnail, when thumbnails are on |

mod files;
pub mod msg;
pub mod settings;
#[cfg(test)]
mod tests;

use crate::common::counters::bump;
use crate::media::msg::{MediaMsg, RecordingAnswer, RecordingBody};
use crate::media::MediaResponse;
use crate::shard::msg::ShardMsg;
use files::Session;
use msg::{ReadRequest, ReadWhat, RecordMsg};
pub use settings::{RecordCounters, RecordSettings};
use shardcast_engine::{ShardId, WorkerEndpoint, WorkerInbox};
use shardcast_media::IndexEvent;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often old recordings are looked for.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// Messages taken per loop turn.
const BATCH_MAX: usize = 1024;

/// The recorder's state: the recordings being written.
pub struct Recorder {
    settings: Arc<RecordSettings>,
    sessions: HashMap<Arc<str>, Session>,
}

impl Recorder {
    pub fn new(settings: Arc<RecordSettings>) -> Recorder {
        Recorder {
            settings,
            sessions: HashMap::new(),
        }
    }

    /// Applies one index event of a recorded stream; `queued` bytes of it come off the queue.
    pub fn on_event(&mut self, stream: &Arc<str>, event: IndexEvent, now_ms: u64) {
        let queued = match &event {
            IndexEvent::Part { bytes, .. } => bytes.len(),
            IndexEvent::Init { init, .. } => init.len(),
            _ => 0,
        };
        match event {
            IndexEvent::Started { started_ms, .. } => self.start(stream, started_ms, now_ms),
            IndexEvent::Ended => {
                if let Some(mut session) = self.sessions.remove(stream) {
                    session.finish(now_ms, &self.settings.counters);
                }
            }
            event => {
                if let Some(session) = self.sessions.get_mut(stream) {
                    session.apply(event, &self.settings.counters);
                }
            }
        }
        let _ = (self.settings.queued).fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
            Some(q.saturating_sub(queued))
        });
    }

    fn start(&mut self, stream: &Arc<str>, started_ms: u64, now_ms: u64) {
        // A publisher that takes over a live stream starts a new recording.
        if let Some(mut old) = self.sessions.remove(stream) {
            old.finish(now_ms, &self.settings.counters);
        }
        match Session::create(&self.settings.dir, stream, started_ms) {
            Ok(session) => {
                bump(&self.settings.counters.recordings, 1);
                log::info!("recording stream {stream} into {}", session.dir().display());
                self.sessions.insert(stream.clone(), session);
            }
            Err(error) => {
                bump(&self.settings.counters.write_errors, 1);
                log::error!("cannot record stream {stream}: {error}");
            }
        }
    }

    /// A part of `msn` never came: that segment is a gap.
    pub fn on_lost(&mut self, stream: &str, rendition: &str, msn: u64) {
        if let Some(session) = self.sessions.get_mut(stream) {
            session.lose(rendition, msn);
        }
    }

    /// A file of a recording, or the list, as an HTTP answer.
    pub fn read(&self, what: &ReadWhat) -> MediaResponse {
        match what {
            ReadWhat::List => files::list_json(&self.settings.dir),
            ReadWhat::File {
                stream,
                start,
                path,
                token_query,
            } => files::read_file(
                &self.settings.dir,
                stream,
                start,
                path,
                token_query.as_deref(),
            ),
        }
    }

    /// Deletes recordings past `media.record_keep_s`, then the oldest while the total is over
    /// `media.record_max_bytes`; recordings being written are kept.
    pub fn retain(&mut self, now_ms: u64) {
        let active: Vec<PathBuf> = self.sessions.values().map(|s| s.dir().to_owned()).collect();
        let deleted = files::retain(
            &self.settings.dir,
            &active,
            now_ms.saturating_sub(self.settings.keep_s.saturating_mul(1000)),
            self.settings.max_bytes,
        );
        bump(&self.settings.counters.recordings_deleted, deleted);
    }

    /// Ends every recording (the server stops).
    pub fn finish_all(&mut self, now_ms: u64) {
        for (_, mut session) in self.sessions.drain() {
            session.finish(now_ms, &self.settings.counters);
        }
    }
}

/// Runs the recorder until the runtime drains.
pub fn run_recorder(mut endpoint: WorkerEndpoint<ShardMsg>, settings: Arc<RecordSettings>) {
    let mut recorder = Recorder::new(settings.clone());
    files::repair(&settings.dir);
    recorder.retain(crate::common::clock::wall_ms());
    let mut last_retention = Instant::now();
    loop {
        let mut inbox = Vec::new();
        let mut draining = false;
        endpoint.receive(BATCH_MAX, |message| match message {
            WorkerInbox::Msg(from, ShardMsg::Record(msg)) => inbox.push((from, msg)),
            WorkerInbox::Msg(from, _) => {
                debug_assert!(false, "only record messages go to the recorder");
                log::error!(
                    "recorder: a message not meant for it from thread {}",
                    from.0
                );
            }
            WorkerInbox::Drain => draining = true,
        });
        let worked = !inbox.is_empty();
        for (from, msg) in inbox {
            handle(&mut recorder, &mut endpoint, from, msg);
        }
        settings.counters.queue_bytes.store(
            settings.queued.load(Ordering::Relaxed) as u64,
            Ordering::Relaxed,
        );
        if draining {
            recorder.finish_all(crate::common::clock::wall_ms());
            endpoint.flush();
            return;
        }
        if last_retention.elapsed() >= RETENTION_EVERY {
            last_retention = Instant::now();
            recorder.retain(crate::common::clock::wall_ms());
        }
        endpoint.flush();
        if !worked {
            endpoint.wait(100);
        }
    }
}

fn handle(
    recorder: &mut Recorder,
    endpoint: &mut WorkerEndpoint<ShardMsg>,
    from: ShardId,
    msg: RecordMsg,
) {
    match msg {
        RecordMsg::Event { stream, event } => {
            recorder.on_event(&stream, *event, crate::common::clock::wall_ms());
        }
        RecordMsg::Lost(lost) => recorder.on_lost(&lost.stream, &lost.rendition, lost.msn),
        RecordMsg::Read(request) => {
            let ReadRequest { conn, what } = *request;
            let answer = match recorder.read(&what) {
                MediaResponse::Body {
                    content_type,
                    cache_control,
                    chunks,
                } => Ok(RecordingBody {
                    content_type,
                    cache_control,
                    body: chunks.concat().into(),
                }),
                MediaResponse::Status(status, why) => Err((status, why)),
                _ => Err((500, "unexpected answer")),
            };
            let msg = MediaMsg::RecordingAnswer(Box::new(RecordingAnswer { conn, answer }));
            endpoint.send(from, msg.into());
        }
    }
}
