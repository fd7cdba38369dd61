//! `soak`: churn against one running shardcast for a long time, then check that everything
//! the churn made the server hold was let go.
//!
//! Every client kind comes and goes in a bounded number of slots, each slot a monoio task
//! that starts one client after another until the churn ends (all on one thread, one
//! io_uring runtime):
//!
//! - [`viewer`]: WebSocket viewers join rooms (a set that changes every
//!   [`ROOM_EPOCH`], and the rooms of live streams), some chat with a token, and leave
//!   cleanly, abruptly, or by reconnecting with `Hello.last_seq` (resume); a flood room gets
//!   a fast chat stream, and stallers join it and never read until the server closes them;
//! - [`publisher`]: RTMP publishers replay a recorded FLV file at its own pace with
//!   [`shardcast_rtmp::ClientSession`] (no encoder CPU), loop its timestamps, and end with an
//!   unpublish, a dropped socket, or silence;
//! - [`player`]: HLS players follow a live stream's media playlist ([`crate::hls::Follower`],
//!   whole segments or LL-HLS parts);
//! - [`bad`]: clients that break the rules (garbage, a slowloris head, silence, WebSockets
//!   without Hello or with bad frames, RTMP without a handshake or with garbage) and wait for
//!   the server to close them.
//!
//! A sampler thread ([`sample`]) records the server's gauges (`/metrics`) and RSS
//! (`/proc/PID/status`) every `sample_every`. After the churn every client has closed; the
//! sampler polls until connections, rooms, streams and FFmpeg owners are back to zero and
//! timers to their idle baseline, or `settle_max` passes. [`report`] judges the run: nothing
//! left behind, and RSS growth after warm-up within `rss_growth_max_percent`.

pub mod bad;
pub mod io;
pub mod player;
pub mod publisher;
pub mod report;
pub mod sample;
pub mod viewer;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shardcast_media::flv::{FileTag, TagKind};
use shardcast_wire::ClientEncoder;

pub use report::SoakReport;
pub use sample::Sample;

/// The set of churn rooms changes this often, so rooms are made and dropped all along; it
/// is shorter than the shortest warm-up (60 s of a 5-minute run), so the warm-up sees the
/// churn's whole cycle.
pub const ROOM_EPOCH: Duration = Duration::from_secs(30);

/// Submission ring entries of the churn's runtime.
const RING_ENTRIES: u32 = 1024;

/// What a soak does and against what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakConfig {
    /// The server's HTTP (and WebSocket) address.
    pub http: SocketAddr,
    /// The server's RTMP address.
    pub rtmp: SocketAddr,
    /// The server's process, for its RSS.
    pub server_pid: u32,
    /// How long the churn lasts.
    pub duration: Duration,
    /// Longest wait after the churn for the server to let everything go.
    pub settle_max: Duration,
    /// Time between samples.
    pub sample_every: Duration,
    /// WebSocket viewer slots (viewers open at once, about).
    pub viewers: u32,
    /// Churn rooms at a time.
    pub rooms: u32,
    /// Percentage of viewers that chat (with `token`).
    pub chatter_percent: u32,
    /// Flood chatters (fast chats in the flood room, where the stallers sit).
    pub flooders: u32,
    /// Chats per second of each flood chatter.
    pub flood_chats_per_sec: u32,
    /// Staller slots.
    pub stallers: u32,
    /// Publisher slots (streams live at once, about).
    pub publishers: u32,
    /// HLS player slots.
    pub players: u32,
    /// Bad client slots.
    pub bad_clients: u32,
    /// Stream names publishers take from, round-robin (recycled: a shard keeps an ended
    /// stream's index until the name is published again); 0: a new name for every publish.
    pub stream_names: u32,
    /// A chat token valid for every room (`shardcast token --room '*'`).
    pub token: String,
    /// The FLV file publishers replay.
    pub fixture: PathBuf,
    /// Seeds every random choice.
    pub seed: u64,
    /// RSS growth after warm-up allowed, in percent.
    pub rss_growth_max_percent: f64,
    /// The warm-up, when not the default (see [`SoakConfig::warmup`]).
    pub warmup: Option<Duration>,
}

impl SoakConfig {
    /// Defaults for a run against `http` and `rtmp` of process `server_pid`.
    pub fn new(http: SocketAddr, rtmp: SocketAddr, server_pid: u32) -> Self {
        Self {
            http,
            rtmp,
            server_pid,
            duration: Duration::from_secs(300),
            settle_max: Duration::from_secs(60),
            sample_every: Duration::from_secs(10),
            viewers: 300,
            rooms: 10,
            chatter_percent: 10,
            flooders: 4,
            flood_chats_per_sec: 15,
            stallers: 2,
            publishers: 4,
            players: 12,
            bad_clients: 3,
            stream_names: 8,
            token: String::new(),
            fixture: PathBuf::from("shards/media/tests/fixtures/avc_aac.flv"),
            seed: 1,
            rss_growth_max_percent: 1.0,
            warmup: None,
        }
    }

    /// The warm-up whose RSS growth is forgiven: 5 minutes, or 20 % of a shorter run, unless
    /// set.
    pub fn warmup(&self) -> Duration {
        self.warmup
            .unwrap_or_else(|| (self.duration / 5).min(Duration::from_secs(300)))
    }
}

/// Why a soak could not run.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// The fixture could not be read or is not FLV with audio and video.
    #[error("fixture {path}: {reason}")]
    Fixture { path: String, reason: String },
    /// The runtime could not be built.
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
    /// The server could not be sampled before the churn.
    #[error("server: {0}")]
    Server(String),
}

/// What the churn did, counted by the clients.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Viewer connections that got `Welcome`.
    pub joins: u64,
    /// Of them, with a chat token.
    pub chatter_joins: u64,
    /// Joins with `Hello.last_seq` > 0.
    pub resumes: u64,
    /// `HistoryReply` messages received after a resume.
    pub resume_replays: u64,
    /// `Resync` messages received after a resume.
    pub resume_resyncs: u64,
    /// Viewers that left with a close frame.
    pub leaves_clean: u64,
    /// Viewers that dropped the TCP connection.
    pub leaves_abrupt: u64,
    /// Chats sent (normal chatters).
    pub chats: u64,
    /// Chats sent by flood chatters.
    pub flood_chats: u64,
    /// Events received by viewers (in batches).
    pub events_received: u64,
    /// Batches whose first seq did not follow the last one seen.
    pub seq_gaps: u64,
    /// Stallers that joined and stopped reading.
    pub stalls: u64,
    /// Of them, closed by the server (seconds to close in `stall_close_s`).
    pub stalls_closed: u64,
    /// Stallers still open when the churn ended (not a failure: the churn cut them short).
    pub stalls_cut: u64,
    /// Sum of the seconds stallers waited to be closed.
    pub stall_close_s: f64,
    /// Publishes accepted.
    pub publishes: u64,
    /// Publishes ended with an unpublish, a dropped socket, or silence.
    pub publish_ends: BTreeMap<String, u64>,
    /// Seconds of media published.
    pub published_s: f64,
    /// Silent publishers the server closed.
    pub silent_closed: u64,
    /// Player sessions.
    pub player_sessions: u64,
    /// Player requests by kind, answered 200.
    pub player_ok: BTreeMap<String, u64>,
    /// Player responses by status other than 200 (404 when a stream has just started or
    /// ended is expected).
    pub player_statuses: BTreeMap<u16, u64>,
    /// Bad clients by kind: how many, and how many the server closed.
    pub bad: BTreeMap<String, BadCount>,
}

/// One kind of bad client.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BadCount {
    /// Clients of this kind.
    pub tried: u64,
    /// Closed by the server within the bound.
    pub closed: u64,
    /// Sum of the seconds until closed.
    pub close_s: f64,
    /// What the server answered, e.g. `HTTP 400`, `WS 1008`, `none`.
    pub answers: BTreeMap<String, u64>,
}

/// Clients open now, for the samples (written by the churn thread, read by the sampler).
#[derive(Debug, Default)]
pub struct LoadGauges {
    pub viewers: AtomicU64,
    pub stallers: AtomicU64,
    pub publishers: AtomicU64,
    pub players: AtomicU64,
    pub bad: AtomicU64,
}

impl LoadGauges {
    fn add(gauge: &AtomicU64) -> GaugeGuard<'_> {
        gauge.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(gauge)
    }
}

/// Decrements its gauge when dropped, whatever way a client ends.
pub struct GaugeGuard<'a>(&'a AtomicU64);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every task of the churn shares (one thread).
pub struct Shared {
    pub config: SoakConfig,
    pub start: Instant,
    pub churn_end: Instant,
    pub counts: RefCell<Counts>,
    /// Client-side errors by kind.
    pub errors: RefCell<BTreeMap<String, u64>>,
    /// Streams being published now.
    pub live: RefCell<Vec<String>>,
    /// Stream names of the pool no publisher holds, least recently given back first.
    free_names: RefCell<VecDeque<String>>,
    next_stream: Cell<u64>,
    pub gauges: Arc<LoadGauges>,
    pub encoder: RefCell<ClientEncoder>,
    /// The fixture's audio and video tags.
    pub tags: Vec<FileTag>,
}

impl Shared {
    /// Whether new clients may still start.
    pub fn churning(&self) -> bool {
        Instant::now() < self.churn_end
    }

    /// Sleeps for `pause`, or until the churn ends if that comes first.
    pub async fn nap(&self, pause: Duration) {
        sleep_until((Instant::now() + pause).min(self.churn_end)).await;
    }

    /// Updates the counts (never held across an await).
    pub fn count(&self, update: impl FnOnce(&mut Counts)) {
        update(&mut self.counts.borrow_mut());
    }

    /// Counts a client-side error of kind `what`.
    pub fn error(&self, what: &str) {
        *self.errors.borrow_mut().entry(what.to_owned()).or_default() += 1;
    }

    /// The stream name no publisher holds that was given back longest ago (the pool is used
    /// round-robin, so every name is published within the first rounds), or a new name when
    /// names are not recycled. `None` when every name of the pool is held.
    pub fn take_stream_name(&self) -> Option<String> {
        if self.config.stream_names == 0 {
            let n = self.next_stream.get();
            self.next_stream.set(n + 1);
            return Some(format!("soak-{n}"));
        }
        self.free_names.borrow_mut().pop_front()
    }

    /// Gives a stream name back to the pool.
    pub fn release_stream_name(&self, name: &str) {
        if self.config.stream_names > 0 {
            self.free_names.borrow_mut().push_back(name.to_owned());
        }
    }

    /// A live stream, if any.
    pub fn pick_live(&self, rng: &mut Rng) -> Option<String> {
        let live = self.live.borrow();
        (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize].clone())
    }
}

/// A small deterministic generator (SplitMix64): the churn's choices need no more.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A duration in `low..high`, to the millisecond.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_millis() as u64;
        low + Duration::from_millis(self.below(span.max(1)))
    }
}

/// Sleeps until `deadline` (or returns at once if it passed).
pub async fn sleep_until(deadline: Instant) {
    if deadline > Instant::now() {
        monoio::time::sleep_until(deadline.into()).await;
    }
}

/// The audio and video tags of an FLV file.
pub fn read_fixture(path: &std::path::Path) -> Result<Vec<FileTag>, SoakError> {
    let fail = |reason: String| SoakError::Fixture {
        path: path.display().to_string(),
        reason,
    };
    let file = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let tags: Vec<FileTag> = shardcast_media::flv::read_file(&Bytes::from(file))
        .map_err(|e| fail(e.to_string()))?
        .into_iter()
        .filter(|tag| matches!(tag.kind, TagKind::Audio | TagKind::Video))
        .collect();
    if !tags.iter().any(|t| t.kind == TagKind::Video) {
        return Err(fail("no video tag".to_owned()));
    }
    Ok(tags)
}

/// Runs the soak: a baseline sample, the churn with the sampler beside it, the settle, and
/// the judgement.
pub fn run_soak(config: SoakConfig) -> Result<SoakReport, SoakError> {
    let tags = read_fixture(&config.fixture)?;
    let baseline = sample::Baseline::take(&config).map_err(SoakError::Server)?;
    let gauges = Arc::new(LoadGauges::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let sampler = sample::spawn_sampler(config.clone(), start, gauges.clone(), stop.clone());
    let shared = Rc::new(Shared {
        churn_end: start + config.duration,
        config: config.clone(),
        start,
        counts: RefCell::new(Counts::default()),
        errors: RefCell::new(BTreeMap::new()),
        live: RefCell::new(Vec::new()),
        free_names: RefCell::new(
            (0..config.stream_names)
                .map(|n| format!("soak-{n}"))
                .collect(),
        ),
        next_stream: Cell::new(0),
        gauges,
        encoder: RefCell::new(ClientEncoder::new()),
        tags,
    });
    let churned = run_churn(shared.clone());
    stop.store(true, Ordering::Relaxed);
    let churn_s = start.elapsed().as_secs_f64();
    let load_cpu_s = crate::net::process_cpu_time().map_or(0.0, |cpu| cpu.as_secs_f64());
    let samples = sampler.join().expect("the sampler thread does not panic");
    churned.map_err(SoakError::Runtime)?;
    let settle = sample::settle(&config, &baseline, start);
    let mut report = SoakReport::new(
        config,
        baseline,
        samples,
        settle,
        shared.counts.take(),
        shared.errors.take(),
        churn_s,
    );
    report.load_cpu_percent = 100.0 * load_cpu_s / churn_s;
    Ok(report)
}

/// Runs every slot until the churn is over and every client has closed.
fn run_churn(shared: Rc<Shared>) -> std::io::Result<()> {
    let mut runtime = crate::net::build_runtime(RING_ENTRIES)?;
    runtime.block_on(async move {
        let config = &shared.config;
        let mut tasks = Vec::new();
        for slot in 0..config.viewers {
            tasks.push(monoio::spawn(viewer::viewer_slot(shared.clone(), slot)));
        }
        for slot in 0..config.flooders {
            tasks.push(monoio::spawn(viewer::flood_slot(shared.clone(), slot)));
        }
        for slot in 0..config.stallers {
            tasks.push(monoio::spawn(viewer::staller_slot(shared.clone(), slot)));
        }
        for slot in 0..config.publishers {
            tasks.push(monoio::spawn(publisher::publisher_slot(
                shared.clone(),
                slot,
            )));
        }
        for slot in 0..config.players {
            tasks.push(monoio::spawn(player::player_slot(shared.clone(), slot)));
        }
        for slot in 0..config.bad_clients {
            tasks.push(monoio::spawn(bad::bad_slot(shared.clone(), slot)));
        }
        for task in tasks {
            task.await;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_a_fifth_of_a_short_run_and_five_minutes_of_a_long_one() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut config = SoakConfig::new(addr, addr, 1);
        config.duration = Duration::from_secs(300);
        assert_eq!(config.warmup(), Duration::from_secs(60));
        config.duration = Duration::from_secs(3600);
        assert_eq!(config.warmup(), Duration::from_secs(300));
        config.warmup = Some(Duration::from_secs(120));
        assert_eq!(config.warmup(), Duration::from_secs(120));
    }

    #[test]
    fn rng_stays_in_range() {
        let mut rng = Rng::new(7);
        for _ in 0..1000 {
            assert!(rng.below(5) < 5);
            let d = rng.between(Duration::from_secs(2), Duration::from_secs(3));
            assert!(d >= Duration::from_secs(2) && d < Duration::from_secs(3));
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn the_fixture_has_audio_and_video() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shards/media/tests/fixtures/avc_aac.flv"
        );
        let tags = read_fixture(std::path::Path::new(path)).unwrap();
        assert!(tags.iter().any(|t| t.kind == TagKind::Audio));
        assert!(read_fixture(std::path::Path::new("/nonexistent.flv")).is_err());
    }
}
