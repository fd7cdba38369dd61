//! Media's side of recordings: a recorded stream's home hands its index events to the
//! recorder thread within the recorder's queue, and `/vod/…` and `/api/v1/recordings`
//! requests wait for the recorder's answer (it reads the disk; a shard never does).

use super::msg::RecordingAnswer;
use super::{Media, MediaResponse};
use crate::common::counters::bump;
use crate::common::query::Query;
use crate::record::msg::{Lost, ReadRequest, ReadWhat, RecordMsg};
use crate::shard::msg::ShardMsg;
use shardcast_engine::{ConnId, Ctx};
use shardcast_media::IndexEvent;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Media {
    /// Sends `event` of `stream` (homed here) to the recorder when the stream is recorded. A
    /// part or init that does not fit `media.record_queue_max_bytes` is not sent: its segment
    /// is left out of the recording.
    pub(super) fn record(&mut self, cx: &mut Ctx<ShardMsg>, stream: &Arc<str>, event: &IndexEvent) {
        let record = &self.settings.record;
        if !record.records(stream) {
            return;
        }
        let size = match event {
            IndexEvent::Part { bytes, .. } => bytes.len(),
            IndexEvent::Init { init, .. } => init.len(),
            _ => 0,
        };
        if size > 0 {
            let queued = record.queued.fetch_add(size, Ordering::Relaxed);
            if queued + size > record.queue_max_bytes {
                record.queued.fetch_sub(size, Ordering::Relaxed);
                bump(&self.counters().record_queue_full, 1);
                if self.log_budget.allow(cx.now_ms()) {
                    log::warn!(
                        "stream {stream}: the recorder is behind (media.record_queue_max_bytes); \
                         a segment is left out of the recording"
                    );
                }
                if let IndexEvent::Part { rendition, msn, .. } = event {
                    let lost = Lost {
                        stream: stream.clone(),
                        rendition: rendition.clone(),
                        msn: *msn,
                    };
                    cx.mesh_send(
                        self.settings.recorder,
                        RecordMsg::Lost(Box::new(lost)).into(),
                    );
                }
                return;
            }
        }
        let msg = RecordMsg::Event {
            stream: stream.clone(),
            event: Box::new(event.clone()),
        };
        cx.mesh_send(self.settings.recorder, msg.into());
    }

    /// `/vod/{stream}/{start}/{path}`: the recorder reads it; the request waits.
    pub fn vod_request(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        rest: &str,
        query: Query<'_>,
    ) -> MediaResponse {
        let mut parts = rest.splitn(3, '/');
        let (Some(stream), Some(start), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return MediaResponse::Status(404, "not found");
        };
        if !super::names::is_valid_stream_name(stream) {
            return MediaResponse::Status(404, "no such recording");
        }
        let token_query = match self.check_token(cx, stream, query) {
            Ok(q) => q,
            Err(refusal) => return refusal,
        };
        // Playlists name later init segments `init.mp4?v=N`; they are `init-N.mp4` on disk.
        let version = query
            .get("v")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        let path = match path.strip_suffix("init.mp4") {
            Some(dir) if version > 0 => format!("{dir}init-{version}.mp4"),
            _ => path.to_string(),
        };
        let what = ReadWhat::File {
            stream: stream.to_string(),
            start: start.to_string(),
            path,
            token_query,
        };
        self.ask_recorder(cx, conn, what)
    }

    /// `GET /api/v1/recordings`: the recorder lists them; the request waits.
    pub fn list_recordings(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) -> MediaResponse {
        self.ask_recorder(cx, conn, ReadWhat::List)
    }

    fn ask_recorder(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        what: ReadWhat,
    ) -> MediaResponse {
        let request = ReadRequest { conn, what };
        cx.mesh_send(
            self.settings.recorder,
            RecordMsg::Read(Box::new(request)).into(),
        );
        MediaResponse::Waiting
    }

    /// The recorder answered a read: the connection gets it with the other waiting answers.
    pub(super) fn recording_answer(&mut self, answer: RecordingAnswer) {
        let response = match answer.answer {
            Ok(file) => MediaResponse::Body {
                content_type: file.content_type,
                cache_control: file.cache_control,
                chunks: vec![file.body],
            },
            Err((status, why)) => MediaResponse::Status(status, why),
        };
        self.waiters.push_ready(answer.conn, response);
    }
}
