# shardcast's front door. `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install what is missing (Debian packages, Python and Node test peers); `just setup bench` or `perf` adds those extras.
setup *EXTRAS:
    scripts/setup.sh {{EXTRAS}}

# Install what is missing, build (release) and serve with embedded defaults on :8080.
run *ARGS: setup
    cargo build --release -p shardcast
    target/release/shardcast serve {{ARGS}}

# Two shardcast hosts sharing rooms and the ledger through one Redis (started here, data in target/cluster): HTTP on :8080 and :8081, RTMP on :1935 and :1936.
run-cluster: setup
    cargo build --release -p shardcast
    scripts/run-cluster.sh

# The whole test suite: setup first (clippy compiles the FFmpeg bindings), then lint, unit tests, end-to-end tests against the real binary, and every fuzz target's committed seeds replayed.
test: setup lint
    cargo build -p shardcast
    cargo test --workspace
    cargo test --manifest-path fuzz/Cargo.toml --lib
    node shards/wire/ts/test/roundtrip.mjs
    @echo "watch page screenshots (bench/tests/e2e_web.rs):"; ls -1 target/browser/*/*.png

# rustfmt check and clippy with warnings as errors (after setup: clippy compiles the FFmpeg bindings).
lint: setup
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Benchmark HTTP serving against nginx (1 core each, load on the other); writes bench/results/http.md.
bench-http: (setup "bench")
    bench/scripts/bench-http.sh

# Danmaku fan-out against Node ws, uWebSockets.js and tokio-tungstenite broadcast servers; writes bench/results/ws.md.
bench-ws: (setup "bench")
    bench/scripts/bench-ws.sh

# Fuzz the decoders (RTMP, FLV, wire, WebSocket, HTTP requests and responses, HTTP inside TLS) with cargo fuzz on nightly: 10M runs per target (FUZZ_RUNS, or FUZZ_SECONDS); writes bench/results/fuzz.md.
fuzz *TARGETS:
    scripts/fuzz.sh {{TARGETS}}

# Live media serving against nginx-rtmp (HLS players, LL-HLS, ingest latency); writes bench/results/hls.md.
bench-hls: (setup "bench")
    bench/scripts/bench-hls.sh

# What a viewer sees in Chromium (first frame, glass-to-glass latency, stalls): shardcast's LL-HLS and LL-DASH against nginx-rtmp and ffmpeg's HLS/DASH muxers, one publisher; writes bench/results/latency.md.
bench-latency: (setup "bench")
    bench/scripts/bench-latency.sh

# HTTPS serving: shardcast against nginx with TLS (h2load, 20 KiB parts and 1 MiB segments), both cores' busy time; writes bench/results/https.md.
bench-https: (setup "bench")
    bench/scripts/bench-https.sh

# Edges: shardcast's edge against nginx proxy_cache with proxy_cache_lock, the same shardcast origin: HLS and LL-HLS viewers, a cached segment, origin requests per object; writes bench/results/edge.md.
bench-edge: (setup "bench")
    bench/scripts/bench-edge.sh

# WebRTC: glass-to-glass in Chromium (WHIP → WHEP, RTMP → WHEP, LL-HLS) against an aiortc relay, and WHEP fan-out per core (shardcast-bench webrtc) against it; writes bench/results/webrtc.md.
bench-webrtc: (setup "bench")
    bench/scripts/bench-webrtc.sh

# Transcoding: shardcast's ladder against the ffmpeg CLI doing the same ladder on one core; writes bench/results/transcode.md.
bench-transcode: (setup "bench")
    bench/scripts/bench-transcode.sh

# Regenerate the danmaku protocol code (Rust, TypeScript, JS) from shards/wire/schema/danmaku.fbs.
gen *ARGS:
    scripts/gen.sh {{ARGS}}

# Server RSS per idle connection with 19k connections held, shardcast and nginx.
bench-idle: (setup "bench")
    bench/scripts/bench-idle.sh

# Churn soak of the release binary for MINUTES minutes (viewers, chat, resumes, stallers, publishers, HLS players, bad clients); fails if anything is left behind or RSS grows over 1 % after warm-up; writes bench/results/soak.md.
soak MINUTES: (setup "bench")
    bench/scripts/soak.sh {{MINUTES}}

# Durable gifts through the server, embedded ledger and Redis, at several rates; writes bench/results/ledger.md.
bench-ledger: (setup "bench")
    bench/scripts/bench-ledger.sh

# Danmaku fan-out across hosts: two shardcast hosts + Redis against two Socket.IO + redis-adapter hosts; writes bench/results/cluster.md.
bench-cluster: (setup "bench")
    bench/scripts/bench-cluster.sh

# Kill -9 the server N times during gift storms, retry everything, check every gift is in the ledger exactly once; writes bench/results/chaos.md.
chaos N: setup
    bench/scripts/chaos.sh {{N}}

# Record a running shardcast and write a flame graph to perf/out/.
flamegraph *ARGS: (setup "perf")
    perf/flamegraph.sh {{ARGS}}

# perf stat on a running shardcast (IPC, syscalls, io_uring enters).
perf-stat *ARGS: (setup "perf")
    perf/perf-stat.sh {{ARGS}}

# Compare this host's kernel settings and NIC IRQ affinity with what shardcast recommends.
tune-check:
    tuning/sysctl.sh --check
    tuning/irq-affinity.sh --check

# Vendor the watch page's players (hls.js, dash.js, pinned in web/package-lock.json) into web/vendor/; setup runs it.
web:
    scripts/web.sh
