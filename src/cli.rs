//! The command line: `shardcast serve`, `shardcast config`.

use crate::config::{parse_addr, Config};
use crate::danmaku_service::{DanmakuCounters, DanmakuSettings};
use crate::http_service::{HttpCounters, HttpService, HttpSettings};
use crate::media_service::{MediaCounters, MediaSettings};
use crate::shard_msg::ShardMsg;
use crate::static_files::StaticFiles;
use clap::{Parser, Subcommand, ValueEnum};
use shardcast_engine::{EngineConfig, IoChoice, ListenerSpec, Runtime};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

#[derive(Parser, Debug)]
#[command(
    name = "shardcast",
    version,
    about = "Live-streaming backend: thread-per-core shards on io_uring",
    long_about = "shardcast runs one shard per core, each owning its sockets on io_uring \
                  (or epoll where io_uring is unavailable).\n\n\
                  Start serving with defaults:  shardcast serve\n\
                  See every config field:       shardcast config --print-default"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve HTTP (health, metrics, info API, static files) on every shard until SIGTERM or
    /// SIGINT, then drain gracefully (stop accepting, finish in-flight responses within
    /// shutdown.grace_ms) and exit 0.
    Serve(ServeArgs),
    /// Inspect configuration.
    Config(ConfigArgs),
    /// Mint a danmaku token (HMAC-SHA256, signed with auth.secret) and print it.
    Token(TokenArgs),
    /// Try the video encoders in order (NVENC, QSV, VAAPI, then software) and print which
    /// opened and why each other failed.
    Probe(ProbeArgs),
    /// Run the configured transcode ladder ([transcode] and [media] of --config) over the
    /// video of a recorded FLV file as fast as one thread goes, packaging every rung as a live
    /// stream would, and report the speed and CPU time (what `just bench-transcode` measures).
    Ladder(LadderArgs),
}

#[derive(Parser, Debug)]
struct LadderArgs {
    /// The FLV file (e.g. `ffmpeg ... -f flv FILE`).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Configuration file (TOML); without it, the defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write each rung's init.mp4 and {n}.m4s under DIR/{rung}/.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Parser, Debug)]
struct ProbeArgs {
    /// Probe the HEVC encoders instead of the H.264 ones.
    #[arg(long)]
    hevc: bool,
    /// Try only this encoder (e.g. libx264, h264_nvenc).
    #[arg(long, value_name = "NAME")]
    force: Option<String>,
}

#[derive(Parser, Debug)]
struct TokenArgs {
    /// The user the token speaks for (shown with their messages).
    #[arg(long)]
    user: String,
    /// The room it is valid in; "*" for every room.
    #[arg(long, default_value = "*")]
    room: String,
    /// viewer (chat, like, gift), speaker (the host: chats at paid priority) or admin (may
    /// kick).
    #[arg(long, default_value = "viewer")]
    role: String,
    /// Lifetime, e.g. 90s, 15m, 12h, 7d.
    #[arg(long, default_value = "24h")]
    ttl: String,
    /// Configuration file holding auth.secret or auth.secret_file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Mint a publish token for the stream named by --stream (use it as
    /// rtmp://host/live/STREAM?token=TOKEN); media.publish_tokens must be on.
    #[arg(long, requires = "stream")]
    publish: bool,
    /// The stream a publish token is for.
    #[arg(long)]
    stream: Option<String>,
    /// The secret itself (overrides the config file).
    #[arg(long)]
    secret: Option<String>,
}

#[derive(Parser, Debug)]
struct ServeArgs {
    /// HTTP listen address (overrides http.listen; default 0.0.0.0:8080). Port 0 picks a free
    /// port, logged at start.
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<String>,
    /// RTMP listen address for publishers (overrides rtmp.listen; default 0.0.0.0:1935).
    /// Port 0 picks a free port, logged at start.
    #[arg(long, value_name = "ADDR:PORT")]
    rtmp: Option<String>,
    /// Number of shards (default: one per core in shards.cores, or every allowed core).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// I/O backend (overrides shards.io): auto picks io_uring when usable, else epoll.
    #[arg(long, value_enum)]
    io: Option<IoArg>,
    /// TOML configuration file; fields left out keep their defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum IoArg {
    Auto,
    Uring,
    Epoll,
}

#[derive(Parser, Debug)]
struct ConfigArgs {
    /// Print every field with its documentation and default value, as TOML.
    #[arg(long)]
    print_default: bool,
    /// Check a configuration file and report the first error.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => match serve(args) {
            Ok(()) => 0,
            Err(message) => {
                log::error!("{message}");
                eprintln!("shardcast: {message}");
                1
            }
        },
        Command::Config(args) => config_command(args),
        Command::Probe(args) => {
            let report = if args.hevc {
                shardcast_native::probe_hevc(args.force.as_deref())
            } else {
                shardcast_native::probe_h264(args.force.as_deref())
            };
            println!("{report}");
            if report.chosen.is_some() {
                0
            } else {
                1
            }
        }
        Command::Ladder(args) => match ladder_command(args) {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("shardcast ladder: {message}");
                1
            }
        },
        Command::Token(args) => match token_command(args) {
            Ok(token) => {
                println!("{token}");
                0
            }
            Err(message) => {
                eprintln!("shardcast token: {message}");
                1
            }
        },
    }
}

fn ladder_command(args: LadderArgs) -> Result<(), String> {
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    crate::logging::init(&config.log.level);
    shardcast_native::route_ffmpeg_log();
    let settings = transcode_settings(&config, segmenter_config(&config)?)?
        .ok_or("transcoding is off in this configuration (transcode.enabled, transcode.ladder)")?;
    let data = std::fs::read(&args.input)
        .map_err(|e| format!("cannot read {}: {e}", args.input.display()))?;
    let run = crate::transcode::transcode_flv(&data, settings, args.out.as_deref())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&run).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!(
        "{:.1} s of media in {:.2} s ({:.2}x real time) with {}; {:.2} CPU s, {:.2} CPU s per output minute",
        run.media_s, run.wall_s, run.speed, run.encoder, run.cpu_s, run.cpu_s_per_output_min
    );
    for rung in &run.rungs {
        println!(
            "  {:<8} {:>4} segments {:>5} parts {:>10} bytes {:>8.0} kb/s",
            rung.name, rung.segments, rung.parts, rung.bytes, rung.kbps
        );
    }
    Ok(())
}

fn token_command(args: TokenArgs) -> Result<String, String> {
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    let secret = match args.secret {
        Some(secret) => secret.into_bytes(),
        None => configured_secret(&config)?.ok_or(
            "no secret: set auth.secret (or auth.secret_file) in --config FILE, or pass --secret",
        )?,
    };
    let role = crate::auth::Role::parse(&args.role)
        .ok_or_else(|| format!("--role {}: must be viewer, speaker or admin", args.role))?;
    let ttl_s = crate::auth::parse_duration_s(&args.ttl)
        .ok_or_else(|| format!("--ttl {}: expected e.g. 90s, 15m, 12h or 7d", args.ttl))?;
    if args.user.is_empty() || args.user.len() > 64 {
        return Err("--user must be 1 to 64 bytes".to_string());
    }
    let now = crate::clock::wall_s();
    let room = match (&args.stream, args.publish) {
        (Some(stream), true) => {
            if !crate::media_service::is_valid_stream_name(stream) {
                return Err(format!(
                    "--stream {stream}: letters, digits, -, _ and . only"
                ));
            }
            stream.clone()
        }
        _ => args.room,
    };
    let claims = crate::auth::Claims {
        user: args.user,
        room,
        role,
        expires_unix_s: now + ttl_s,
        publish: args.publish,
    };
    Ok(crate::auth::TokenKey::new(&secret).mint(&claims))
}

/// The token secret from auth.secret or auth.secret_file (its first line); `None` when
/// neither is set.
pub fn configured_secret(config: &Config) -> Result<Option<Vec<u8>>, String> {
    if !config.auth.secret_file.is_empty() {
        let text = std::fs::read_to_string(&config.auth.secret_file)
            .map_err(|e| format!("auth.secret_file {}: {e}", config.auth.secret_file))?;
        let line = text.lines().next().unwrap_or("").trim();
        if line.is_empty() {
            return Err(format!(
                "auth.secret_file {} is empty",
                config.auth.secret_file
            ));
        }
        return Ok(Some(line.as_bytes().to_vec()));
    }
    if !config.auth.secret.is_empty() {
        return Ok(Some(config.auth.secret.as_bytes().to_vec()));
    }
    Ok(None)
}

fn config_command(args: ConfigArgs) -> i32 {
    if let Some(path) = args.check {
        return match Config::load(&path).and_then(|c| c.validate().map(|()| c)) {
            Ok(_) => {
                println!("{}: ok", path.display());
                0
            }
            Err(e) => {
                eprintln!("shardcast: {e}");
                1
            }
        };
    }
    if args.print_default {
        print!("{}", Config::print_default());
        return 0;
    }
    eprintln!("shardcast config: say --print-default or --check FILE (see --help)");
    2
}

fn load_config(args: &ServeArgs) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(http) = &args.http {
        config.http.listen = http.clone();
    }
    if let Some(rtmp) = &args.rtmp {
        config.rtmp.listen = rtmp.clone();
    }
    if let Some(io) = args.io {
        config.shards.io = match io {
            IoArg::Auto => "auto",
            IoArg::Uring => "uring",
            IoArg::Epoll => "epoll",
        }
        .to_string();
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// Shard *i* runs on `cores[i]`. `--shards N` beyond the cores given wraps around (and says so).
fn shard_cores(config: &Config, shards: Option<usize>) -> Result<Vec<Option<usize>>, String> {
    let allowed = shardcast_engine::sys::allowed_cores();
    let cores = if config.shards.cores.is_empty() {
        let transcode = if config.transcode.enabled {
            &config.transcode.cores[..]
        } else {
            &[]
        };
        let rest: Vec<usize> = allowed
            .iter()
            .copied()
            .filter(|c| !transcode.contains(c))
            .collect();
        if rest.is_empty() {
            return Err(format!(
                "transcode.cores {transcode:?} leaves no core for shards (allowed: {allowed:?})"
            ));
        }
        rest
    } else {
        for core in &config.shards.cores {
            if !allowed.contains(core) {
                return Err(format!(
                    "shards.cores names core {core}, which this process may not run on (allowed: {allowed:?})"
                ));
            }
        }
        config.shards.cores.clone()
    };
    let count = shards.unwrap_or(cores.len());
    if count == 0 || count > 1024 {
        return Err(format!("--shards {count}: must be in 1..=1024"));
    }
    if count > cores.len() {
        log::warn!(
            "{count} shards on {} cores: shards will share cores, which defeats thread-per-core",
            cores.len()
        );
    }
    Ok((0..count).map(|i| Some(cores[i % cores.len()])).collect())
}

fn engine_config(config: &Config) -> EngineConfig {
    let e = &config.engine;
    EngineConfig {
        ring_entries: e.ring_entries,
        recv_buffer_bytes: e.recv_buffer_bytes,
        recv_buffers: e.recv_buffers,
        zerocopy_min_bytes: e.zerocopy_min_bytes,
        max_connections: config.http.max_connections_per_shard + e.connection_reserve,
        timer_tick_ms: e.timer_tick_ms,
        timer_slots: e.timer_slots,
        mesh_ring_capacity: e.mesh_ring_capacity,
        max_completions_per_tick: e.max_completions_per_tick,
        listen_backlog: e.listen_backlog,
        socket_send_buffer_bytes: e.socket_send_buffer_bytes,
        linger_ms: e.linger_ms,
        shutdown_grace_ms: config.shutdown.grace_ms,
        io_uring_disable: e.io_uring_disable.clone(),
        ..EngineConfig::default()
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let config = load_config(&args)?;
    crate::logging::init(&config.log.level);
    shardcast_native::route_ffmpeg_log();
    let cores = shard_cores(&config, args.shards)?;
    let http_addr = parse_addr("http.listen", &config.http.listen).map_err(|e| e.to_string())?;
    let io = match config.shards.io.as_str() {
        "uring" => IoChoice::Uring,
        "epoll" => IoChoice::Epoll,
        _ => IoChoice::Auto,
    };
    let static_files = if config.http.static_dir.is_empty() {
        StaticFiles::default()
    } else {
        let files = StaticFiles::load(
            config.http.static_dir.as_ref(),
            config.http.static_max_bytes,
        )
        .map_err(|e| format!("http.static_dir {}: {e}", config.http.static_dir))?;
        log::info!(
            "static: {} files, {} bytes from {} under /static/",
            files.len(),
            files.total_bytes(),
            config.http.static_dir
        );
        files
    };
    let danmaku = Arc::new(danmaku_settings(&config, cores.len())?);
    let transcode = transcode_settings(&config, segmenter_config(&config)?)?;
    let media = Arc::new(media_settings(&config, cores.len(), transcode.clone())?);
    let h = &config.http;
    let settings = Arc::new(HttpSettings {
        limits: config.http_limits(),
        max_connections_per_shard: h.max_connections_per_shard as usize,
        header_timeout_ms: h.header_timeout_ms,
        idle_timeout_ms: h.idle_timeout_ms,
        pipeline_max_responses: h.pipeline_max_responses,
        pipeline_buffer_max_bytes: h.pipeline_buffer_max_bytes,
        static_files: Arc::new(static_files),
        counters: Arc::new((0..cores.len()).map(|_| HttpCounters::default()).collect()),
        danmaku,
        media,
        started: SystemTime::now(),
    });
    let mut listeners = vec![ListenerSpec {
        name: "http".to_string(),
        addr: http_addr,
    }];
    if !config.rtmp.listen.is_empty() {
        // The RTMP listener must be index 1 (HttpService routes by listener index).
        listeners.push(ListenerSpec {
            name: "rtmp".to_string(),
            addr: parse_addr("rtmp.listen", &config.rtmp.listen).map_err(|e| e.to_string())?,
        });
    }
    let factory_settings = settings.clone();
    let mut runtime: Runtime<ShardMsg> = shardcast_engine::launch(
        cores,
        io,
        &listeners,
        EngineConfig {
            worker_endpoints: transcode.as_ref().map_or(0, |t| t.cores.len()),
            ..engine_config(&config)
        },
        move |shard| HttpService::new(factory_settings.clone(), shard),
    )
    .map_err(|e| format!("cannot start shards: {e}"))?;
    let info = runtime.info().clone();
    log::info!(
        "shardcast {} serving: {} shards on cores {:?}, io backend {} ({})",
        env!("CARGO_PKG_VERSION"),
        info.shards(),
        info.cores.iter().flatten().collect::<Vec<_>>(),
        info.backend,
        info.backend_reason
    );
    if !info.features.is_empty() {
        log::info!("io_uring features: {}", info.features.join(", "));
    }
    for (name, addr) in &info.listeners {
        log::info!("{name} listening on {addr}");
    }
    if config.media.publish_keys.is_empty() && !config.media.publish_tokens {
        log::warn!(
            "publishing is open: anyone can publish any stream; set media.publish_keys or \
             media.publish_tokens"
        );
    }
    let workers: Vec<_> = runtime
        .take_workers()
        .into_iter()
        .enumerate()
        .map(|(index, endpoint)| {
            let settings = transcode.clone().expect("workers only with a ladder");
            std::thread::Builder::new()
                .name(format!("transcode-{index}"))
                .spawn(move || crate::transcode::run_worker(index, endpoint, settings))
                .map_err(|e| format!("cannot start transcode thread {index}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let result = crate::control::run(runtime, config.shutdown.grace_ms);
    for worker in workers {
        if worker.join().is_err() {
            log::error!("a transcode thread panicked");
        }
    }
    result
}

/// The source's segmenter settings (the rungs use the same).
fn segmenter_config(config: &Config) -> Result<shardcast_media::SegmenterConfig, String> {
    let segmenter = shardcast_media::SegmenterConfig {
        segment_target_ms: config.media.segment_target_ms,
        part_target_ms: config.media.part_target_ms,
        ..shardcast_media::SegmenterConfig::DEFAULT
    };
    segmenter
        .validate()
        .map_err(|e| format!("invalid media config: {e}"))?;
    Ok(segmenter)
}

/// The ladder's settings, with the encoder chosen by probing (or forced); `None` when
/// transcoding is off or the ladder is empty.
fn transcode_settings(
    config: &Config,
    segmenter: shardcast_media::SegmenterConfig,
) -> Result<Option<Arc<crate::transcode::TranscodeSettings>>, String> {
    let t = &config.transcode;
    if !t.enabled || (t.ladder.is_empty() && t.opus_kbps == 0) {
        log::info!("transcoding off: only the source rendition is served");
        return Ok(None);
    }
    let allowed = shardcast_engine::sys::allowed_cores();
    if let Some(core) = t.cores.iter().find(|c| !allowed.contains(c)) {
        return Err(format!(
            "transcode.cores names core {core}, which this process may not run on (allowed: {allowed:?})"
        ));
    }
    let force = (t.encoder != "auto").then_some(t.encoder.as_str());
    let (codec, report) = if t.codec == "hevc" {
        (
            shardcast_native::CodecId::Hevc,
            shardcast_native::probe_hevc(force),
        )
    } else {
        (
            shardcast_native::CodecId::H264,
            shardcast_native::probe_h264(force),
        )
    };
    for (name, outcome) in &report.attempts {
        match outcome {
            shardcast_native::ProbeOutcome::Opened => log::info!("transcode: {name} opens"),
            shardcast_native::ProbeOutcome::Failed { reason } => {
                log::info!("transcode: {name} not used: {reason}")
            }
        }
    }
    // The ladder feeds pictures from system memory; VAAPI encoders take only hardware
    // surfaces, so they fall back to the software encoder unless forced (then it is an error).
    let report = match report.chosen.as_deref() {
        Some(name) if shardcast_native::system_memory_format(name).is_none() => {
            if force.is_some() {
                return Err(format!(
                    "transcode.encoder = {name}: the ladder does not upload pictures to VAAPI \
                     surfaces yet; use auto, an NVENC/QSV encoder or a software one"
                ));
            }
            let software = if codec == shardcast_native::CodecId::Hevc {
                "libx265"
            } else {
                "libx264"
            };
            log::info!(
                "transcode: {name} opens, but the ladder does not upload pictures to VAAPI \
                 surfaces yet: using {software}"
            );
            if codec == shardcast_native::CodecId::Hevc {
                shardcast_native::probe_hevc(Some(software))
            } else {
                shardcast_native::probe_h264(Some(software))
            }
        }
        _ => report,
    };
    let encoder = report.chosen.ok_or_else(|| {
        format!(
            "transcode: no {} encoder opens (transcode.encoder = {:?}; see `shardcast probe`); \
             set transcode.enabled = false to serve the source only",
            t.codec, t.encoder
        )
    })?;
    let mut watermarks = Vec::new();
    for w in &t.watermarks {
        let filter = crate::transcode::watermark_filter(w)?;
        // Build it once now, so a bad filter, font or image stops the start with a reason.
        shardcast_native::FilterGraph::new(
            shardcast_native::VideoFormat {
                width: 640,
                height: 360,
                pixel_format: shardcast_native::PixelFormat::YUV420P,
            },
            shardcast_native::Rational::new(1, 90_000),
            &filter,
        )
        .map_err(|e| format!("transcode.watermarks for {:?}: {filter:?}: {e}", w.stream))?;
        log::info!(
            "transcode: stream {:?} watermarked with {filter:?}",
            w.stream
        );
        watermarks.push((w.stream.clone(), filter));
    }
    let cores: Vec<Option<usize>> = if t.cores.is_empty() {
        vec![None]
    } else {
        t.cores.iter().map(|&c| Some(c)).collect()
    };
    log::info!(
        "transcode: {} rungs ({}) with {encoder} on {} thread(s), cores {:?}",
        t.ladder.len(),
        t.ladder
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        cores.len(),
        t.cores
    );
    Ok(Some(Arc::new(crate::transcode::TranscodeSettings {
        codec,
        opus_bps: u64::from(t.opus_kbps) * 1000,
        ladder: t
            .ladder
            .iter()
            .map(|r| shardcast_native::RungSpec {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                bit_rate_bps: u64::from(r.bitrate_kbps) * 1000,
            })
            .collect(),
        encoder,
        preset: t.preset.clone(),
        codec_threads: t.codec_threads,
        queue_max_ms: t.queue_max_ms,
        queue_max_samples: t.queue_max_samples,
        segmenter,
        watermarks,
        load: Arc::new(cores.iter().map(|_| Default::default()).collect()),
        counters: Arc::new(cores.iter().map(|_| Default::default()).collect()),
        cores,
    })))
}

fn media_settings(
    config: &Config,
    shards: usize,
    transcode: Option<Arc<crate::transcode::TranscodeSettings>>,
) -> Result<MediaSettings, String> {
    let m = &config.media;
    let r = &config.rtmp;
    let secret = configured_secret(config)?;
    let key_for = |on: bool, what: &str| -> Result<Option<crate::auth::TokenKey>, String> {
        if !on {
            return Ok(None);
        }
        let secret = secret
            .as_ref()
            .ok_or_else(|| format!("{what} needs auth.secret (or auth.secret_file)"))?;
        Ok(Some(crate::auth::TokenKey::new(secret)))
    };
    let segmenter = segmenter_config(config)?;
    let rtmp = shardcast_rtmp::SessionConfig {
        handshake_timeout_ms: r.handshake_timeout_ms,
        chunk_size_max: r.chunk_size_max,
        message_max_bytes: r.message_max_bytes,
        chunk_streams_max: r.chunk_streams_max,
        ..shardcast_rtmp::SessionConfig::default()
    };
    Ok(MediaSettings {
        rtmp,
        app: r.app.clone(),
        segmenter,
        ll_hls: m.ll_hls,
        index: crate::media_index::IndexLimits {
            window_ms: m.window_s * 1000,
            stream_max_bytes: m.stream_max_bytes,
            inits_kept: 4,
            streams_max: m.streams_max,
        },
        failover_ms: m.failover_ms,
        publish_keys: m
            .publish_keys
            .iter()
            .map(|k| (k.stream.clone(), k.key.clone()))
            .collect(),
        publish_tokens: key_for(m.publish_tokens, "media.publish_tokens")?,
        on_publish: (!m.on_publish.is_empty()).then(|| m.on_publish.clone()),
        on_unpublish: (!m.on_unpublish.is_empty()).then(|| m.on_unpublish.clone()),
        webhook_timeout_ms: m.webhook_timeout_ms,
        playback_tokens: key_for(m.playback_tokens, "media.playback_tokens")?,
        max_width: m.max_width,
        max_height: m.max_height,
        counters: Arc::new((0..shards).map(|_| MediaCounters::default()).collect()),
        part_latency: Arc::new((0..shards).map(|_| Default::default()).collect()),
        transcode,
    })
}

fn danmaku_settings(config: &Config, shards: usize) -> Result<DanmakuSettings, String> {
    let d = &config.danmaku;
    let w = &config.ws;
    let secret = match configured_secret(config)? {
        Some(secret) => secret,
        None => {
            log::warn!(
                "auth.secret is not set: using a random secret, so no token verifies and every \
                 danmaku viewer is anonymous (read-only); set auth.secret to enable sending"
            );
            let mut secret = vec![0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut secret))
                .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
            secret
        }
    };
    let filter = if d.word_list.is_empty() {
        None
    } else {
        let text = std::fs::read_to_string(&d.word_list)
            .map_err(|e| format!("danmaku.word_list {}: {e}", d.word_list))?;
        let filter = shardcast_danmaku::WordFilter::from_lines(&text)
            .map_err(|e| format!("danmaku.word_list {}: {e}", d.word_list))?;
        log::info!(
            "word filter: {} words from {} ({})",
            filter.len(),
            d.word_list,
            d.filter_mode
        );
        Some(filter)
    };
    let room = shardcast_danmaku::RoomConfig {
        history_max: d.history_max,
        history_s: d.history_s,
        batch_ms: d.batch_ms,
        batch_max_bytes: d.batch_max_bytes,
        stats_ms: d.stats_ms,
        inbound_max_per_s: d.room_inbound_max_per_s,
        inbound_burst: d.room_inbound_max_per_s,
        // A History answer never exceeds the window it is served from.
        history_request_max: (d.history_request_max as usize).min(d.history_max),
        replay_max: d.history_max,
        gift_catalog: shardcast_danmaku::GiftCatalog::new(d.gifts.iter().map(|g| (g.id, g.value))),
        ..shardcast_danmaku::RoomConfig::default()
    };
    room.validate()
        .map_err(|e| format!("invalid danmaku config: {e}"))?;
    Ok(DanmakuSettings {
        ws_limits: shardcast_ws::Limits {
            frame_max_bytes: w.frame_max_bytes,
            message_max_bytes: w.message_max_bytes,
        },
        verify: shardcast_wire::VerifyLimits::default(),
        hello_timeout_ms: w.hello_timeout_ms,
        idle_timeout_ms: w.idle_timeout_ms,
        ping_interval_ms: w.ping_interval_ms,
        send_queue_max_bytes: w.send_queue_max_bytes,
        stall_timeout_ms: w.stall_timeout_ms,
        room: Arc::new(room),
        chat_rate_per_s: d.chat_rate_per_s,
        chat_burst: d.chat_burst,
        like_rate_per_s: d.like_rate_per_s,
        like_burst: d.like_burst,
        text_max_chars: d.text_max_chars,
        history_request_max: d.history_request_max.min(d.history_max as u32),
        allow_anonymous: d.allow_anonymous,
        heartbeat_ms: d.heartbeat_ms,
        filter,
        filter_reject: d.filter_mode == "reject",
        rooms_max_per_shard: d.rooms_max_per_shard,
        tokens: crate::auth::TokenKey::new(&secret),
        counters: Arc::new((0..shards).map(|_| DanmakuCounters::default()).collect()),
        latency: Arc::new((0..shards).map(|_| Default::default()).collect()),
    })
}
