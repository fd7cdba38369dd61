//! The command line: `shardcast serve`, `shardcast config`.

use crate::config::{parse_addr, Config};
use crate::http_service::{HttpCounters, HttpService, HttpSettings};
use crate::static_files::StaticFiles;
use clap::{Parser, Subcommand, ValueEnum};
use shardcast_engine::{EngineConfig, IoChoice, ListenerSpec, Runtime};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

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
}

#[derive(Parser, Debug)]
struct ServeArgs {
    /// HTTP listen address (overrides http.listen; default 0.0.0.0:8080). Port 0 picks a free
    /// port, logged at start.
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<String>,
    /// RTMP listen address (overrides rtmp.listen; default 0.0.0.0:1935). Reserved for the
    /// ingest service; nothing listens on it yet.
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
    }
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
        allowed.clone()
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
        shutdown_grace_ms: config.shutdown.grace_ms,
        io_uring_disable: e.io_uring_disable.clone(),
        ..EngineConfig::default()
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let config = load_config(&args)?;
    crate::logging::init(&config.log.level);
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
        started: SystemTime::now(),
    });
    let listeners = [ListenerSpec {
        name: "http".to_string(),
        addr: http_addr,
    }];
    let factory_settings = settings.clone();
    let runtime: Runtime<()> = shardcast_engine::launch(
        cores,
        io,
        &listeners,
        engine_config(&config),
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
    log::info!(
        "rtmp {} reserved: the ingest service is not part of this build",
        config.rtmp.listen
    );
    wait_and_drain(runtime, config.shutdown.grace_ms)
}

fn wait_and_drain(mut runtime: Runtime<()>, grace_ms: u64) -> Result<(), String> {
    loop {
        if let Some(signal) = shardcast_engine::sys::wait_termination_signal(200) {
            log::info!(
                "{} received: draining (grace {grace_ms} ms; another signal after 1 s exits at once)",
                signal_name(signal)
            );
            break;
        }
        if runtime.is_finished() {
            return match runtime.join() {
                Ok(()) => Err("shards exited unexpectedly".to_string()),
                Err(e) => Err(format!("a shard failed: {e}")),
            };
        }
    }
    let started = Instant::now();
    runtime.drain();
    while !runtime.is_finished() {
        runtime.flush();
        if let Some(signal) = shardcast_engine::sys::wait_termination_signal(50) {
            // A terminal's Ctrl-C reaches both a wrapper (just, cargo run) and us, and the
            // wrapper forwards it again: a repeat within the first second is the same request.
            if started.elapsed() >= SECOND_SIGNAL_AFTER {
                log::warn!("{} received during drain: exiting now", signal_name(signal));
                std::process::exit(1);
            }
            log::debug!(
                "{} repeated within 1 s of the first: still draining",
                signal_name(signal)
            );
        }
        if started.elapsed() > Duration::from_millis(grace_ms + 5_000) {
            return Err("drain did not finish within the grace period plus 5 s".to_string());
        }
    }
    runtime
        .join()
        .map_err(|e| format!("a shard failed while draining: {e}"))?;
    log::info!("drained in {} ms; exiting", started.elapsed().as_millis());
    Ok(())
}

/// A stop signal this long after the first forces an immediate exit.
const SECOND_SIGNAL_AFTER: Duration = Duration::from_secs(1);

fn signal_name(signal: i32) -> &'static str {
    match signal {
        15 => "SIGTERM",
        2 => "SIGINT",
        _ => "signal",
    }
}
