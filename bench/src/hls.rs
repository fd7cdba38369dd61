//! `hls`: viewers of a live HLS stream, behaving as players do.
//!
//! Each viewer follows one or more media playlists (with a multivariant playlist: the first
//! video variant and its audio rendition), one keep-alive connection per playlist, and
//! downloads the media as a player would:
//!
//! - [`HlsMode::Segments`]: a plain playlist reload every half target duration, then every
//!   new complete segment in order (what hls.js or ffplay do without LL-HLS);
//! - [`HlsMode::Parts`]: LL-HLS, the client behaviour of the LL-HLS specification: a blocking
//!   playlist reload (`?_HLS_msn=M&_HLS_part=P`) for the next part, then that part, and so on.
//!
//! Viewers start at the live edge: in segments mode at the segment `HOLD-BACK` seconds from
//! the end (three target durations when the playlist does not say), in parts mode at the
//! independent part `PART-HOLD-BACK` seconds from the end. They fetch `EXT-X-MAP` once.
//!
//! Measured: requests/s, bytes and latency percentiles by request kind ([`Kind`]), errors by
//! kind, **stalls** from a model of each viewer's buffer ([`Playback`]), and **ingest
//! latency** ([`ingest_latency_ms`]): for each segment (segments mode) or part (parts mode),
//! how long after the wall-clock time of its last frame the server first listed it as
//! fetchable. The wall-clock time comes from `EXT-X-PROGRAM-DATE-TIME`.
//!
//! The decisions of a viewer are sans-io: [`Follower`] takes playlist and media responses
//! with the time and says what to request next; [`Playback`] takes downloaded media with the
//! time; [`parse_playlist`] reads the playlists. Only [`run_hls`] and the connection driver
//! below it touch sockets and clocks.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monoio::io::{CancelableAsyncReadRent, CancelableAsyncWriteRentExt, Canceller};
use monoio::net::TcpStream;
use monoio::time::Sleep;
use serde::{Deserialize, Serialize};

use crate::net::{self, op_or_deadline};
use crate::parser::{ResponseParser, HEAD_MAX_BYTES};
use crate::report::{ErrorCounts, LatencyUs, LoadStats};
use crate::target::HttpUrl;

/// Most viewers in one run. Each holds one connection per followed playlist, so 10,000
/// viewers of video and audio are 20,000 descriptors: the hard limit of one process here.
pub const VIEWERS_MAX: usize = 10_000;

/// Most tracks (media playlists) one viewer follows: the video variant and one audio
/// rendition.
pub const TRACKS_MAX: usize = 2;

/// Largest playlist body kept for parsing. A 600 s window of 2 s segments with four parts
/// each is about 60 KiB; anything past 1 MiB counts as a `body` error.
pub const PLAYLIST_MAX_BYTES: usize = 1024 * 1024;

/// Read buffer per connection. Segments are a few hundred KiB; 64 KiB keeps reads few
/// while 20,000 connections stay at 1.25 GiB.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Most segments or parts whose first sighting is tracked per load thread for the ingest
/// latency (about 48 bytes each, so at most 48 MiB). A 15 s run sees a few hundred.
pub const SIGHTINGS_MAX: usize = 1_000_000;

/// Viewers join evenly over the warm-up, but over at most this long, so that they do not
/// all fetch the same segments in the same millisecond.
pub const JOIN_SPREAD_MAX: Duration = Duration::from_secs(2);

/// Pause after a failed request before the next one, so that a refusing server is not
/// hammered in a loop.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Submission ring entries per load thread.
const RING_ENTRIES: u32 = 1024;

/// How viewers fetch media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HlsMode {
    /// Whole segments after plain playlist reloads every half target duration.
    Segments,
    /// LL-HLS: blocking playlist reloads for the next part, then the part.
    Parts,
}

impl HlsMode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            HlsMode::Segments => "segments",
            HlsMode::Parts => "parts",
        }
    }

    /// Parses `segments` or `parts`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "segments" => Ok(HlsMode::Segments),
            "parts" => Ok(HlsMode::Parts),
            other => Err(format!("unknown mode `{other}` (use segments or parts)")),
        }
    }
}

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A plain media playlist reload.
    Playlist,
    /// A blocking playlist reload (`_HLS_msn`, `_HLS_part`): its latency includes the wait
    /// for the part, by design.
    BlockingPlaylist,
    /// The initialization section (`EXT-X-MAP`).
    Init,
    /// A whole media segment.
    Segment,
    /// A partial segment (LL-HLS).
    Part,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 5] = [
        Kind::Playlist,
        Kind::BlockingPlaylist,
        Kind::Init,
        Kind::Segment,
        Kind::Part,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Playlist => "playlist",
            Kind::BlockingPlaylist => "blocking playlist",
            Kind::Init => "init",
            Kind::Segment => "segment",
            Kind::Part => "part",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn is_playlist(self) -> bool {
        matches!(self, Kind::Playlist | Kind::BlockingPlaylist)
    }
}

/// How an `hls` run is shaped. Build with [`HlsLoadConfig::new`] and adjust the fields.
#[derive(Debug, Clone)]
pub struct HlsLoadConfig {
    /// A multivariant playlist (the first video variant and its audio rendition are
    /// followed) or a media playlist.
    pub url: HttpUrl,
    /// Viewers, 1..=[`VIEWERS_MAX`].
    pub viewers: usize,
    /// Segments or LL-HLS parts.
    pub mode: HlsMode,
    /// Measurement window after the warm-up.
    pub duration: Duration,
    /// Viewers join (spread over at most [`JOIN_SPREAD_MAX`]) and fill their buffers.
    pub warmup: Duration,
    /// Load threads, one runtime each; viewers are dealt round-robin.
    pub threads: usize,
    /// Source addresses bound round-robin, per connection; empty for the kernel's choice.
    pub source_addrs: Vec<Ipv4Addr>,
    /// Longest wait for a response (blocking reloads included) and for a connect.
    pub timeout: Duration,
}

impl HlsLoadConfig {
    /// The defaults of the command line: 100 viewers, segments, 10 s after a 5 s warm-up,
    /// one thread, 10 s timeout.
    pub fn new(url: HttpUrl) -> Self {
        Self {
            url,
            viewers: 100,
            mode: HlsMode::Segments,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(5),
            threads: 1,
            source_addrs: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }

    fn validate(&self) -> Result<(), HlsLoadError> {
        let refuse = |why: String| Err(HlsLoadError::Config(why));
        if !(1..=VIEWERS_MAX).contains(&self.viewers) {
            return refuse(format!(
                "viewers {} is outside 1..={VIEWERS_MAX}",
                self.viewers
            ));
        }
        if !(1..=crate::http::THREADS_MAX).contains(&self.threads) {
            return refuse(format!(
                "threads {} is outside 1..={}",
                self.threads,
                crate::http::THREADS_MAX
            ));
        }
        if self.timeout.is_zero() || self.duration.is_zero() {
            return refuse("duration and timeout must be positive".to_owned());
        }
        if !self.source_addrs.is_empty() && !self.url.addr.is_ipv4() {
            return refuse("source addresses are IPv4; the URL must be IPv4 too".to_owned());
        }
        net::check_open_files((self.viewers * TRACKS_MAX) as u64).map_err(HlsLoadError::Config)
    }
}

/// Why a run could not take place. Failures of the server during a run are counted in the
/// report instead.
#[derive(Debug, thiserror::Error)]
pub enum HlsLoadError {
    /// The configuration is unusable; the message says why.
    #[error("{0}")]
    Config(String),
    /// The playlists could not be read before the run (server down, no stream, no parts in
    /// parts mode); the message says what was seen.
    #[error("{0}")]
    Setup(String),
    /// A load thread could not build its io_uring runtime.
    #[error("{0}")]
    Runtime(io::Error),
}

/// One media playlist a viewer follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The playlist's request target (absolute path, query included).
    pub path: String,
}

/// Runs the viewers and returns the report. Reads the playlists once first (not counted),
/// then builds its own threads and runtimes and returns when warm-up plus duration have
/// passed (plus at most the time to cancel pending operations).
pub fn run_hls(config: HlsLoadConfig) -> Result<HlsReport, HlsLoadError> {
    config.validate()?;
    let tracks = discover(&config.url, config.mode, config.timeout)?;
    let cpu_before = net::process_cpu_time();
    let begin = Instant::now();
    let wall_begin_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let plan = Plan {
        begin,
        warmup_end: begin + config.warmup,
        end: begin + config.warmup + config.duration,
        timeout: config.timeout,
        wall_begin_ms,
        join_spread: config.warmup.min(JOIN_SPREAD_MAX),
    };
    let results: Vec<io::Result<ThreadStats>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.threads)
            .map(|thread| {
                let (config, plan, tracks) = (&config, &plan, &tracks);
                std::thread::Builder::new()
                    .name(format!("bench-hls-{thread}"))
                    .spawn_scoped(scope, move || run_thread(thread, config, plan, tracks))
                    .expect("spawning a load thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("load thread panicked"))
            .collect()
    });
    let mut stats = ThreadStats::new();
    for result in results {
        stats.merge(result.map_err(HlsLoadError::Runtime)?);
    }
    let mut report = HlsReport::from_stats(&config, &tracks, &plan, &stats);
    if let (Some(before), Some(after)) = (cpu_before, net::process_cpu_time()) {
        let wall = begin.elapsed().as_secs_f64();
        report.client_cpu_percent = 100.0 * (after - before).as_secs_f64() / wall.max(1e-9);
    }
    Ok(report)
}

/// Reads `url` and decides which media playlists a viewer follows: the playlist itself, or
/// for a multivariant playlist the first video variant and the audio rendition of its group
/// (the `DEFAULT=YES` one when several have a URI). Each media playlist is read once to check
/// it, and in parts mode that it announces parts.
pub fn discover(
    url: &HttpUrl,
    mode: HlsMode,
    timeout: Duration,
) -> Result<Vec<Track>, HlsLoadError> {
    let setup = |why: String| HlsLoadError::Setup(format!("{}: {why}", url.text));
    let text = fetch_blocking(url.addr, &url.authority, &url.path, timeout).map_err(setup)?;
    let playlist = parse_playlist(&text).map_err(|e| setup(e.to_string()))?;
    let paths = match playlist {
        Playlist::Media(_) => vec![url.path.clone()],
        Playlist::Multivariant(multivariant) => {
            let (video, audio) = multivariant
                .pick()
                .ok_or_else(|| setup("the multivariant playlist lists no variant".to_owned()))?;
            let mut paths = vec![resolve_uri(&url.path, &video).map_err(setup)?];
            if let Some(audio) = audio {
                paths.push(resolve_uri(&url.path, &audio).map_err(setup)?);
            }
            paths
        }
    };
    let mut tracks = Vec::new();
    for path in paths {
        let text = fetch_blocking(url.addr, &url.authority, &path, timeout)
            .map_err(|why| HlsLoadError::Setup(format!("{path}: {why}")))?;
        let media = match parse_playlist(&text) {
            Ok(Playlist::Media(media)) => media,
            Ok(Playlist::Multivariant(_)) => {
                return Err(HlsLoadError::Setup(format!(
                    "{path}: a multivariant playlist where a media playlist was expected"
                )))
            }
            Err(error) => return Err(HlsLoadError::Setup(format!("{path}: {error}"))),
        };
        if mode == HlsMode::Parts && (media.part_target_s.is_none() || !media.can_block_reload) {
            return Err(HlsLoadError::Setup(format!(
                "{path}: no LL-HLS (EXT-X-PART-INF and CAN-BLOCK-RELOAD=YES are needed for \
                 --mode parts); use --mode segments"
            )));
        }
        tracks.push(Track { path });
    }
    Ok(tracks)
}

/// One `GET` on a fresh blocking connection; the body of a 200 response as text.
fn fetch_blocking(
    addr: SocketAddr,
    authority: &str,
    path: &str,
    timeout: Duration,
) -> Result<String, String> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: shardcast-bench\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut parser = ResponseParser::new();
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let received = stream.read(&mut buf).map_err(|e| format!("receive: {e}"))?;
        if received == 0 {
            return Err("connection closed before a complete response".to_owned());
        }
        let mut rest = &buf[..received];
        while !rest.is_empty() {
            let progress = parser.handle_bytes(rest).map_err(|e| e.to_string())?;
            raw.extend_from_slice(&rest[..progress.consumed]);
            rest = &rest[progress.consumed..];
            if let Some(response) = progress.response {
                if response.status != 200 {
                    return Err(format!("status {}", response.status));
                }
                let body = &raw[response.head_bytes..];
                return String::from_utf8(body.to_vec())
                    .map_err(|_| "body is not UTF-8".to_owned());
            }
            if raw.len() > PLAYLIST_MAX_BYTES + HEAD_MAX_BYTES {
                return Err(format!("playlist larger than {PLAYLIST_MAX_BYTES} bytes"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The report.

/// Requests of one kind in the measurement window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    /// Which requests.
    pub kind: Kind,
    /// Successful (200) responses completed in the window.
    pub requests: u64,
    /// `requests` per second of the window.
    pub requests_per_sec: f64,
    /// Body bytes of those responses.
    pub body_bytes: u64,
    /// Latency from send to the last body byte, successful responses only.
    pub latency_us: LatencyUs,
    /// Failures by cause, over the whole run.
    pub errors: ErrorCounts,
    /// Sum of `errors`.
    pub errors_total: u64,
}

/// Ingest latency in milliseconds over the segments or parts first seen in the window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IngestLatencyMs {
    /// Segments or parts measured (0 when the playlists carry no program date time).
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Smallest (negative when a part was listed before its program date time said its last
    /// frame was taken: the anchor is only an approximation).
    pub min: f64,
}

/// The result of one `hls` run, as printed and as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HlsReport {
    /// The URL given.
    pub url: String,
    /// `segments` or `parts`.
    pub mode: HlsMode,
    /// Media playlists each viewer follows (request targets).
    pub tracks: Vec<String>,
    /// Viewers.
    pub viewers: usize,
    /// Connections (viewers × tracks).
    pub connections: usize,
    /// Load threads.
    pub threads: usize,
    /// Warm-up before the window, seconds.
    pub warmup_s: f64,
    /// Measurement window, seconds.
    pub duration_s: f64,
    /// Successful responses of every kind in the window.
    pub requests: u64,
    /// `requests` per second.
    pub requests_per_sec: f64,
    /// Bytes received in the window (heads and bodies).
    pub bytes_received: u64,
    /// `bytes_received` as gigabits per second.
    pub gbit_per_sec: f64,
    /// By kind, in the order of [`Kind::ALL`].
    pub kinds: Vec<KindReport>,
    /// Failures of every kind, by cause (whole run).
    pub errors: ErrorCounts,
    /// Sum of `errors`.
    pub errors_total: u64,
    /// Playlists that could not be parsed (also counted in `errors.body` of their kind).
    pub bad_playlists: u64,
    /// Connections reopened.
    pub reconnects: u64,
    /// Times a viewer fell out of the playlist window and started again at the live edge.
    pub resyncs: u64,
    /// Times a viewer's buffer ran dry, counted when the stall began inside the window.
    pub stalls: u64,
    /// Stall time inside the window, summed over viewers, seconds.
    pub stall_s: f64,
    /// Viewers that stalled at least once in the window.
    pub viewers_stalled: u64,
    /// Mean buffered media per viewer at the end of the run, seconds (with several tracks,
    /// the least buffered one).
    pub buffer_end_mean_s: f64,
    /// How long after its last frame's wall-clock time each segment (segments mode) or part
    /// (parts mode) was first listed.
    pub ingest_latency_ms: IngestLatencyMs,
    /// CPU of the load generator over the whole run, percent of one core.
    pub client_cpu_percent: f64,
}

impl HlsReport {
    fn from_stats(
        config: &HlsLoadConfig,
        tracks: &[Track],
        plan: &Plan,
        stats: &ThreadStats,
    ) -> Self {
        let seconds = config.duration.as_secs_f64();
        let per_sec = |count: u64| count as f64 / seconds;
        let kinds: Vec<KindReport> = Kind::ALL
            .iter()
            .map(|&kind| {
                let s = &stats.kinds[kind.index()];
                KindReport {
                    kind,
                    requests: s.requests,
                    requests_per_sec: per_sec(s.requests),
                    body_bytes: s.body_bytes,
                    latency_us: LatencyUs::from_histogram(&s.latency_ns),
                    errors: s.errors,
                    errors_total: s.errors.total(),
                }
            })
            .collect();
        let mut errors = ErrorCounts::default();
        for kind in &kinds {
            errors.add(&kind.errors);
        }
        let requests = kinds.iter().map(|k| k.requests).sum();
        let window_ms = (plan.wall_ms(plan.warmup_end), plan.wall_ms(plan.end));
        let latencies: Vec<f64> = stats
            .sightings
            .values()
            .filter(|s| s.first_seen_ms >= window_ms.0 && s.first_seen_ms < window_ms.1)
            .map(|s| ingest_latency_ms(s.first_seen_ms, s.media_end_ms))
            .collect();
        Self {
            url: config.url.text.clone(),
            mode: config.mode,
            tracks: tracks.iter().map(|t| t.path.clone()).collect(),
            viewers: config.viewers,
            connections: config.viewers * tracks.len(),
            threads: config.threads,
            warmup_s: config.warmup.as_secs_f64(),
            duration_s: seconds,
            requests,
            requests_per_sec: per_sec(requests),
            bytes_received: stats.bytes_received,
            gbit_per_sec: per_sec(stats.bytes_received) * 8.0 / 1e9,
            kinds,
            errors,
            errors_total: errors.total(),
            bad_playlists: stats.bad_playlists,
            reconnects: stats.reconnects,
            resyncs: stats.resyncs,
            stalls: stats.stalls,
            stall_s: stats.stall_s,
            viewers_stalled: stats.viewers_stalled,
            buffer_end_mean_s: stats.buffer_end_s / config.viewers as f64,
            ingest_latency_ms: IngestLatencyMs::from_samples(latencies),
            client_cpu_percent: 0.0,
        }
    }

    /// The human-readable table printed to stdout.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "target      {}", self.url);
        let _ = writeln!(out, "tracks      {}", self.tracks.join(", "));
        let _ = writeln!(
            out,
            "load        {} viewers ({} connections), mode {}, {} thread(s); {:.1} s measured after {:.1} s warm-up",
            self.viewers,
            self.connections,
            self.mode.name(),
            self.threads,
            self.duration_s,
            self.warmup_s
        );
        let _ = writeln!(
            out,
            "requests    {} ({:.0} req/s); received {} bytes ({:.3} Gbit/s)",
            self.requests, self.requests_per_sec, self.bytes_received, self.gbit_per_sec
        );
        let _ = writeln!(
            out,
            "  {:<18} {:>9} {:>12} {:>10} {:>10} {:>10} {:>10} {:>7}",
            "kind", "req/s", "body bytes", "p50 us", "p99 us", "p99.9 us", "max us", "errors"
        );
        for kind in self
            .kinds
            .iter()
            .filter(|k| k.requests > 0 || k.errors_total > 0)
        {
            let lat = &kind.latency_us;
            let _ = writeln!(
                out,
                "  {:<18} {:>9.1} {:>12} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>7}",
                kind.kind.name(),
                kind.requests_per_sec,
                kind.body_bytes,
                lat.p50,
                lat.p99,
                lat.p999,
                lat.max,
                kind.errors_total
            );
        }
        let _ = writeln!(
            out,
            "stalls      {} in the window, {:.3} s in total; {} of {} viewers stalled; buffer at the end {:.2} s (mean)",
            self.stalls, self.stall_s, self.viewers_stalled, self.viewers, self.buffer_end_mean_s
        );
        let ingest = &self.ingest_latency_ms;
        let item = match self.mode {
            HlsMode::Segments => "segments",
            HlsMode::Parts => "parts",
        };
        if ingest.samples == 0 {
            let _ = writeln!(
                out,
                "ingest ms   n/a (no {item} with a program date time first seen in the window)"
            );
        } else {
            let _ = writeln!(
                out,
                "ingest ms   p50 {:.1}  p99 {:.1}  max {:.1}  min {:.1}  ({} {item})",
                ingest.p50, ingest.p99, ingest.max, ingest.min, ingest.samples
            );
        }
        let err = &self.errors;
        let _ = writeln!(
            out,
            "errors      {} (connect {}, status {}, body {}, parse {}, closed {}, timeout {}); bad playlists {}; reconnects {}; resyncs {}\n\
             client cpu  {:.0} %",
            self.errors_total,
            err.connect,
            err.status,
            err.body,
            err.parse,
            err.closed,
            err.timeout,
            self.bad_playlists,
            self.reconnects,
            self.resyncs,
            self.client_cpu_percent
        );
        out
    }
}

impl IngestLatencyMs {
    /// Nearest-rank percentiles of the samples (all zero for none).
    pub fn from_samples(mut samples: Vec<f64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let index = (q * samples.len() as f64).ceil() as usize;
            samples[index.clamp(1, samples.len()) - 1]
        };
        Self {
            samples: samples.len() as u64,
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
            min: samples[0],
        }
    }
}

/// Ingest latency of one segment or part: when it was first listed (`first_seen_ms`, wall
/// clock) minus the wall-clock time of its last frame (`media_end_ms`, from
/// [`media_end_ms`]).
pub fn ingest_latency_ms(first_seen_ms: f64, media_end_ms: f64) -> f64 {
    first_seen_ms - media_end_ms
}

/// The wall-clock time (ms since the epoch) at which the media of a part ends: its
/// segment's program date time, plus the durations of the parts before it in the segment,
/// plus its own duration. For a whole segment the offset is 0 and the duration the
/// segment's.
///
/// The program date time that shardcast writes is the server's wall clock when the stream's
/// first sample arrived, advanced by media time; so this is when the part's last frame
/// would have arrived had the publisher sent in real time with no jitter since the first
/// sample (`ffmpeg -re` paces to that).
pub fn media_end_ms(segment_program_date_time_ms: f64, offset_s: f64, duration_s: f64) -> f64 {
    segment_program_date_time_ms + (offset_s + duration_s) * 1000.0
}

// ---------------------------------------------------------------------------------------
// Playlists.

/// A parsed playlist.
#[derive(Debug, Clone, PartialEq)]
pub enum Playlist {
    /// Has `EXT-X-STREAM-INF`.
    Multivariant(MultivariantPlaylist),
    /// Has segments or parts (or nothing yet).
    Media(MediaPlaylist),
}

/// Why a playlist was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    /// The text does not start with `#EXTM3U`.
    #[error("not a playlist (no #EXTM3U)")]
    NotAPlaylist,
    /// A media playlist without `EXT-X-TARGETDURATION`.
    #[error("media playlist without EXT-X-TARGETDURATION")]
    NoTargetDuration,
    /// A tag's value could not be read.
    #[error("bad {tag} value `{value}`")]
    BadValue {
        /// The tag.
        tag: &'static str,
        /// What followed it.
        value: String,
    },
    /// A URI line with no `EXTINF` before it.
    #[error("segment URI `{0}` without EXTINF")]
    UriWithoutDuration(String),
}

/// A multivariant playlist: variants and renditions, in playlist order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MultivariantPlaylist {
    /// `EXT-X-STREAM-INF` entries.
    pub variants: Vec<Variant>,
    /// `EXT-X-MEDIA` entries.
    pub renditions: Vec<Rendition>,
}

/// One `EXT-X-STREAM-INF`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variant {
    /// The URI line after it.
    pub uri: String,
    /// `BANDWIDTH`.
    pub bandwidth: u64,
    /// `CODECS` (empty when absent).
    pub codecs: String,
    /// `RESOLUTION`.
    pub resolution: Option<String>,
    /// `AUDIO` (the rendition group).
    pub audio_group: Option<String>,
}

/// One `EXT-X-MEDIA`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendition {
    /// `TYPE` (`AUDIO`, `SUBTITLES`, ...).
    pub kind: String,
    /// `GROUP-ID`.
    pub group_id: String,
    /// `NAME`.
    pub name: String,
    /// `URI` (absent for a rendition muxed into the variant).
    pub uri: Option<String>,
    /// `DEFAULT=YES`.
    pub default: bool,
}

impl MultivariantPlaylist {
    /// What a player starts with: the first video variant (one with a video codec or a
    /// resolution, else the first) and the URI of its audio rendition, if separate (the
    /// `DEFAULT=YES` one of its group, else the first with a URI).
    pub fn pick(&self) -> Option<(String, Option<String>)> {
        let is_video = |v: &&Variant| {
            v.resolution.is_some()
                || ["avc1", "avc3", "hvc1", "hev1", "av01", "vp09"]
                    .iter()
                    .any(|c| v.codecs.contains(c))
        };
        let variant = self
            .variants
            .iter()
            .find(is_video)
            .or_else(|| self.variants.first())?;
        let audio = variant.audio_group.as_ref().and_then(|group| {
            let candidates = || {
                self.renditions
                    .iter()
                    .filter(|r| r.kind == "AUDIO" && &r.group_id == group && r.uri.is_some())
            };
            candidates()
                .find(|r| r.default)
                .or_else(|| candidates().next())
                .and_then(|r| r.uri.clone())
        });
        Some((variant.uri.clone(), audio))
    }
}

/// A media playlist: the tags a player needs, complete segments, and the parts of the
/// segment in progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPlaylist {
    /// `EXT-X-TARGETDURATION`, seconds.
    pub target_duration_s: f64,
    /// `EXT-X-MEDIA-SEQUENCE` (0 when absent).
    pub media_sequence: u64,
    /// `EXT-X-PART-INF:PART-TARGET`, seconds.
    pub part_target_s: Option<f64>,
    /// `EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// `EXT-X-SERVER-CONTROL:HOLD-BACK`, seconds.
    pub hold_back_s: Option<f64>,
    /// `EXT-X-SERVER-CONTROL:PART-HOLD-BACK`, seconds.
    pub part_hold_back_s: Option<f64>,
    /// `EXT-X-MAP:URI`.
    pub map_uri: Option<String>,
    /// Complete segments, oldest first.
    pub segments: Vec<MediaSegment>,
    /// Parts of the segment in progress (media sequence number [`Self::next_msn`]).
    pub trailing_parts: Vec<MediaPart>,
    /// Program date time of the segment in progress, ms since the epoch.
    pub trailing_program_date_time_ms: Option<f64>,
    /// `EXT-X-PRELOAD-HINT:TYPE=PART` URI.
    pub preload_hint: Option<String>,
    /// `EXT-X-ENDLIST`.
    pub ended: bool,
}

/// A complete segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaSegment {
    /// Media sequence number.
    pub msn: u64,
    /// Its URI as written.
    pub uri: String,
    /// `EXTINF` duration, seconds.
    pub duration_s: f64,
    /// Its program date time, ms since the epoch: from its own `EXT-X-PROGRAM-DATE-TIME`, or
    /// the previous segment's plus that one's duration.
    pub program_date_time_ms: Option<f64>,
    /// Its parts, when the playlist still lists them.
    pub parts: Vec<MediaPart>,
}

/// An `EXT-X-PART`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPart {
    /// Its URI as written.
    pub uri: String,
    /// `DURATION`, seconds.
    pub duration_s: f64,
    /// `INDEPENDENT=YES`.
    pub independent: bool,
}

impl MediaPlaylist {
    /// Media sequence number of the segment in progress (after the last complete one).
    pub fn next_msn(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }

    /// The complete segment `msn`, if listed.
    pub fn segment(&self, msn: u64) -> Option<&MediaSegment> {
        let index = usize::try_from(msn.checked_sub(self.media_sequence)?).ok()?;
        self.segments.get(index)
    }
}

/// Parses a multivariant or media playlist.
pub fn parse_playlist(text: &str) -> Result<Playlist, PlaylistError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err(PlaylistError::NotAPlaylist);
    }
    if text.contains("#EXT-X-STREAM-INF:") {
        return Ok(Playlist::Multivariant(parse_multivariant(lines)));
    }
    parse_media(lines).map(Playlist::Media)
}

fn parse_multivariant<'a>(lines: impl Iterator<Item = &'a str>) -> MultivariantPlaylist {
    let mut playlist = MultivariantPlaylist::default();
    let mut pending: Option<Variant> = None;
    for line in lines {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let mut variant = Variant::default();
            for (name, value) in attributes(attrs) {
                match name {
                    "BANDWIDTH" => variant.bandwidth = value.parse().unwrap_or(0),
                    "CODECS" => variant.codecs = value.to_owned(),
                    "RESOLUTION" => variant.resolution = Some(value.to_owned()),
                    "AUDIO" => variant.audio_group = Some(value.to_owned()),
                    _ => {}
                }
            }
            pending = Some(variant);
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-MEDIA:") {
            let mut rendition = Rendition::default();
            for (name, value) in attributes(attrs) {
                match name {
                    "TYPE" => rendition.kind = value.to_owned(),
                    "GROUP-ID" => rendition.group_id = value.to_owned(),
                    "NAME" => rendition.name = value.to_owned(),
                    "URI" => rendition.uri = Some(value.to_owned()),
                    "DEFAULT" => rendition.default = value == "YES",
                    _ => {}
                }
            }
            playlist.renditions.push(rendition);
        } else if !line.starts_with('#') {
            if let Some(mut variant) = pending.take() {
                variant.uri = line.to_owned();
                playlist.variants.push(variant);
            }
        }
    }
    playlist
}

fn parse_media<'a>(lines: impl Iterator<Item = &'a str>) -> Result<MediaPlaylist, PlaylistError> {
    let mut playlist = MediaPlaylist::default();
    let mut target_duration = None;
    let mut duration: Option<f64> = None;
    let mut program_date_time: Option<f64> = None;
    let mut parts: Vec<MediaPart> = Vec::new();
    for line in lines {
        let Some(tag) = line.strip_prefix('#') else {
            let duration_s = duration
                .take()
                .ok_or_else(|| PlaylistError::UriWithoutDuration(line.to_owned()))?;
            let previous_end = playlist
                .segments
                .last()
                .and_then(|s| Some(s.program_date_time_ms? + s.duration_s * 1000.0));
            playlist.segments.push(MediaSegment {
                msn: playlist.next_msn(),
                uri: line.to_owned(),
                duration_s,
                program_date_time_ms: program_date_time.take().or(previous_end),
                parts: std::mem::take(&mut parts),
            });
            continue;
        };
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        match name {
            "EXT-X-TARGETDURATION" => {
                target_duration = Some(number(value, "EXT-X-TARGETDURATION")?);
            }
            "EXT-X-MEDIA-SEQUENCE" => {
                playlist.media_sequence = value.parse().map_err(|_| PlaylistError::BadValue {
                    tag: "EXT-X-MEDIA-SEQUENCE",
                    value: value.to_owned(),
                })?;
            }
            "EXT-X-PART-INF" => {
                for (name, value) in attributes(value) {
                    if name == "PART-TARGET" {
                        playlist.part_target_s = Some(number(value, "PART-TARGET")?);
                    }
                }
            }
            "EXT-X-SERVER-CONTROL" => {
                for (name, value) in attributes(value) {
                    match name {
                        "CAN-BLOCK-RELOAD" => playlist.can_block_reload = value == "YES",
                        "HOLD-BACK" => playlist.hold_back_s = Some(number(value, "HOLD-BACK")?),
                        "PART-HOLD-BACK" => {
                            playlist.part_hold_back_s = Some(number(value, "PART-HOLD-BACK")?);
                        }
                        _ => {}
                    }
                }
            }
            "EXT-X-MAP" => {
                playlist.map_uri = attributes(value)
                    .find(|(name, _)| *name == "URI")
                    .map(|(_, uri)| uri.to_owned());
            }
            "EXT-X-PROGRAM-DATE-TIME" => {
                program_date_time = Some(parse_program_date_time(value).ok_or_else(|| {
                    PlaylistError::BadValue {
                        tag: "EXT-X-PROGRAM-DATE-TIME",
                        value: value.to_owned(),
                    }
                })?);
            }
            "EXTINF" => {
                let seconds = value.split(',').next().unwrap_or("");
                duration = Some(number(seconds, "EXTINF")?);
            }
            "EXT-X-PART" => {
                let mut part = MediaPart::default();
                for (name, value) in attributes(value) {
                    match name {
                        "DURATION" => part.duration_s = number(value, "EXT-X-PART DURATION")?,
                        "URI" => part.uri = value.to_owned(),
                        "INDEPENDENT" => part.independent = value == "YES",
                        _ => {}
                    }
                }
                parts.push(part);
            }
            "EXT-X-PRELOAD-HINT" => {
                let mut attrs = attributes(value);
                if attrs.clone().any(|(n, v)| n == "TYPE" && v == "PART") {
                    playlist.preload_hint =
                        attrs.find(|(n, _)| *n == "URI").map(|(_, u)| u.to_owned());
                }
            }
            "EXT-X-ENDLIST" => playlist.ended = true,
            _ => {}
        }
    }
    playlist.target_duration_s = target_duration.ok_or(PlaylistError::NoTargetDuration)?;
    let previous_end = playlist
        .segments
        .last()
        .and_then(|s| Some(s.program_date_time_ms? + s.duration_s * 1000.0));
    playlist.trailing_program_date_time_ms = program_date_time.or(previous_end);
    playlist.trailing_parts = parts;
    Ok(playlist)
}

fn number(value: &str, tag: &'static str) -> Result<f64, PlaylistError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| PlaylistError::BadValue {
            tag,
            value: value.to_owned(),
        })
}

/// The `NAME=VALUE` pairs of an attribute list, with quoted values unquoted (commas inside
/// quotes do not separate).
fn attributes(list: &str) -> impl Iterator<Item = (&str, &str)> + Clone {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.is_empty() {
            return None;
        }
        let equals = rest.find('=')?;
        let name = rest[..equals].trim();
        let after = &rest[equals + 1..];
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let close = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..close], quoted.get(close + 1..).unwrap_or(""))
        } else {
            let comma = after.find(',').unwrap_or(after.len());
            (&after[..comma], &after[comma..])
        };
        rest = remaining;
        Some((name, value))
    })
}

/// Parses an ISO 8601 date-time as written in `EXT-X-PROGRAM-DATE-TIME`
/// (`2026-11-22T01:24:53.506Z`, `...+02:00`, `...+0200`) into ms since the epoch.
pub fn parse_program_date_time(text: &str) -> Option<f64> {
    let text = text.trim();
    let (date, time) = text.split_once('T')?;
    let mut date_fields = date.split('-');
    let year: i64 = date_fields.next()?.parse().ok()?;
    let month: i64 = date_fields.next()?.parse().ok()?;
    let day: i64 = date_fields.next()?.parse().ok()?;
    if date_fields.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let zone_at = time.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = time.split_at(zone_at);
    let offset_minutes = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = digits[..2].parse().ok()?;
            let minutes: i64 = digits[2..].parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    let mut clock_fields = clock.split(':');
    let hour: i64 = clock_fields.next()?.parse().ok()?;
    let minute: i64 = clock_fields.next()?.parse().ok()?;
    let second: f64 = clock_fields.next()?.parse().ok()?;
    if clock_fields.next().is_some() || hour > 23 || minute > 59 || !(0.0..61.0).contains(&second) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let whole_s = days * 86_400 + hour * 3600 + minute * 60 - offset_minutes * 60;
    Some(whole_s as f64 * 1000.0 + second * 1000.0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The request target for `uri` as written in the playlist at `base` (a request target):
/// absolute paths are kept, `http://` URLs give their path, relative URIs are resolved
/// against the playlist's directory (with `.` and `..` segments).
pub fn resolve_uri(base: &str, uri: &str) -> Result<String, String> {
    if let Some(rest) = uri.strip_prefix("http://") {
        return Ok(rest
            .find('/')
            .map_or("/".to_owned(), |slash| rest[slash..].to_owned()));
    }
    if uri.contains("://") {
        return Err(format!("`{uri}`: only http:// URIs are followed"));
    }
    if uri.starts_with('/') {
        return Ok(uri.to_owned());
    }
    let base_path = base.split(['?', '#']).next().unwrap_or(base);
    let directory = &base_path[..base_path.rfind('/').map_or(0, |slash| slash + 1)];
    let (uri_path, query) = match uri.find('?') {
        Some(at) => uri.split_at(at),
        None => (uri, ""),
    };
    let mut segments: Vec<&str> = directory.split('/').filter(|s| !s.is_empty()).collect();
    let mut names = uri_path.split('/').peekable();
    while let Some(name) = names.next() {
        match name {
            "." => {}
            ".." => {
                segments.pop();
            }
            "" if names.peek().is_some() => {}
            name => segments.push(name),
        }
    }
    Ok(format!("/{}{query}", segments.join("/")))
}

// ---------------------------------------------------------------------------------------
// One viewer's decisions for one playlist (sans-io).

/// A media position: segment `msn`, part `part` (0 in segments mode).
pub type Position = (u64, u32);

/// What a [`Follower`] wants next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this request and feed the response to [`Follower::handle_response`].
    Fetch(Request),
    /// Nothing to do before this time (since the run's start); ask again then.
    WaitUntil(Duration),
    /// The stream ended and everything listed was fetched.
    Done,
}

/// One request of a [`Follower`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What it is for.
    pub kind: Kind,
    /// Request target.
    pub path: String,
}

/// How a request went, as fed back to [`Follower::handle_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// A response; `body` is the body for playlists (empty for media, which is not kept).
    Response {
        /// HTTP status.
        status: u16,
        /// Body of a playlist response.
        body: &'a [u8],
    },
    /// No response (connection closed, timed out, unframable).
    Failed,
}

/// What a [`Follower`] learned, for the caller to account.
#[derive(Debug, Clone, PartialEq)]
pub enum FollowerEvent {
    /// Media of this many seconds was downloaded (feed it to [`Playback::handle_media`]).
    Media {
        /// Seconds of media.
        media_s: f64,
    },
    /// A segment (segments mode, `part` is `None`) or part first appeared in a playlist
    /// this follower received.
    Available {
        /// Its segment.
        msn: u64,
        /// Its part index within the segment.
        part: Option<u32>,
        /// When its last frame was taken, ms since the epoch ([`media_end_ms`]); `None`
        /// without a program date time.
        media_end_ms: Option<f64>,
    },
    /// The next position fell out of the playlist window; the follower started again at the
    /// live edge.
    Resync,
    /// A playlist response could not be parsed.
    BadPlaylist,
}

/// What the request in flight was for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pending {
    Playlist,
    Init,
    Media { media_s: f64, then: Position },
}

/// One viewer following one media playlist.
///
/// Call [`Follower::poll_action`] with the time since the start of the run; after a
/// [`Action::Fetch`], send it and call [`Follower::handle_response`] with the outcome before
/// polling again; drain [`Follower::poll_event`] after each response.
#[derive(Debug)]
pub struct Follower {
    mode: HlsMode,
    playlist_path: String,
    playlist: Option<MediaPlaylist>,
    last_reload: Duration,
    reload_now: bool,
    retry_at: Duration,
    init_done: bool,
    next: Option<Position>,
    /// Newest segment or part already announced; `None` until the first playlist (whose
    /// contents are not announced: they were there before this viewer came).
    announced: Option<Position>,
    pending: Option<Pending>,
    events: VecDeque<FollowerEvent>,
}

/// Where the next position is in the current playlist.
#[derive(Debug, Clone, PartialEq)]
enum Lookup {
    /// Listed: fetch `uri`.
    Listed {
        kind: Kind,
        uri: String,
        media_s: f64,
        then: Position,
    },
    /// Not listed yet.
    NotYet,
    /// Past the end of a complete segment: go on at the next segment.
    Skip(Position),
    /// Older than the playlist's window.
    Gone,
}

impl Follower {
    /// A follower of the media playlist at request target `playlist_path`.
    pub fn new(mode: HlsMode, playlist_path: String) -> Self {
        Self {
            mode,
            playlist_path,
            playlist: None,
            last_reload: Duration::ZERO,
            reload_now: true,
            retry_at: Duration::ZERO,
            init_done: false,
            next: None,
            announced: None,
            pending: None,
            events: VecDeque::new(),
        }
    }

    /// The next position to fetch, once known.
    pub fn next_position(&self) -> Option<Position> {
        self.next
    }

    /// What to do at `now` (time since the start of the run).
    pub fn poll_action(&mut self, now: Duration) -> Action {
        assert!(
            self.pending.is_none(),
            "poll_action with a request in flight"
        );
        if now < self.retry_at {
            return Action::WaitUntil(self.retry_at);
        }
        let Some(playlist) = self.playlist.as_ref().filter(|_| !self.reload_now) else {
            return self.fetch_playlist(Kind::Playlist, self.playlist_path.clone());
        };
        if !self.init_done {
            if let Some(uri) = &playlist.map_uri {
                let path = self.resolve(uri);
                self.pending = Some(Pending::Init);
                return Action::Fetch(Request {
                    kind: Kind::Init,
                    path,
                });
            }
        }
        loop {
            let next = self
                .next
                .expect("a position is chosen with the first playlist");
            match self.lookup(next) {
                Lookup::Listed {
                    kind,
                    uri,
                    media_s,
                    then,
                } => {
                    let path = self.resolve(&uri);
                    self.pending = Some(Pending::Media { media_s, then });
                    return Action::Fetch(Request { kind, path });
                }
                Lookup::Skip(position) => self.next = Some(position),
                Lookup::Gone => {
                    self.events.push_back(FollowerEvent::Resync);
                    self.next = Some(self.start_position());
                    if self.lookup(self.next.unwrap_or_default()) == Lookup::Gone {
                        return self.fetch_playlist(Kind::Playlist, self.playlist_path.clone());
                    }
                }
                Lookup::NotYet => return self.wait_for(next, now),
            }
        }
    }

    /// Feeds back how the request from the last [`Action::Fetch`] went, at `now`.
    pub fn handle_response(&mut self, now: Duration, outcome: Outcome<'_>) {
        let pending = self.pending.take().expect("a response with no request");
        let (status, body) = match outcome {
            Outcome::Response { status, body } => (status, body),
            Outcome::Failed => (0, &[][..]),
        };
        if status != 200 {
            self.retry_at = now + RETRY_PAUSE;
            self.reload_now = true;
            return;
        }
        match pending {
            Pending::Playlist => self.handle_playlist(now, body),
            Pending::Init => self.init_done = true,
            Pending::Media { media_s, then } => {
                self.events.push_back(FollowerEvent::Media { media_s });
                self.next = Some(then);
            }
        }
    }

    /// The next thing learned, if any.
    pub fn poll_event(&mut self) -> Option<FollowerEvent> {
        self.events.pop_front()
    }

    fn handle_playlist(&mut self, now: Duration, body: &[u8]) {
        self.last_reload = now;
        let parsed = std::str::from_utf8(body)
            .ok()
            .and_then(|text| parse_playlist(text).ok());
        let Some(Playlist::Media(playlist)) = parsed else {
            self.events.push_back(FollowerEvent::BadPlaylist);
            self.retry_at = now + RETRY_PAUSE;
            return;
        };
        self.reload_now = false;
        self.announce(&playlist);
        self.playlist = Some(playlist);
        if self.next.is_none() {
            self.next = Some(self.start_position());
        }
    }

    /// Announces what this playlist lists beyond what was already announced; the first
    /// playlist only sets the mark.
    fn announce(&mut self, playlist: &MediaPlaylist) {
        let mut newest = self.announced;
        let mut announce = |position: Position, part: Option<u32>, end: Option<f64>| {
            if newest.is_some_and(|seen| position <= seen) {
                return;
            }
            if self.announced.is_some() {
                self.events.push_back(FollowerEvent::Available {
                    msn: position.0,
                    part,
                    media_end_ms: end,
                });
            }
            newest = Some(position);
        };
        match self.mode {
            HlsMode::Segments => {
                for segment in &playlist.segments {
                    let end = segment
                        .program_date_time_ms
                        .map(|pdt| media_end_ms(pdt, 0.0, segment.duration_s));
                    announce((segment.msn, 0), None, end);
                }
            }
            HlsMode::Parts => {
                let listed = playlist
                    .segments
                    .iter()
                    .map(|s| (s.msn, s.program_date_time_ms, &s.parts))
                    .chain(std::iter::once((
                        playlist.next_msn(),
                        playlist.trailing_program_date_time_ms,
                        &playlist.trailing_parts,
                    )));
                for (msn, pdt, parts) in listed {
                    let mut offset_s = 0.0;
                    for (index, part) in parts.iter().enumerate() {
                        let end = pdt.map(|pdt| media_end_ms(pdt, offset_s, part.duration_s));
                        let index = index as u32;
                        announce((msn, index), Some(index), end);
                        offset_s += part.duration_s;
                    }
                }
            }
        }
        // A restarted stream (numbers went backwards) starts the marks over.
        if let (Some(seen), Some(last)) = (self.announced, playlist.segments.last()) {
            if last.msn + 1 < seen.0 {
                newest = Some((playlist.next_msn(), 0));
                self.next = None;
            }
        }
        self.announced = newest.or(Some((playlist.media_sequence, 0)));
    }

    /// Where a player joining now starts: `HOLD-BACK` (segments) or `PART-HOLD-BACK` (parts,
    /// at an independent part) from the end of the playlist.
    fn start_position(&self) -> Position {
        let playlist = self.playlist.as_ref().expect("a playlist was received");
        match self.mode {
            HlsMode::Segments => (segments_start(playlist), 0),
            HlsMode::Parts => parts_start(playlist),
        }
    }

    fn lookup(&self, (msn, part): Position) -> Lookup {
        let playlist = self.playlist.as_ref().expect("a playlist was received");
        if msn < playlist.media_sequence {
            return Lookup::Gone;
        }
        let whole = |segment: &MediaSegment| Lookup::Listed {
            kind: Kind::Segment,
            uri: segment.uri.clone(),
            media_s: segment.duration_s,
            then: (msn + 1, 0),
        };
        let part_of = |parts: &[MediaPart]| {
            parts.get(part as usize).map(|p| Lookup::Listed {
                kind: Kind::Part,
                uri: p.uri.clone(),
                media_s: p.duration_s,
                then: (msn, part + 1),
            })
        };
        match (self.mode, playlist.segment(msn)) {
            (HlsMode::Segments, Some(segment)) => whole(segment),
            (HlsMode::Parts, Some(segment)) if segment.parts.is_empty() && part == 0 => {
                whole(segment)
            }
            (HlsMode::Parts, Some(segment)) => {
                part_of(&segment.parts).unwrap_or(Lookup::Skip((msn + 1, 0)))
            }
            (HlsMode::Parts, None) if msn == playlist.next_msn() => {
                part_of(&playlist.trailing_parts).unwrap_or(Lookup::NotYet)
            }
            _ => Lookup::NotYet,
        }
    }

    /// The next position is not listed yet: reload (blocking in parts mode), or wait.
    fn wait_for(&mut self, (msn, part): Position, now: Duration) -> Action {
        let playlist = self.playlist.as_ref().expect("a playlist was received");
        if playlist.ended {
            return Action::Done;
        }
        if self.mode == HlsMode::Parts && playlist.can_block_reload {
            let separator = if self.playlist_path.contains('?') {
                '&'
            } else {
                '?'
            };
            let path = format!(
                "{}{separator}_HLS_msn={msn}&_HLS_part={part}",
                self.playlist_path
            );
            return self.fetch_playlist(Kind::BlockingPlaylist, path);
        }
        let interval = match self.mode {
            HlsMode::Segments => playlist.target_duration_s / 2.0,
            HlsMode::Parts => playlist.part_target_s.unwrap_or(playlist.target_duration_s) / 2.0,
        };
        let due = self.last_reload + Duration::from_secs_f64(interval.max(0.01));
        if now < due {
            return Action::WaitUntil(due);
        }
        self.fetch_playlist(Kind::Playlist, self.playlist_path.clone())
    }

    fn fetch_playlist(&mut self, kind: Kind, path: String) -> Action {
        self.pending = Some(Pending::Playlist);
        Action::Fetch(Request { kind, path })
    }

    fn resolve(&self, uri: &str) -> String {
        resolve_uri(&self.playlist_path, uri).unwrap_or_else(|_| uri.to_owned())
    }
}

/// The segment `HOLD-BACK` (else three target durations) from the end of the playlist.
fn segments_start(playlist: &MediaPlaylist) -> u64 {
    let hold_back_s = playlist
        .hold_back_s
        .unwrap_or(3.0 * playlist.target_duration_s);
    let mut behind_s = 0.0;
    for segment in playlist.segments.iter().rev() {
        behind_s += segment.duration_s;
        if behind_s >= hold_back_s {
            return segment.msn;
        }
    }
    playlist.media_sequence
}

/// The independent part at or before the one `PART-HOLD-BACK` (else three part targets)
/// from the end of the playlist. Without listed parts, the segment start.
fn parts_start(playlist: &MediaPlaylist) -> Position {
    let part_target_s = playlist.part_target_s.unwrap_or(playlist.target_duration_s);
    let hold_back_s = playlist.part_hold_back_s.unwrap_or(3.0 * part_target_s);
    let parts: Vec<(Position, &MediaPart)> = playlist
        .segments
        .iter()
        .map(|s| (s.msn, &s.parts))
        .chain(std::iter::once((
            playlist.next_msn(),
            &playlist.trailing_parts,
        )))
        .flat_map(|(msn, parts)| {
            parts
                .iter()
                .enumerate()
                .map(move |(i, part)| ((msn, i as u32), part))
        })
        .collect();
    if parts.is_empty() {
        return (segments_start(playlist), 0);
    }
    let mut behind_s = 0.0;
    let mut start = 0;
    for (index, (_, part)) in parts.iter().enumerate().rev() {
        behind_s += part.duration_s;
        if behind_s >= hold_back_s {
            start = index;
            break;
        }
    }
    while start > 0 && !parts[start].1.independent {
        start -= 1;
    }
    parts[start].0
}

// ---------------------------------------------------------------------------------------
// The buffer of one viewer (sans-io).

/// A viewer's playback buffer, modelled from downloaded media against wall time.
///
/// Playback starts when every track has some media. From then the play position advances
/// with wall time, except while stalled; the buffer is the media downloaded on the least
/// supplied track minus the position. When it reaches zero the viewer stalls, and playback
/// resumes as soon as more media of that track arrives (a real player would wait for a
/// little more; this model counts the shortest possible stall). Times are seconds since the
/// start of the run; call with non-decreasing times.
#[derive(Debug, Clone)]
pub struct Playback {
    downloaded_s: Vec<f64>,
    started_s: Option<f64>,
    /// Stall time of finished stalls.
    stalled_s: f64,
    stall_since_s: Option<f64>,
    window: (f64, f64),
    stalls: u64,
    stall_in_window_s: f64,
}

impl Playback {
    /// A viewer of `tracks` tracks; stalls are counted when they begin in `window_s`, and
    /// their time where it overlaps it.
    pub fn new(tracks: usize, window_s: (f64, f64)) -> Self {
        assert!(tracks >= 1);
        Self {
            downloaded_s: vec![0.0; tracks],
            started_s: None,
            stalled_s: 0.0,
            stall_since_s: None,
            window: window_s,
            stalls: 0,
            stall_in_window_s: 0.0,
        }
    }

    /// `media_s` seconds of `track` finished downloading at `now_s`.
    pub fn handle_media(&mut self, now_s: f64, track: usize, media_s: f64) {
        self.handle_time(now_s);
        self.downloaded_s[track] += media_s;
        if self.started_s.is_none() && self.downloaded_s.iter().all(|d| *d > 0.0) {
            self.started_s = Some(now_s);
        }
        if let (Some(since), Some(started)) = (self.stall_since_s, self.started_s) {
            let frozen_position = since - started - self.stalled_s;
            if self.least_downloaded_s() > frozen_position + 1e-9 {
                self.end_stall(since, now_s);
            }
        }
    }

    /// Advances the model to `now_s`: notices a buffer that ran dry.
    pub fn handle_time(&mut self, now_s: f64) {
        let (Some(started), None) = (self.started_s, self.stall_since_s) else {
            return;
        };
        let dry_at = started + self.stalled_s + self.least_downloaded_s();
        if now_s > dry_at {
            self.stall_since_s = Some(dry_at);
            if dry_at >= self.window.0 && dry_at < self.window.1 {
                self.stalls += 1;
            }
        }
    }

    /// Ends the model at `now_s` (the end of the run), counting a stall still going on.
    pub fn finish(&mut self, now_s: f64) {
        self.handle_time(now_s);
        if let Some(since) = self.stall_since_s {
            self.end_stall(since, now_s);
        }
    }

    /// Stalls that began in the window.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// Stall time inside the window, seconds.
    pub fn stall_in_window_s(&self) -> f64 {
        self.stall_in_window_s
    }

    /// Whether playback started.
    pub fn started(&self) -> bool {
        self.started_s.is_some()
    }

    /// Media buffered ahead of the play position at `now_s` (0 while stalled).
    pub fn buffered_s(&self, now_s: f64) -> f64 {
        let Some(started) = self.started_s else {
            return self.least_downloaded_s();
        };
        if self.stall_since_s.is_some() {
            return 0.0;
        }
        (self.least_downloaded_s() - (now_s - started - self.stalled_s)).max(0.0)
    }

    fn least_downloaded_s(&self) -> f64 {
        self.downloaded_s
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
    }

    fn end_stall(&mut self, since: f64, now_s: f64) {
        self.stalled_s += now_s - since;
        let overlap = now_s.min(self.window.1) - since.max(self.window.0);
        self.stall_in_window_s += overlap.max(0.0);
        self.stall_since_s = None;
    }
}

// ---------------------------------------------------------------------------------------
// The load: threads, viewers, connections.

/// The timeline shared by every viewer of a run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    begin: Instant,
    warmup_end: Instant,
    end: Instant,
    timeout: Duration,
    /// Wall clock at `begin`, ms since the epoch.
    wall_begin_ms: f64,
    join_spread: Duration,
}

impl Plan {
    fn is_measuring(&self, now: Instant) -> bool {
        now >= self.warmup_end && now < self.end
    }

    fn wall_ms(&self, at: Instant) -> f64 {
        self.wall_begin_ms + at.saturating_duration_since(self.begin).as_secs_f64() * 1000.0
    }

    fn since_begin_s(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.begin).as_secs_f64()
    }
}

/// The first sighting of one segment or part by any viewer of a thread.
#[derive(Debug, Clone, Copy)]
struct Sighting {
    first_seen_ms: f64,
    media_end_ms: f64,
}

/// What one load thread counted.
#[derive(Debug)]
struct ThreadStats {
    kinds: Vec<LoadStats>,
    bytes_received: u64,
    reconnects: u64,
    resyncs: u64,
    bad_playlists: u64,
    /// Keyed by (track, msn, part).
    sightings: HashMap<(usize, u64, Option<u32>), Sighting>,
    stalls: u64,
    stall_s: f64,
    viewers_stalled: u64,
    buffer_end_s: f64,
}

impl ThreadStats {
    fn new() -> Self {
        Self {
            kinds: Kind::ALL.iter().map(|_| LoadStats::new()).collect(),
            bytes_received: 0,
            reconnects: 0,
            resyncs: 0,
            bad_playlists: 0,
            sightings: HashMap::new(),
            stalls: 0,
            stall_s: 0.0,
            viewers_stalled: 0,
            buffer_end_s: 0.0,
        }
    }

    fn merge(&mut self, other: ThreadStats) {
        for (mine, theirs) in self.kinds.iter_mut().zip(&other.kinds) {
            mine.merge(theirs);
        }
        self.bytes_received += other.bytes_received;
        self.reconnects += other.reconnects;
        self.resyncs += other.resyncs;
        self.bad_playlists += other.bad_playlists;
        for (key, sighting) in other.sightings {
            self.sight(key, sighting);
        }
        self.stalls += other.stalls;
        self.stall_s += other.stall_s;
        self.viewers_stalled += other.viewers_stalled;
        self.buffer_end_s += other.buffer_end_s;
    }

    fn sight(&mut self, key: (usize, u64, Option<u32>), sighting: Sighting) {
        if let Some(seen) = self.sightings.get_mut(&key) {
            if sighting.first_seen_ms < seen.first_seen_ms {
                *seen = sighting;
            }
        } else if self.sightings.len() < SIGHTINGS_MAX {
            self.sightings.insert(key, sighting);
        }
    }
}

/// One load thread: a runtime driving viewers `thread`, `thread + threads`, ...
fn run_thread(
    thread: usize,
    config: &HlsLoadConfig,
    plan: &Plan,
    tracks: &[Track],
) -> io::Result<ThreadStats> {
    let mut runtime = net::build_runtime(RING_ENTRIES)?;
    let stats = Rc::new(RefCell::new(ThreadStats::new()));
    let window_s = (
        plan.since_begin_s(plan.warmup_end),
        plan.since_begin_s(plan.end),
    );
    runtime.block_on(async {
        let mut tasks = Vec::new();
        let mut viewers = Vec::new();
        for viewer in (thread..config.viewers).step_by(config.threads) {
            let playback = Rc::new(RefCell::new(Playback::new(tracks.len(), window_s)));
            let join_at = plan.begin
                + plan
                    .join_spread
                    .mul_f64(viewer as f64 / config.viewers as f64);
            for (track_index, track) in tracks.iter().enumerate() {
                let connection = viewer * tracks.len() + track_index;
                let source = (!config.source_addrs.is_empty())
                    .then(|| config.source_addrs[connection % config.source_addrs.len()]);
                let driver = TrackDriver {
                    plan: *plan,
                    stats: stats.clone(),
                    playback: playback.clone(),
                    track: track_index,
                    follower: Follower::new(config.mode, track.path.clone()),
                    client: Client::new(config.url.addr, source, config.url.authority.clone()),
                };
                tasks.push(monoio::spawn(driver.run(join_at)));
            }
            viewers.push(playback);
        }
        for task in tasks {
            task.await;
        }
        let end_s = plan.since_begin_s(plan.end);
        let mut stats = stats.borrow_mut();
        for playback in viewers {
            let mut playback = playback.borrow_mut();
            playback.finish(end_s);
            stats.stalls += playback.stalls();
            stats.stall_s += playback.stall_in_window_s();
            stats.viewers_stalled += u64::from(playback.stalls() > 0);
            stats.buffer_end_s += playback.buffered_s(end_s);
        }
    });
    let stats = std::mem::replace(&mut *stats.borrow_mut(), ThreadStats::new());
    Ok(stats)
}

/// Drives one [`Follower`] over one keep-alive connection.
struct TrackDriver {
    plan: Plan,
    stats: Rc<RefCell<ThreadStats>>,
    playback: Rc<RefCell<Playback>>,
    track: usize,
    follower: Follower,
    client: Client,
}

impl TrackDriver {
    async fn run(mut self, join_at: Instant) {
        let plan = self.plan;
        monoio::time::sleep_until(join_at.min(plan.end).into()).await;
        let mut sleep = std::pin::pin!(monoio::time::sleep_until(plan.end.into()));
        loop {
            let now = Instant::now();
            if now >= plan.end {
                return;
            }
            let request = match self.follower.poll_action(now - plan.begin) {
                Action::Done => return,
                Action::WaitUntil(at) => {
                    monoio::time::sleep_until((plan.begin + at).min(plan.end).into()).await;
                    continue;
                }
                Action::Fetch(request) => request,
            };
            let sent = Instant::now();
            let keep_body = request.kind.is_playlist();
            let result = self
                .client
                .get(&request.path, keep_body, &plan, &self.stats, sleep.as_mut())
                .await;
            let done = Instant::now();
            let since_begin = done - plan.begin;
            match result {
                Ok(fetched) => {
                    {
                        let mut stats = self.stats.borrow_mut();
                        let kind_stats = &mut stats.kinds[request.kind.index()];
                        if fetched.status != 200 {
                            kind_stats.errors.status += 1;
                        } else if plan.is_measuring(done) {
                            kind_stats.record_response(done - sent, fetched.body_bytes);
                        }
                    }
                    let body = if keep_body {
                        self.client.body()
                    } else {
                        &[][..]
                    };
                    self.follower.handle_response(
                        since_begin,
                        Outcome::Response {
                            status: fetched.status,
                            body,
                        },
                    );
                }
                Err(FetchError::RunOver) => return,
                Err(error) => {
                    let mut stats = self.stats.borrow_mut();
                    let errors = &mut stats.kinds[request.kind.index()].errors;
                    match error {
                        FetchError::Connect => errors.connect += 1,
                        FetchError::Closed => errors.closed += 1,
                        FetchError::Timeout => errors.timeout += 1,
                        FetchError::Parse => errors.parse += 1,
                        FetchError::TooLarge => errors.body += 1,
                        FetchError::RunOver => {}
                    }
                    drop(stats);
                    self.follower.handle_response(since_begin, Outcome::Failed);
                }
            }
            self.drain_events(request.kind, done);
        }
    }

    fn drain_events(&mut self, kind: Kind, done: Instant) {
        let now_s = self.plan.since_begin_s(done);
        while let Some(event) = self.follower.poll_event() {
            match event {
                FollowerEvent::Media { media_s } => {
                    self.playback
                        .borrow_mut()
                        .handle_media(now_s, self.track, media_s);
                }
                FollowerEvent::Available {
                    msn,
                    part,
                    media_end_ms: Some(media_end_ms),
                } => {
                    let sighting = Sighting {
                        first_seen_ms: self.plan.wall_ms(done),
                        media_end_ms,
                    };
                    self.stats
                        .borrow_mut()
                        .sight((self.track, msn, part), sighting);
                }
                FollowerEvent::Available { .. } => {}
                FollowerEvent::Resync => self.stats.borrow_mut().resyncs += 1,
                FollowerEvent::BadPlaylist => {
                    let mut stats = self.stats.borrow_mut();
                    stats.bad_playlists += 1;
                    stats.kinds[kind.index()].errors.body += 1;
                }
            }
        }
        self.playback.borrow_mut().handle_time(now_s);
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchError {
    /// The connection could not be opened.
    Connect,
    /// The server closed or reset the connection.
    Closed,
    /// No complete response within the timeout.
    Timeout,
    /// The response could not be framed, or more bytes than one response came.
    Parse,
    /// A playlist larger than [`PLAYLIST_MAX_BYTES`].
    TooLarge,
    /// The run ended first; nothing is counted.
    RunOver,
}

/// A response received.
#[derive(Debug, Clone, Copy)]
struct Fetched {
    status: u16,
    body_bytes: u64,
}

/// One keep-alive connection sending one request at a time (a player's connection), and
/// reopening when it was closed.
struct Client {
    target: SocketAddr,
    source: Option<Ipv4Addr>,
    authority: String,
    stream: Option<TcpStream>,
    opened_before: bool,
    parser: ResponseParser,
    canceller: Canceller,
    read_buf: Vec<u8>,
    /// Bytes of the current response when its body is kept (head included).
    raw: Vec<u8>,
    head_bytes: usize,
}

impl Client {
    fn new(target: SocketAddr, source: Option<Ipv4Addr>, authority: String) -> Self {
        Self {
            target,
            source,
            authority,
            stream: None,
            opened_before: false,
            parser: ResponseParser::new(),
            canceller: Canceller::new(),
            read_buf: Vec::with_capacity(READ_BUFFER_BYTES),
            raw: Vec::new(),
            head_bytes: 0,
        }
    }

    /// The body of the last response fetched with `keep_body`.
    fn body(&self) -> &[u8] {
        self.raw.get(self.head_bytes..).unwrap_or(&[])
    }

    async fn get(
        &mut self,
        path: &str,
        keep_body: bool,
        plan: &Plan,
        stats: &Rc<RefCell<ThreadStats>>,
        mut sleep: Pin<&mut Sleep>,
    ) -> Result<Fetched, FetchError> {
        let deadline = (Instant::now() + plan.timeout).min(plan.end);
        let give_up = |error: FetchError| {
            if Instant::now() >= plan.end {
                FetchError::RunOver
            } else {
                error
            }
        };
        if self.stream.is_none() {
            let stream = net::connect(self.target, self.source, deadline)
                .await
                .map_err(|_| give_up(FetchError::Connect))?;
            if self.opened_before {
                stats.borrow_mut().reconnects += 1;
            }
            self.opened_before = true;
            self.stream = Some(stream);
        }
        self.raw.clear();
        self.head_bytes = 0;
        self.parser.reset();
        let result = self
            .exchange(path, keep_body, plan, stats, deadline, sleep.as_mut())
            .await;
        match result {
            Ok((fetched, close)) => {
                if close {
                    self.stream = None;
                }
                Ok(fetched)
            }
            Err(error) => {
                self.stream = None;
                Err(give_up(error))
            }
        }
    }

    /// Sends one request and reads its response. Returns it and whether the server will
    /// close the connection.
    async fn exchange(
        &mut self,
        path: &str,
        keep_body: bool,
        plan: &Plan,
        stats: &Rc<RefCell<ThreadStats>>,
        deadline: Instant,
        mut sleep: Pin<&mut Sleep>,
    ) -> Result<(Fetched, bool), FetchError> {
        let stream = self.stream.as_mut().expect("connected above");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shardcast-bench\r\n\r\n",
            self.authority
        )
        .into_bytes();
        sleep.as_mut().reset(deadline.into());
        let write =
            CancelableAsyncWriteRentExt::write_all(&mut *stream, request, self.canceller.handle());
        let (result, _) = op_or_deadline(write, &mut self.canceller, sleep.as_mut()).await;
        result.map_err(|e| classify(&e))?;
        loop {
            let buf = std::mem::take(&mut self.read_buf);
            let read = stream.cancelable_read(buf, self.canceller.handle());
            let (result, buf) = op_or_deadline(read, &mut self.canceller, sleep.as_mut()).await;
            self.read_buf = buf;
            let received = match result {
                Ok(0) => return Err(FetchError::Closed),
                Ok(received) => received,
                Err(error) => return Err(classify(&error)),
            };
            if plan.is_measuring(Instant::now()) {
                stats.borrow_mut().bytes_received += received as u64;
            }
            let mut rest = &self.read_buf[..received];
            let mut done = None;
            while !rest.is_empty() {
                if done.is_some() {
                    // Bytes beyond the one response asked for.
                    return Err(FetchError::Parse);
                }
                let progress = self
                    .parser
                    .handle_bytes(rest)
                    .map_err(|_| FetchError::Parse)?;
                if keep_body {
                    if self.raw.len() + progress.consumed > PLAYLIST_MAX_BYTES + HEAD_MAX_BYTES {
                        return Err(FetchError::TooLarge);
                    }
                    self.raw.extend_from_slice(&rest[..progress.consumed]);
                }
                rest = &rest[progress.consumed..];
                done = progress.response;
            }
            self.read_buf.clear();
            if let Some(response) = done {
                self.head_bytes = response.head_bytes;
                let fetched = Fetched {
                    status: response.status,
                    body_bytes: response.body_bytes,
                };
                return Ok((fetched, response.close));
            }
        }
    }
}

/// A failed or cancelled operation: cancelled means the deadline passed.
fn classify(error: &io::Error) -> FetchError {
    if error.raw_os_error() == Some(libc::ECANCELED) {
        FetchError::Timeout
    } else {
        FetchError::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTIVARIANT: &str = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"commentary\",DEFAULT=NO,URI=\"commentary/index.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"1\",URI=\"audio/index.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\n\
        audio-only/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=892617,AVERAGE-BANDWIDTH=852923,CODECS=\"avc1.f4001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"audio\"\n\
        source/index.m3u8\n";

    /// What shardcast serves about 10 s into a stream (trimmed).
    const LL_HLS: &str = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,HOLD-BACK=6.000\n\
        #EXT-X-PART-INF:PART-TARGET=0.500\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-INDEPENDENT-SEGMENTS\n\
        #EXT-X-MAP:URI=\"init.mp4\"\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-11-22T01:24:53.506Z\n\
        #EXTINF:2.000,\n10.m4s\n\
        #EXTINF:2.000,\n11.m4s\n\
        #EXT-X-PART:DURATION=0.500,URI=\"12.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.500,URI=\"12.1.m4s\"\n\
        #EXT-X-PART:DURATION=0.500,URI=\"12.2.m4s\"\n\
        #EXT-X-PART:DURATION=0.500,URI=\"12.3.m4s\"\n\
        #EXTINF:2.000,\n12.m4s\n\
        #EXT-X-PART:DURATION=0.500,URI=\"13.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.500,URI=\"13.1.m4s\"\n\
        #EXT-X-PART:DURATION=0.500,URI=\"13.2.m4s\"\n\
        #EXT-X-PART:DURATION=0.500,URI=\"13.3.m4s\"\n\
        #EXTINF:2.000,\n13.m4s\n\
        #EXT-X-PART:DURATION=0.500,URI=\"14.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.500,URI=\"14.1.m4s\"\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.2.m4s\"\n\
        #EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=14,LAST-PART=1\n";

    /// What nginx-rtmp writes: HLS version 3, MPEG-TS, no program date time.
    const NGINX_RTMP: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:7\n\
        #EXT-X-TARGETDURATION:2\n#EXT-X-DISCONTINUITY\n\
        #EXTINF:2.000,\nbench-7.ts\n#EXTINF:2.000,\nbench-8.ts\n#EXTINF:2.000,\nbench-9.ts\n\
        #EXTINF:2.000,\nbench-10.ts\n";

    fn media(text: &str) -> MediaPlaylist {
        match parse_playlist(text).unwrap() {
            Playlist::Media(media) => media,
            other => panic!("not a media playlist: {other:?}"),
        }
    }

    fn at_ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn multivariant_picks_first_video_variant_and_default_audio() {
        let Playlist::Multivariant(playlist) = parse_playlist(MULTIVARIANT).unwrap() else {
            panic!("not multivariant");
        };
        assert_eq!(playlist.variants.len(), 2);
        assert_eq!(playlist.renditions.len(), 2);
        assert_eq!(playlist.variants[1].bandwidth, 892_617);
        assert_eq!(playlist.variants[1].codecs, "avc1.f4001f,mp4a.40.2");
        assert_eq!(playlist.variants[1].audio_group.as_deref(), Some("audio"));
        assert_eq!(
            playlist.pick(),
            Some((
                "source/index.m3u8".to_owned(),
                Some("audio/index.m3u8".to_owned())
            ))
        );
        let muxed = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhi.m3u8\n";
        let Playlist::Multivariant(muxed) = parse_playlist(muxed).unwrap() else {
            panic!("not multivariant");
        };
        assert_eq!(muxed.pick(), Some(("hi.m3u8".to_owned(), None)));
    }

    #[test]
    fn media_playlist_with_ll_hls_tags() {
        let playlist = media(LL_HLS);
        assert_eq!(playlist.target_duration_s, 2.0);
        assert_eq!(playlist.media_sequence, 10);
        assert_eq!(playlist.part_target_s, Some(0.5));
        assert!(playlist.can_block_reload);
        assert_eq!(playlist.hold_back_s, Some(6.0));
        assert_eq!(playlist.part_hold_back_s, Some(1.5));
        assert_eq!(playlist.map_uri.as_deref(), Some("init.mp4"));
        let msns: Vec<u64> = playlist.segments.iter().map(|s| s.msn).collect();
        assert_eq!(msns, vec![10, 11, 12, 13]);
        assert_eq!(playlist.next_msn(), 14);
        assert!(playlist.segments[0].parts.is_empty());
        assert_eq!(playlist.segments[2].parts.len(), 4);
        assert!(playlist.segments[2].parts[0].independent);
        assert!(!playlist.segments[2].parts[1].independent);
        assert_eq!(playlist.segments[3].uri, "13.m4s");
        assert_eq!(playlist.trailing_parts.len(), 2);
        assert_eq!(playlist.trailing_parts[1].uri, "14.1.m4s");
        assert_eq!(playlist.preload_hint.as_deref(), Some("14.2.m4s"));
        assert!(!playlist.ended);
        // The one program date time is carried forward by the durations.
        let first = parse_program_date_time("2026-11-22T01:24:53.506Z").unwrap();
        assert_eq!(playlist.segments[0].program_date_time_ms, Some(first));
        assert_eq!(
            playlist.segments[3].program_date_time_ms,
            Some(first + 6000.0)
        );
        assert_eq!(playlist.trailing_program_date_time_ms, Some(first + 8000.0));
    }

    #[test]
    fn nginx_rtmp_playlist_without_ll_hls() {
        let playlist = media(NGINX_RTMP);
        assert_eq!(playlist.media_sequence, 7);
        assert_eq!(playlist.segments.len(), 4);
        assert_eq!(playlist.segments[3].msn, 10);
        assert_eq!(playlist.segments[3].uri, "bench-10.ts");
        assert_eq!(playlist.part_target_s, None);
        assert!(!playlist.can_block_reload);
        assert_eq!(playlist.segments[0].program_date_time_ms, None);
        assert_eq!(playlist.map_uri, None);
    }

    #[test]
    fn playlist_refusals() {
        assert_eq!(parse_playlist("hello"), Err(PlaylistError::NotAPlaylist));
        assert_eq!(
            parse_playlist("#EXTM3U\n#EXTINF:2,\na.ts\n"),
            Err(PlaylistError::NoTargetDuration)
        );
        assert_eq!(
            parse_playlist("#EXTM3U\n#EXT-X-TARGETDURATION:2\na.ts\n"),
            Err(PlaylistError::UriWithoutDuration("a.ts".to_owned()))
        );
        assert!(matches!(
            parse_playlist("#EXTM3U\n#EXT-X-TARGETDURATION:x\n"),
            Err(PlaylistError::BadValue { .. })
        ));
        assert!(matches!(
            parse_playlist(
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n"
            ),
            Err(PlaylistError::BadValue { .. })
        ));
    }

    #[test]
    fn attribute_lists_with_quoted_commas() {
        let attrs: Vec<_> = attributes("A=1,B=\"x,y\",C=YES, D=\"\"").collect();
        assert_eq!(
            attrs,
            vec![("A", "1"), ("B", "x,y"), ("C", "YES"), ("D", "")]
        );
    }

    #[test]
    fn program_date_times() {
        assert_eq!(parse_program_date_time("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_program_date_time("2000-03-01T00:00:01.250Z"),
            Some(951_868_801_250.0)
        );
        assert_eq!(
            parse_program_date_time("2000-03-01T02:00:01.250+02:00"),
            parse_program_date_time("2000-03-01T00:00:01.250Z")
        );
        assert_eq!(
            parse_program_date_time("2000-02-29T23:00:00-0100"),
            Some(951_868_800_000.0)
        );
        assert_eq!(parse_program_date_time("2000-13-01T00:00:00Z"), None);
        assert_eq!(parse_program_date_time("2000-01-01T00:00:00"), None);
    }

    #[test]
    fn uri_resolution() {
        let base = "/live/bench/index.m3u8?token=t";
        assert_eq!(
            resolve_uri(base, "source/index.m3u8").unwrap(),
            "/live/bench/source/index.m3u8"
        );
        assert_eq!(
            resolve_uri("/live/bench/source/index.m3u8", "../audio/index.m3u8").unwrap(),
            "/live/bench/audio/index.m3u8"
        );
        assert_eq!(
            resolve_uri("/hls/bench.m3u8", "bench-3.ts").unwrap(),
            "/hls/bench-3.ts"
        );
        assert_eq!(resolve_uri(base, "/x/y.ts?a=1").unwrap(), "/x/y.ts?a=1");
        assert_eq!(
            resolve_uri(base, "3.m4s?token=t").unwrap(),
            "/live/bench/3.m4s?token=t"
        );
        assert_eq!(resolve_uri(base, "http://h:1/a/b.ts").unwrap(), "/a/b.ts");
        assert!(resolve_uri(base, "https://h/a.ts").is_err());
    }

    #[test]
    fn ingest_latency_arithmetic() {
        let pdt = parse_program_date_time("2026-11-22T01:24:53.506Z").unwrap();
        // Part 2 of a segment: two 0.5 s parts before it, 0.5 s long itself.
        let end = media_end_ms(pdt, 1.0, 0.5);
        assert_eq!(end, pdt + 1500.0);
        assert_eq!(ingest_latency_ms(end + 42.0, end), 42.0);
        assert_eq!(ingest_latency_ms(end - 3.0, end), -3.0);
        let summary = IngestLatencyMs::from_samples((1..=100).map(f64::from).collect());
        assert_eq!(
            (
                summary.samples,
                summary.p50,
                summary.p99,
                summary.max,
                summary.min
            ),
            (100, 50.0, 99.0, 100.0, 1.0)
        );
        assert_eq!(
            IngestLatencyMs::from_samples(Vec::new()),
            IngestLatencyMs::default()
        );
    }

    #[test]
    fn follower_announces_parts_with_their_end_times() {
        let mut follower =
            Follower::new(HlsMode::Parts, "/live/bench/source/index.m3u8".to_owned());
        feed_playlist(&mut follower, at_ms(0), LL_HLS);
        // The first playlist only sets the mark.
        assert!(events(&mut follower).is_empty());
        let newer = LL_HLS.replace(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.2.m4s\"",
            "#EXT-X-PART:DURATION=0.500,URI=\"14.2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.3.m4s\"",
        );
        follower.reload_now = true;
        assert!(matches!(
            follower.poll_action(at_ms(1)),
            Action::Fetch(Request {
                kind: Kind::Playlist,
                ..
            })
        ));
        follower.handle_response(
            at_ms(2),
            Outcome::Response {
                status: 200,
                body: newer.as_bytes(),
            },
        );
        let pdt = parse_program_date_time("2026-11-22T01:24:53.506Z").unwrap();
        assert_eq!(
            events(&mut follower),
            vec![FollowerEvent::Available {
                msn: 14,
                part: Some(2),
                media_end_ms: Some(pdt + 8000.0 + 1500.0)
            }]
        );
    }

    #[test]
    fn follower_in_parts_mode_starts_at_part_hold_back_and_blocks() {
        let path = "/live/bench/source/index.m3u8";
        let mut follower = Follower::new(HlsMode::Parts, path.to_owned());
        assert_eq!(
            follower.poll_action(at_ms(0)),
            Action::Fetch(Request {
                kind: Kind::Playlist,
                path: path.to_owned()
            })
        );
        follower.handle_response(
            at_ms(1),
            Outcome::Response {
                status: 200,
                body: LL_HLS.as_bytes(),
            },
        );
        // Init first.
        assert_eq!(
            follower.poll_action(at_ms(1)),
            Action::Fetch(Request {
                kind: Kind::Init,
                path: "/live/bench/source/init.mp4".to_owned()
            })
        );
        follower.handle_response(
            at_ms(2),
            Outcome::Response {
                status: 200,
                body: b"",
            },
        );
        // 1.5 s back from the end is 13.3, not independent: back to 13.0.
        assert_eq!(follower.next_position(), Some((13, 0)));
        let mut fetched = Vec::new();
        for step in 0..6 {
            match follower.poll_action(at_ms(3 + step)) {
                Action::Fetch(request) if request.kind == Kind::Part => {
                    fetched.push(request.path);
                    follower.handle_response(
                        at_ms(3 + step),
                        Outcome::Response {
                            status: 200,
                            body: b"",
                        },
                    );
                }
                other => panic!("expected a part, got {other:?}"),
            }
        }
        assert_eq!(fetched.last().unwrap(), "/live/bench/source/14.1.m4s");
        let media: f64 = events(&mut follower)
            .iter()
            .map(|e| match e {
                FollowerEvent::Media { media_s } => *media_s,
                other => panic!("unexpected {other:?}"),
            })
            .sum();
        assert_eq!(media, 3.0);
        assert_eq!(
            follower.poll_action(at_ms(10)),
            Action::Fetch(Request {
                kind: Kind::BlockingPlaylist,
                path: format!("{path}?_HLS_msn=14&_HLS_part=2")
            })
        );
    }

    #[test]
    fn follower_in_parts_mode_moves_to_next_segment_after_last_part() {
        let mut follower = Follower::new(HlsMode::Parts, "/p/index.m3u8".to_owned());
        feed_playlist(&mut follower, at_ms(0), LL_HLS);
        follower.next = Some((13, 4));
        // 13 is complete with 4 parts: 13.4 does not exist, the next is 14.0.
        match follower.poll_action(at_ms(1)) {
            Action::Fetch(request) => assert_eq!(request.path, "/p/14.0.m4s"),
            other => panic!("{other:?}"),
        }
        follower.handle_response(
            at_ms(1),
            Outcome::Response {
                status: 200,
                body: b"",
            },
        );
        // 10 lists no parts: a whole segment.
        follower.next = Some((10, 0));
        match follower.poll_action(at_ms(2)) {
            Action::Fetch(request) => assert_eq!(
                (request.kind, request.path.as_str()),
                (Kind::Segment, "/p/10.m4s")
            ),
            other => panic!("{other:?}"),
        }
        follower.handle_response(
            at_ms(2),
            Outcome::Response {
                status: 200,
                body: b"",
            },
        );
        assert_eq!(follower.next_position(), Some((11, 0)));
        // Behind the window: start again at the live edge.
        follower.next = Some((3, 0));
        let _ = follower.poll_action(at_ms(3));
        assert!(events(&mut follower).contains(&FollowerEvent::Resync));
    }

    #[test]
    fn follower_in_segments_mode_reloads_every_half_target_duration() {
        let mut follower = Follower::new(HlsMode::Segments, "/hls/bench.m3u8".to_owned());
        feed_playlist(&mut follower, at_ms(0), NGINX_RTMP);
        // HOLD-BACK defaults to three target durations: 6 s back is bench-8.
        assert_eq!(follower.next_position(), Some((8, 0)));
        for (step, name) in ["bench-8.ts", "bench-9.ts", "bench-10.ts"]
            .iter()
            .enumerate()
        {
            match follower.poll_action(at_ms(10 * step as u64)) {
                Action::Fetch(request) => {
                    assert_eq!(
                        (request.kind, request.path),
                        (Kind::Segment, format!("/hls/{name}"))
                    );
                }
                other => panic!("{other:?}"),
            }
            follower.handle_response(
                at_ms(10 * step as u64 + 5),
                Outcome::Response {
                    status: 200,
                    body: b"",
                },
            );
        }
        assert_eq!(
            follower.poll_action(at_ms(100)),
            Action::WaitUntil(at_ms(1000))
        );
        assert!(matches!(
            follower.poll_action(at_ms(1000)),
            Action::Fetch(Request {
                kind: Kind::Playlist,
                ..
            })
        ));
        let newer = NGINX_RTMP
            .replace("#EXT-X-MEDIA-SEQUENCE:7", "#EXT-X-MEDIA-SEQUENCE:8")
            .replace("#EXTINF:2.000,\nbench-7.ts\n", "")
            + "#EXTINF:2.000,\nbench-11.ts\n";
        follower.handle_response(
            at_ms(1001),
            Outcome::Response {
                status: 200,
                body: newer.as_bytes(),
            },
        );
        // No program date time: the new segment is announced without an end time.
        let events = events(&mut follower);
        assert!(events.contains(&FollowerEvent::Available {
            msn: 11,
            part: None,
            media_end_ms: None
        }));
        match follower.poll_action(at_ms(1001)) {
            Action::Fetch(request) => assert_eq!(request.path, "/hls/bench-11.ts"),
            other => panic!("{other:?}"),
        }
        // A failure is retried after a pause, with a reload first.
        follower.handle_response(at_ms(1002), Outcome::Failed);
        assert_eq!(
            follower.poll_action(at_ms(1003)),
            Action::WaitUntil(at_ms(1102))
        );
        assert!(matches!(
            follower.poll_action(at_ms(1102)),
            Action::Fetch(Request {
                kind: Kind::Playlist,
                ..
            })
        ));
    }

    #[test]
    fn follower_stops_after_endlist() {
        let mut follower = Follower::new(HlsMode::Segments, "/hls/bench.m3u8".to_owned());
        feed_playlist(
            &mut follower,
            at_ms(0),
            &format!("{NGINX_RTMP}#EXT-X-ENDLIST\n"),
        );
        for _ in 0..3 {
            let _ = follower.poll_action(at_ms(1));
            follower.handle_response(
                at_ms(1),
                Outcome::Response {
                    status: 200,
                    body: b"",
                },
            );
        }
        assert_eq!(follower.poll_action(at_ms(2)), Action::Done);
    }

    #[test]
    fn playback_without_stalls_when_media_keeps_up() {
        let mut playback = Playback::new(2, (0.0, 100.0));
        playback.handle_media(1.0, 0, 6.0);
        assert!(!playback.started());
        playback.handle_media(1.1, 1, 6.0);
        assert!(playback.started());
        for second in 0..20 {
            let now = 3.0 + 2.0 * f64::from(second);
            playback.handle_media(now, 0, 2.0);
            playback.handle_media(now, 1, 2.0);
        }
        playback.finish(43.0);
        assert_eq!(playback.stalls(), 0);
        assert_eq!(playback.stall_in_window_s(), 0.0);
        assert!((playback.buffered_s(43.0) - 4.1).abs() < 1e-9);
    }

    #[test]
    fn playback_stalls_when_the_buffer_runs_dry() {
        let mut playback = Playback::new(1, (0.0, 100.0));
        playback.handle_media(10.0, 0, 2.0);
        // Dry at 12.0; the next media comes at 13.5: one stall of 1.5 s.
        playback.handle_time(12.5);
        assert_eq!(playback.stalls(), 1);
        assert_eq!(playback.buffered_s(12.5), 0.0);
        playback.handle_media(13.5, 0, 2.0);
        assert!((playback.stall_in_window_s() - 1.5).abs() < 1e-9);
        // Position 2.0 at 13.5; 4.0 downloaded: dry again at 15.5, still dry at the end.
        playback.finish(20.0);
        assert_eq!(playback.stalls(), 2);
        assert!((playback.stall_in_window_s() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn playback_waits_for_the_least_supplied_track() {
        let mut playback = Playback::new(2, (0.0, 100.0));
        playback.handle_media(0.0, 0, 4.0);
        playback.handle_media(0.0, 1, 1.0);
        // Audio runs out at 1.0 although video lasts to 4.0.
        playback.handle_media(2.0, 0, 4.0);
        assert_eq!(playback.stalls(), 1);
        playback.handle_media(3.0, 1, 4.0);
        assert!((playback.stall_in_window_s() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn playback_counts_only_the_window() {
        let mut playback = Playback::new(1, (10.0, 20.0));
        playback.handle_media(0.0, 0, 1.0);
        // A stall from 1.0 to 11.0: begun before the window, so not counted as an event,
        // but its 1 s inside the window is.
        playback.handle_media(11.0, 0, 20.0);
        assert_eq!(playback.stalls(), 0);
        assert!((playback.stall_in_window_s() - 1.0).abs() < 1e-9);
        // Dry again at 31.0, after the window.
        playback.finish(40.0);
        assert_eq!(playback.stalls(), 0);
        assert!((playback.stall_in_window_s() - 1.0).abs() < 1e-9);
    }

    fn feed_playlist(follower: &mut Follower, now: Duration, text: &str) {
        match follower.poll_action(now) {
            Action::Fetch(request) => assert_eq!(request.kind, Kind::Playlist),
            other => panic!("expected a playlist request, got {other:?}"),
        }
        follower.handle_response(
            now,
            Outcome::Response {
                status: 200,
                body: text.as_bytes(),
            },
        );
        if follower
            .playlist
            .as_ref()
            .is_some_and(|p| p.map_uri.is_some())
        {
            follower.init_done = true;
        }
    }

    fn events(follower: &mut Follower) -> Vec<FollowerEvent> {
        std::iter::from_fn(|| follower.poll_event()).collect()
    }
}
