//! HLS players of the soak: each follows one rendition of a live stream for a while, with
//! plain reloads and whole segments or LL-HLS blocking reloads and parts
//! ([`Follower`] decides what to fetch).

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::io::{FetchError, HttpClient};
use super::{sleep_until, LoadGauges, Rng, Shared};
use crate::hls::{Action, Follower, FollowerEvent, HlsMode, Outcome};

/// Longest wait for one response (a blocking reload waits for the next part).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A player stops after this many failed requests in a row (the stream ended).
const FAILURES_MAX: u32 = 5;

/// A player slot: one player after another until the churn ends.
pub async fn player_slot(shared: Rc<Shared>, slot: u32) {
    let mut rng = Rng::new(shared.config.seed ^ 0x9_1A7E ^ (u64::from(slot) << 12));
    shared
        .nap(rng.between(Duration::from_secs(5), Duration::from_secs(15)))
        .await;
    while shared.churning() {
        let Some(stream) = shared.pick_live(&mut rng) else {
            shared.nap(Duration::from_secs(1)).await;
            continue;
        };
        let mode = if rng.chance(30) {
            HlsMode::Parts
        } else {
            HlsMode::Segments
        };
        let track = if rng.chance(25) { "audio" } else { "source" };
        let life = rng.between(Duration::from_secs(10), Duration::from_secs(30));
        play(&shared, &stream, mode, track, life).await;
        shared
            .nap(rng.between(Duration::ZERO, Duration::from_secs(2)))
            .await;
    }
}

/// Follows `/live/{stream}/{track}/index.m3u8` for `life` (or until the stream is gone).
async fn play(shared: &Shared, stream: &str, mode: HlsMode, track: &str, life: Duration) {
    let _open = LoadGauges::add(&shared.gauges.players);
    shared.counts.borrow_mut().player_sessions += 1;
    let mut http = HttpClient::new(shared.config.http);
    let mut follower = Follower::new(mode, format!("/live/{stream}/{track}/index.m3u8"));
    let started = Instant::now();
    let end = (started + life).min(shared.churn_end);
    let mut failures = 0;
    while Instant::now() < end && failures < FAILURES_MAX {
        let request = match follower.poll_action(started.elapsed()) {
            Action::Fetch(request) => request,
            Action::WaitUntil(at) => {
                sleep_until((started + at).min(end)).await;
                continue;
            }
            Action::Done => break,
        };
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let kind = request.kind;
        match http.get(&request.path, deadline).await {
            Ok(response) => {
                let outcome = Outcome::Response {
                    status: response.status,
                    body: &response.body,
                };
                follower.handle_response(started.elapsed(), outcome);
                let mut counts = shared.counts.borrow_mut();
                if response.status == 200 {
                    failures = 0;
                    *counts.player_ok.entry(kind.name().to_owned()).or_default() += 1;
                } else {
                    failures += 1;
                    *counts.player_statuses.entry(response.status).or_default() += 1;
                }
            }
            Err(why) => {
                failures += 1;
                follower.handle_response(started.elapsed(), Outcome::Failed);
                shared.error(fetch_error_name(why));
            }
        }
        while let Some(event) = follower.poll_event() {
            if event == FollowerEvent::BadPlaylist {
                shared.error("player: unparsable playlist");
            }
        }
    }
}

fn fetch_error_name(why: FetchError) -> &'static str {
    match why {
        FetchError::Connect => "player: connect failed",
        FetchError::Closed => "player: closed by the server",
        FetchError::Timeout => "player: response timed out",
        FetchError::Parse => "player: unframable response",
    }
}
