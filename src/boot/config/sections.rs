//! Every configuration section: its fields, their docs and defaults (one declaration each,
//! see `config_section!`).

use super::toml_value;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

config_section! {
    /// Shards: one thread per core, pinned, sharing nothing.
    Shards ["shards"] {
        /// Cores to run shards on, one shard per core, e.g. [0, 1, 2]. Empty: every core this
        /// process may use. `--shards N` takes the first N of them.
        cores: Vec<usize> = Vec::new(),
        /// I/O backend: "auto" (io_uring when usable, else epoll, with a log line saying why),
        /// "uring" or "epoll". Overridden by `--io`.
        io: String = "auto".to_string(),
    }
}

config_section! {
    /// The shard engine. Every buffer here is allocated per shard at start.
    Engine ["engine"] {
        /// io_uring submission queue entries (the completion queue gets 4×). Memory: 64 B ×
        /// entries for the SQ plus 16 B × 4 × entries for the CQ, per shard.
        ring_entries: u32 = 1024,
        /// Size of one receive buffer in the shard's provided buffer ring.
        recv_buffer_bytes: u32 = 16384,
        /// Receive buffers per shard (power of two, at most 32768). Shared by every
        /// connection of the shard; an idle connection holds none. Memory per shard:
        /// recv_buffers × recv_buffer_bytes (default 16 MiB).
        recv_buffers: u16 = 1024,
        /// Chunks at or over this size are sent with SEND_ZC (zero-copy); below ~10 KB copying
        /// is cheaper. On loopback the kernel copies anyway.
        zerocopy_min_bytes: usize = 16384,
        /// Extra connection-table slots per shard beyond the service caps, used to answer
        /// over-cap clients with a refusal (HTTP 503) instead of a silent reset.
        connection_reserve: u32 = 256,
        /// Timer wheel tick. Timeouts are accurate to one tick. 0: 1 ms when WHEP viewers can
        /// be adaptive (`webrtc.abr_start_kbps` and a transcode ladder: their pacer and
        /// bandwidth probes send on millisecond timers; at 10 ms, probes go out as bursts and
        /// an estimate climbs only slowly), else 10 ms.
        timer_tick_ms: u64 = 0,
        /// Timer wheel slots (one rotation = slots × tick). The wheel's entries are sized at
        /// start so it never runs out: one per connection slot, one per room
        /// (`danmaku.rooms_max_per_shard`), one per stream (`media.streams_max`) and two for
        /// the media index, 36 B each (entry and slot index); defaults: (19,756 + 100,000 +
        /// 1,002) × 36 B ≈ 4.3 MB per shard.
        timer_slots: usize = 1024,
        /// Messages per mesh ring (one ring per ordered pair of threads: shards, the control
        /// thread and transcode threads); past it the sender holds messages in an overflow
        /// list. Memory, allocated at start: threads² × this × 64 B (`shard::msg::MESH_SLOT_BYTES`,
        /// asserted at compile time); 4 threads: 4 MiB; 66 threads: 1.1 GiB.
        mesh_ring_capacity: usize = 4096,
        /// Completions handled per loop iteration before timers and mesh get a turn.
        max_completions_per_tick: usize = 4096,
        /// Listen backlog for each shard's listener (capped by net.core.somaxconn).
        listen_backlog: i32 = 4096,
        /// SO_SNDBUF for every connection (set on the listeners, inherited by accepted sockets);
        /// 0 keeps the kernel's autotuning. A smaller buffer bounds kernel memory per slow
        /// viewer and makes shardcast's own queue cap (ws.send_queue_max_bytes) act sooner.
        socket_send_buffer_bytes: u32 = 0,
        /// After a response that ends the connection (an error, `Connection: close`, a
        /// WebSocket close), the write side is shut down and input drained for up to this long
        /// before the socket closes, so the peer reads the last bytes instead of a reset.
        /// 0 closes at once.
        linger_ms: u64 = 2000,
        /// io_uring features not to use even where the kernel has them: any of
        /// "single_issuer", "defer_taskrun", "coop_taskrun", "send_zc", "msg_ring", or
        /// "io_uring" to refuse io_uring altogether (auto then picks epoll).
        io_uring_disable: Vec<String> = Vec::new(),
    }
}

config_section! {
    /// The HTTP front door (health, metrics, API, static files).
    Http ["http"] {
        /// Address to listen on. Overridden by `--http`.
        listen: String = "0.0.0.0:8080".to_string(),
        /// Connections per shard. Past it a client gets 503 and is closed. The engine's table
        /// holds this + engine.connection_reserve slots (about 300 B each, allocated at start,
        /// plus the kernel's socket memory per open connection). On io_uring each shard's
        /// direct-descriptor table is bounded by RLIMIT_NOFILE (on epoll, the whole process
        /// is): raise the limit (see tuning/) to go past ~19.5k per shard.
        max_connections_per_shard: u32 = 19500,
        /// HTTP connections one source address may hold on one shard (WebSockets count
        /// apart, under ws.max_connections_per_address); past it 503. Addresses behind a
        /// shared NAT share it.
        max_connections_per_address: u32 = 4096,
        /// Longest request line (method, target, version); longer gets 414.
        request_line_max_bytes: usize = 8192,
        /// Largest request head (request line and headers); larger gets 431.
        head_max_bytes: usize = 16384,
        /// Most header fields in a request; more gets 431.
        headers_max_count: usize = 64,
        /// Largest request body accepted (and discarded: no route takes a body yet); larger
        /// gets 413.
        body_max_bytes: u64 = 1048576,
        /// Time allowed to receive a complete request head once it has started; then 408.
        header_timeout_ms: u64 = 10000,
        /// An idle keep-alive connection is closed after this long, and so is one whose
        /// client reads none of its queued responses for this long (noticed at its next
        /// timer).
        idle_timeout_ms: u64 = 60000,
        /// Responses queued on one connection before its further pipelined requests wait.
        pipeline_max_responses: usize = 64,
        /// Pipelined request bytes held while responses are queued; more closes the
        /// connection. Memory: at most this per connection, only while pipelining.
        pipeline_buffer_max_bytes: usize = 65536,
        /// Directory served from memory under /static/ (loaded once at start; not watched).
        /// Empty: no static files.
        static_dir: String = String::new(),
        /// Most bytes loaded from static_dir; start fails past it.
        static_max_bytes: u64 = 1073741824,
        /// A bearer token for /metrics and /api/v1/streams (`Authorization: Bearer TOKEN`),
        /// which name every live stream. Empty: they are open, unless media.playback_tokens
        /// is on, in which case they are refused (403) until a token is set here.
        api_token: String = String::new(),
    }
}

config_section! {
    /// WebSocket connections (GET /ws, subprotocol shardcast.v1).
    Ws ["ws"] {
        /// Largest frame accepted from a client; larger closes with 1009. A partial frame is
        /// buffered per connection up to this size.
        frame_max_bytes: usize = 65536,
        /// Largest message (all fragments) accepted from a client; larger closes with 1009.
        message_max_bytes: usize = 65536,
        /// WebSockets one source address may hold on one shard; past it the upgrade is
        /// closed with 1013 (try again later).
        max_connections_per_address: u32 = 4096,
        /// Time a new connection has to send Hello; then it is closed (1008).
        hello_timeout_ms: u64 = 10000,
        /// A connection with no traffic from the client for this long is closed (1001).
        idle_timeout_ms: u64 = 60000,
        /// The server pings a client that has been quiet this long (its pong is traffic).
        ping_interval_ms: u64 = 20000,
        /// Bytes queued to one viewer before its oldest batches are dropped (the viewer sees a
        /// seq gap and can ask History). Memory: at most this per connection, only while slow.
        /// One History answer or resume replay holds at most half of it (a longer gap answers
        /// with `more`, or Resync); a reply that finds the queue full closes the viewer (1008).
        send_queue_max_bytes: usize = 1048576,
        /// A viewer over send_queue_max_bytes for this long is closed with 1008, so a stalled
        /// reader cannot hold memory or delay anyone.
        stall_timeout_ms: u64 = 10000,
    }
}

/// A gift in the catalog.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GiftConfig {
    pub id: u32,
    pub name: String,
    /// Value of one gift in the platform's unit.
    pub value: u64,
}

config_section! {
    /// Danmaku rooms: bullet comments, likes, gifts and online counts.
    Danmaku ["danmaku"] {
        /// Events kept per room for resume and History. Memory: about 200 B per event.
        history_max: usize = 1000,
        /// Events older than this leave the history window.
        history_s: u64 = 300,
        /// Rooms across hosts (`state.redis`): a room's keys in Redis (its seq, epoch, like
        /// total and stream) expire this long after its last batch; a room that comes back
        /// after that starts a new epoch, and its viewers Resync.
        cluster_room_ttl_s: u64 = 86400,
        /// Batching window: a room sends at most one batch per window; the first event after a
        /// quiet window goes out at once, later ones wait for the window to close.
        batch_ms: u64 = 50,
        /// A batch is sent early once its events reach this size.
        batch_max_bytes: usize = 16384,
        /// RoomStats (online, likes, heat) are sent this often, riding with the next batch (one
        /// write per viewer instead of two) or alone after half an interval without one.
        stats_ms: u64 = 1000,
        /// Inbound events per second per room, all priorities; past it chats are shed
        /// (normal first, then paid), gifts never.
        room_inbound_max_per_s: u32 = 2000,
        /// Gifts per second per room, whoever sends them (and the burst); past it a gift is
        /// answered 429 and not taken (the client retries with the same idempotency key).
        /// Gifts go ahead of chats in room_inbound_max_per_s, so this bounds what they can take
        /// from chats: keep it well under that.
        room_gift_max_per_s: u32 = 200,
        /// Chats per second per connection (token bucket rate); excess answered with 429.
        chat_rate_per_s: u32 = 1,
        /// Chat burst per connection.
        chat_burst: u32 = 3,
        /// Like messages per second per connection.
        like_rate_per_s: u32 = 20,
        /// Like burst per connection.
        like_burst: u32 = 50,
        /// Gifts per second per connection (over it: 429, and the gift is not taken).
        gift_rate_per_s: u32 = 5,
        /// Gift burst per connection.
        gift_burst: u32 = 10,
        /// History requests per second per connection. One request can return
        /// `history_request_max` events (at most half of ws.send_queue_max_bytes), encoded on
        /// the room's home shard.
        history_rate_per_s: u32 = 1,
        /// History request burst per connection.
        history_burst: u32 = 3,
        /// A kicked user may not join the room again for this long (a room remembers the
        /// last 1,024 kicked users).
        kick_ban_s: u64 = 600,
        /// Longest chat text, in characters; longer is answered with 413.
        text_max_chars: usize = 100,
        /// Most events one History request returns.
        history_request_max: u32 = 200,
        /// Viewers without a token may join and read (never send).
        allow_anonymous: bool = true,
        /// Which rooms an anonymous viewer's Hello may create (any viewer may join a room that
        /// exists): "live" (a room named after a stream that is live now), "any", or "none".
        /// Rooms outlive their viewers by `history_s`, so "any" lets anonymous clients fill
        /// `rooms_max_per_shard`.
        anonymous_rooms: String = "live".to_string(),
        /// Heartbeat interval announced to clients in Welcome.
        heartbeat_ms: u32 = 25000,
        /// Sensitive-word list: a file with one word per line (# comments). Empty: no filter.
        word_list: String = String::new(),
        /// What the filter does with a match: "mask" (replace with *) or "reject" (422).
        filter_mode: String = "mask".to_string(),
        /// Rooms whose home is one shard, at most; a Hello for a new room past it gets 503.
        /// Each holds one timer (36 B, reserved at start) and its state and history while it
        /// lives, which is until `history_s` after its last member left.
        rooms_max_per_shard: usize = 100000,
        /// Gifts that may be sent (id, name, value).
        gifts: Vec<GiftConfig> = vec![
            GiftConfig { id: 1, name: "heart".to_string(), value: 1 },
            GiftConfig { id: 2, name: "rocket".to_string(), value: 100 },
        ],
    }
}

config_section! {
    /// Token signing (HMAC-SHA256) for danmaku tokens minted by `shardcast token`.
    Auth ["auth"] {
        /// The signing secret (32+ random bytes recommended). Empty and no secret_file: a
        /// random secret is made at start, so no token verifies and everyone is anonymous.
        secret: String = String::new(),
        /// A file holding the secret (its first line), instead of `secret`.
        secret_file: String = String::new(),
    }
}

config_section! {
    /// RTMP ingest: `rtmp://host:1935/live/{stream}` from OBS or ffmpeg.
    Rtmp ["rtmp"] {
        /// Address to listen on. Overridden by `--rtmp`. Empty: no RTMP listener.
        listen: String = "0.0.0.0:1935".to_string(),
        /// The application publishers use (`rtmp://host/{app}/{stream}`).
        app: String = "live".to_string(),
        /// Time for the handshake and `connect`; then the connection is closed.
        handshake_timeout_ms: u64 = 10000,
        /// Time from the connection to an accepted publish (the handshake, `connect`,
        /// `publish`, the on_publish webhook and the home's answer); then it is closed with
        /// an error. A connection that never publishes holds a slot no longer than this.
        publish_timeout_ms: u64 = 15000,
        /// A publisher that sends nothing for this long is closed (a backup takes over after
        /// `media.failover_ms` already; this frees the connection).
        idle_timeout_ms: u64 = 30000,
        /// RTMP connections one shard holds at most; past it a new one is closed at once
        /// (counted in rtmp_refused). They take slots of the same connection table as HTTP
        /// and WebSocket, so this keeps publishers from crowding viewers out.
        max_connections_per_shard: u32 = 256,
        /// RTMP connections one source address may hold on one shard; past it a new one is
        /// closed at once (counted in rtmp_refused).
        max_connections_per_address: u32 = 16,
        /// Refused publish credentials (key or token) one source address may present per
        /// minute; then its publishes are refused at once, and logged, until the minute ends.
        /// 0: no limit. Each shard tracks up to 4,096 addresses (about 48 B each).
        publish_failures_per_minute: u32 = 10,
        /// Largest chunk size a publisher may set.
        chunk_size_max: u32 = 65536,
        /// Largest RTMP message (a keyframe). Memory: up to this per publisher while a message
        /// is being reassembled.
        message_max_bytes: usize = 8388608,
        /// Chunk streams one connection may use.
        chunk_streams_max: usize = 64,
    }
}

/// A stream key from the config.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PublishKey {
    pub stream: String,
    pub key: String,
}

config_section! {
    /// Live media: packaging, the segment index, publish auth, failover, playback.
    Media ["media"] {
        /// Segments are cut on a keyframe once this much media has accumulated.
        segment_target_ms: u32 = 2000,
        /// LL-HLS part duration, and the chunk of low-latency DASH. Players hold back three
        /// parts from the live edge (`PART-HOLD-BACK` 0.6 s at 200 ms; DASH's
        /// `ServiceDescription` asks for the same); each LL-HLS viewer makes about two
        /// requests per part and rendition (a blocking playlist reload and the part).
        /// Segments still end on keyframes.
        part_target_ms: u32 = 200,
        /// Serve LL-HLS (parts, preload hints, blocking reloads) in media playlists.
        ll_hls: bool = true,
        /// Seconds of segments every shard keeps per rendition (the DVR window).
        window_s: u64 = 600,
        /// Bytes of media one stream may hold in a shard's index (shared across shards: one
        /// copy per process); past it the oldest segments go.
        stream_max_bytes: usize = 536870912,
        /// Live streams at most, on the whole server (every shard indexes each); a publish of
        /// a new stream past it is refused with an RTMP error that says so. Each stream holds
        /// one timer on its home shard and, with a ladder, one transcode.
        streams_max: usize = 1000,
        /// Seconds an ended stream stays servable, so players behind live can finish its
        /// playlist (it ends with EXT-X-ENDLIST); then every shard forgets it and its segments.
        /// A new publish of the same name replaces it at once. 0: forget at the end.
        ended_keep_s: u64 = 120,
        /// A backup publisher takes over when the active one sends nothing for this long.
        failover_ms: u64 = 1000,
        /// Stream keys: publishing `{stream}?key={key}` is allowed. With neither keys nor
        /// publish_tokens (and publish_open off), a server-wide key is generated on first
        /// start, kept in `state.data_dir`/publish.key and printed in the log: publishing
        /// `{any stream}?key={that key}` is allowed.
        publish_keys: Vec<PublishKey> = Vec::new(),
        /// Let anyone publish any stream without a credential (and take over a live one as
        /// its backup). Off by default; for closed networks and tests only.
        publish_open: bool = false,
        /// Accept publish tokens (`shardcast token --publish --stream S`), as `{stream}?token=T`,
        /// signed with auth.secret.
        publish_tokens: bool = false,
        /// Webhook called (HTTP POST, JSON) before a publish is accepted; a 2xx allows it.
        /// Empty: none. http:// only.
        on_publish: String = String::new(),
        /// Webhook called when a publish ends (the answer is ignored). Empty: none.
        on_unpublish: String = String::new(),
        /// Webhook timeout; no answer in time refuses the publish.
        webhook_timeout_ms: u64 = 3000,
        /// Signed playback URLs: every /live/ request needs `?token=` (a token for the stream,
        /// from `shardcast token --room STREAM`).
        playback_tokens: bool = false,
        /// Largest video accepted, in pixels.
        max_width: u32 = 7680,
        /// Largest video accepted, in pixels.
        max_height: u32 = 4320,
        /// A JPEG of every stream's newest picture is made this often on its transcode thread
        /// (from the pictures the ladder decodes anyway) and served at
        /// `/live/{stream}/thumb.jpg`. 0: no thumbnails. Needs transcoding on.
        thumbnail_interval_ms: u64 = 5000,
        /// Thumbnail width in pixels (never wider than the source; the height keeps the
        /// aspect). Each stream's newest thumbnail (a few tens of KiB at 320) is held by every
        /// shard.
        thumbnail_width: u32 = 320,
        /// JPEG quantiser of thumbnails: 2 (finest, largest) to 31 (coarsest).
        thumbnail_qscale: u32 = 5,
        /// Record every stream: each rendition's init and segments are written under
        /// `state.data_dir/recordings/{stream}/{start}/` as they are made (by the recorder
        /// thread, never a shard), with VOD playlists and an MPD at the end, served at
        /// `/vod/{stream}/{start}/…` and listed by `GET /api/v1/recordings`.
        record: bool = false,
        /// Streams to record when `record` is off: names, or prefixes ending in `*`.
        record_streams: Vec<String> = Vec::new(),
        /// Bytes queued for the recorder and not yet on disk, at most; a part that does not
        /// fit is dropped (its segment becomes a gap in the recording, counted in
        /// media_record_queue_full and logged). Memory: at most this, in all.
        record_queue_max_bytes: usize = 67108864,
        /// Recordings are deleted this long after they end (checked every minute).
        record_keep_s: u64 = 604800,
        /// Recordings take at most this many bytes on disk; past it the oldest finished ones
        /// are deleted. 0: no cap.
        record_max_bytes: u64 = 10737418240,
    }
}

/// One rung of the transcode ladder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RungConfig {
    /// Rendition name: the URL path component (`/live/{stream}/{name}/…`).
    pub name: String,
    /// Output width; 0 keeps the source's aspect ratio.
    #[serde(default)]
    pub width: u32,
    /// Output height. A rung taller (or wider) than the source is not encoded.
    pub height: u32,
    /// Target bit rate, CBR with a one-second VBV buffer.
    pub bitrate_kbps: u32,
}

/// A picture overlay on the rungs of the streams it names.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WatermarkConfig {
    /// The stream name, or "*" for every stream.
    pub stream: String,
    /// Text drawn at the top right (libavfilter drawtext, the system's default font).
    #[serde(default)]
    pub text: String,
    /// An image file (PNG, …) overlaid at the top right.
    #[serde(default)]
    pub image: String,
    /// Any libavfilter chain with one video input and output; overrides text and image.
    #[serde(default)]
    pub filter: String,
}

config_section! {
    /// Transcoding: the ABR ladder, encoded on dedicated threads through FFmpeg.
    Transcode ["transcode"] {
        /// Encode the ladder for every stream. Off: only the source rendition is served.
        enabled: bool = true,
        /// Cores for transcode threads, one pinned thread per core; shards then default to
        /// the other cores. Empty: one transcode thread, not pinned (it shares the cores).
        cores: Vec<usize> = Vec::new(),
        /// What the rungs are encoded as: "h264", or "hevc" (H.265: smaller rungs for players
        /// that decode it; the source keeps its own codec).
        codec: String = "h264".to_string(),
        /// "auto" (the first of h264_nvenc, h264_qsv, h264_vaapi, libx264 that opens — for
        /// hevc: hevc_nvenc, hevc_qsv, hevc_vaapi, libx265 —, see `shardcast probe`) or an
        /// encoder's FFmpeg name to force it.
        encoder: String = "auto".to_string(),
        /// libx264 / libx265 preset (ultrafast … veryslow); other encoders ignore it.
        preset: String = "veryfast".to_string(),
        /// Threads per decoder and per encoder (0: FFmpeg chooses).
        codec_threads: u32 = 1,
        /// An Opus rendition (`audio-opus`, its own HLS audio group and DASH adaptation set)
        /// encoded from the source's AAC at this bit rate; 0: none (the AAC is served as is).
        opus_kbps: u32 = 0,
        /// An AAC rendition (`audio-aac`, its own HLS audio group and DASH adaptation set)
        /// encoded at this bit rate from a source whose audio is Opus (a WHIP publisher's),
        /// for players without Opus in HLS (Safari, most TVs); 0: none (the Opus is served as
        /// is).
        aac_kbps: u32 = 128,
        /// The rungs, besides the `source` rendition (passed through). Memory per stream and
        /// rung: the encoder's lookahead and reference frames (a few frames at the rung's size).
        ladder: Vec<RungConfig> = vec![
            RungConfig { name: "720p".into(), width: 0, height: 720, bitrate_kbps: 2500 },
            RungConfig { name: "480p".into(), width: 0, height: 480, bitrate_kbps: 1200 },
            RungConfig { name: "360p".into(), width: 0, height: 360, bitrate_kbps: 600 },
        ],
        /// A stream whose oldest waiting access unit is this much older than the newest (its
        /// transcode thread is behind real time) skips to keyframes: it drops pictures until
        /// the next keyframe, counted and logged, and never holds up ingest.
        queue_max_ms: u64 = 2000,
        /// Access units one stream may have waiting on its transcode thread, whatever their
        /// age (a bound on memory: about one compressed picture each).
        queue_max_samples: usize = 1024,
        /// Streams one transcode thread runs at most. A stream that starts while every
        /// thread has this many is served without the ladder (its source and audio only),
        /// and the log says so; it is counted in untranscoded_streams.
        streams_per_worker: usize = 8,
        /// Overlays on the rungs (the source passes through untouched), e.g.
        /// [{ stream = "*", text = "shardcast" }]; the first entry naming a stream (or "*")
        /// applies to it. Checked at start: a filter that does not build refuses to start.
        watermarks: Vec<WatermarkConfig> = Vec::new(),
    }
}

config_section! {
    /// Shutdown behaviour on SIGTERM / SIGINT.
    Shutdown ["shutdown"] {
        /// After a stop signal, listeners close at once and in-flight responses get this long
        /// to finish before the remaining connections are closed. Another signal more than 1 s
        /// after the first exits at once.
        grace_ms: u64 = 10000,
    }
}

config_section! {
    /// What shardcast keeps on disk across restarts.
    State ["state"] {
        /// Directory for state that must survive a restart (created if missing, mode 0700):
        /// the gift ledger (`ledger.redb`) and the generated publish key (`publish.key`).
        /// Relative paths are from the working directory.
        data_dir: String = "shardcast-data".to_string(),
        /// `redis://[user:password@]host:port[/db]`: keep the gift ledger in Redis instead of
        /// `data_dir` (empty: the embedded ledger). That Redis must run with `appendonly yes`
        /// and `appendfsync always`, so a gift is on disk before it is acknowledged; shardcast
        /// checks this at start (see `redis_require_fsync`).
        redis: String = String::new(),
        /// Prefix of every key shardcast makes in Redis, so several deployments can share one.
        redis_prefix: String = "shardcast:".to_string(),
        /// Connect, read and write timeout of every Redis call, ms. A call that takes longer
        /// fails: gifts in flight are refused (`store_unavailable`), never acknowledged.
        redis_timeout_ms: u64 = 2000,
        /// After a failed Redis call, gifts are refused at once for this long before the next
        /// reconnect, ms.
        redis_reconnect_ms: u64 = 500,
        /// Refuse to start unless Redis reports `appendonly yes` and `appendfsync always`.
        /// Turn off only for a Redis that fsyncs every write in a way CONFIG GET cannot see.
        redis_require_fsync: bool = true,
        /// On an origin, with `redis`: the `ADDR:PORT` edges reach this host's HTTP at. Every
        /// stream live here is then registered in Redis (`{redis_prefix}origin:{stream}`,
        /// refreshed every 3 s, expiring 10 s after the host stops refreshing it), and edges
        /// with `edge.origin_map` ask there first. Empty: streams are not registered.
        origin_advertise: String = String::new(),
    }
}

config_section! {
    /// The gift ledger: viewers' wallets, room owners' earnings and the platform's share. It is
    /// kept in `state.data_dir`/ledger.redb, or in Redis when `state.redis` is set; a gift is
    /// acknowledged only once it is on disk.
    Ledger ["ledger"] {
        /// Percent of a gift's value credited to the room owner's earnings (rounded down);
        /// the platform's account gets the rest. A room's owner account is named after the
        /// room (`earnings:{room}`).
        streamer_share_percent: u8 = 50,
        /// Gifts one shard may have sent to the ledger and not yet had answered. Past it,
        /// gifts are answered 503 `ledger_busy` (retry with the same key) instead of queueing
        /// without bound while the ledger is behind: each waiting gift holds a few hundred
        /// bytes, so the default bounds that to a few MiB per shard.
        in_flight_max_per_shard: usize = 16384,
    }
}

config_section! {
    /// The web front end: `/` (the live streams), `/watch/{stream}` (the player with the
    /// room's danmaku), `/publish` (how to publish), embedded in the binary.
    Web ["web"] {
        /// Serve the pages and their API (`/`, `/watch/…`, `/publish`, `/web/…`,
        /// `/api/v1/web`, `/api/v1/guest`, `/api/v1/publish-info`).
        enabled: bool = true,
        /// Whether a visitor without a token may chat as a guest (`POST /api/v1/guest` mints
        /// a chat token for a new `guest-…` name; guests are held to the per-connection
        /// chat, like and gift rates like anyone): "auto" (on unless `auth.secret` or
        /// `auth.secret_file` is set, so a server with its own accounts has no guests),
        /// "on" or "off".
        guests: String = "auto".to_string(),
        /// How long a guest token is valid, s. Without `auth.secret` the signing secret is
        /// made at start, so a restart ends every guest's token sooner (the page asks again).
        guest_token_ttl_s: u64 = 86400,
        /// Guest tokens one source address may take per minute (per shard; each shard tracks
        /// up to 4,096 addresses, about 48 B each; past that, guests are refused until a
        /// minute passes). 0: no limit.
        guest_tokens_per_minute: u32 = 10,
        /// The room leaderboard (`GET /api/v1/rooms/{room}/leaderboard`) is readable without
        /// an admin token. It shows what the room's gift events already show: who gave how
        /// much.
        leaderboard_public: bool = true,
    }
}

config_section! {
    /// Logging to stderr.
    Log ["log"] {
        /// "error", "warn", "info", "debug" or "trace". The SHARDCAST_LOG environment
        /// variable overrides it.
        level: String = "info".to_string(),
        /// "text" (one readable line per record) or "json" (one JSON object per line:
        /// ts, level, thread, target, msg).
        format: String = "text".to_string(),
    }
}

config_section! {
    /// TLS: HTTPS and WSS (`--https`) and RTMPS (`--rtmps`), served by the shards themselves
    /// (rustls, no extra thread). Off until `cert_file` is set. `kill -HUP` reloads every
    /// certificate: connections opened after it get the new ones, open ones keep theirs.
    Tls ["tls"] {
        /// PEM certificate chain (leaf first) served when no `sni` entry matches the name the
        /// client asks for, or it asks for none. Empty: no TLS listeners.
        /// `shardcast cert --self-signed HOST` makes one for development.
        cert_file: String = String::new(),
        /// PEM private key of cert_file (PKCS#8, PKCS#1 or SEC1).
        key_file: String = String::new(),
        /// More certificates, chosen by the name the client asks for (SNI):
        /// `[{ names = ["example.com", "*.example.com"], cert_file = "...", key_file = "..." }]`.
        /// A `*.` name matches one label.
        sni: Vec<SniCertConfig> = Vec::new(),
        /// HTTPS and WSS listen address, overridden by `--https`. Empty: 0.0.0.0:443 once a
        /// certificate is set; "off": none.
        https_listen: String = String::new(),
        /// RTMPS listen address, overridden by `--rtmps`. Empty: 0.0.0.0:1936 once a
        /// certificate is set (and RTMP is on); "off": none.
        rtmps_listen: String = String::new(),
        /// A connection that has not finished its handshake this long after it was accepted
        /// is closed.
        handshake_timeout_ms: u64 = 10000,
        /// Sealed records waiting to be written per connection, at most (plus one 64 KiB
        /// step); the rest of what is queued stays plaintext, which the slow-viewer rules can
        /// still shed. Memory per TLS connection: about 8 KiB of rustls state and buffers
        /// (measured idle), up to 16.3 KiB of one record being received, this plus one 64 KiB
        /// seal step, and up to 64 KiB inside rustls before its handshake ends: under 220 KiB
        /// with a full backlog at the default (20,000 idle TLS connections: about 160 MiB per
        /// shard).
        seal_ahead_bytes: usize = 65536,
    }
}

config_section! {
    /// Edge mode: with `origins` set, this host serves `/live/…` from a cache filled from the
    /// origins instead of publishing streams itself. One fetcher thread is the single point
    /// every shard's misses go through, so each object is asked of an origin once per edge
    /// however many viewers and shards want it; the bytes reach viewers as they arrive.
    Edge ["edge"] {
        /// Origins' HTTP addresses (`ADDR:PORT`). A stream's origin is chosen by consistent
        /// hashing of its name over these (the next ones in hash order are its failover), or
        /// the one that last answered for it. Empty (and no `origin_map`): not an edge.
        origins: Vec<String> = Vec::new(),
        /// Points per origin on the hash ring: more spreads streams more evenly (160: within
        /// about 10 % per origin).
        virtual_nodes: u32 = 160,
        /// Segments, parts and init segments are kept this long after they were fetched.
        cache_window_s: u64 = 600,
        /// Bytes of cached objects, at most (least recently used go first). Each shard keeps
        /// references to the objects it served within the same bound, so the memory held is
        /// this once for objects every shard serves, and at worst (shards + 1) times it.
        cache_max_bytes: u64 = 1073741824,
        /// Largest object cached or passed on; a bigger one is answered 502.
        object_max_bytes: u64 = 67108864,
        /// Playlists (and MPDs) are cached for at most this, and never longer than the part
        /// duration their `PART-TARGET` states.
        playlist_cache_ms: u64 = 500,
        /// Upper bound of the origin timeout, which follows the origin: the p95 of its recent
        /// answer times plus 20 %, at least origin_timeout_min_ms.
        origin_timeout_ms: u64 = 2000,
        /// Lower bound of the origin timeout.
        origin_timeout_min_ms: u64 = 100,
        /// How long an origin may hold a request that waits for media: an LL-HLS blocking
        /// reload, a part announced by a preload hint, a segment sent as it is made; also the
        /// longest silence in the middle of a body.
        blocking_timeout_ms: u64 = 10000,
        /// After 3 failures in a row an origin is skipped this long, then tried again with
        /// one request.
        breaker_open_ms: u64 = 5000,
        /// Connections to each origin, open at once (idle ones are kept for reuse).
        origin_connections: usize = 256,
        /// Objects being fetched at once; a miss past it is answered 503.
        fetches_max: usize = 4096,
        /// Find each stream's origin in Redis first (`state.redis`; origins register with
        /// `state.origin_advertise`), then by hashing over `origins`. With this on, `origins`
        /// may be empty: the map alone names the origins.
        origin_map: bool = false,
    }
}

config_section! {
    /// WebRTC: WHEP playback at `POST /whep/live/{stream}`. Each shard binds its own UDP port
    /// (`udp_listen`'s port plus the shard's index) and answers with that port as its one
    /// ICE-lite candidate, so a viewer's media stays on the shard that answered it.
    Webrtc ["webrtc"] {
        /// UDP address and base port, overridden by `--webrtc-udp`; shard `i` binds port + `i`
        /// (a firewall opens that range). Port 0: each shard any free port (logged). "off":
        /// no WebRTC.
        udp_listen: String = "0.0.0.0:0".to_string(),
        /// The IP viewers are told to send to (the candidate in answers). Empty: the bound
        /// address, or this host's first non-loopback address when bound to 0.0.0.0.
        public_ip: String = String::new(),
        /// Sessions one shard holds at once; an offer past it is answered 503 with
        /// Retry-After. Memory: about 60 KiB per session (str0m's state and buffers).
        max_sessions_per_shard: usize = 2000,
        /// Sessions the whole server holds at once (every shard's together); an offer past it
        /// is answered 503 with Retry-After.
        max_sessions: usize = 10000,
        /// Bit rate of the Opus audio WebRTC viewers get: the stream's AAC encoded once per
        /// stream on the transcode threads (so only while `transcode.enabled`), shared by
        /// every viewer. 0: WebRTC viewers get video only.
        opus_kbps: u32 = 64,
        /// Hosts of one co-hosted program at most, its owner included (1..=9): each publishes
        /// a feed `{stream}~{slot}` (slot 0 the owner, with the stream's key; guests with a
        /// publish token of role `cohost`), over WHIP or RTMP, and the transcode threads
        /// compose `{stream}` from them. 0: no co-hosting.
        max_cohosts: usize = 4,
        /// Adaptive WHEP viewers: a viewer of a stream with H.264 rungs starts on the largest
        /// (source included) whose bit rate is at most this, then follows its bandwidth
        /// estimate (TWCC) between them, switching at keyframes. 0: every viewer gets the
        /// source (or the rung it pins with `/whep/live/{stream}/{rung}`).
        abr_start_kbps: u32 = 1500,
        /// ICE over TCP (RFC 6544) for peers whose UDP is blocked: each shard also listens on
        /// TCP at its UDP port (any free port when that one is taken) and names it in answers
        /// as a passive TCP candidate; media then goes framed on the TCP connection (RFC 4571).
        tcp: bool = true,
        /// ICE-over-TCP connections one address may hold open on a shard; past it a new one
        /// is closed at once. A connection that names no session is closed after 10 s anyway.
        tcp_connections_per_address: u32 = 16,
    }
}

/// A certificate served to clients that ask for one of its names (SNI).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SniCertConfig {
    /// The names it serves: exact (`example.com`) or one wildcard label (`*.example.com`).
    pub names: Vec<String>,
    /// PEM certificate chain, leaf first.
    pub cert_file: String,
    /// PEM private key.
    pub key_file: String,
}
