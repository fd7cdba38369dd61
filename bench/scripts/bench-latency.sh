#!/usr/bin/env bash
# What a viewer sees, in Debian's Chromium: first frame, glass-to-glass latency and stalls of
# shardcast's LL-HLS and low-latency DASH against nginx-rtmp's HLS and ffmpeg's own HLS and
# DASH muxers, all fed by one publisher at the same time.
#
# Run with `just bench-latency` (or directly). One ffmpeg makes a 1280x720 30 fps picture
# (testsrc2) with the wall clock written into its top 16 rows as a barcode (see
# bench/tests/browser/latency.mjs), encodes it once (libx264 -tune zerolatency, a keyframe
# every second, AAC) and sends it, one output at a time, to:
#   - shardcast A (default settings: 200 ms parts), B (333 ms parts) and C (500 ms parts), one
#     shard each, transcoding off (the source rendition is the publisher's video);
#   - nginx-rtmp (1 s fragments, 4 s playlist);
#   - ffmpeg's own HLS muxer (1 s segments, PROGRAM-DATE-TIME) and DASH muxer (1 s segments
#     in 0.2 s fragments, streaming), written to a tmpfs that nginx serves.
# Each output is played for SECONDS in a fresh Chromium: shardcast on its own watch page
# (hls.js in low-latency mode; `?player=dash` for dash.js), the peers on a bare page with the
# same players at their defaults (bench/peers/latency/player.html). Writes
# bench/results/latency.md, with the latency ladder of shardcast's part sizes.
#
# Environment:
#   SECONDS_EACH=60     how long each output is played
#   TARGETS="..."       which outputs (default: all of shardcast-hls shardcast-dash
#                       shardcast-hls-333 shardcast-hls-500 nginx-rtmp-hls ffmpeg-hls ffmpeg-dash)
#   OUT=bench/results/latency.md
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SECONDS_EACH=${SECONDS_EACH:-60}
FIRST_FRAME_LOADS=7 # as in bench/tests/browser/latency.mjs
TARGETS=${TARGETS:-shardcast-hls shardcast-dash shardcast-hls-333 shardcast-hls-500 nginx-rtmp-hls ffmpeg-hls ffmpeg-dash}
OUT=${OUT:-$ROOT/bench/results/latency.md}
SERVERS="shardcast"
RTMP_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so
WEB_ROOT="$BENCH_DIR/latency"
RUN_DIR="$ROOT/bench/results/tmp/latency-$(date +%Y%m%d-%H%M%S)"
NGINX_HTTP_PORT=18110
NGINX_RTMP_PORT=19410
# shardcast instances: name, HTTP port, RTMP port, extra config.
SHARDCASTS=("A 18101 19401 " "B 18102 19402 part_target_ms = 333" "C 18103 19403 part_target_ms = 500")
BROWSER_DIR="$ROOT/bench/tests/browser"

trap stop_started EXIT
trap 'exit 130' INT TERM

ensure_tools() {
    command -v ffmpeg >/dev/null || die "ffmpeg is missing (scripts/setup.sh installs it)"
    command -v node >/dev/null || die "node is missing (scripts/setup.sh installs it)"
    command -v jq >/dev/null || die "jq is missing (apt-get install -y jq)"
    [[ -x /usr/bin/chromium ]] || die "chromium is missing (scripts/setup.sh installs it)"
    [[ -d "$BROWSER_DIR/node_modules/playwright-core" ]] || die "playwright-core is missing (scripts/setup.sh installs it)"
    [[ -f "$ROOT/web/vendor/hls.min.js" ]] || die "web/vendor is empty: run scripts/web.sh"
    ensure_nginx
    ensure_rtmp_module
}

start_shardcasts() {
    local spec name http rtmp extra dir
    for spec in "${SHARDCASTS[@]}"; do
        read -r name http rtmp extra <<<"$spec"
        dir="$RUN_DIR/shardcast-$name"
        mkdir -p "$dir"
        printf '[transcode]\nenabled = false\n\n[media]\npublish_open = true\n%s\n\n[state]\ndata_dir = "%s"\n' \
            "$extra" "$dir/data" >"$dir/shardcast.toml"
        "$SHARDCAST_BIN" serve --shards 1 --http "127.0.0.1:$http" --rtmp "127.0.0.1:$rtmp" \
            --config "$dir/shardcast.toml" >"$dir/stdout.log" 2>&1 &
        STARTED_PIDS+=("$!")
        wait_listening "$http" "$!" "shardcast $name"
    done
}

start_peers() {
    local dir="$RUN_DIR/nginx"
    mkdir -p "$dir"
    rm -rf "$WEB_ROOT"
    mkdir -p "$WEB_ROOT/hls" "$WEB_ROOT/ffmpeg-hls" "$WEB_ROOT/ffmpeg-dash" "$WEB_ROOT/player"
    cp "$ROOT/bench/peers/latency/player.html" "$ROOT/web/vendor/hls.min.js" \
        "$ROOT/web/vendor/dash.mediaplayer.min.js" "$WEB_ROOT/player/"
    sed -e "s#@RTMP_MODULE@#$RTMP_MODULE#g" -e "s#@RTMP_PORT@#$NGINX_RTMP_PORT#g" \
        -e "s#@HTTP_PORT@#$NGINX_HTTP_PORT#g" -e "s#@ROOT@#$WEB_ROOT#g" -e "s#@RUNDIR@#$dir#g" \
        "$ROOT/bench/peers/latency/nginx.conf" >"$dir/nginx.conf"
    "$NGINX_BIN" -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
    STARTED_PIDS+=("$!")
    wait_listening "$NGINX_HTTP_PORT" "$!" nginx
}

# The publisher, the same command for every output but its destination: a 1280x720 30 fps
# test picture with the wall clock (ms mod 2^32) in a barcode on a 640x16 band (20 px a
# bit) stacked over it, made when the frame is made, and a tone; libx264 -tune zerolatency,
# a keyframe every second. One publisher at a time, for the output being played: a tee to
# every output at once delays each of them by hundreds of milliseconds (measured), which
# would be charged to the servers.
publisher_args() {
    local code="color=c=black:s=640x16:r=30,settb=1/1000,setpts='RTCTIME/1000',format=gray"
    code+=",geq=lum='if(eq(mod(floor(T*1000/pow(2,floor(X/20))),2),1),235,16)'"
    code+=",format=yuv420p,pad=1280:16:0:0:black,setpts=N/(30*TB)[code]"
    PUBLISHER_ARGS=(-hide_banner -loglevel error -nostdin -re
        -f lavfi -i testsrc2=size=1280x704:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000
        -filter_complex "$code;[code][0:v]vstack[v]" -map "[v]" -map 1:a -t 3600
        -c:v libx264 -preset veryfast -tune zerolatency -g 30 -keyint_min 30 -b:v 2500k
        -maxrate 2500k -bufsize 1250k -pix_fmt yuv420p -c:a aac -b:a 128k -ar 48000)
}

# The destination of the publisher for TARGET: an RTMP URL, or ffmpeg's own muxer.
destination() {
    case "$1" in
        shardcast-hls | shardcast-dash) echo "-f flv rtmp://127.0.0.1:19401/live/lat" ;;
        shardcast-hls-333) echo "-f flv rtmp://127.0.0.1:19402/live/lat" ;;
        shardcast-hls-500) echo "-f flv rtmp://127.0.0.1:19403/live/lat" ;;
        nginx-rtmp-hls) echo "-f flv rtmp://127.0.0.1:$NGINX_RTMP_PORT/live/lat" ;;
        ffmpeg-hls) echo "-f hls -hls_time 1 -hls_list_size 4 -hls_flags delete_segments+program_date_time $WEB_ROOT/ffmpeg-hls/index.m3u8" ;;
        ffmpeg-dash) echo "-f dash -seg_duration 1 -frag_duration 0.2 -frag_type duration -streaming 1 -window_size 5 -extra_window_size 2 -remove_at_exit 1 $WEB_ROOT/ffmpeg-dash/manifest.mpd" ;;
    esac
}

# What must answer before TARGET is played.
ready_url() {
    case "$1" in
        shardcast-hls | shardcast-dash) echo "http://127.0.0.1:18101/live/lat/source/index.m3u8" ;;
        shardcast-hls-333) echo "http://127.0.0.1:18102/live/lat/source/index.m3u8" ;;
        shardcast-hls-500) echo "http://127.0.0.1:18103/live/lat/source/index.m3u8" ;;
        nginx-rtmp-hls) echo "http://127.0.0.1:$NGINX_HTTP_PORT/hls/lat.m3u8" ;;
        ffmpeg-hls) echo "http://127.0.0.1:$NGINX_HTTP_PORT/ffmpeg-hls/index.m3u8" ;;
        ffmpeg-dash) echo "http://127.0.0.1:$NGINX_HTTP_PORT/ffmpeg-dash/manifest.mpd" ;;
    esac
}

start_publisher() {
    local target=$1 dest
    read -r -a dest <<<"$(destination "$target")"
    "ffmpeg" "${PUBLISHER_ARGS[@]}" "${dest[@]}" >"$RUN_DIR/$target-publisher.log" 2>&1 &
    PUBLISHER_PID=$!
    STARTED_PIDS+=("$PUBLISHER_PID")
}

# Waits until the output answers, then lets it fill its window (nginx-rtmp's playlist is 4 s).
wait_ready() {
    local target=$1 url i
    url=$(ready_url "$target")
    for i in $(seq 1 300); do
        kill -0 "$PUBLISHER_PID" 2>/dev/null || die "the publisher exited (see $RUN_DIR/$target-publisher.log)"
        if curl -sf -o /dev/null "$url"; then
            sleep 6
            return 0
        fi
        sleep 0.2
    done
    die "$target did not come up within 60 s (see $RUN_DIR)"
}

url_of() {
    local player="http://127.0.0.1:$NGINX_HTTP_PORT/player/player.html"
    case "$1" in
        shardcast-hls) echo "http://127.0.0.1:18101/watch/lat" ;;
        shardcast-dash) echo "http://127.0.0.1:18101/watch/lat?player=dash" ;;
        shardcast-hls-333) echo "http://127.0.0.1:18102/watch/lat" ;;
        shardcast-hls-500) echo "http://127.0.0.1:18103/watch/lat" ;;
        nginx-rtmp-hls) echo "$player?type=hls&src=/hls/lat.m3u8" ;;
        ffmpeg-hls) echo "$player?type=hls&src=/ffmpeg-hls/index.m3u8" ;;
        ffmpeg-dash) echo "$player?type=dash&src=/ffmpeg-dash/manifest.mpd" ;;
        *) die "unknown target '$1'" ;;
    esac
}

describe() {
    case "$1" in
        shardcast-hls) echo "shardcast LL-HLS, 200 ms parts (default) | hls.js 1.7.4, low-latency, watch page" ;;
        shardcast-dash) echo "shardcast LL-DASH, 200 ms chunks (default) | dash.js 5.2.1, watch page" ;;
        shardcast-hls-333) echo "shardcast LL-HLS, 333 ms parts | hls.js, watch page" ;;
        shardcast-hls-500) echo "shardcast LL-HLS, 500 ms parts | hls.js, watch page" ;;
        nginx-rtmp-hls) echo "nginx-rtmp HLS, 1 s fragments | hls.js defaults" ;;
        ffmpeg-hls) echo "ffmpeg HLS muxer, 1 s segments | hls.js defaults" ;;
        ffmpeg-dash) echo "ffmpeg DASH muxer, 1 s segments, files via nginx | dash.js defaults" ;;
    esac
}

# The p50 of the part-ready histogram (last sample in -> servable) of a shardcast, ms.
part_ready_p50() {
    curl -sf "http://127.0.0.1:$1/metrics" | awk '
        /^shardcast_media_part_ready_latency_seconds_bucket\{le=/ {
            match($0, /le="[^"]+"/); le = substr($0, RSTART + 4, RLENGTH - 5); n[++k] = $2; b[k] = le
        }
        /^shardcast_media_part_ready_latency_seconds_count / { total = $2 }
        END {
            if (total == 0) { print "n/a"; exit }
            for (i = 1; i <= k; i++) if (n[i] >= total / 2) { printf "%s", (b[i] == "+Inf" ? "+Inf" : b[i] * 1000); exit }
        }'
}

fmt() {
    # "median / p95" of a stats object, or n/a.
    jq -r "if $1 == null then \"n/a\" else \"\\($1.median) / \\($1.p95)\" end" "$2"
}

main() {
    ensure_tools
    mkdir -p "$RUN_DIR"
    build_release
    start_shardcasts
    start_peers
    publisher_args
    local target
    for target in $TARGETS; do
        start_publisher "$target"
        wait_ready "$target"
        log "playing $target for ${SECONDS_EACH}s"
        (cd "$BROWSER_DIR" && node latency.mjs --url "$(url_of "$target")" --seconds "$SECONDS_EACH" --label "$target") \
            >"$RUN_DIR/$target.json" 2>"$RUN_DIR/$target.stderr" || log "  $target: the browser run failed (see $RUN_DIR/$target.stderr)"
        jq -c '{firstFrameMs, g2g: .g2g.median, pdt: .pdt.median, player: .playerLatency.median, stalls, badCodes}' "$RUN_DIR/$target.json" >&2 || true
        stop_pid "$PUBLISHER_PID"
    done
    local ready_a ready_b ready_c
    ready_a=$(part_ready_p50 18101)
    ready_b=$(part_ready_p50 18102)
    ready_c=$(part_ready_p50 18103)
    write_results "$ready_a" "$ready_b" "$ready_c"
    log "wrote $OUT"
}

write_results() {
    local target f
    {
        echo "# Latency in the browser: shardcast against nginx-rtmp and ffmpeg's muxers"
        echo
        echo "Written by \`just bench-latency\` (bench/scripts/bench-latency.sh); raw reports in \`${RUN_DIR#"$ROOT"/}\`."
        echo
        machine_header | grep -v 'core layout'
        echo "- browser: Debian's Chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), headless, driven by playwright-core; ${SECONDS_EACH} s per output, one output at a time"
        echo "- publisher, started afresh for each output (one at a time): \`ffmpeg ${PUBLISHER_ARGS[*]} <destination>\`"
        echo
        echo "Glass-to-glass is measured from the picture itself: the publisher writes the wall clock into each frame, and the page reads it back from every third frame it shows (the first 5 s, while the player settles, left out). PDT is the player's PROGRAM-DATE-TIME latency (hls.js \`playingDate\`; nginx-rtmp has none); \"player\" is what the player reports (hls.js \`latency\`, dash.js \`getCurrentLiveLatency\`)."
        echo
        echo "First frame: navigation to the first picture, in a browser already running (as a viewer's is), over ${FIRST_FRAME_LOADS} loads each in a fresh context with an empty cache: median (min-max). Stalls: \`waiting\` after the first frame, with their total length and when each began (seconds after the first frame)."
        echo
        echo "| output | player | first frame, ms | glass-to-glass median / p95, ms | PDT median / p95, ms | player's own, median / p95, ms | stalls (total ms; at s) |"
        echo "|---|---|---|---|---|---|---|"
        for target in $TARGETS; do
            f="$RUN_DIR/$target.json"
            if ! jq -e '.g2g' "$f" >/dev/null 2>&1; then
                echo "| $(describe "$target") | failed: $(jq -r '.error // "no report"' "$f" 2>/dev/null || echo "no report") | | | | |"
                continue
            fi
            echo "| $(describe "$target") | $(jq -r 'if .firstFrames then "\(.firstFrames.median) (\(.firstFrames.min)-\(.firstFrames.max))" else "\(.firstFrameMs)" end' "$f") | $(fmt .g2g "$f") | $(fmt .pdt "$f") | $(fmt .playerLatency "$f") | $(jq -r '"\(.stalls) (\(.stallMs)\(if (.stallsAt // []) | length > 0 then "; " + ((.stallsAt | map(. / 100 | round / 10 | tostring)) | join(", ")) else "" end))"' "$f") |"
        done
        echo
        echo "## The latency ladder (shardcast LL-HLS)"
        echo
        echo "Where the glass-to-glass delay goes, by part size. PDT is stamped when a part's first sample reaches the server, so glass-to-glass minus PDT is the encoder and the RTMP hop; a part can be served once its last sample is in (its duration) and packaged (the server's part-ready p50); the rest is the player: PART-HOLD-BACK (three parts) and its buffer."
        echo
        echo "| part | glass-to-glass median | encoder + RTMP (g2g - PDT) | part duration | packaging p50 (part-ready histogram) | player: hold-back and buffer (PDT - part - packaging) |"
        echo "|---|---|---|---|---|---|"
        ladder_row shardcast-hls 200 "$1"
        ladder_row shardcast-hls-333 333 "$2"
        ladder_row shardcast-hls-500 500 "$3"
    } >"$OUT"
}

ladder_row() {
    local target=$1 part=$2 ready=$3 f="$RUN_DIR/$1.json" g2g pdt
    [[ " $TARGETS " == *" $target "* ]] || return 0
    g2g=$(jq -r '.g2g.median // empty' "$f" 2>/dev/null || true)
    pdt=$(jq -r '.pdt.median // empty' "$f" 2>/dev/null || true)
    if [[ -z "$g2g" || -z "$pdt" ]]; then
        echo "| $part ms | n/a | | | | |"
        return 0
    fi
    local ready_ms=${ready%%.*}
    [[ "$ready_ms" =~ ^[0-9]+$ ]] || ready_ms=0
    echo "| $part ms | $g2g ms | $((g2g - pdt)) ms | $part ms | ≤ $ready ms | $((pdt - part - ready_ms)) ms |"
}

main "$@"
