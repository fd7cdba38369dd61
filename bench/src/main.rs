//! `shardcast-bench`: the command line of the load generator. See `bench/README.md`.

#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use shardcast_bench::hls::{run_hls, HlsLoadConfig, HlsMode};
use shardcast_bench::hold::{run_hold, HoldConfig, HoldReport};
use shardcast_bench::http::{run_http, HttpLoadConfig};
use shardcast_bench::report::{markdown_comparison, HttpReport, MedianRow};
use shardcast_bench::soak::{run_soak, SoakConfig};
use shardcast_bench::target::{parse_source_addrs, resolve, HttpUrl};
use shardcast_bench::units::parse_duration;
use shardcast_bench::ws::stats::{ws_markdown_comparison, WsMedianRow};
use shardcast_bench::ws::{run_ws_with, JoinSummary, WsLoadConfig, WsProtocol, WsReport, WsUrl};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "shardcast-bench",
    version,
    about = "Load generator for shardcast"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Keep-alive HTTP/1.1 load; reports req/s, Gbit/s, latency percentiles and errors.
    Http(HttpArgs),
    /// Open and hold idle connections (for server memory per connection).
    Hold(HoldArgs),
    /// Viewers of a live HLS stream (whole segments, or LL-HLS parts with blocking reloads);
    /// reports req/s, Gbit/s and latency by request kind, stalls and ingest latency.
    Hls(HlsArgs),
    /// Markdown table of medians from several `http --json` reports per server.
    Table(TableArgs),
    /// Danmaku over WebSocket: viewers in rooms, paced chats, delivery accounting and latency;
    /// `--idle` holds joined connections for memory measurements.
    Ws(WsArgs),
    /// Markdown table of medians from several `ws --json` reports per server; the last
    /// server is compared with each of the others.
    WsTable(TableArgs),
    /// One worker process of `ws --processes N` (started by `ws` itself).
    #[command(hide = true)]
    WsWorker(WsWorkerArgs),
    /// Churn against a running server (viewers, chatters, resumes, stallers, publishers,
    /// HLS players, bad clients), sampling its gauges and RSS; then checks that it let
    /// everything go and that RSS did not grow after warm-up. Exits 1 if it fails.
    Soak(SoakArgs),
    /// Durable gifts through a running server: clients with funded wallets send gifts on a
    /// fixed schedule (open loop); reports acks/s and ack latency from the scheduled send.
    Gifts(GiftsArgs),
    /// WebRTC fan-out: a WHIP publisher of a looped H.264 + Opus file and N WHEP viewers of
    /// its stream (str0m clients on one thread); reports loss, each frame's spread over the
    /// viewers, and the server's CPU per viewer.
    Webrtc(WebrtcArgs),
}

#[derive(Args)]
struct WebrtcArgs {
    /// The server's HTTP address HOST:PORT (its /whip and /whep endpoints).
    #[arg(long)]
    http: String,
    /// The stream.
    #[arg(long, default_value = "fanout")]
    stream: String,
    /// WHEP viewers.
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Viewers joined per second.
    #[arg(long, default_value_t = 200)]
    join_rate: u32,
    /// Measured time, once every viewer joined and the warm-up passed.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    warmup: Duration,
    /// Publish this H.264 Annex B file (ffmpeg -f h264, with access unit delimiters) over
    /// WHIP, looped, with --opus; without it the stream must already be live.
    #[arg(long, requires = "opus")]
    h264: Option<PathBuf>,
    /// The Ogg Opus file published with --h264 (20 ms packets).
    #[arg(long)]
    opus: Option<PathBuf>,
    /// The stream key (WHIP's Bearer token).
    #[arg(long)]
    key: Option<String>,
    /// Local addresses for the viewers' sockets, e.g. 127.0.0.2-127.0.0.9.
    #[arg(long)]
    source_addrs: Option<String>,
    /// The server's process id: its CPU time over the window is reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Receive with UDP GRO (`on`, the default: a run of datagrams the server sent as one
    /// segmented message arrives whole, as a NIC would take it, instead of being split on
    /// the server's core by loopback) or without (`off`: every datagram alone).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    gro: String,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct GiftsArgs {
    /// The server's HTTP address HOST:PORT.
    #[arg(long)]
    http: String,
    /// The server's token secret (`auth.secret`), to mint the clients' and the admin's tokens.
    #[arg(long)]
    secret: String,
    /// The shardcast binary (it mints the tokens).
    #[arg(long, default_value = "target/release/shardcast")]
    shardcast: PathBuf,
    /// The room the gifts go to.
    #[arg(long, default_value = "bench-gifts")]
    room: String,
    /// Connections, each its own user and wallet.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Gifts per second over all clients.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Measured time.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Time before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// The catalog id of the gift sent (one unit each).
    #[arg(long, default_value_t = 1)]
    gift_id: u32,
    /// Credited to each client's wallet first (idempotent per run).
    #[arg(long, default_value_t = 1_000_000_000)]
    fund: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct SoakArgs {
    /// The server's HTTP address HOST:PORT.
    #[arg(long)]
    http: String,
    /// The server's RTMP address HOST:PORT.
    #[arg(long)]
    rtmp: String,
    /// The server's process id (its RSS is read from /proc/PID/status).
    #[arg(long)]
    server_pid: u32,
    /// How long the churn lasts.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    duration: Duration,
    /// Longest wait after the churn for the server to let everything go.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    settle_max: Duration,
    /// Time between samples.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    sample_every: Duration,
    /// WebSocket viewer slots.
    #[arg(long, default_value_t = 300)]
    viewers: u32,
    /// Churn rooms at a time (the set changes every 30 s).
    #[arg(long, default_value_t = 10)]
    rooms: u32,
    /// Percentage of viewers that chat (with --token).
    #[arg(long, default_value_t = 10)]
    chatter_percent: u32,
    /// Flood chatters (fast chats in the stallers' room).
    #[arg(long, default_value_t = 4)]
    flooders: u32,
    /// Chats per second of each flood chatter (keep under danmaku.chat_rate_per_s).
    #[arg(long, default_value_t = 15)]
    flood_rate: u32,
    /// Staller slots (join, never read).
    #[arg(long, default_value_t = 2)]
    stallers: u32,
    /// Publisher slots.
    #[arg(long, default_value_t = 4)]
    publishers: u32,
    /// HLS player slots.
    #[arg(long, default_value_t = 12)]
    players: u32,
    /// Bad client slots.
    #[arg(long, default_value_t = 3)]
    bad_clients: u32,
    /// Stream names publishers recycle, round-robin; 0 gives every publish a new name.
    #[arg(long, default_value_t = 8)]
    stream_names: u32,
    /// A chat token for every room (`shardcast token --user U --room '*'`).
    #[arg(long, default_value = "")]
    token: String,
    /// The FLV file the publishers replay.
    #[arg(long, default_value = "shards/media/tests/fixtures/avc_aac.flv")]
    fixture: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// RSS growth after warm-up allowed, in percent.
    #[arg(long, default_value_t = 1.0)]
    rss_growth_max: f64,
    /// Warm-up before RSS growth counts [default: 5 minutes, or 20 % of a shorter run].
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the report's Markdown body to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[derive(Args)]
struct WsArgs {
    /// Target ws://HOST:PORT/PATH; repeat (or separate with commas) for hosts serving the
    /// same rooms: connection i goes to host (i / rooms) mod hosts, so every room has members
    /// on every host and the senders are on the first.
    #[arg(long, required = true, value_delimiter = ',')]
    url: Vec<String>,
    /// What the server speaks: `shardcast` (shardcast.v1) or `socketio` (Socket.IO 5 over
    /// Engine.IO 4, WebSocket transport; the URL's path is then
    /// /socket.io/?EIO=4&transport=websocket).
    #[arg(long, default_value = "shardcast", value_parser = parse_ws_protocol)]
    protocol: WsProtocol,
    /// Connections (viewers) in total; senders are among them.
    #[arg(long, default_value_t = 100)]
    connections: u64,
    /// Rooms bench-0, bench-1, ...; connection i joins room i mod R.
    #[arg(long, default_value_t = 1)]
    rooms: u64,
    /// Connections that also send chats, spread over the rooms [default: 10, 0 with --idle].
    #[arg(long)]
    senders: Option<u64>,
    /// Chats per second over all senders (open loop, evenly paced).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Measurement window (with --idle: how long to hold after every connection joined).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Sending before the measurement window.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Wait after the send phase before counting what did not arrive as missing
    /// (default: two 50 ms batching windows plus 1 s).
    #[arg(long, default_value = "1100ms", value_parser = parse_duration)]
    grace: Duration,
    /// Worker processes (each a copy of this program); 1 runs in this process.
    #[arg(long, default_value_t = 1)]
    processes: u64,
    /// Load threads (io_uring runtimes) per process.
    #[arg(long, default_value_t = 1)]
    threads: u64,
    /// Bind client sockets round-robin to these addresses (at most 10000 connections each).
    #[arg(long)]
    source_addrs: Option<String>,
    /// Token of the senders' Hello (`shardcast token ...`); viewers join anonymously.
    #[arg(long, default_value = "")]
    token: String,
    /// New connections per second; 0 opens them as fast as possible.
    #[arg(long, default_value_t = 5000)]
    ramp_per_sec: u64,
    /// Longest wait for connect, upgrade and Welcome of one connection.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// Hold idle joined connections (anonymous, answering pings) instead of sending.
    #[arg(long)]
    idle: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct WsWorkerArgs {
    /// Which share of the connections this worker owns.
    #[arg(long)]
    process: u64,
}

#[derive(Args)]
struct HttpArgs {
    /// Target http://HOST:PORT/PATH; repeat or separate with commas to spread connections.
    #[arg(long, required = true, value_delimiter = ',')]
    url: Vec<String>,
    /// Keep-alive connections in total.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Open-loop target in requests/s over all connections (latency from the intended send
    /// time); 0 runs a closed loop.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Measurement window, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Load before the measurement window.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Load threads, one io_uring runtime each; connections are split across them.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Bind client sockets round-robin to these addresses, e.g. 127.0.0.2-127.0.0.9.
    #[arg(long)]
    source_addrs: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Count responses with another status as errors; 0 accepts any status.
    #[arg(long, default_value_t = 200)]
    expect_status: u16,
    /// Count responses with another body length as errors.
    #[arg(long)]
    expect_body_bytes: Option<u64>,
    /// Read every body byte into this process. By default a body's bytes past its first 4 KiB
    /// are discarded in the kernel (recv with MSG_TRUNC), so the load generator is not the
    /// limit of a large-body run.
    #[arg(long)]
    read_bodies: bool,
    /// Longest wait for a response or a connect.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Args)]
struct HlsArgs {
    /// Multivariant playlist http://HOST:PORT/live/STREAM/index.m3u8 (the first video variant
    /// and its audio rendition are followed) or a media playlist.
    #[arg(long)]
    url: String,
    /// Viewers; each holds one connection per followed playlist.
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// `segments`: plain reloads every half target duration, whole segments; `parts`: LL-HLS
    /// blocking reloads for the next part, then the part.
    #[arg(long, default_value = "segments", value_parser = HlsMode::parse)]
    mode: HlsMode,
    /// Measurement window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Viewers join (over at most 2 s) and fill their buffers before the window.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    warmup: Duration,
    /// Load threads, one io_uring runtime each; viewers are split across them.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Bind client sockets round-robin to these addresses, e.g. 127.0.0.2-127.0.0.9.
    #[arg(long)]
    source_addrs: Option<String>,
    /// Longest wait for a response (blocking reloads included) or a connect.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct HoldArgs {
    /// Server HOST:PORT.
    #[arg(long)]
    target: String,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Bind client sockets round-robin to these addresses, e.g. 127.0.0.2-127.0.0.3.
    #[arg(long)]
    source_addrs: Option<String>,
    /// How long to hold, counted from the start (ramp included).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// New connections per second; 0 opens them as fast as possible.
    #[arg(long, default_value_t = 5000)]
    ramp_per_sec: u64,
    /// Send one `GET /healthz` per connection and read the response before going idle.
    #[arg(long)]
    request_first: bool,
    /// Path of the first request.
    #[arg(long, default_value = "/healthz")]
    request_path: String,
    /// Longest wait for a connect and for the first response.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct TableArgs {
    /// NAME=FILE[,FILE...]: the JSON reports of one server's rounds. The first server is the
    /// baseline of the ratio rows.
    #[arg(long = "server", required = true)]
    servers: Vec<String>,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Http(args) => http(args),
        Command::Hold(args) => hold(args),
        Command::Hls(args) => hls(args),
        Command::Table(args) => table(args),
        Command::Ws(args) => ws(args),
        Command::WsTable(args) => ws_table(args),
        Command::WsWorker(args) => shardcast_bench::ws::worker_main(args.process),
        Command::Soak(args) => return soak(args),
        Command::Gifts(args) => gifts(args),
        Command::Webrtc(args) => webrtc(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shardcast-bench: {message}");
            ExitCode::from(2)
        }
    }
}

fn http(args: HttpArgs) -> Result<(), String> {
    let urls = args
        .url
        .iter()
        .map(|u| HttpUrl::parse(u.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut config = HttpLoadConfig::new(urls[0].clone());
    config.urls = urls;
    config.connections = args.connections;
    config.pipeline = args.pipeline;
    config.rate_per_sec = args.rate;
    config.duration = args.duration;
    config.warmup = args.warmup;
    config.threads = args.threads;
    config.source_addrs = source_addrs(args.source_addrs.as_deref())?;
    config.expect_status = (args.expect_status != 0).then_some(args.expect_status);
    config.expect_body_bytes = args.expect_body_bytes;
    config.read_bodies = args.read_bodies;
    config.timeout = args.timeout;
    let report = run_http(config).map_err(|e| e.to_string())?;
    print!("{}", report.to_text());
    write_json(args.json.as_deref(), &report)
}

fn hls(args: HlsArgs) -> Result<(), String> {
    let url = HttpUrl::parse(args.url.trim()).map_err(|e| e.to_string())?;
    let mut config = HlsLoadConfig::new(url);
    config.viewers = args.viewers;
    config.mode = args.mode;
    config.duration = args.duration;
    config.warmup = args.warmup;
    config.threads = args.threads;
    config.source_addrs = source_addrs(args.source_addrs.as_deref())?;
    config.timeout = args.timeout;
    let report = run_hls(config).map_err(|e| e.to_string())?;
    print!("{}", report.to_text());
    write_json(args.json.as_deref(), &report)
}

fn hold(args: HoldArgs) -> Result<(), String> {
    let target = resolve(&args.target, 80).map_err(|e| e.to_string())?;
    let mut config = HoldConfig::new(target, args.target.clone());
    config.connections = args.connections;
    config.source_addrs = source_addrs(args.source_addrs.as_deref())?;
    config.duration = args.duration;
    config.ramp_per_sec = args.ramp_per_sec;
    config.request_first = args.request_first;
    config.request_path = args.request_path;
    config.connect_timeout = args.connect_timeout;
    config.on_ready = Some(Box::new(|report: &HoldReport| {
        // Scripts wait for this line before measuring the server at steady state.
        println!(
            "ready: held {} of {} (established {}, connect errors {}, served {}, request errors {}) after {:.2} s",
            report.held,
            report.connections,
            report.established,
            report.connect_errors,
            report.served,
            report.request_errors,
            report.ramp_s
        );
        let _ = std::io::stdout().flush();
    }));
    let report = run_hold(config).map_err(|e| e.to_string())?;
    print!("{}", report.to_text());
    write_json(args.json.as_deref(), &report)
}

fn parse_ws_protocol(text: &str) -> Result<WsProtocol, String> {
    match text {
        "shardcast" => Ok(WsProtocol::Shardcast),
        "socketio" => Ok(WsProtocol::SocketIo),
        other => Err(format!("`{other}` is not shardcast or socketio")),
    }
}

fn ws(args: WsArgs) -> Result<(), String> {
    let mut urls = args
        .url
        .iter()
        .map(|url| WsUrl::parse(url.trim()).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut config = WsLoadConfig::new(urls.next().ok_or("--url is required")?);
    config.more_urls = urls.collect();
    config.protocol = args.protocol;
    config.connections = args.connections;
    config.rooms = args.rooms;
    config.senders = args.senders.unwrap_or(if args.idle { 0 } else { 10 });
    config.rate_per_sec = args.rate;
    config.duration = args.duration;
    config.warmup = args.warmup;
    config.grace = args.grace;
    if args.idle {
        config.warmup = Duration::ZERO;
        config.grace = Duration::ZERO;
    }
    config.processes = args.processes;
    config.threads = args.threads;
    config.source_addrs = source_addrs(args.source_addrs.as_deref())?;
    config.token = args.token;
    config.ramp_per_sec = args.ramp_per_sec;
    config.connect_timeout = args.connect_timeout;
    config.idle = args.idle;
    let on_joined = Box::new(|summary: &JoinSummary| {
        // Scripts wait for this line before measuring the server at steady state.
        println!(
            "ready: held {} of {} (joined {}, errors {}) after {:.2} s",
            summary.joined,
            summary.connections,
            summary.joined,
            summary.errors,
            summary.join_ms as f64 / 1000.0
        );
        let _ = std::io::stdout().flush();
    });
    let report = run_ws_with(config, Some(on_joined)).map_err(|e| e.to_string())?;
    print!("{}", report.to_text());
    write_json(args.json.as_deref(), &report)
}

/// Runs a soak; exits 0 when it passed, 1 when it failed, 2 when it could not run.
fn soak(args: SoakArgs) -> ExitCode {
    match soak_report(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("shardcast-bench: {message}");
            ExitCode::from(2)
        }
    }
}

fn soak_report(args: SoakArgs) -> Result<bool, String> {
    let http = resolve(&args.http, 80).map_err(|e| e.to_string())?;
    let rtmp = resolve(&args.rtmp, 1935).map_err(|e| e.to_string())?;
    let mut config = SoakConfig::new(http, rtmp, args.server_pid);
    config.duration = args.duration;
    config.settle_max = args.settle_max;
    config.sample_every = args.sample_every;
    config.viewers = args.viewers;
    config.rooms = args.rooms;
    config.chatter_percent = args.chatter_percent;
    config.flooders = args.flooders;
    config.flood_chats_per_sec = args.flood_rate;
    config.stallers = args.stallers;
    config.publishers = args.publishers;
    config.players = args.players;
    config.bad_clients = args.bad_clients;
    config.stream_names = args.stream_names;
    config.token = args.token;
    config.fixture = args.fixture;
    config.seed = args.seed;
    config.rss_growth_max_percent = args.rss_growth_max;
    config.warmup = args.warmup;
    let report = run_soak(config).map_err(|e| e.to_string())?;
    let markdown = report.to_markdown();
    print!("{markdown}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    write_json(args.json.as_deref(), &report)?;
    Ok(report.pass)
}

fn mint(shardcast: &Path, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(shardcast)
        .arg("token")
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", shardcast.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn gifts(args: GiftsArgs) -> Result<(), String> {
    use shardcast_bench::gifts::{fund, run_gifts, GiftsConfig};
    let addr = resolve(&args.http, 80).map_err(|e| e.to_string())?;
    let admin = mint(
        &args.shardcast,
        &["--admin", "--user", "bench", "--secret", &args.secret],
    )?;
    let run = format!(
        "g{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let mut tokens = Vec::with_capacity(args.clients);
    for client in 0..args.clients {
        let user = format!("gifts-{client}");
        let token = mint(
            &args.shardcast,
            &[
                "--user",
                &user,
                "--room",
                &args.room,
                "--secret",
                &args.secret,
            ],
        )?;
        fund(
            addr,
            &admin,
            &user,
            args.fund,
            &format!("{run}-fund-{client}"),
        )
        .map_err(|e| e.to_string())?;
        tokens.push(token);
    }
    let report = run_gifts(GiftsConfig {
        addr,
        room: args.room,
        tokens,
        rate: args.rate,
        duration: args.duration,
        warmup: args.warmup,
        gift_id: args.gift_id,
        run,
    })
    .map_err(|e| e.to_string())?;
    println!(
        "gifts: {} clients, target {}/s: sent {}, acked {} ({:.0}/s), refused {:?}, unanswered {}; \
         ack p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}",
        report.clients,
        report.target_rate,
        report.sent,
        report.acked,
        report.acked_per_s,
        report.refused,
        report.unanswered,
        report.ack_p50_ms,
        report.ack_p90_ms,
        report.ack_p99_ms,
        report.ack_p999_ms,
        report.ack_max_ms
    );
    write_json(args.json.as_deref(), &report)
}

fn table(args: TableArgs) -> Result<(), String> {
    let mut rows = Vec::new();
    for server in &args.servers {
        let (name, files) = server
            .split_once('=')
            .ok_or_else(|| format!("`{server}`: expected NAME=FILE[,FILE...]"))?;
        let reports = files
            .split(',')
            .map(|file| {
                let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
                serde_json::from_str::<HttpReport>(&text).map_err(|e| format!("{file}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(MedianRow::from_reports(name, &reports));
    }
    print!("{}", markdown_comparison(&rows));
    Ok(())
}

fn ws_table(args: TableArgs) -> Result<(), String> {
    let mut rows = Vec::new();
    for server in &args.servers {
        let (name, files) = server
            .split_once('=')
            .ok_or_else(|| format!("`{server}`: expected NAME=FILE[,FILE...]"))?;
        let reports = files
            .split(',')
            .map(|file| {
                let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
                serde_json::from_str::<WsReport>(&text).map_err(|e| format!("{file}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(WsMedianRow::from_reports(name, &reports));
    }
    print!("{}", ws_markdown_comparison(&rows));
    Ok(())
}

fn webrtc(args: WebrtcArgs) -> Result<(), String> {
    use shardcast_bench::rtc::{run_rtc, RtcLoadConfig};
    let http = resolve(&args.http, 80).map_err(|e| e.to_string())?;
    let mut source_ips: Vec<std::net::IpAddr> = source_addrs(args.source_addrs.as_deref())?
        .into_iter()
        .map(Into::into)
        .collect();
    if source_ips.is_empty() {
        source_ips.push(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let config = RtcLoadConfig {
        http,
        stream: args.stream,
        viewers: args.viewers,
        join_per_s: args.join_rate,
        duration: args.duration,
        warmup: args.warmup,
        publish: args.h264.zip(args.opus),
        key: args.key,
        source_ips,
        server_pid: args.server_pid,
        gro: args.gro == "on",
    };
    let report = run_rtc(&config)?;
    println!(
        "{} of {} viewers connected; {:.2} Mbit/s each (median), {} starved; video packets {} \
         lost {} ({:.4} %); frame spread p50 {:.1} ms p99 {:.1} ms max {:.1} ms; server {} \
         cores ({} µs CPU per viewer-second); client {:.2} cores",
        report.connected,
        report.viewers,
        report.mbps_per_viewer,
        report.starved,
        report.video_packets,
        report.video_lost,
        report.loss_ratio * 100.0,
        report.spread_p50_ms,
        report.spread_p99_ms,
        report.spread_max_ms,
        report
            .server_cores
            .map_or("?".into(), |c| format!("{c:.2}")),
        report
            .server_us_per_viewer_s
            .map_or("?".into(), |c| format!("{c:.0}")),
        report.client_cores,
    );
    for failure in &report.failures {
        eprintln!("  {failure}");
    }
    write_json(args.json.as_deref(), &report)
}

fn source_addrs(text: Option<&str>) -> Result<Vec<std::net::Ipv4Addr>, String> {
    text.map_or(Ok(Vec::new()), |t| {
        parse_source_addrs(t).map_err(|e| e.to_string())
    })
}

fn write_json<T: serde::Serialize>(path: Option<&Path>, report: &T) -> Result<(), String> {
    let Some(path) = path else {
        return Ok(());
    };
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))
}
