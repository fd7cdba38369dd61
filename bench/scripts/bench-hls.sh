#!/usr/bin/env bash
# Live HLS, shardcast against nginx-rtmp, on one server core each.
#
# Run with `just bench-hls` (or directly). For each server, started fresh on core 0 with a
# publisher (ffmpeg, `-re` test source over RTMP) on core 1 next to the load:
#   a. `hls --mode segments`: VIEWERS players reloading the playlist and fetching segments;
#   b. `hls --mode parts` (shardcast only; nginx-rtmp has no LL-HLS): LL-HLS players;
#   c. serving throughput: `http` with CONNECTIONS connections on one complete segment.
# Writes bench/results/hls.md; the raw JSON reports stay in bench/results/tmp/hls-<time>/.
#
# Environment:
#   ROUNDS=1            rounds (servers alternate; medians reported); about 2.5 min each
#   DURATION=15s        measurement window of every run
#   WARMUP=5s           before each window (viewers join and fill their buffers)
#   VIEWERS=200         viewers of runs a and b
#   CONNECTIONS=64      connections of run c
#   SERVERS="shardcast nginx-rtmp"   which servers; ratios are shardcast/nginx-rtmp
#   SHARDCAST_PORT=18091 SHARDCAST_RTMP_PORT=19351 NGINX_PORT=18092 NGINX_RTMP_PORT=19352
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-5s}
VIEWERS=${VIEWERS:-200}
CONNECTIONS=${CONNECTIONS:-64}
SERVERS=${SERVERS:-shardcast nginx-rtmp}
SHARDCAST_PORT=${SHARDCAST_PORT:-18091}
SHARDCAST_RTMP_PORT=${SHARDCAST_RTMP_PORT:-19351}
NGINX_PORT=${NGINX_PORT:-18092}
NGINX_RTMP_PORT=${NGINX_RTMP_PORT:-19352}
RTMP_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so
HLS_ROOT="$BENCH_DIR/rtmp"
OUT="$ROOT/bench/results/hls.md"
RUN_DIR="$ROOT/bench/results/tmp/hls-$(date +%Y%m%d-%H%M%S)"
# Complete segments a playlist must list before the viewers start: HOLD-BACK is three
# segments, plus one.
SEGMENTS_BEFORE_START=4

trap stop_started EXIT
trap 'exit 130' INT TERM

http_port_of() {
    case "$1" in
        shardcast) echo "$SHARDCAST_PORT" ;;
        nginx-rtmp) echo "$NGINX_PORT" ;;
        *) die "unknown server '$1' in SERVERS (use shardcast and/or nginx-rtmp)" ;;
    esac
}

rtmp_port_of() {
    case "$1" in
        shardcast) echo "$SHARDCAST_RTMP_PORT" ;;
        nginx-rtmp) echo "$NGINX_RTMP_PORT" ;;
    esac
}

# The URL viewers start from: shardcast's multivariant playlist (video and audio
# renditions), nginx-rtmp's only playlist (muxed MPEG-TS).
viewer_url() {
    case "$1" in
        shardcast) echo "http://127.0.0.1:$SHARDCAST_PORT/live/bench/index.m3u8" ;;
        nginx-rtmp) echo "http://127.0.0.1:$NGINX_PORT/hls/bench.m3u8" ;;
    esac
}

# The media playlist whose segments are counted before starting and served in run c.
media_playlist_url() {
    case "$1" in
        shardcast) echo "http://127.0.0.1:$SHARDCAST_PORT/live/bench/source/index.m3u8" ;;
        nginx-rtmp) echo "http://127.0.0.1:$NGINX_PORT/hls/bench.m3u8" ;;
    esac
}

ensure_tools() {
    command -v ffmpeg >/dev/null || die "ffmpeg is missing (apt-get install -y ffmpeg)"
    command -v curl >/dev/null || die "curl is missing (apt-get install -y curl)"
    command -v jq >/dev/null || die "jq is missing (apt-get install -y jq)"
    if [[ " $SERVERS " == *" nginx-rtmp "* ]]; then
        ensure_nginx
        ensure_rtmp_module
    fi
}

# Starts nginx with bench/peers/nginx-rtmp.conf; sets SERVER_PID (the master) and SERVER_CMD.
start_nginx_rtmp() {
    local dir="$RUN_DIR/nginx-rtmp"
    mkdir -p "$dir"
    rm -rf "$HLS_ROOT"
    mkdir -p "$HLS_ROOT"
    sed -e "s#@RTMP_MODULE@#$RTMP_MODULE#g" -e "s#@RTMP_PORT@#$NGINX_RTMP_PORT#g" \
        -e "s#@HTTP_PORT@#$NGINX_PORT#g" -e "s#@HLS_ROOT@#$HLS_ROOT#g" -e "s#@RUNDIR@#$dir#g" \
        "$ROOT/bench/peers/nginx-rtmp.conf" >"$dir/nginx.conf"
    NGINX_RTMP_CMD="taskset -c $SERVER_CORE $NGINX_BIN -c $dir/nginx.conf -p $dir -e $dir/error.log"
    $NGINX_RTMP_CMD >>"$dir/stdout.log" 2>&1 &
    SERVER_PID=$!
    STARTED_PIDS+=("$SERVER_PID")
    wait_listening "$NGINX_PORT" "$SERVER_PID" nginx-rtmp
}

# Starts shardcast with one shard on core 0; sets SERVER_PID.
start_shardcast_media() {
    local dir="$RUN_DIR/shardcast"
    mkdir -p "$dir"
    # No ladder: nginx-rtmp does not transcode, and this compares ingest, packaging and
    # serving on one core (bench-transcode measures the ladder).
    printf '[shards]\ncores = [%s]\n\n[transcode]\nenabled = false\n\n[media]\npublish_open = true\n' "$SERVER_CORE" \
        >"$dir/shardcast.toml"
    SHARDCAST_CMD="taskset -c $SERVER_CORE $SHARDCAST_BIN serve --shards 1 --http 127.0.0.1:$SHARDCAST_PORT --rtmp 127.0.0.1:$SHARDCAST_RTMP_PORT --config $dir/shardcast.toml"
    $SHARDCAST_CMD >>"$dir/stdout.log" 2>&1 &
    SERVER_PID=$!
    STARTED_PIDS+=("$SERVER_PID")
    wait_listening "$SHARDCAST_PORT" "$SERVER_PID" shardcast
}

# Publishes 720p30 H.264 (keyframe every 2 s) and AAC in real time, on the load core, for
# longer than the runs need; it is stopped by PID when they are done. Sets PUBLISHER_PID.
start_publisher() {
    local server=$1 log="$RUN_DIR/$1-publisher.log"
    PUBLISHER_CMD="taskset -c $LOAD_CORE ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc=size=1280x720:rate=30 -f lavfi -i sine=sample_rate=48000 -t 600 -c:v libx264 -preset veryfast -tune zerolatency -g 60 -b:v 2500k -c:a aac -b:a 128k -f flv rtmp://127.0.0.1:PORT/live/bench"
    ${PUBLISHER_CMD/PORT/$(rtmp_port_of "$server")} >>"$log" 2>&1 &
    PUBLISHER_PID=$!
    STARTED_PIDS+=("$PUBLISHER_PID")
}

# Waits until the media playlist lists SEGMENTS_BEFORE_START complete segments.
wait_segments() {
    local server=$1 url count i
    url=$(media_playlist_url "$server")
    for i in $(seq 1 300); do
        kill -0 "$PUBLISHER_PID" 2>/dev/null || die "the publisher exited (see $RUN_DIR/$server-publisher.log)"
        count=$(curl -sf "$url" 2>/dev/null | grep -c '^#EXTINF' || true)
        if [[ "${count:-0}" -ge "$SEGMENTS_BEFORE_START" ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "$server listed fewer than $SEGMENTS_BEFORE_START segments at $url after 30 s"
}

hls_command() {
    local server=$1 mode=$2 json=$3
    echo "taskset -c $LOAD_CORE $BENCH_BIN hls --url $(viewer_url "$server") --mode $mode --viewers $VIEWERS --duration $DURATION --warmup $WARMUP --json $json"
}

# Run c: the second newest complete segment (it stays in both windows for the whole run).
# Sets SEGMENT_URL and SEGMENT_BYTES.
pick_segment() {
    local server=$1 playlist uri
    playlist=$(media_playlist_url "$server")
    uri=$(curl -sf "$playlist" | grep -v '^#' | grep -v '^$' | tail -n 2 | head -n 1)
    [[ -n "$uri" ]] || die "no segment in $playlist"
    SEGMENT_URL="${playlist%/*}/$uri"
    SEGMENT_BYTES=$(curl -sf "$SEGMENT_URL" | wc -c)
    [[ "$SEGMENT_BYTES" -gt 0 ]] || die "$SEGMENT_URL is empty"
}

throughput_command() {
    local url=$1 bytes=$2 json=$3
    echo "taskset -c $LOAD_CORE $BENCH_BIN http --url $url --connections $CONNECTIONS --duration $DURATION --warmup 2s --expect-body-bytes $bytes --json $json"
}

# Resident memory of a started server and its children (nginx's worker), KiB.
server_rss_kib() {
    local pid=$1 total child
    total=$(rss_kib "$pid")
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        total=$((total + $(rss_kib "$child" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

run_server() {
    local server=$1 round=$2 prefix="$RUN_DIR/$1-r$2"
    log "round $round/$ROUNDS: $server"
    case "$server" in
        shardcast) start_shardcast_media ;;
        nginx-rtmp) start_nginx_rtmp ;;
    esac
    start_publisher "$server"
    wait_segments "$server"
    local modes=(segments)
    [[ "$server" != shardcast ]] || modes+=(parts)
    local mode
    for mode in "${modes[@]}"; do
        log "  hls --mode $mode, $VIEWERS viewers"
        $(hls_command "$server" "$mode" "$prefix-$mode.json") >"$prefix-$mode.txt" \
            || die "hls run failed (see $prefix-$mode.txt)"
        grep -E 'req/s|stalls|ingest|errors' "$prefix-$mode.txt" | sed 's/^/    /' >&2
    done
    if [[ "$server" == shardcast ]]; then
        # The server's own part-ready histogram, taken while the publisher still runs.
        curl -sf "http://127.0.0.1:$SHARDCAST_PORT/metrics" >"$prefix-metrics.txt" \
            || die "GET /metrics failed"
        log "  part-ready latency: $(part_ready_summary "$prefix-metrics.txt")"
    fi
    pick_segment "$server"
    echo "$SEGMENT_URL $SEGMENT_BYTES" >"$prefix-segment.txt"
    # The publisher stops first: it shares the load core, and run c measures serving alone
    # (both servers keep the segment: shardcast for media.ended_keep_s, nginx-rtmp on disk).
    stop_pid "$PUBLISHER_PID"
    log "  http on $SEGMENT_URL ($SEGMENT_BYTES bytes), $CONNECTIONS connections"
    # Both cores' busy time over the middle of the window (after the 2 s warm-up).
    (sleep 3; cores_busy $(( ${DURATION%s} - 2 )) >"$prefix-cores.txt") &
    local sampler=$!
    $(throughput_command "$SEGMENT_URL" "$SEGMENT_BYTES" "$prefix-throughput.json") \
        >"$prefix-throughput.txt" || die "throughput run failed (see $prefix-throughput.txt)"
    wait "$sampler" || true
    log "  busy: server core, load core (%): $(cat "$prefix-cores.txt")"
    grep -E 'req/s|latency|errors' "$prefix-throughput.txt" | sed 's/^/    /' >&2
    server_rss_kib "$SERVER_PID" >"$prefix-rss.txt"
    stop_pid "$SERVER_PID"
}

main() {
    check_machine
    local server
    for server in $SERVERS; do
        for port in "$(http_port_of "$server")" "$(rtmp_port_of "$server")"; do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                die "port $port is already in use"
            fi
        done
    done
    ensure_tools
    build_release
    mkdir -p "$RUN_DIR"
    local round order
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

# "COUNT WITHIN_50MS_PERCENT P50_BOUND_MS P99_BOUND_MS" from the part-ready histogram in a
# /metrics dump: the quantiles are the upper bounds of the buckets that hold them.
part_ready_summary() {
    awk -F'[{}"]+' '
        /^shardcast_media_part_ready_latency_seconds_bucket/ {
            n++; le[n] = $3; c[n] = $4 + 0
        }
        END {
            total = c[n]
            if (total == 0) { print "0 n/a n/a n/a"; exit }
            for (i = 1; i <= n; i++) {
                if (le[i] == "0.05") within = c[i]
                if (p50 == "" && c[i] >= 0.5 * total) p50 = le[i]
                if (p99 == "" && c[i] >= 0.99 * total) p99 = le[i]
            }
            printf "%d %.1f %s %s\n", total, 100 * within / total, p50 == "+Inf" ? p50 : p50 * 1000, p99 == "+Inf" ? p99 : p99 * 1000
        }' "$1"
}

viewers_table() {
    local mode=$1 media=$2 servers=("${@:3}") server
    echo "| server | req/s | Gbit/s | playlist p50 µs | p99 | p99.9 | max | $media p50 µs | p99 | p99.9 | max | errors | load CPU % |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    local playlist=playlist
    [[ "$mode" == segments ]] || playlist=blocking_playlist
    declare -A row
    for server in "${servers[@]}"; do
        local cells=(
            "$(med "$server" "$mode" .requests_per_sec %.0f)"
            "$(med "$server" "$mode" .gbit_per_sec %.3f)"
        )
        local k q
        for k in "$playlist" "$media"; do
            for q in p50 p99 p999 max; do
                cells+=("$(med "$server" "$mode" "$(kind "$k" ".latency_us.$q")")")
            done
        done
        cells+=("$(med "$server" "$mode" .errors_total %.0f)" "$(med "$server" "$mode" .client_cpu_percent %.0f)")
        row[$server]="${cells[*]}"
        echo "| $server | $(IFS='|'; echo "${cells[*]}" | sed 's/|/ | /g') |"
    done
    if [[ -n "${row[shardcast]:-}" && -n "${row[nginx-rtmp]:-}" ]]; then
        local a b i out=()
        read -r -a a <<<"${row[shardcast]}"
        read -r -a b <<<"${row[nginx-rtmp]}"
        for i in $(seq 0 9); do out+=("$(ratio "${a[$i]}" "${b[$i]}")"); done
        echo "| **shardcast/nginx-rtmp** | ${out[0]} | ${out[1]} | ${out[2]} | ${out[3]} | ${out[4]} | ${out[5]} | ${out[6]} | ${out[7]} | ${out[8]} | ${out[9]} | | |"
    fi
}

player_table() {
    local mode=$1 servers=("${@:2}") server
    echo "| server | viewers stalled | stalls | stall time s | buffer at end s | ingest p50 ms | p99 | max | min | samples |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for server in "${servers[@]}"; do
        echo "| $server | $(med "$server" "$mode" .viewers_stalled %.0f) | $(med "$server" "$mode" .stalls %.0f) | $(med "$server" "$mode" .stall_s %.3f) | $(med "$server" "$mode" .buffer_end_mean_s %.2f) | $(med "$server" "$mode" '.ingest_latency_ms | if .samples > 0 then .p50 else null end') | $(med "$server" "$mode" '.ingest_latency_ms | if .samples > 0 then .p99 else null end') | $(med "$server" "$mode" '.ingest_latency_ms | if .samples > 0 then .max else null end') | $(med "$server" "$mode" '.ingest_latency_ms | if .samples > 0 then .min else null end') | $(med "$server" "$mode" .ingest_latency_ms.samples %.0f) |"
    done
}

write_report() {
    local server sorted=()
    for server in shardcast nginx-rtmp; do
        [[ " $SERVERS " != *" $server "* ]] || sorted+=("$server")
    done
    {
        echo "# Live HLS: shardcast and nginx-rtmp"
        echo
        echo "Reproduce with \`just bench-hls\` (\`bench/scripts/bench-hls.sh\`; ROUNDS=$ROUNDS)."
        echo
        machine_header
        echo "- the publisher (ffmpeg) runs on core $LOAD_CORE too, next to the load generator: the server core does ingest (RTMP, remux) and serving, nothing else"
        echo "- rounds: $ROUNDS, servers alternating, each started fresh with a fresh publisher; every figure is the median over the rounds"
        echo "- each run: $WARMUP warm-up (viewers join over at most 2 s and fill their buffers), then $DURATION measured"
        echo
        echo "Servers and publisher:"
        echo
        echo '```sh'
        [[ -z "${SHARDCAST_CMD:-}" ]] || {
            echo "$SHARDCAST_CMD" | sed "s#$ROOT/##g"
            echo "# $(tr '\n' ' ' <"$RUN_DIR/shardcast/shardcast.toml")(media defaults: segment_target_ms 2000, part_target_ms 500, window_s 600)"
        }
        [[ -z "${NGINX_RTMP_CMD:-}" ]] || echo "$NGINX_RTMP_CMD    # config: bench/peers/nginx-rtmp.conf" | sed "s#$ROOT/##g"
        echo "${PUBLISHER_CMD:-}    # PORT: the server's RTMP port"
        echo '```'
        echo
        echo "Load (FILE.json: where the report goes):"
        echo
        echo '```sh'
        for server in "${sorted[@]}"; do
            hls_command "$server" segments FILE.json | sed "s#$ROOT/##"
            [[ "$server" != shardcast ]] || hls_command "$server" parts FILE.json | sed "s#$ROOT/##"
            throughput_command "SEGMENT_URL" BYTES FILE.json | sed "s#$ROOT/##"
        done
        echo '```'
        echo
        echo "## a. $VIEWERS viewers, whole segments (plain reloads every half target duration)"
        echo
        viewers_table segments segment "${sorted[@]}"
        echo
        player_table segments "${sorted[@]}"
        if [[ " $SERVERS " == *" shardcast "* ]]; then
            echo
            echo "## b. $VIEWERS LL-HLS viewers (blocking reloads, parts): shardcast only"
            echo
            viewers_table parts part shardcast
            echo
            player_table parts shardcast
            echo
            echo "### Part-ready latency, measured by the server"
            echo
            echo "From the arrival of a part's last sample (the RTMP message read on the ingest shard) to"
            echo "the part being in the shard's index, servable (\`shardcast_media_part_ready_latency_seconds\`"
            echo "in /metrics: every video and audio part, once per shard, over the whole run including"
            echo "warm-up, with the viewers of a and b loading the shard). Quantiles are the upper bounds of"
            echo "the histogram buckets that hold them (buckets of 10 ms between 10 and 80 ms)."
            echo
            echo "| round | parts timed | within 50 ms | p50 ≤ ms | p99 ≤ ms |"
            echo "|---:|---:|---:|---:|---:|"
            local f r
            for f in "$RUN_DIR"/shardcast-r*-metrics.txt; do
                r=${f##*-r}; r=${r%%-*}
                read -r count within p50 p99 <<<"$(part_ready_summary "$f")"
                echo "| $r | $count | $within % | $p50 | $p99 |"
            done
        fi
        echo
        echo "## c. Serving one complete segment, $CONNECTIONS connections"
        echo
        echo "| server | segment | body bytes | rounds |"
        echo "|---|---|---:|---:|"
        for server in "${sorted[@]}"; do
            local first
            first=$(ls "$RUN_DIR/$server"-r*-segment.txt | head -n 1)
            read -r url bytes <"$first"
            echo "| $server | \`${url#http://127.0.0.1:*/}\` | $bytes | $(ls "$RUN_DIR/$server"-r*-throughput.json | wc -l) |"
        done
        echo
        local args=()
        for server in nginx-rtmp shardcast; do
            [[ " $SERVERS " == *" $server "* ]] || continue
            args+=(--server "$server=$(ls "$RUN_DIR/$server"-r*-throughput.json | paste -sd, -)")
        done
        "$BENCH_BIN" table "${args[@]}"
        echo
        echo "Cores busy during run c (/proc/stat, median over the rounds; the publisher was stopped"
        echo "before it, so the load core runs the load generator alone):"
        echo
        echo "| server | server core busy % | load core busy % |"
        echo "|---|---:|---:|"
        for server in "${sorted[@]}"; do
            echo "| $server | $(cut -d' ' -f1 "$RUN_DIR/$server"-r*-cores.txt | median) | $(cut -d' ' -f2 "$RUN_DIR/$server"-r*-cores.txt | median) |"
        done
        echo
        echo "## Server memory after the runs"
        echo
        echo "| server | RSS MiB (median) |"
        echo "|---|---:|"
        for server in "${sorted[@]}"; do
            echo "| $server | $(cat "$RUN_DIR/$server"-r*-rss.txt | median | awk '{ printf "%.1f", $1 / 1024 }') |"
        done
        echo
        echo "## Notes"
        echo
        echo "- Formats differ. shardcast serves CMAF (fMP4): video and audio in separate renditions"
        echo "  (\`source/\`, \`audio/\`), 2 s segments of 4 parts, LL-HLS. nginx-rtmp serves MPEG-TS"
        echo "  with audio and video muxed in one playlist, no parts. A shardcast viewer therefore holds"
        echo "  two connections and makes about twice the requests of an nginx-rtmp viewer for the same"
        echo "  media; the bytes per second of media are close (TS adds its packet overhead). Run c"
        echo "  compares a shardcast video segment with an nginx-rtmp muxed segment: see the body sizes."
        echo "- Request latency runs from send to the last body byte (HDR histogram, µs). In LL-HLS mode"
        echo "  the blocking playlist latency includes the wait for the next part (about one part"
        echo "  duration, by design). All viewers of a part are released by the same event, then all"
        echo "  ask for that part at once: the part latency is that of a burst of $VIEWERS x tracks requests."
        echo "- Stalls come from a model of each viewer's buffer: playback starts when every track has"
        echo "  media, the position advances with wall time, the buffer is the media downloaded on the"
        echo "  least supplied track minus the position; at zero the viewer stalls, and resumes as soon"
        echo "  as more media arrives. Counted when a stall begins inside the window."
        echo "- Ingest latency (player tables): an estimate from outside, for comparison with any server"
        echo "  that writes a program date time; the server's own measurement is the part-ready table."
        echo "  For each segment (a) or part (b) first listed by the server inside the"
        echo "  window, the time the first viewer saw it listed minus the wall-clock time of its last"
        echo "  frame, taken as the segment's EXT-X-PROGRAM-DATE-TIME + the durations of the parts before"
        echo "  it + its own duration. shardcast anchors the program date time to its wall clock when the"
        echo "  stream's first sample arrived and advances it with media time, so the figure is how long"
        echo "  after that frame *would have arrived* at real-time pace the part was servable; a constant"
        echo "  offset of the publisher's pacing against its first packet shows as a constant shift (even"
        echo "  below zero), and the spread between p50 and p99 is the jitter. In (a) a segment is seen at"
        echo "  the next reload of any viewer (viewers reload every half target duration, staggered), in"
        echo "  (b) when a blocking reload returns. nginx-rtmp writes no program date time: n/a."
        echo "- What limits run c: the load core. The load generator copies every byte it receives"
        echo "  (about 60 % of its time in the kernel's copy to user memory) and shares its core with"
        echo "  the publisher's x264, so the load core is saturated for both servers (table above) and"
        echo "  neither server core is. The same bytes cost the load generator less from nginx: nginx's"
        echo "  sendfile hands the loopback receiver references to the segment file's page-cache pages,"
        echo "  the same 200 KB for every request, hot in the load core's caches; shardcast's sends are"
        echo "  copied by the kernel into fresh socket buffers on the server core (a zero-copy send,"
        echo "  io_uring SEND_ZC or MSG_ZEROCOPY, to a local receiver is copied too), which the load core"
        echo "  then reads cold. On a NIC neither the receiver copy nor the loopback copy exists and"
        echo "  SEND_ZC sends from shard memory without a copy; this machine has only loopback."
        echo "- The publisher shares core $LOAD_CORE with the load generator (x264 veryfast at 720p30 takes a"
        echo "  good part of it); \"load CPU %\" is the load generator's own CPU (100 = a whole core)."
        echo "- Raw reports: \`${RUN_DIR#"$ROOT"/}\`."
    } >"$OUT"
}

main "$@"
