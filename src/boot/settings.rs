//! Each service's settings, built once from the configuration at start and shared (read
//! only) by every shard and worker.

use super::config::Config;
use super::tls::TlsSetup;
use super::webrtc::{webrtc_settings, webrtc_udp};
use crate::common::auth::TokenKey;
use crate::danmaku::settings::{AnonymousRooms, DanmakuCounters, DanmakuSettings, FilterMode};
use crate::http::settings::{ApiAccess, HttpCounters, HttpSettings};
use crate::http::static_files::StaticFiles;
use crate::http::web::WebSettings;
use crate::media::settings::{MediaCounters, MediaSettings, PublishAccess, RtmpLimits};
use crate::shard::addresses::AddressLimits;
use crate::shard::router::ShardSettings;
use crate::transcode::settings::TranscodeSettings;
use shardcast_engine::{EngineConfig, IoChoice, ListenerSpec, ShardId};
use std::sync::Arc;
use std::time::SystemTime;

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

/// Shard *i* runs on `cores[i]`. `--shards N` beyond the cores given wraps around (and says so).
pub fn shard_cores(config: &Config, shards: Option<usize>) -> Result<Vec<Option<usize>>, String> {
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

/// Whether WHEP viewers can be adaptive here: WebRTC and `webrtc.abr_start_kbps` on, and
/// H.264 rungs to move between.
pub(crate) fn adaptive_webrtc(config: &Config) -> bool {
    let (w, t) = (&config.webrtc, &config.transcode);
    let h264 = t.codec.eq_ignore_ascii_case("h264");
    w.udp_listen != "off" && w.abr_start_kbps > 0 && t.enabled && !t.ladder.is_empty() && h264
}

pub fn engine_config(config: &Config) -> EngineConfig {
    let e = &config.engine;
    EngineConfig {
        ring_entries: e.ring_entries,
        recv_buffer_bytes: e.recv_buffer_bytes,
        recv_buffers: e.recv_buffers,
        zerocopy_min_bytes: e.zerocopy_min_bytes,
        max_connections: config.http.max_connections_per_shard + e.connection_reserve,
        timer_tick_ms: match e.timer_tick_ms {
            0 if adaptive_webrtc(config) => 1,
            0 => 10,
            tick => tick,
        },
        timer_slots: e.timer_slots,
        timers_per_connection: 1,
        other_timers: crate::shard::timer::other_timers(
            config.danmaku.rooms_max_per_shard,
            config.media.streams_max,
        ),
        mesh_ring_capacity: e.mesh_ring_capacity,
        max_completions_per_tick: e.max_completions_per_tick,
        listen_backlog: e.listen_backlog,
        socket_send_buffer_bytes: e.socket_send_buffer_bytes,
        linger_ms: e.linger_ms,
        shutdown_grace_ms: config.shutdown.grace_ms,
        io_uring_disable: e.io_uring_disable.clone(),
        udp: webrtc_udp(config).into_iter().collect(),
        ..EngineConfig::default()
    }
}

/// The source's segmenter settings (the rungs use the same).
pub fn segmenter_config(config: &Config) -> Result<shardcast_media::SegmenterConfig, String> {
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
/// transcoding is off or there is nothing to encode.
pub fn transcode_settings(
    config: &Config,
    segmenter: shardcast_media::SegmenterConfig,
) -> Result<Option<Arc<TranscodeSettings>>, String> {
    let t = &config.transcode;
    // Only WebRTC needs Opus from AAC, and only WHIP brings Opus to make AAC from.
    let (webrtc_opus_bps, aac_bps) = match webrtc_udp(config) {
        Some(_) => (
            u64::from(config.webrtc.opus_kbps) * 1000,
            u64::from(t.aac_kbps) * 1000,
        ),
        None => (0, 0),
    };
    let audio_only = t.opus_kbps == 0 && webrtc_opus_bps == 0 && aac_bps == 0;
    if !t.enabled || (t.ladder.is_empty() && audio_only) {
        log::info!("transcoding off: only the source rendition is served");
        return Ok(thumbnail_only(config, segmenter));
    }
    let allowed = shardcast_engine::sys::allowed_cores();
    if let Some(core) = t.cores.iter().find(|c| !allowed.contains(c)) {
        return Err(format!(
            "transcode.cores names core {core}, which this process may not run on (allowed: {allowed:?})"
        ));
    }
    let (codec, encoder) = choose_encoder(config)?;
    let watermarks = watermarks(config)?;
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
    Ok(Some(Arc::new(TranscodeSettings {
        codec,
        opus_bps: u64::from(t.opus_kbps) * 1000,
        webrtc_opus_bps,
        aac_bps,
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
        streams_per_worker: t.streams_per_worker,
        segmenter,
        watermarks,
        thumbnails: thumbnails(config),
        load: Arc::new(cores.iter().map(|_| Default::default()).collect()),
        counters: Arc::new(cores.iter().map(|_| Default::default()).collect()),
        cores,
    })))
}

/// With transcoding off but thumbnails on: one unpinned transcode thread with no rungs, to
/// which homes send a keyframe per thumbnail interval (it decodes only those).
fn thumbnail_only(
    config: &Config,
    segmenter: shardcast_media::SegmenterConfig,
) -> Option<Arc<TranscodeSettings>> {
    let thumbnails = thumbnails(config)?;
    log::info!(
        "thumbnails: one keyframe per stream every {} ms decoded on a transcode thread",
        config.media.thumbnail_interval_ms
    );
    Some(Arc::new(TranscodeSettings {
        codec: shardcast_native::CodecId::H264,
        opus_bps: 0,
        webrtc_opus_bps: 0,
        aac_bps: 0,
        ladder: Vec::new(),
        encoder: "none".to_string(),
        preset: String::new(),
        codec_threads: 1,
        queue_max_ms: config.transcode.queue_max_ms,
        queue_max_samples: config.transcode.queue_max_samples,
        // A keyframe per stream every few seconds: one thread decodes them for many streams.
        streams_per_worker: config.media.streams_max,
        segmenter,
        watermarks: Vec::new(),
        thumbnails: Some(thumbnails),
        load: Arc::new(vec![Default::default()]),
        counters: Arc::new(vec![Default::default()]),
        cores: vec![None],
    }))
}

/// `media.thumbnail_*`: the JPEG's spec and the interval, or `None` when off.
pub fn thumbnails(
    config: &Config,
) -> Option<(shardcast_native::ThumbnailSpec, std::time::Duration)> {
    let m = &config.media;
    (m.thumbnail_interval_ms > 0).then(|| {
        let spec = shardcast_native::ThumbnailSpec {
            width: m.thumbnail_width,
            qscale: m.thumbnail_qscale,
        };
        (
            spec,
            std::time::Duration::from_millis(m.thumbnail_interval_ms),
        )
    })
}

/// The rungs' codec and the encoder that opens for it (probed in order, or forced), with the
/// probe's reasons logged.
fn choose_encoder(config: &Config) -> Result<(shardcast_native::CodecId, String), String> {
    use shardcast_native::{probe_h264, probe_hevc, CodecId, ProbeOutcome};
    let t = &config.transcode;
    let force = (t.encoder != "auto").then_some(t.encoder.as_str());
    let (codec, probe): (CodecId, fn(Option<&str>) -> shardcast_native::ProbeReport) =
        if t.codec == "hevc" {
            (CodecId::Hevc, probe_hevc)
        } else {
            (CodecId::H264, probe_h264)
        };
    let report = probe(force);
    for (name, outcome) in &report.attempts {
        match outcome {
            ProbeOutcome::Opened => log::info!("transcode: {name} opens"),
            ProbeOutcome::Failed { reason } => log::info!("transcode: {name} not used: {reason}"),
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
            let software = if codec == CodecId::Hevc {
                "libx265"
            } else {
                "libx264"
            };
            log::info!(
                "transcode: {name} opens, but the ladder does not upload pictures to VAAPI \
                 surfaces yet: using {software}"
            );
            probe(Some(software))
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
    Ok((codec, encoder))
}

/// Each configured watermark as (stream, filter), built once now so that a bad filter, font
/// or image stops the start with a reason.
fn watermarks(config: &Config) -> Result<Vec<(String, String)>, String> {
    let mut watermarks = Vec::new();
    for w in &config.transcode.watermarks {
        use crate::transcode::watermark::{watermark_filter, Overlay};
        let overlay = if !w.filter.is_empty() {
            Overlay::Filter(&w.filter)
        } else if !w.image.is_empty() {
            Overlay::Image(&w.image)
        } else if !w.text.is_empty() {
            Overlay::Text(&w.text)
        } else {
            return Err(format!(
                "transcode.watermarks: the entry for {:?} has no text, image or filter",
                w.stream
            ));
        };
        let filter = watermark_filter(overlay);
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
    Ok(watermarks)
}

/// Every shard's service settings, and the listeners in the order their protocols are
/// listed.
pub fn shard_settings(
    config: &Config,
    shards: usize,
    transcode: Option<Arc<TranscodeSettings>>,
    tls: Option<&TlsSetup>,
) -> Result<(Arc<ShardSettings>, Vec<ListenerSpec>), String> {
    // The ledger's mesh endpoint comes after the shards, the control thread and the
    // transcode workers.
    let transcode_workers = transcode.as_ref().map_or(0, |t| t.cores.len());
    let ledger = ShardId((shards + 1 + transcode_workers) as u16);
    // The recorder comes after the ledger, and with Redis the relay thread (rooms across
    // hosts) after the recorder.
    let recorder = ShardId(ledger.0 + 1);
    let relay = (!config.state.redis.is_empty()).then(|| ShardId(ledger.0 + 2));
    // The edge's fetcher comes last.
    let fetcher = ShardId(ledger.0 + 2 + u16::from(relay.is_some()));
    let danmaku = Arc::new(danmaku_settings(config, shards, ledger, relay)?);
    let mut media = media_settings(config, shards, transcode, recorder)?;
    media.edge = crate::boot::edge::is_edge(config).then(|| {
        Arc::new(crate::media::edge::EdgeShardSettings {
            fetcher,
            cache_max_bytes: config.edge.cache_max_bytes,
            counters: Default::default(),
            // Each origin tried for its longest wait, and a margin for the fetcher itself.
            silence_max_ms: config
                .edge
                .blocking_timeout_ms
                .max(config.edge.origin_timeout_ms)
                * (config.edge.origins.len() + usize::from(config.edge.origin_map)) as u64
                + 5_000,
        })
    });
    media.origin_map = relay.filter(|_| !config.state.origin_advertise.is_empty());
    let media = Arc::new(media);
    let h = &config.http;
    let http = Arc::new(HttpSettings {
        limits: config.http_limits(),
        max_connections_per_shard: h.max_connections_per_shard as usize,
        header_timeout_ms: h.header_timeout_ms,
        idle_timeout_ms: h.idle_timeout_ms,
        pipeline_max_responses: h.pipeline_max_responses,
        pipeline_buffer_max_bytes: h.pipeline_buffer_max_bytes,
        static_files: Arc::new(static_files(config)?),
        web: web_settings(config)?,
        api_access: match (h.api_token.as_str(), config.media.playback_tokens) {
            ("", false) => ApiAccess::Open,
            ("", true) => ApiAccess::Closed,
            (token, _) => ApiAccess::Bearer(token.to_string()),
        },
        counters: Arc::new((0..shards).map(|_| HttpCounters::default()).collect()),
        danmaku: danmaku.clone(),
        media: media.clone(),
        started: SystemTime::now(),
    });
    let (listeners, protocols) = super::listeners::listeners(config, tls)?;
    let settings = ShardSettings {
        http,
        danmaku,
        media,
        listeners: protocols,
        address_limits: AddressLimits {
            http: h.max_connections_per_address,
            websocket: config.ws.max_connections_per_address,
            rtmp: config.rtmp.max_connections_per_address,
            webrtc_tcp: config.webrtc.tcp_connections_per_address,
        },
    };
    Ok((Arc::new(settings), listeners))
}

/// `[web]`, with guests resolved against `auth`.
fn web_settings(config: &Config) -> Result<WebSettings, String> {
    let w = &config.web;
    let auth_configured = !config.auth.secret.is_empty() || !config.auth.secret_file.is_empty();
    let guests = match w.guests.as_str() {
        "on" => true,
        "off" => false,
        _ => !auth_configured,
    };
    if w.enabled && guests {
        log::info!(
            "web: guests may chat (web.guests = {:?}{}); each address may take {} guest tokens a minute",
            w.guests,
            if auth_configured { "" } else { ", auth.secret is not set" },
            w.guest_tokens_per_minute
        );
    }
    let mut guest_seed = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut guest_seed))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let files = crate::http::web::embedded_files();
    for player in ["vendor/hls.min.js", "vendor/dash.mediaplayer.min.js"] {
        if files.get(player).is_none() {
            log::warn!("web: {player} was not built in (run scripts/web.sh, then build): the watch page cannot play");
        }
    }
    Ok(WebSettings {
        enabled: w.enabled,
        files,
        guests,
        guest_token_ttl_s: w.guest_token_ttl_s,
        guest_tokens_per_minute: w.guest_tokens_per_minute,
        guest_seed,
        leaderboard_public: w.leaderboard_public,
        gifts: config
            .danmaku
            .gifts
            .iter()
            .map(|g| (g.id, g.name.clone(), g.value))
            .collect(),
        text_max_chars: config.danmaku.text_max_chars,
    })
}

/// `http.static_dir`, loaded into memory.
fn static_files(config: &Config) -> Result<StaticFiles, String> {
    let h = &config.http;
    if h.static_dir.is_empty() {
        return Ok(StaticFiles::default());
    }
    let files = StaticFiles::load(h.static_dir.as_ref(), h.static_max_bytes)
        .map_err(|e| format!("http.static_dir {}: {e}", h.static_dir))?;
    log::info!(
        "static: {} files, {} bytes from {} under /static/",
        files.len(),
        files.total_bytes(),
        h.static_dir
    );
    Ok(files)
}

/// `shards.io` as the engine's choice.
pub fn io_choice(config: &Config) -> IoChoice {
    match config.shards.io.as_str() {
        "uring" => IoChoice::Uring,
        "epoll" => IoChoice::Epoll,
        _ => IoChoice::Auto,
    }
}

fn media_settings(
    config: &Config,
    shards: usize,
    transcode: Option<Arc<TranscodeSettings>>,
    recorder: ShardId,
) -> Result<MediaSettings, String> {
    let m = &config.media;
    let r = &config.rtmp;
    let secret = configured_secret(config)?;
    let key_for = |on: bool, what: &str| -> Result<Option<TokenKey>, String> {
        if !on {
            return Ok(None);
        }
        let secret = secret
            .as_ref()
            .ok_or_else(|| format!("{what} needs auth.secret (or auth.secret_file)"))?;
        Ok(Some(TokenKey::new(secret)))
    };
    let segmenter = segmenter_config(config)?;
    let rtmp = rtmp_session_config(config);
    let webrtc = webrtc_settings(config, publish_video_codecs(transcode.as_deref()));
    Ok(MediaSettings {
        rtmp,
        rtmp_limits: RtmpLimits {
            publish_timeout_ms: r.publish_timeout_ms,
            idle_timeout_ms: r.idle_timeout_ms,
            max_connections_per_shard: r.max_connections_per_shard,
            publish_failures_per_minute: r.publish_failures_per_minute,
        },
        app: r.app.clone(),
        segmenter,
        ll_hls: m.ll_hls,
        index: shardcast_media::IndexLimits {
            window_ms: m.window_s * 1000,
            stream_max_bytes: m.stream_max_bytes,
            inits_kept: 4,
            streams_max: m.streams_max,
            ended_keep_ms: m.ended_keep_s.saturating_mul(1000),
        },
        failover_ms: m.failover_ms,
        publish_keys: m
            .publish_keys
            .iter()
            .map(|k| (k.stream.clone(), k.key.clone()))
            .collect(),
        publish_tokens: key_for(m.publish_tokens, "media.publish_tokens")?,
        publish_access: publish_access(config)?,
        on_publish: (!m.on_publish.is_empty()).then(|| m.on_publish.clone()),
        on_unpublish: (!m.on_unpublish.is_empty()).then(|| m.on_unpublish.clone()),
        webhook_timeout_ms: m.webhook_timeout_ms,
        stage_hosts_max: match &transcode {
            Some(t) if t.encoder != "none" => config.webrtc.max_cohosts,
            _ => 0,
        },
        playback_tokens: key_for(m.playback_tokens, "media.playback_tokens")?,
        max_width: m.max_width,
        max_height: m.max_height,
        counters: Arc::new((0..shards).map(|_| MediaCounters::default()).collect()),
        part_latency: Arc::new((0..shards).map(|_| Default::default()).collect()),
        transcode,
        recorder,
        record: Arc::new(record_settings(config)),
        edge: None,
        origin_map: None,
        webrtc,
    })
}

/// The video codecs a WHIP publisher may send, best first: VP8 only when a transcode worker
/// with a video encoder can make it H.264 (`transcode::convert`).
fn publish_video_codecs(transcode: Option<&TranscodeSettings>) -> &'static [str0m::format::Codec] {
    use str0m::format::Codec;
    match transcode {
        Some(t) if t.encoder != "none" => &[Codec::H264, Codec::Vp8],
        _ => &[Codec::H264],
    }
}

/// `media.record*`: which streams are recorded, into `state.data_dir/recordings`.
pub fn record_settings(config: &Config) -> crate::record::RecordSettings {
    let m = &config.media;
    crate::record::RecordSettings {
        dir: std::path::Path::new(&config.state.data_dir).join("recordings"),
        all: m.record,
        streams: m.record_streams.clone(),
        queue_max_bytes: m.record_queue_max_bytes,
        queued: Default::default(),
        keep_s: m.record_keep_s,
        max_bytes: m.record_max_bytes,
        counters: Default::default(),
    }
}

/// The RTMP session limits of `[rtmp]`. Unfinished messages may take up to a whole largest
/// message, or the library's default, whichever is more. `Config::validate` checks the result.
pub fn rtmp_session_config(config: &Config) -> shardcast_rtmp::SessionConfig {
    let r = &config.rtmp;
    let defaults = shardcast_rtmp::SessionConfig::default();
    shardcast_rtmp::SessionConfig {
        handshake_timeout_ms: r.handshake_timeout_ms,
        chunk_size_max: r.chunk_size_max,
        message_max_bytes: r.message_max_bytes,
        chunk_streams_max: r.chunk_streams_max,
        partial_max_bytes: defaults.partial_max_bytes.max(r.message_max_bytes),
        ..defaults
    }
}

/// Who may publish when neither stream keys nor publish tokens are configured: anyone (only
/// with `media.publish_open`), or whoever presents the server's generated key.
fn publish_access(config: &Config) -> Result<PublishAccess, String> {
    let m = &config.media;
    if !m.publish_keys.is_empty() || m.publish_tokens {
        return Ok(PublishAccess::Configured);
    }
    if m.publish_open {
        return Ok(PublishAccess::Open);
    }
    let key = super::publish_key::load_or_create(std::path::Path::new(&config.state.data_dir))?;
    Ok(PublishAccess::ServerKey(key))
}

/// The sensitive-word filter of `danmaku.word_list`, if one is set.
fn word_filter(
    d: &crate::boot::config::Danmaku,
) -> Result<Option<shardcast_danmaku::WordFilter>, String> {
    if d.word_list.is_empty() {
        return Ok(None);
    }
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
    Ok(Some(filter))
}

/// The rooms' settings, from `[danmaku]` and `[ws]`, checked.
pub fn room_config(config: &Config) -> Result<shardcast_danmaku::RoomConfig, String> {
    let d = &config.danmaku;
    let w = &config.ws;
    let room = shardcast_danmaku::RoomConfig {
        history_max: d.history_max,
        history_s: d.history_s,
        batch_ms: d.batch_ms,
        batch_max_bytes: d.batch_max_bytes,
        stats_ms: d.stats_ms,
        inbound_max_per_s: d.room_inbound_max_per_s,
        inbound_burst: d.room_inbound_max_per_s,
        gift_max_per_s: d.room_gift_max_per_s,
        gift_burst: d.room_gift_max_per_s,
        // A History answer never exceeds the window it is served from.
        history_request_max: (d.history_request_max as usize).min(d.history_max),
        replay_max: d.history_max,
        // Half the send-queue cap: a reply always fits the queue of a viewer that reads.
        reply_max_bytes: w.send_queue_max_bytes / 2,
        gift_catalog: shardcast_danmaku::GiftCatalog::new(d.gifts.iter().map(|g| (g.id, g.value))),
        ..shardcast_danmaku::RoomConfig::default()
    };
    let reply_min = shardcast_danmaku::event::BATCH_OVERHEAD_BYTES + room.largest_event_bytes();
    if room.reply_max_bytes < reply_min {
        return Err(format!(
            "ws.send_queue_max_bytes is {}: it must hold two History replies of the largest \
             event (at least {} bytes)",
            w.send_queue_max_bytes,
            2 * reply_min
        ));
    }
    room.validate()
        .map_err(|e| format!("invalid danmaku config: {e}"))?;
    Ok(room)
}

fn danmaku_settings(
    config: &Config,
    shards: usize,
    ledger: ShardId,
    relay: Option<ShardId>,
) -> Result<DanmakuSettings, String> {
    let d = &config.danmaku;
    let w = &config.ws;
    let secret = match configured_secret(config)? {
        Some(secret) => secret,
        None => {
            log::warn!(
                "auth.secret is not set: using a random secret, so only the guest tokens this \
                 process mints verify (web.guests), and they end with it; set auth.secret for \
                 tokens of your own (`shardcast token`) and the admin API"
            );
            let mut secret = vec![0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut secret))
                .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
            secret
        }
    };
    let filter = word_filter(d)?;
    let room = room_config(config)?;
    Ok(DanmakuSettings {
        ledger,
        gifts_in_flight_max: config.ledger.in_flight_max_per_shard,
        relay,
        state_counters: Arc::default(),
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
        gift_rate_per_s: d.gift_rate_per_s,
        gift_burst: d.gift_burst,
        history_rate_per_s: d.history_rate_per_s,
        history_burst: d.history_burst,
        kick_ban_s: d.kick_ban_s,
        text_max_chars: d.text_max_chars,
        history_request_max: d.history_request_max.min(d.history_max as u32),
        allow_anonymous: d.allow_anonymous,
        anonymous_rooms: match d.anonymous_rooms.as_str() {
            "any" => AnonymousRooms::Any,
            "none" => AnonymousRooms::None,
            _ => AnonymousRooms::Live,
        },
        heartbeat_ms: d.heartbeat_ms,
        filter,
        filter_mode: if d.filter_mode == "reject" {
            FilterMode::Reject
        } else {
            FilterMode::Mask
        },
        rooms_max_per_shard: d.rooms_max_per_shard,
        tokens: TokenKey::new(&secret),
        counters: Arc::new((0..shards).map(|_| DanmakuCounters::default()).collect()),
        latency: Arc::new((0..shards).map(|_| Default::default()).collect()),
    })
}
