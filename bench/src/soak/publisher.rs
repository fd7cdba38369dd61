//! RTMP publishers of the soak: each replays the fixture's tags at their own pace over
//! [`ClientSession`], looping the file with its timestamps moved on by its length, so a
//! stream lives as long as the soak wants without any encoder.

use std::rc::Rc;
use std::time::{Duration, Instant};

use shardcast_media::flv::{FileTag, TagKind};
use shardcast_rtmp::{ClientConfig, ClientEvent, ClientSession};

use super::io::{Conn, Read};
use super::{LoadGauges, Rng, Shared};

/// Longest wait for connect, handshake and the answer to `publish`.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// A silent publisher the server has not closed after this long is counted as left open
/// (the soak's `rtmp.idle_timeout_ms` is far shorter).
const SILENT_MAX: Duration = Duration::from_secs(40);

/// How long after the unpublish the server's last words are read.
const GOODBYE: Duration = Duration::from_secs(1);

/// How a publish ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// `FCUnpublish` and `deleteStream`, then close.
    Unpublish,
    /// Drop the TCP connection mid-stream.
    Drop,
    /// Stop sending and keep the connection until the server closes it (its idle timeout).
    Silent,
}

impl Ending {
    fn name(self) -> &'static str {
        match self {
            Ending::Unpublish => "unpublish",
            Ending::Drop => "dropped socket",
            Ending::Silent => "silence (server idle timeout)",
        }
    }
}

/// A publisher slot: one publish after another until the churn ends.
pub async fn publisher_slot(shared: Rc<Shared>, slot: u32) {
    let mut rng = Rng::new(shared.config.seed ^ 0x0B15 ^ (u64::from(slot) << 16));
    shared
        .nap(rng.between(Duration::ZERO, Duration::from_secs(5)))
        .await;
    while shared.churning() {
        let Some(name) = shared.take_stream_name() else {
            shared.nap(Duration::from_secs(1)).await;
            continue;
        };
        let life = rng.between(Duration::from_secs(20), Duration::from_secs(60));
        let ending = match rng.below(100) {
            0..=59 => Ending::Unpublish,
            60..=84 => Ending::Drop,
            _ => Ending::Silent,
        };
        publish(&shared, &name, life, ending, rng.next_u64()).await;
        shared.release_stream_name(&name);
        shared
            .nap(rng.between(Duration::from_secs(1), Duration::from_secs(5)))
            .await;
    }
}

/// One publisher: connect, publish `name`, replay for `life`, end as `ending` says.
async fn publish(shared: &Shared, name: &str, life: Duration, ending: Ending, seed: u64) {
    let Some(mut publisher) = Publisher::start(shared, name, seed).await else {
        return;
    };
    shared.live.borrow_mut().push(name.to_owned());
    let open = LoadGauges::add(&shared.gauges.publishers);
    shared.counts.borrow_mut().publishes += 1;
    let started = Instant::now();
    let end = (started + life).min(shared.churn_end);
    let replayed = publisher.replay(shared, end).await;
    shared.live.borrow_mut().retain(|n| n != name);
    drop(open);
    let published_s = started.elapsed().as_secs_f64();
    shared.count(|counts| counts.published_s += published_s);
    if let Err(why) = replayed {
        shared.error(why);
        return;
    }
    let ending = if shared.churning() {
        ending
    } else {
        Ending::Unpublish
    };
    shared.count(|counts| {
        *counts
            .publish_ends
            .entry(ending.name().to_owned())
            .or_default() += 1
    });
    match ending {
        Ending::Unpublish => publisher.unpublish().await,
        Ending::Drop => {}
        Ending::Silent => match publisher
            .conn
            .until_closed(Instant::now() + SILENT_MAX)
            .await
        {
            Ok(_) => shared.count(|counts| counts.silent_closed += 1),
            Err(_) => shared.error("publisher: silent publisher not closed in 40 s"),
        },
    }
}

/// One RTMP connection publishing.
struct Publisher {
    conn: Conn,
    client: ClientSession,
}

impl Publisher {
    /// Connects and publishes; `None` (counted) when that fails.
    async fn start(shared: &Shared, name: &str, seed: u64) -> Option<Publisher> {
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        let Ok(conn) = Conn::connect(shared.config.rtmp, deadline).await else {
            shared.error("publisher: connect failed");
            return None;
        };
        let mut config = ClientConfig::new("live", name);
        config.seed = seed;
        let mut publisher = Publisher {
            conn,
            client: ClientSession::new(config),
        };
        while !publisher.client.is_publishing() {
            if let Err(why) = publisher.pump(deadline).await {
                shared.error(why);
                return None;
            }
            if Instant::now() >= deadline {
                shared.error("publisher: no answer to publish");
                return None;
            }
        }
        Some(publisher)
    }

    /// Sends the fixture's tags at their pace, looping, until `end`.
    async fn replay(&mut self, shared: &Shared, end: Instant) -> Result<(), &'static str> {
        let tags = &shared.tags;
        let period_ms = replay_period_ms(tags);
        let first_ms = tags.first().map_or(0, |t| t.timestamp_ms);
        let started = Instant::now();
        let mut round = 0u32;
        loop {
            for tag in tags {
                if round > 0 && is_sequence_header(tag) {
                    continue;
                }
                let at_ms = round * period_ms + tag.timestamp_ms.saturating_sub(first_ms);
                let due = started + Duration::from_millis(u64::from(at_ms));
                while Instant::now() < due {
                    if Instant::now() >= end {
                        return Ok(());
                    }
                    self.pump(due.min(end)).await?;
                }
                let sent = match tag.kind {
                    TagKind::Audio => self.client.send_audio(at_ms, &tag.body),
                    TagKind::Video => self.client.send_video(at_ms, &tag.body),
                    TagKind::Script | TagKind::Other(_) => Ok(()),
                };
                sent.map_err(|_| "publisher: could not queue a tag")?;
            }
            round += 1;
        }
    }

    /// Unpublishes and reads the server's last words for a moment.
    async fn unpublish(mut self) {
        self.client.unpublish();
        let deadline = Instant::now() + GOODBYE;
        while Instant::now() < deadline {
            if self.pump(deadline).await.is_err() {
                break;
            }
        }
    }

    /// Writes what the session queued, then reads once until `deadline`: `Err` on a
    /// refusal, an error status, or a closed connection.
    async fn pump(&mut self, deadline: Instant) -> Result<(), &'static str> {
        while let Some(out) = self.client.poll_transmit() {
            self.conn
                .write_all(out.to_vec(), deadline + PUBLISH_TIMEOUT)
                .await
                .map_err(|_| "publisher: write failed")?;
        }
        match self.conn.read_more(deadline).await {
            Read::Data(_) => {
                let input = std::mem::take(&mut self.conn.buf);
                self.client
                    .handle_input(&input)
                    .map_err(|_| "publisher: bad RTMP from the server")?;
            }
            Read::TimedOut => {}
            Read::Eof | Read::Failed => return Err("publisher: closed by the server"),
        }
        while let Some(event) = self.client.poll_event() {
            if let ClientEvent::Status { level, .. } = event {
                if level == "error" {
                    return Err("publisher: refused");
                }
            }
        }
        Ok(())
    }
}

/// How far the timestamps move on each time the file is replayed: its last video frame
/// plus one frame (33 ms), so the loop keeps the frame rate.
fn replay_period_ms(tags: &[FileTag]) -> u32 {
    let first = tags.first().map_or(0, |t| t.timestamp_ms);
    let last = tags
        .iter()
        .filter(|t| t.kind == TagKind::Video)
        .map(|t| t.timestamp_ms)
        .max()
        .unwrap_or(first);
    last.saturating_sub(first) + 33
}

/// An AVC or AAC sequence header (legacy FLV): sent once, at the start of a publish.
fn is_sequence_header(tag: &FileTag) -> bool {
    let body = &tag.body;
    match tag.kind {
        TagKind::Video => body.len() > 1 && body[0] & 0x0F == 7 && body[1] == 0,
        TagKind::Audio => body.len() > 1 && body[0] >> 4 == 10 && body[1] == 0,
        TagKind::Script | TagKind::Other(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn tag(kind: TagKind, timestamp_ms: u32, body: &'static [u8]) -> FileTag {
        FileTag {
            kind,
            timestamp_ms,
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn the_loop_period_follows_the_last_video_frame() {
        let tags = [
            tag(TagKind::Video, 40, &[0x17, 0]),
            tag(TagKind::Audio, 50, &[0xAF, 0]),
            tag(TagKind::Video, 2040, &[0x27, 1]),
            tag(TagKind::Audio, 2060, &[0xAF, 1]),
        ];
        assert_eq!(replay_period_ms(&tags), 2033);
        assert!(is_sequence_header(&tags[0]));
        assert!(is_sequence_header(&tags[1]));
        assert!(!is_sequence_header(&tags[2]));
        assert!(!is_sequence_header(&tags[3]));
    }
}
