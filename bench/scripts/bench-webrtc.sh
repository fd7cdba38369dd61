#!/usr/bin/env bash
# WebRTC: glass-to-glass in Debian's Chromium, and fan-out per core.
#
# Run with `just bench-webrtc` (or directly). Writes bench/results/webrtc.md.
#
# Glass-to-glass (bench/tests/browser/latency.mjs reads a wall-clock barcode back from each
# shown frame; see bench-latency.sh), one output at a time, on shardcast (release, one shard,
# transcoding off) and on a peer relay in Python (aiortc 1.16, bench/peers/webrtc: decodes
# once, encodes again for each viewer):
#   - whip-whep: a Chromium page paints the clock into a canvas, captures it at 30 fps and
#     publishes it over WHIP (bench/tests/browser/canvas-whip.mjs); another Chromium plays
#     it over WHEP on the watch page (?player=webrtc);
#   - rtmp-whep: ffmpeg (libx264 -tune zerolatency, the barcode of bench-latency) over
#     RTMP, played over WHEP;
#   - rtmp-llhls: the same over LL-HLS on the watch page (hls.js);
#   - aiortc-relay: the canvas publisher into the aiortc relay, played on its bare WHEP page;
#   - vp8-whep, vp8-llhls: the canvas publisher offering VP8 alone, on the second shardcast
#     below (its transcode thread makes the VP8 H.264), played over WHEP (VP8 as it came)
#     and over LL-HLS;
#   - co-hosting (a second shardcast with the transcode thread on, `ladder = []`): the canvas
#     publisher goes live as host 0 of a stage (feed `STAGE~0`, a stage per run);
#     cohost-feed plays the feed over WHEP as another host does (host to host), cohost-whep
#     and cohost-llhls play the composed program `STAGE` over WHEP and LL-HLS (host to
#     audience).
#
# Fan-out: `shardcast-bench webrtc` (a str0m WHIP publisher of a 2 Mbit/s 720p30 file, looped,
# and N str0m WHEP viewers on one thread, pinned to core 1) against shardcast (one shard,
# pinned to core 0), against the aiortc relay and against a werift SFU (werift 0.25 in Node,
# bench/peers/werift-sfu: forwards each RTP packet to every viewer, as shardcast does), for
# each viewer count. Loss is counted from
# sequence numbers, frame spread is when each viewer got a frame's last packet minus when the
# first viewer did (each arrival is the kernel's receive timestamp, SO_TIMESTAMPNS, so the
# load client's own reading order is not counted); the server's CPU comes from /proc.
#
# Environment:
#   SECONDS_EACH=30          how long each glass-to-glass output is played
#   FANOUT="100 250 500 1000 1500 1750 2000" shardcast viewer counts
#   AIORTC_FANOUT="2 4"      aiortc viewer counts
#   WERIFT_FANOUT="50 100 150 200" werift viewer counts
#   GRO=on                   the viewers receive with UDP GRO (a segmented run of datagrams
#                            arrives whole, as a NIC would take it, instead of loopback
#                            splitting it on the server's core); off: rows named NAME-nogro
#   FANOUT_SECONDS=20        measured time of each fan-out run
#   OUT=bench/results/webrtc.md
#   PARTS="g2g cohost vp8 fanout" what to measure
#   RUN_DIR=DIR              where the raw reports go (default: a new directory); with PARTS,
#                            adds to an earlier run's reports
#   RENDER=DIR               write OUT again from the raw reports of an earlier run in DIR
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SECONDS_EACH=${SECONDS_EACH:-30}
FANOUT=${FANOUT:-100 250 500 1000 1500 1750 2000}
AIORTC_FANOUT=${AIORTC_FANOUT:-2 4}
WERIFT_FANOUT=${WERIFT_FANOUT:-50 100 150 200}
WERIFT_PORT=18202
GRO=${GRO:-on}
FANOUT_SECONDS=${FANOUT_SECONDS:-20}
OUT=${OUT:-$ROOT/bench/results/webrtc.md}
SERVERS="shardcast"
PARTS=${PARTS:-g2g cohost vp8 fanout}
RUN_DIR=${RUN_DIR:-"$ROOT/bench/results/tmp/webrtc-$(date +%Y%m%d-%H%M%S)"}
BROWSER_DIR="$ROOT/bench/tests/browser"
MEDIA_DIR="$BENCH_DIR/webrtc"
VENV="$BENCH_DIR/venv-aiortc"
HTTP_PORT=18301
RTMP_PORT=19501
AIORTC_PORT=18201
COHOST_HTTP_PORT=18302
COHOST_RTMP_PORT=19502

trap stop_started EXIT
trap 'exit 130' INT TERM

ensure_tools() {
    command -v ffmpeg >/dev/null || die "ffmpeg is missing (scripts/setup.sh installs it)"
    command -v node >/dev/null || die "node is missing (scripts/setup.sh installs it)"
    command -v jq >/dev/null || die "jq is missing (apt-get install -y jq)"
    [[ -x /usr/bin/chromium ]] || die "chromium is missing (scripts/setup.sh installs it)"
    [[ -d "$BROWSER_DIR/node_modules/playwright-core" ]] || die "playwright-core is missing (scripts/setup.sh installs it)"
    [[ -f "$ROOT/web/vendor/hls.min.js" ]] || die "web/vendor is empty: run scripts/web.sh"
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import aiortc, aiohttp' 2>/dev/null; then
        log "installing aiortc 1.16.0 and aiohttp 3.14.5 into $VENV"
        python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install -y python3-venv)"
        "$VENV/bin/pip" install --quiet aiortc==1.16.0 aiohttp==3.14.5 || die "pip install aiortc failed"
    fi
}

# The fan-out's source: 20 s of a 2 Mbit/s 1280x720 30 fps picture (keyframe every 2 s, no
# B-frames) and 64 kbit/s Opus, looped by the publisher.
make_media() {
    mkdir -p "$MEDIA_DIR"
    [[ -s "$MEDIA_DIR/src.h264" && -s "$MEDIA_DIR/src.ogg" ]] && return 0
    log "encoding the fan-out source"
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 20 \
        -c:v libx264 -preset veryfast -profile:v baseline -bf 0 -g 60 -keyint_min 60 -b:v 2000k \
        -maxrate 2000k -bufsize 1000k -x264-params aud=1:scenecut=0:nal-hrd=cbr -pix_fmt yuv420p \
        -f h264 "$MEDIA_DIR/src.h264"
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 \
        -c:a libopus -b:a 64k -frame_duration 20 -f ogg "$MEDIA_DIR/src.ogg"
}

start_shardcast_rtc() {
    local dir="$RUN_DIR/shardcast"
    mkdir -p "$dir"
    # Room for the largest fan-out run and its publisher on the one shard.
    printf '[shards]\ncores = [%s]\n\n[webrtc]\nudp_listen = "127.0.0.1:0"\nmax_sessions_per_shard = 4000\n\n[transcode]\nenabled = false\n\n[media]\npublish_open = true\n\n[state]\ndata_dir = "%s"\n' \
        "$SERVER_CORE" "$dir/data" >"$dir/shardcast.toml"
    taskset -c "$SERVER_CORE" "$SHARDCAST_BIN" serve --shards 1 --http "127.0.0.1:$HTTP_PORT" \
        --rtmp "127.0.0.1:$RTMP_PORT" --config "$dir/shardcast.toml" >"$dir/stdout.log" 2>&1 &
    SHARDCAST_PID=$!
    STARTED_PIDS+=("$SHARDCAST_PID")
    wait_listening "$HTTP_PORT" "$SHARDCAST_PID" shardcast
}

# A second shardcast for co-hosting: the transcode thread composes the program.
start_shardcast_cohost() {
    local dir="$RUN_DIR/shardcast-cohost"
    mkdir -p "$dir"
    # The shard on the server's core, the transcode thread (which decodes, composes and
    # encodes the program) on the other: a stage needs a core of its own.
    printf '[shards]\ncores = [%s]\n\n[webrtc]\nudp_listen = "127.0.0.1:0"\n\n[transcode]\ncores = [%s]\nladder = []\n\n[media]\npublish_open = true\n\n[state]\ndata_dir = "%s"\n' \
        "$SERVER_CORE" "$LOAD_CORE" "$dir/data" >"$dir/shardcast.toml"
    "$SHARDCAST_BIN" serve --shards 1 --http "127.0.0.1:$COHOST_HTTP_PORT" \
        --rtmp "127.0.0.1:$COHOST_RTMP_PORT" --config "$dir/shardcast.toml" >"$dir/stdout.log" 2>&1 &
    COHOST_PID=$!
    STARTED_PIDS+=("$COHOST_PID")
    wait_listening "$COHOST_HTTP_PORT" "$COHOST_PID" "shardcast (co-hosting)"
}

# Host 0 of a stage publishes the clock; another host (the feed over WHEP) and the audience
# (the program over WHEP and LL-HLS) read it back, one at a time.
cohosting() {
    start_shardcast_cohost
    local base="http://127.0.0.1:$COHOST_HTTP_PORT" target url stage
    # A stage per run: a killed publisher's session lingers until its consent lapses.
    for target in cohost-feed cohost-whep cohost-llhls; do
        stage=${target/-/_}
        case "$target" in
            cohost-feed) url="$base/watch/$stage~0?player=webrtc" ;;
            cohost-whep) url="$base/watch/$stage?player=webrtc" ;;
            cohost-llhls) url="$base/watch/$stage" ;;
        esac
        start_canvas_publisher "$base/whip/live/$stage~0" "$target"
        wait_live "$base/live/$stage/source/index.m3u8"
        play "$target" "$url"
        # The killed publisher's session goes when its consent lapses, and its stage with
        # it: the next run gets the transcode thread to itself.
        local i
        for i in $(seq 1 90); do
            curl -sf "$base/live/$stage/source/index.m3u8" | grep -q ENDLIST && break
            sleep 0.5
        done
    done
    stop_pid "$COHOST_PID"
}

# A browser without H.264 (the canvas publisher offering VP8 alone) on the second server,
# whose transcode thread makes its VP8 H.264: vp8-whep plays it on the watch page over WHEP
# (Chromium takes VP8: the publisher's frames as they came), vp8-llhls over LL-HLS (the
# H.264 made from them).
vp8_rows() {
    start_shardcast_cohost
    local base="http://127.0.0.1:$COHOST_HTTP_PORT" target url stream
    for target in vp8-whep vp8-llhls; do
        stream=${target/-/_}
        case "$target" in
            vp8-whep) url="$base/watch/$stream?player=webrtc" ;;
            vp8-llhls) url="$base/watch/$stream" ;;
        esac
        start_canvas_publisher "$base/whip/live/$stream" "$target" vp8
        wait_live "$base/live/$stream/source/index.m3u8"
        play "$target" "$url"
    done
    stop_pid "$COHOST_PID"
}

start_werift() {
    local dir="$ROOT/bench/peers/werift-sfu"
    if [[ ! -d "$dir/node_modules/werift" ]]; then
        log "installing the werift peer (npm ci)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in bench/peers/werift-sfu failed"
    fi
    taskset -c "$SERVER_CORE" node "$dir/sfu.mjs" --port "$WERIFT_PORT" >"$RUN_DIR/werift.log" 2>&1 &
    WERIFT_PID=$!
    STARTED_PIDS+=("$WERIFT_PID")
    wait_listening "$WERIFT_PORT" "$WERIFT_PID" "werift SFU"
}

start_aiortc() {
    taskset -c "$SERVER_CORE" "$VENV/bin/python" "$ROOT/bench/peers/webrtc/aiortc_relay.py" \
        --port "$AIORTC_PORT" >"$RUN_DIR/aiortc.log" 2>&1 &
    AIORTC_PID=$!
    STARTED_PIDS+=("$AIORTC_PID")
    wait_listening "$AIORTC_PORT" "$AIORTC_PID" "aiortc relay"
}

# ffmpeg's barcode publisher of bench-latency.sh, to shardcast over RTMP.
start_rtmp_publisher() {
    local code="color=c=black:s=640x16:r=30,settb=1/1000,setpts='RTCTIME/1000',format=gray"
    code+=",geq=lum='if(eq(mod(floor(T*1000/pow(2,floor(X/20))),2),1),235,16)'"
    code+=",format=yuv420p,pad=1280:16:0:0:black,setpts=N/(30*TB)[code]"
    ffmpeg -hide_banner -loglevel error -nostdin -re \
        -f lavfi -i testsrc2=size=1280x704:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
        -filter_complex "$code;[code][0:v]vstack[v]" -map "[v]" -map 1:a -t 3600 \
        -c:v libx264 -preset veryfast -tune zerolatency -g 30 -keyint_min 30 -b:v 2500k \
        -maxrate 2500k -bufsize 1250k -pix_fmt yuv420p -c:a aac -b:a 128k -ar 48000 \
        -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/$1" >"$RUN_DIR/$1-publisher.log" 2>&1 &
    PUBLISHER_PID=$!
    STARTED_PIDS+=("$PUBLISHER_PID")
}

# The canvas publisher to WHIP endpoint $1, its report named $2; $3: `vp8` offers VP8 alone.
start_canvas_publisher() {
    (cd "$BROWSER_DIR" && node canvas-whip.mjs --whip "$1" --seconds $((SECONDS_EACH + 30)) \
        --codec "${3:-h264}") \
        >"$RUN_DIR/$2-publisher.json" 2>&1 &
    PUBLISHER_PID=$!
    STARTED_PIDS+=("$PUBLISHER_PID")
}

wait_live() {
    local url=$1 i
    for i in $(seq 1 150); do
        kill -0 "$PUBLISHER_PID" 2>/dev/null || die "the publisher exited (see $RUN_DIR)"
        if curl -sf -o /dev/null "$url"; then
            sleep 3
            return 0
        fi
        sleep 0.2
    done
    die "$url did not come up within 30 s"
}

play() {
    local target=$1 url=$2
    log "playing $target for ${SECONDS_EACH}s"
    (cd "$BROWSER_DIR" && node latency.mjs --url "$url" --seconds "$SECONDS_EACH" --label "$target") \
        >"$RUN_DIR/$target.json" 2>"$RUN_DIR/$target.stderr" || log "  $target: the browser run failed (see $RUN_DIR/$target.stderr)"
    jq -c '{firstFrameMs, g2g: .g2g.median, p95: .g2g.p95, stalls, badCodes}' "$RUN_DIR/$target.json" >&2 || true
    stop_pid "$PUBLISHER_PID"
}

glass_to_glass() {
    start_canvas_publisher "http://127.0.0.1:$HTTP_PORT/whip/live/g2g" whip-whep
    wait_live "http://127.0.0.1:$HTTP_PORT/live/g2g/index.m3u8"
    play whip-whep "http://127.0.0.1:$HTTP_PORT/watch/g2g?player=webrtc"
    start_rtmp_publisher rtmp
    wait_live "http://127.0.0.1:$HTTP_PORT/live/rtmp/index.m3u8"
    play rtmp-whep "http://127.0.0.1:$HTTP_PORT/watch/rtmp?player=webrtc"
    start_rtmp_publisher rtmp2
    wait_live "http://127.0.0.1:$HTTP_PORT/live/rtmp2/source/index.m3u8"
    sleep 3
    play rtmp-llhls "http://127.0.0.1:$HTTP_PORT/watch/rtmp2"
    kill -0 "$AIORTC_PID" 2>/dev/null || start_aiortc
    start_canvas_publisher "http://127.0.0.1:$AIORTC_PORT/whip/live/g2g" aiortc-relay
    sleep 6
    play aiortc-relay "http://127.0.0.1:$AIORTC_PORT/player.html?stream=g2g"
}

# One fan-out run: NAME, HTTP port, server PID, viewers, stream.
fanout() {
    local name=$1 port=$2 pid=$3 viewers=$4 stream=$5 file=$1
    [[ "$GRO" == on ]] || file="$name-nogro"
    log "fan-out: $name, $viewers viewers (client GRO $GRO)"
    taskset -c "$LOAD_CORE" "$BENCH_BIN" webrtc --http "127.0.0.1:$port" --stream "$stream" \
        --viewers "$viewers" --join-rate 250 --duration "${FANOUT_SECONDS}s" --warmup 3s \
        --h264 "$MEDIA_DIR/src.h264" --opus "$MEDIA_DIR/src.ogg" --server-pid "$pid" \
        --gro "$GRO" --json "$RUN_DIR/fanout-$file-$viewers.json" >&2 || log "  $name $viewers: failed"
    # The next run starts on a server with no sessions left (the client DELETEs its own; a
    # session it could not end goes when its consent lapses).
    if [[ "$name" == shardcast ]]; then
        local i
        for i in $(seq 1 100); do
            [[ "$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^shardcast_media_webrtc_sessions / { print $2 }')" == 0 ]] && break
            sleep 0.5
        done
    fi
}

main() {
    # RENDER=DIR: write the results again from an earlier run's raw reports.
    if [[ -n "${RENDER:-}" ]]; then
        RUN_DIR=$RENDER
        write_results
        log "wrote $OUT from $RUN_DIR"
        return 0
    fi
    ensure_tools
    check_machine
    mkdir -p "$RUN_DIR"
    build_release
    make_media
    local n
    if [[ " $PARTS " == *" g2g "* || " $PARTS " == *" fanout "* ]]; then
        start_shardcast_rtc
        start_aiortc
    fi
    [[ " $PARTS " == *" g2g "* ]] && glass_to_glass
    [[ " $PARTS " == *" cohost "* ]] && cohosting
    [[ " $PARTS " == *" vp8 "* ]] && vp8_rows
    if [[ " $PARTS " == *" fanout "* ]]; then
        for n in $FANOUT; do
            fanout shardcast "$HTTP_PORT" "$SHARDCAST_PID" "$n" "fan$n"
        done
        for n in $AIORTC_FANOUT; do
            # The relay crashes now and then when a publisher leaves (PyAV): a fresh one per run.
            stop_pid "$AIORTC_PID"
            start_aiortc
            fanout aiortc "$AIORTC_PORT" "$AIORTC_PID" "$n" "fan$n"
        done
        for n in $WERIFT_FANOUT; do
            # A fresh SFU per run: the last run's sessions end when their consent lapses.
            [[ -n "${WERIFT_PID:-}" ]] && stop_pid "$WERIFT_PID"
            start_werift
            fanout werift "$WERIFT_PORT" "$WERIFT_PID" "$n" "fan$n"
        done
    fi
    write_results
    log "wrote $OUT"
}

fmt() {
    jq -r "if $1 == null then \"n/a\" else \"\\($1.median) / \\($1.p95)\" end" "$2"
}

describe() {
    case "$1" in
        whip-whep) echo "shardcast, WHIP in (Chromium canvas) → WHEP out | watch page, ?player=webrtc" ;;
        rtmp-whep) echo "shardcast, RTMP in (ffmpeg -tune zerolatency) → WHEP out | watch page, ?player=webrtc" ;;
        rtmp-llhls) echo "shardcast, RTMP in (ffmpeg -tune zerolatency) → LL-HLS out | watch page, hls.js" ;;
        aiortc-relay) echo "aiortc 1.16 relay (decode, encode again), WHIP in (Chromium canvas) → WHEP out | bare WHEP page" ;;
        cohost-feed) echo "co-hosting, host to host: host 0's feed (WHIP in) → WHEP out, as another host plays it | watch page, ?player=webrtc" ;;
        cohost-whep) echo "co-hosting, host to audience: the composed program (decode, grid, encode on the transcode thread) → WHEP | watch page, ?player=webrtc" ;;
        cohost-llhls) echo "co-hosting, host to audience: the composed program → LL-HLS | watch page, hls.js" ;;
        vp8-whep) echo "shardcast, WHIP in as VP8 (Chromium canvas offering VP8 alone) → WHEP out, the VP8 as it came | watch page, ?player=webrtc" ;;
        vp8-llhls) echo "shardcast, WHIP in as VP8 → LL-HLS out (VP8 made H.264 on the transcode thread) | watch page, hls.js" ;;
    esac
}

write_results() {
    local target f n
    {
        echo "# WebRTC: glass-to-glass and fan-out"
        echo
        echo "Written by \`just bench-webrtc\` (bench/scripts/bench-webrtc.sh); raw reports in \`${RUN_DIR#"$ROOT"/}\`."
        echo
        machine_header
        echo "- browser: Debian's Chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), headless, driven by playwright-core; ${SECONDS_EACH} s per output, one output at a time"
        echo
        echo "## Glass-to-glass"
        echo
        echo "The publisher writes the wall clock into each frame (a Chromium canvas for WHIP, ffmpeg's barcode for RTMP); the viewer's page reads it back from every third frame it shows (the first 5 s left out). Publisher and viewer run on this machine and share its clock. First frame: navigation to the first picture, over 7 loads in fresh contexts: median (min-max)."
        echo
        echo "The co-hosting rows run on a second server: its shard on core $SERVER_CORE, its transcode thread (which decodes, composes and encodes the program) on core $LOAD_CORE; one host on the stage, so the program is the host's picture on the whole canvas. The VP8 rows run on that server too (its transcode thread makes the VP8 H.264). With \`PARTS\`, rows may come from separate invocations into the same raw directory (the date above is the last one's)."
        echo
        echo "| path | first frame, ms | glass-to-glass median / p95, ms | stalls | unreadable codes |"
        echo "|---|---|---|---|---|"
        for target in whip-whep rtmp-whep rtmp-llhls aiortc-relay cohost-feed cohost-whep cohost-llhls vp8-whep vp8-llhls; do
            f="$RUN_DIR/$target.json"
            if ! jq -e '.g2g' "$f" >/dev/null 2>&1; then
                echo "| $(describe "$target") | failed: $(jq -r '.error // "no report"' "$f" 2>/dev/null || echo "no report") | | | |"
                continue
            fi
            echo "| $(describe "$target") | $(jq -r 'if .firstFrames then "\(.firstFrames.median) (\(.firstFrames.min)-\(.firstFrames.max))" else "\(.firstFrameMs)" end' "$f") | $(fmt .g2g "$f") | $(jq -r '.stalls' "$f") | $(jq -r '.badCodes' "$f") |"
        done
        echo
        echo "## Fan-out: WHEP viewers of one 2 Mbit/s stream"
        echo
        echo "\`shardcast-bench webrtc\` on core $LOAD_CORE: a WHIP publisher of a 2 Mbit/s 1280x720 30 fps H.264 file (looped) with Opus, then N WHEP viewers (str0m, RTP counted from its clear header, never decrypted), ${FANOUT_SECONDS} s measured after a 3 s warm-up. The server on core $SERVER_CORE (shardcast: one shard; aiortc: its Python process, which runs encoders on more threads; werift: its Node process, an SFU that forwards the publisher's packets to each viewer). Frame spread: when each viewer got a frame's last packet minus when the first viewer got it, by the kernel's receive timestamps (for a relay that encodes per viewer, each viewer's frames are its own, so it reads 0). Server CPU includes, on loopback, the kernel's delivery to the viewers' sockets (see perf/README.md); with client GRO on, a run of datagrams the server sent as one segmented message (UDP_SEGMENT, which shardcast uses and werift and aiortc do not) is handed to the viewer's socket whole instead of being split again on the server's core, as a NIC and remote viewers would take it. A row at a full core is saturated (with loss, or with frames the server could not take from its publisher in time, which shows as fewer Mbit/s per viewer): a server's capacity is its largest row below a full core without loss."
        echo
        echo "| server | client GRO | viewers | connected | Mbit/s per viewer (median) | video loss | frame spread p50 / p99 / max, ms | server cores | server CPU per viewer, µs/s | viewers per core at this cost | client cores |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|"
        for f in $(ls -v "$RUN_DIR"/fanout-*.json 2>/dev/null); do
            [[ -f "$f" ]] || continue
            n=$(basename "$f" .json)
            jq -r --arg name "${n#fanout-}" '"| \($name | sub("-[0-9]+$"; "") | sub("-nogro$"; "")) | \(if .gro then "on" else "off" end) | \(.viewers) | \(.connected) | \(.mbps_per_viewer * 100 | round / 100) | \(.video_lost) of \(.video_packets + .video_lost) | \(.spread_p50_ms * 10 | round / 10) / \(.spread_p99_ms * 10 | round / 10) / \(.spread_max_ms * 10 | round / 10) | \(.server_cores * 100 | round / 100) | \(.server_us_per_viewer_s | round) | \(if .server_cores >= 0.95 then "saturated" elif .server_us_per_viewer_s > 0 then (1000000 / .server_us_per_viewer_s | floor) else "n/a" end) | \(.client_cores * 100 | round / 100) |"' "$f"
        done
    } >"$OUT"
}

main "$@"
