//! `shardcast serve`: configuration → settings → shards, transcode threads and the control
//! thread, until a stop signal and the drain that follows.

use super::config::Config;
use super::settings;
use crate::media::settings::PublishAccess;
use crate::shard::msg::ShardMsg;
use crate::shard::router::ShardService;
use crate::transcode::settings::TranscodeSettings;
use shardcast_engine::{EngineConfig, Runtime, RuntimeInfo};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What the command line overrides.
#[derive(Debug, Default)]
pub struct Overrides {
    pub http: Option<String>,
    pub rtmp: Option<String>,
    pub https: Option<String>,
    pub rtmps: Option<String>,
    pub webrtc_udp: Option<String>,
    pub shards: Option<usize>,
    pub io: Option<&'static str>,
    pub config: Option<PathBuf>,
}

/// Serves until SIGTERM/SIGINT and a graceful drain.
pub fn serve(overrides: Overrides) -> Result<(), String> {
    let config = load_config(&overrides)?;
    super::logging::init(
        &config.log.level,
        super::logging::LogFormat::parse(&config.log.format)
            .unwrap_or(super::logging::LogFormat::Text),
    );
    shardcast_native::route_ffmpeg_log();
    let cores = settings::shard_cores(&config, overrides.shards)?;
    let transcode = settings::transcode_settings(&config, settings::segmenter_config(&config)?)?;
    let tls = super::tls::TlsSetup::load(&config.tls)?.map(Arc::new);
    let (shard_settings, listeners) =
        settings::shard_settings(&config, cores.len(), transcode.clone(), tls.as_deref())?;
    let s = &config.state;
    let redis = (!s.redis.is_empty()).then(|| shardcast_ledger::RedisOptions {
        url: s.redis.clone(),
        prefix: s.redis_prefix.clone(),
        timeout_ms: s.redis_timeout_ms,
        reconnect_ms: s.redis_reconnect_ms,
        require_fsync: s.redis_require_fsync,
    });
    let ledger = crate::state::open_configured(
        std::path::Path::new(&s.data_dir),
        redis,
        config.ledger.streamer_share_percent,
    )?;
    let relay = relay_options(&config, cores.len())?;
    let edge = match &shard_settings.media.edge {
        Some(edge) => Some(Arc::new(super::edge::edge_options(
            &config,
            edge.counters.clone(),
        )?)),
        None => None,
    };
    let engine = EngineConfig {
        // The transcode workers, then the ledger, the recorder, (with Redis) the relay and (on
        // an edge) the fetcher.
        worker_endpoints: transcode.as_ref().map_or(0, |t| t.cores.len())
            + 2
            + usize::from(relay.is_some())
            + usize::from(edge.is_some()),
        ..settings::engine_config(&config)
    };
    let factory_settings = shard_settings.clone();
    let io = settings::io_choice(&config);
    let mut runtime: Runtime<ShardMsg> =
        shardcast_engine::launch(cores, io, &listeners, engine, move |shard| {
            let wall_s = crate::common::clock::wall_s();
            ShardService::new(factory_settings.clone(), shard, wall_s)
        })
        .map_err(|e| format!("cannot start shards: {e}"))?;
    log_start(runtime.info());
    log_web(runtime.info(), &config);
    log_webrtc(shard_settings.media.webrtc.as_deref());
    log_publish_access(
        runtime.info(),
        &config,
        &shard_settings.media.publish_access,
    );
    let state_counters = shard_settings.danmaku.state_counters.clone();
    let record = shard_settings.media.record.clone();
    let (workers, ledger) = start_workers(
        &mut runtime,
        transcode,
        (ledger, relay, record, edge),
        state_counters,
    )?;
    let reload_tls = tls.map(|tls| -> crate::control::ReloadTls { Box::new(move || tls.reload()) });
    let result = crate::control::run(runtime, config.shutdown.grace_ms, reload_tls);
    for worker in workers {
        if worker.join().is_err() {
            log::error!("a transcode thread panicked");
        }
    }
    if ledger.join().is_err() {
        log::error!("the ledger thread panicked");
    }
    result
}

/// The configuration file (or the defaults) with the command line's overrides, validated.
fn load_config(overrides: &Overrides) -> Result<Config, String> {
    let mut config = match &overrides.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(http) = &overrides.http {
        config.http.listen = http.clone();
    }
    if let Some(rtmp) = &overrides.rtmp {
        config.rtmp.listen = rtmp.clone();
    }
    if let Some(https) = &overrides.https {
        config.tls.https_listen = https.clone();
    }
    if let Some(rtmps) = &overrides.rtmps {
        config.tls.rtmps_listen = rtmps.clone();
    }
    if let Some(udp) = &overrides.webrtc_udp {
        config.webrtc.udp_listen = udp.clone();
    }
    if let Some(io) = overrides.io {
        config.shards.io = io.to_string();
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// What was started and how, in the log (tests read the listening addresses from it).
fn log_start(info: &RuntimeInfo) {
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
    for ((name, addr), addrs) in info.listeners.iter().zip(&info.listener_addrs) {
        if addrs.iter().all(|a| a == addr) {
            log::info!("{name} listening on {addr}");
        } else {
            let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
            log::info!("{name} listening on {} (one per shard)", addrs.join(", "));
        }
    }
    for (name, addrs) in &info.udp {
        let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        log::info!("{name} udp on {} (one per shard)", addrs.join(", "));
    }
}

/// Where a person opens the pages.
fn log_web(info: &RuntimeInfo, config: &Config) {
    if !config.web.enabled {
        return;
    }
    if let Some((_, addr)) = info.listeners.iter().find(|(name, _)| name == "http") {
        let host = if addr.ip().is_unspecified() {
            format!("HOST:{}", addr.port())
        } else {
            addr.to_string()
        };
        log::info!(
            "web: the live streams at http://{host}/, a stream at http://{host}/watch/STREAM, \
             how to publish at http://{host}/publish"
        );
    }
}

/// Which address WHEP answers give viewers to send to.
fn log_webrtc(webrtc: Option<&crate::webrtc::WebrtcSettings>) {
    match webrtc.map(|w| w.public_ip) {
        Some(Some(ip)) => log::info!(
            "webrtc: WHEP answers name {ip} as the address to send to (webrtc.public_ip sets it)"
        ),
        Some(None) => log::info!("webrtc: WHEP answers name the bound UDP address"),
        None => {}
    }
}

/// Who may publish, and for the generated key, what to paste into an encoder.
fn log_publish_access(info: &RuntimeInfo, config: &Config, access: &PublishAccess) {
    let rtmp = info
        .listeners
        .iter()
        .find(|(name, _)| name == "rtmp")
        .map(|(_, addr)| addr.to_string());
    match (access, rtmp) {
        (PublishAccess::Open, _) => log::warn!(
            "media.publish_open: anyone can publish any stream, and take over a live one as \
             its backup"
        ),
        (PublishAccess::ServerKey(key), Some(addr)) => {
            let app = &config.rtmp.app;
            log::info!(
                "publishing needs the server's key ({}/publish.key). OBS: Server \
                 rtmp://HOST:{port}/{app}, Stream Key STREAM?key={key}. ffmpeg: ... -f flv \
                 'rtmp://HOST:{port}/{app}/STREAM?key={key}' (HOST is this machine, {addr} here)",
                config.state.data_dir,
                port = addr.rsplit(':').next().unwrap_or("1935"),
            );
        }
        (PublishAccess::ServerKey(_) | PublishAccess::Configured, _) => {}
    }
}

/// What the threads after the transcode workers run with: the ledger, the relay (with
/// Redis), the recorder's settings and the edge fetcher's options (on an edge).
type StateThreads = (
    Box<dyn shardcast_ledger::Ledger + Send>,
    Option<crate::state::relay::Relay>,
    Arc<crate::record::RecordSettings>,
    Option<Arc<crate::edge::EdgeOptions>>,
);

/// One thread per transcode worker endpoint, pinned as configured, then the ledger's, the
/// recorder's and (with Redis) the relay's threads on the last endpoints.
fn start_workers(
    runtime: &mut Runtime<ShardMsg>,
    transcode: Option<Arc<TranscodeSettings>>,
    (ledger, relay, record, edge): StateThreads,
    counters: Arc<crate::state::StateCounters>,
) -> Result<(Vec<JoinHandle<()>>, JoinHandle<()>), String> {
    let mut endpoints = runtime.take_workers();
    let mut threads = Vec::new();
    if let Some(edge) = edge {
        let endpoint = endpoints
            .pop()
            .ok_or("no mesh endpoint for the edge fetcher")?;
        let origins: Vec<&str> = edge.origins.iter().map(|(_, name)| name.as_str()).collect();
        log::info!("edge: serving /live/ from origins {}", origins.join(", "));
        threads.push(
            std::thread::Builder::new()
                .name("edge-fetch".to_string())
                .spawn(move || crate::edge::run_fetcher(endpoint, edge))
                .map_err(|e| format!("cannot start the edge fetcher thread: {e}"))?,
        );
    }
    if let Some(relay) = relay {
        let endpoint = endpoints.pop().ok_or("no mesh endpoint for the relay")?;
        let counters = counters.clone();
        threads.push(
            std::thread::Builder::new()
                .name("relay".to_string())
                .spawn(move || crate::state::relay::run_relay(endpoint, relay, counters))
                .map_err(|e| format!("cannot start the relay thread: {e}"))?,
        );
    }
    let recorder_endpoint = endpoints.pop().ok_or("no mesh endpoint for the recorder")?;
    threads.push(
        std::thread::Builder::new()
            .name("recorder".to_string())
            .spawn(move || crate::record::run_recorder(recorder_endpoint, record))
            .map_err(|e| format!("cannot start the recorder thread: {e}"))?,
    );
    let ledger_endpoint = endpoints.pop().ok_or("no mesh endpoint for the ledger")?;
    let ledger = std::thread::Builder::new()
        .name("ledger".to_string())
        .spawn(move || crate::state::run_ledger(ledger_endpoint, ledger, counters))
        .map_err(|e| format!("cannot start the ledger thread: {e}"))?;
    let Some(transcode) = transcode else {
        return Ok((threads, ledger));
    };
    let workers = endpoints
        .into_iter()
        .enumerate()
        .map(|(index, endpoint)| {
            let settings = transcode.clone();
            std::thread::Builder::new()
                .name(format!("transcode-{index}"))
                .spawn(move || crate::transcode::run_worker(index, endpoint, settings))
                .map_err(|e| format!("cannot start transcode thread {index}: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    threads.extend(workers);
    Ok((threads, ledger))
}

/// The relay thread's options when rooms span hosts (`state.redis` set).
fn relay_options(
    config: &Config,
    shards: usize,
) -> Result<Option<crate::state::relay::Relay>, String> {
    if config.state.redis.is_empty() {
        return Ok(None);
    }
    let room = settings::room_config(config)?;
    let advertise = &config.state.origin_advertise;
    let options = crate::state::relay::RelayOptions {
        origin_advertise: (!advertise.is_empty()).then(|| advertise.clone()),
        url: config.state.redis.clone(),
        prefix: config.state.redis_prefix.clone(),
        timeout_ms: config.state.redis_timeout_ms,
        reconnect_ms: config.state.redis_reconnect_ms,
        host: crate::state::relay::host_name(),
        keep_events: room.history_max as u64,
        room_ttl_s: config.danmaku.cluster_room_ttl_s,
        // Three stats periods: a host that stops reporting stops counting soon after.
        online_ttl_ms: room.stats_ms * 3,
        limits: shardcast_danmaku::relay::RelayLimits {
            events_max: room.batch_max_bytes / shardcast_danmaku::event::EVENT_OVERHEAD_BYTES + 1,
            user_max_bytes: room.user_max_bytes,
            text_max_bytes: room.text_max_bytes,
        },
        shards,
    };
    log::info!(
        "rooms span hosts through Redis (keys {}room:*), this host is {}",
        options.prefix,
        options.host
    );
    crate::state::relay::Relay::new(options).map(Some)
}
