#!/usr/bin/env bash
# Edges: shardcast's edge against nginx proxy_cache with proxy_cache_lock on (the HLS edge
# SRS recommends), both in front of the same shardcast origin.
#
# Run with `just bench-edge` (or directly). For each edge, started fresh on core 0 (one
# shard / one nginx worker) with a fresh origin and publisher on core 1 next to the load:
#   a. `hls --mode segments`: VIEWERS players of whole segments through the edge;
#   b. `hls --mode parts`: LL_VIEWERS LL-HLS players (blocking reloads, parts) through it;
#   c. `http` with CONNECTIONS connections on one cached segment through the edge.
# The origin logs every /live/ request it gets (SHARDCAST_LOG=trace), so each run counts
# exactly how many times each object was fetched from it.
# Writes bench/results/edge.md; raw reports stay in bench/results/tmp/edge-<time>/.
#
# Environment:
#   ROUNDS=1  DURATION=15s  WARMUP=5s  VIEWERS=300  LL_VIEWERS=100  CONNECTIONS=64
#   SERVERS="shardcast nginx"   which edges; ratios are shardcast/nginx
#   EDGE_PORT=18093 ORIGIN_PORT=18094 ORIGIN_RTMP_PORT=19353
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-5s}
VIEWERS=${VIEWERS:-300}
LL_VIEWERS=${LL_VIEWERS:-100}
CONNECTIONS=${CONNECTIONS:-64}
SERVERS=${SERVERS:-shardcast nginx}
EDGE_PORT=${EDGE_PORT:-18093}
ORIGIN_PORT=${ORIGIN_PORT:-18094}
ORIGIN_RTMP_PORT=${ORIGIN_RTMP_PORT:-19353}
OUT="$ROOT/bench/results/edge.md"
RUN_DIR="$ROOT/bench/results/tmp/edge-$(date +%Y%m%d-%H%M%S)"
EDGE_URL="http://127.0.0.1:$EDGE_PORT/live/bench"
ORIGIN_URL="http://127.0.0.1:$ORIGIN_PORT"
# Complete segments the origin lists before the viewers start (HOLD-BACK is three).
SEGMENTS_BEFORE_START=4

trap stop_started EXIT
trap 'exit 130' INT TERM

# The origin: shardcast, one shard on the load core, no ladder, every /live/ request logged.
start_origin() {
    local dir="$RUN_DIR/origin"
    mkdir -p "$dir"
    printf '[shards]\ncores = [%s]\n\n[transcode]\nenabled = false\n\n[media]\npublish_open = true\n\n[state]\ndata_dir = "%s/data"\n' \
        "$LOAD_CORE" "$dir" >"$dir/shardcast.toml"
    ORIGIN_CMD="taskset -c $LOAD_CORE $SHARDCAST_BIN serve --shards 1 --http 127.0.0.1:$ORIGIN_PORT --rtmp 127.0.0.1:$ORIGIN_RTMP_PORT --config $dir/shardcast.toml"
    SHARDCAST_LOG=trace $ORIGIN_CMD >"$dir/log.txt" 2>&1 &
    ORIGIN_PID=$!
    STARTED_PIDS+=("$ORIGIN_PID")
    wait_listening "$ORIGIN_PORT" "$ORIGIN_PID" origin
}

# 720p30 H.264 (keyframe every 2 s, ultrafast to leave the load core to the load) and AAC.
start_publisher() {
    PUBLISHER_CMD="taskset -c $LOAD_CORE ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc=size=1280x720:rate=30 -f lavfi -i sine=sample_rate=48000 -t 600 -c:v libx264 -preset ultrafast -tune zerolatency -g 60 -b:v 2500k -c:a aac -b:a 128k -f flv rtmp://127.0.0.1:$ORIGIN_RTMP_PORT/live/bench"
    $PUBLISHER_CMD >>"$RUN_DIR/publisher.log" 2>&1 &
    PUBLISHER_PID=$!
    STARTED_PIDS+=("$PUBLISHER_PID")
}

wait_origin_segments() {
    local i count
    for i in $(seq 1 300); do
        kill -0 "$PUBLISHER_PID" 2>/dev/null || die "the publisher exited (see $RUN_DIR/publisher.log)"
        count=$(curl -sf "$ORIGIN_URL/live/bench/source/index.m3u8" 2>/dev/null | grep -c '^#EXTINF' || true)
        [[ "${count:-0}" -lt "$SEGMENTS_BEFORE_START" ]] || return 0
        sleep 0.1
    done
    die "the origin listed fewer than $SEGMENTS_BEFORE_START segments after 30 s"
}

# The edge under test on the server core; sets EDGE_PID and EDGE_CMD.
start_edge() {
    case "$1" in
        shardcast)
            local dir="$RUN_DIR/shardcast"
            mkdir -p "$dir"
            printf '[shards]\ncores = [%s]\n\n[http]\nmax_connections_per_address = 20000\n\n[transcode]\nenabled = false\n\n[state]\ndata_dir = "%s/data"\n\n[edge]\norigins = ["127.0.0.1:%s"]\n' \
                "$SERVER_CORE" "$dir" "$ORIGIN_PORT" >"$dir/shardcast.toml"
            EDGE_CMD="taskset -c $SERVER_CORE $SHARDCAST_BIN serve --shards 1 --http 127.0.0.1:$EDGE_PORT --config $dir/shardcast.toml"
            $EDGE_CMD >"$dir/log.txt" 2>&1 &
            EDGE_PID=$!
            STARTED_PIDS+=("$EDGE_PID")
            wait_listening "$EDGE_PORT" "$EDGE_PID" "shardcast edge"
            EDGE_SHARDCAST_CMD=$EDGE_CMD
            ;;
        nginx)
            rm -rf "$BENCH_DIR/edge-cache"
            mkdir -p "$BENCH_DIR/edge-cache"
            start_nginx "$EDGE_PORT" "$ROOT/bench/peers/nginx-edge.conf" \
                -e "s#@ORIGIN@#127.0.0.1:$ORIGIN_PORT#g" -e "s#@CACHE@#$BENCH_DIR/edge-cache#g"
            EDGE_PID=$NGINX_PID
            EDGE_CMD=$NGINX_CMD
            EDGE_NGINX_CMD=$EDGE_CMD
            ;;
        *) die "unknown edge '$1' in SERVERS (use shardcast and/or nginx)" ;;
    esac
}

# CPU seconds used so far by a process and its children (nginx's worker).
cpu_s() {
    local pid=$1 ticks=0 p
    for p in "$pid" $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }'
}

# Lines of the origin's log so far (each run counts the requests after its mark).
origin_mark() {
    wc -l <"$RUN_DIR/origin/log.txt"
}

# "media_requests distinct_objects most_per_object playlist_requests" of the origin's
# /live/ requests logged after line MARK.
origin_fetches() {
    tail -n +"$(($1 + 1))" "$RUN_DIR/origin/log.txt" | sed -n 's/.*live request: //p' | awk '
        /\.(m4s|mp4)(\?|$)/ { media++; seen[$0]++; next }
        { playlists++ }
        END {
            most = 0; n = 0
            for (k in seen) { n++; if (seen[k] > most) most = seen[k] }
            printf "%d %d %d %d\n", media, n, most, playlists
        }'
}

hls_command() {
    local mode=$1 viewers=$2 json=$3
    echo "taskset -c $LOAD_CORE $BENCH_BIN hls --url $EDGE_URL/index.m3u8 --mode $mode --viewers $viewers --duration $DURATION --warmup $WARMUP --json $json"
}

throughput_command() {
    local url=$1 bytes=$2 json=$3
    echo "taskset -c $LOAD_CORE $BENCH_BIN http --url $url --connections $CONNECTIONS --duration $DURATION --warmup 2s --expect-body-bytes $bytes --json $json"
}

run_server() {
    local server=$1 round=$2 prefix="$RUN_DIR/$1-r$2"
    log "round $round/$ROUNDS: $server edge"
    start_origin
    start_publisher
    wait_origin_segments
    start_edge "$server"
    local mode viewers mark cpu0
    for mode in segments parts; do
        viewers=$VIEWERS
        [[ "$mode" == segments ]] || viewers=$LL_VIEWERS
        log "  hls --mode $mode, $viewers viewers"
        mark=$(origin_mark)
        cpu0=$(cpu_s "$EDGE_PID")
        $(hls_command "$mode" "$viewers" "$prefix-$mode.json") >"$prefix-$mode.txt" \
            || die "hls run failed (see $prefix-$mode.txt)"
        echo "$(origin_fetches "$mark") $(awk -v a="$cpu0" -v b="$(cpu_s "$EDGE_PID")" 'BEGIN { printf "%.2f", b - a }')" \
            >"$prefix-$mode-origin.txt"
        grep -E 'req/s|stalls|errors' "$prefix-$mode.txt" | sed 's/^/    /' >&2
        log "    origin: media requests, objects, most per object, playlists, edge CPU s: $(cat "$prefix-$mode-origin.txt")"
    done
    # Run c: the second newest complete segment, fetched once through the edge to cache it.
    local uri url bytes sampler
    uri=$(curl -sf "$ORIGIN_URL/live/bench/source/index.m3u8" | grep -v '^#' | grep -v '^$' | tail -n 2 | head -n 1)
    [[ -n "$uri" ]] || die "no segment at the origin"
    url="$EDGE_URL/source/$uri"
    bytes=$(curl -sf "$url" | wc -c)
    [[ "$bytes" -gt 0 ]] || die "$url is empty through the edge"
    echo "$url $bytes" >"$prefix-segment.txt"
    # The publisher stops first: it shares the load core, and run c measures the edge's
    # serving of what it holds (the origin stays up and idle).
    stop_pid "$PUBLISHER_PID"
    log "  http on $url ($bytes bytes), $CONNECTIONS connections"
    mark=$(origin_mark)
    cpu0=$(cpu_s "$EDGE_PID")
    (sleep 3; cores_busy $(( ${DURATION%s} - 2 )) >"$prefix-cores.txt") &
    sampler=$!
    $(throughput_command "$url" "$bytes" "$prefix-throughput.json") >"$prefix-throughput.txt" \
        || die "throughput run failed (see $prefix-throughput.txt)"
    wait "$sampler" || true
    echo "$(origin_fetches "$mark") $(awk -v a="$cpu0" -v b="$(cpu_s "$EDGE_PID")" 'BEGIN { printf "%.2f", b - a }')" \
        >"$prefix-throughput-origin.txt"
    log "  busy: edge core, load core (%): $(cat "$prefix-cores.txt")"
    grep -E 'req/s|latency|errors' "$prefix-throughput.txt" | sed 's/^/    /' >&2
    stop_pid "$EDGE_PID"
    stop_pid "$ORIGIN_PID"
}

main() {
    check_machine
    local port
    for port in "$EDGE_PORT" "$ORIGIN_PORT" "$ORIGIN_RTMP_PORT"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "port $port is already in use"
        fi
    done
    command -v ffmpeg >/dev/null || die "ffmpeg is missing (apt-get install -y ffmpeg)"
    command -v jq >/dev/null || die "jq is missing (apt-get install -y jq)"
    [[ " $SERVERS " != *" nginx "* ]] || ensure_nginx
    local servers_asked=$SERVERS
    SERVERS="shardcast" build_release   # the origin is shardcast whichever edge runs
    SERVERS=$servers_asked
    mkdir -p "$RUN_DIR"
    local round order server
    read -r -a order <<<"$SERVERS"
    for round in $(seq 1 "$ROUNDS"); do
        for server in "${order[@]}"; do
            run_server "$server" "$round"
        done
        order=("${order[@]:1}" "${order[0]}")
    done
    write_report
    log "wrote $OUT"
}

# ---- report ----------------------------------------------------------------------------

# origin_med SERVER RUN FIELD: the median over the rounds of field FIELD (1-based) of the
# origin counts of RUN.
origin_med() {
    cat "$RUN_DIR/$1"-r*-"$2"-origin.txt 2>/dev/null | awk -v f="$3" '{ print $f }' | median
}

viewers_table() {
    local mode=$1 media=$2 server
    local playlist=playlist
    [[ "$mode" == segments ]] || playlist=blocking_playlist
    echo "| edge | req/s | Gbit/s | playlist p50 µs | p99 | $media p50 µs | p99 | errors | stalls | origin $media requests | objects | most per object | origin playlist requests | edge CPU s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for server in $SERVERS; do
        echo "| $server | $(med "$server" "$mode" .requests_per_sec %.0f) | $(med "$server" "$mode" .gbit_per_sec %.3f) | $(med "$server" "$mode" "$(kind "$playlist" .latency_us.p50)" %.0f) | $(med "$server" "$mode" "$(kind "$playlist" .latency_us.p99)" %.0f) | $(med "$server" "$mode" "$(kind "$media" .latency_us.p50)" %.0f) | $(med "$server" "$mode" "$(kind "$media" .latency_us.p99)" %.0f) | $(med "$server" "$mode" .errors_total %.0f) | $(med "$server" "$mode" .stalls %.0f) | $(origin_med "$server" "$mode" 1) | $(origin_med "$server" "$mode" 2) | $(origin_med "$server" "$mode" 3) | $(origin_med "$server" "$mode" 4) | $(origin_med "$server" "$mode" 5) |"
    done
}

write_report() {
    local server
    {
        echo "# Edges: shardcast's edge and nginx proxy_cache"
        echo
        echo "Reproduce with \`just bench-edge\` (\`bench/scripts/bench-edge.sh\`; ROUNDS=$ROUNDS)."
        echo
        machine_header
        echo "- the edge under test is alone on core $SERVER_CORE; the origin (shardcast, one shard), the publisher and the load generator share core $LOAD_CORE (the publisher is stopped before run c)"
        echo "- each run: $WARMUP warm-up, then $DURATION measured; the origin's counts cover warm-up and window (every /live/ request it got, from its trace log)"
        echo
        echo "Origin, publisher and edges:"
        echo
        echo '```sh'
        echo "SHARDCAST_LOG=trace $ORIGIN_CMD" | sed "s#$ROOT/##g; s#$RUN_DIR#RUN#g"
        echo "$PUBLISHER_CMD"
        for server in $SERVERS; do
            case "$server" in
                shardcast) echo "$EDGE_SHARDCAST_CMD    # [edge] origins = [\"127.0.0.1:$ORIGIN_PORT\"]" ;;
                nginx) echo "$EDGE_NGINX_CMD    # config: bench/peers/nginx-edge.conf" ;;
            esac
        done | sed "s#$ROOT/##g; s#$RUN_DIR#RUN#g"
        echo '```'
        echo
        echo "## a. $VIEWERS viewers of whole segments through the edge"
        echo
        viewers_table segments segment
        echo
        echo "## b. $LL_VIEWERS LL-HLS viewers (blocking reloads, parts) through the edge"
        echo
        viewers_table parts part
        echo
        echo "\"objects\": distinct media URLs (init, segments, parts) the origin was asked for; \"most per"
        echo "object\": the most times one of them was asked for (1: each object fetched once)."
        echo
        echo "## c. One cached segment through the edge, $CONNECTIONS connections"
        echo
        local args=()
        for server in nginx shardcast; do
            [[ " $SERVERS " == *" $server "* ]] || continue
            args+=(--server "$server=$(ls "$RUN_DIR/$server"-r*-throughput.json | paste -sd, -)")
        done
        "$BENCH_BIN" table "${args[@]}"
        echo
        echo "| edge | segment bytes | edge core busy % | load core busy % | edge CPU s | origin requests |"
        echo "|---|---:|---:|---:|---:|---:|"
        for server in $SERVERS; do
            echo "| $server | $(cut -d' ' -f2 "$RUN_DIR/$server"-r*-segment.txt | median) | $(cut -d' ' -f1 "$RUN_DIR/$server"-r*-cores.txt | median) | $(cut -d' ' -f2 "$RUN_DIR/$server"-r*-cores.txt | median) | $(origin_med "$server" throughput 5) | $(origin_med "$server" throughput 1) |"
        done
        if [[ " $SERVERS " == *" shardcast "* && " $SERVERS " == *" nginx "* ]]; then
            echo
            echo "shardcast/nginx: segments req/s $(ratio "$(med shardcast segments .requests_per_sec)" "$(med nginx segments .requests_per_sec)"), parts req/s $(ratio "$(med shardcast parts .requests_per_sec)" "$(med nginx parts .requests_per_sec)"), cached segment Gbit/s $(ratio "$(med shardcast throughput .gbit_per_sec)" "$(med nginx throughput .gbit_per_sec)")."
        fi
    } >"$OUT"
}

main "$@"
