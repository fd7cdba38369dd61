#!/usr/bin/env bash
# Churn soak of the release binary: `just soak MINUTES` (or `bench/scripts/soak.sh MINUTES`).
#
# Starts `shardcast serve` (one shard, core 0) with a configuration made for the soak (short
# timeouts so churn cleans up within seconds, ladder off, open publishing, anonymous rooms),
# then runs `shardcast-bench soak` on core 1 for MINUTES minutes: WebSocket viewers joining
# and leaving rooms, chatting and resuming, stallers, RTMP publishers replaying a recorded
# FLV file, HLS players, and bad clients. Every 10 s it samples /metrics and the server's
# RSS; after the churn it waits (bounded) for connections, rooms, streams and FFmpeg owners
# to be back to zero and timers to their idle value. Writes bench/results/soak.md; exits
# non-zero when something was left behind or RSS grew more than 1 % after warm-up (the
# first 5 minutes, or 20 % of a shorter run). The server is built with the `heap-stats`
# feature, so the samples also show what the program itself holds.
#
# Environment:
#   SHARDCAST_PORT=18095 SHARDCAST_RTMP_PORT=19355
#   OUT=bench/results/soak.md  where the report goes
#   SOAK_ARGS="..."     extra `shardcast-bench soak` options, e.g. "--viewers 500 --stream-names 0"
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

MINUTES=${1:-${MINUTES:-}}
SHARDCAST_PORT=${SHARDCAST_PORT:-18095}
SHARDCAST_RTMP_PORT=${SHARDCAST_RTMP_PORT:-19355}
SOAK_ARGS=${SOAK_ARGS:-}
SERVERS=shardcast
# The server counts the bytes it holds (shardcast_heap_live_bytes), so the report can tell the
# program's memory from the allocator's.
SHARDCAST_FEATURES=heap-stats
OUT=${OUT:-"$ROOT/bench/results/soak.md"}
RUN_DIR="$ROOT/bench/results/tmp/soak-$(date +%Y%m%d-%H%M%S)"
FIXTURE="$ROOT/shards/media/tests/fixtures/avc_aac.flv"

# The soak's timeouts (ms), written into the configuration below. The settle bound is
# danmaku.history_s + the longest of them (or of media.ended_keep_s) + 30 s.
HISTORY_S=10
HTTP_HEADER_TIMEOUT_MS=3000
HTTP_IDLE_TIMEOUT_MS=5000
WS_HELLO_TIMEOUT_MS=3000
WS_PING_INTERVAL_MS=5000
WS_IDLE_TIMEOUT_MS=30000
WS_STALL_TIMEOUT_MS=3000
RTMP_HANDSHAKE_TIMEOUT_MS=3000
RTMP_PUBLISH_TIMEOUT_MS=5000
RTMP_IDLE_TIMEOUT_MS=5000
LINGER_MS=2000
# An ended stream stays in the index this long (media.ended_keep_s) before it must be gone.
ENDED_KEEP_S=20

trap stop_started EXIT
trap 'exit 130' INT TERM

[[ "$MINUTES" =~ ^[1-9][0-9]*$ ]] || die "usage: soak.sh MINUTES (a whole number of minutes, at least 1)"

write_config() {
    local secret=$1
    cat >"$RUN_DIR/shardcast.toml" <<TOML
[shards]
cores = [$SERVER_CORE]

[engine]
# Small kernel send buffers, so a viewer that stops reading fills the server's own queue
# (ws.send_queue_max_bytes) within seconds instead of minutes.
socket_send_buffer_bytes = 8192
linger_ms = $LINGER_MS

[http]
header_timeout_ms = $HTTP_HEADER_TIMEOUT_MS
idle_timeout_ms = $HTTP_IDLE_TIMEOUT_MS
# api_token unset: /metrics is open.

[ws]
hello_timeout_ms = $WS_HELLO_TIMEOUT_MS
ping_interval_ms = $WS_PING_INTERVAL_MS
idle_timeout_ms = $WS_IDLE_TIMEOUT_MS
# History answers and resume replays hold at most half of it (64 KiB; a longer gap answers
# Resync). The flood room (4 x 15 chats/s) fills it for a staller in about 15 s, before the
# idle timeout.
send_queue_max_bytes = 131072
stall_timeout_ms = $WS_STALL_TIMEOUT_MS

[danmaku]
history_s = $HISTORY_S
anonymous_rooms = "any"
heartbeat_ms = 10000
# The flood chatters send 15 chats/s each (into the stallers' room).
chat_rate_per_s = 20
chat_burst = 20

[auth]
secret = "$secret"

[rtmp]
handshake_timeout_ms = $RTMP_HANDSHAKE_TIMEOUT_MS
publish_timeout_ms = $RTMP_PUBLISH_TIMEOUT_MS
idle_timeout_ms = $RTMP_IDLE_TIMEOUT_MS

[media]
publish_open = true
ended_keep_s = $ENDED_KEEP_S

[transcode]
# Ladder off: two cores cannot afford x264 for a long soak next to the load.
enabled = false
TOML
}

settle_bound_s() {
    local longest=0 ms
    for ms in $HTTP_HEADER_TIMEOUT_MS $HTTP_IDLE_TIMEOUT_MS $WS_HELLO_TIMEOUT_MS $WS_IDLE_TIMEOUT_MS \
        $WS_STALL_TIMEOUT_MS $RTMP_HANDSHAKE_TIMEOUT_MS $RTMP_PUBLISH_TIMEOUT_MS $RTMP_IDLE_TIMEOUT_MS $LINGER_MS; do
        [[ "$ms" -le "$longest" ]] || longest=$ms
    done
    local longest_s=$(((longest + 999) / 1000))
    [[ "$ENDED_KEEP_S" -le "$longest_s" ]] || longest_s=$ENDED_KEEP_S
    echo $((HISTORY_S + longest_s + 30))
}

start_server() {
    SHARDCAST_CMD="taskset -c $SERVER_CORE $SHARDCAST_BIN serve --shards 1 --http 127.0.0.1:$SHARDCAST_PORT --rtmp 127.0.0.1:$SHARDCAST_RTMP_PORT --config $RUN_DIR/shardcast.toml"
    $SHARDCAST_CMD >"$RUN_DIR/shardcast.log" 2>&1 &
    SERVER_PID=$!
    STARTED_PIDS+=("$SERVER_PID")
    wait_listening "$SHARDCAST_PORT" "$SERVER_PID" shardcast
    wait_listening "$SHARDCAST_RTMP_PORT" "$SERVER_PID" shardcast
}

# Stops the server with SIGTERM; sets STOP_LINE (exit status and drain time).
stop_server() {
    local began rc=0
    began=$(date +%s.%N)
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" || rc=$?
    forget_pid "$SERVER_PID"
    STOP_LINE="SIGTERM: exit status $rc after $(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"
}

main() {
    check_machine
    local port
    for port in "$SHARDCAST_PORT" "$SHARDCAST_RTMP_PORT"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "port $port is already in use"
        fi
    done
    build_release
    mkdir -p "$RUN_DIR"
    write_config "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    "$SHARDCAST_BIN" config --check "$RUN_DIR/shardcast.toml" >/dev/null || die "the soak's configuration does not validate"
    local token settle
    token=$("$SHARDCAST_BIN" token --user soak --room '*' --ttl 7d --config "$RUN_DIR/shardcast.toml")
    settle=$(settle_bound_s)
    start_server
    log "shardcast (pid $SERVER_PID) on core $SERVER_CORE; soak for $MINUTES min on core $LOAD_CORE (settle bound ${settle} s)"
    # shellcheck disable=SC2086 # SOAK_ARGS is a list of options
    SOAK_CMD="taskset -c $LOAD_CORE $BENCH_BIN soak --http 127.0.0.1:$SHARDCAST_PORT --rtmp 127.0.0.1:$SHARDCAST_RTMP_PORT --server-pid PID --duration ${MINUTES}m --settle-max ${settle}s --fixture $FIXTURE $SOAK_ARGS --token TOKEN"
    local rc=0
    taskset -c "$LOAD_CORE" "$BENCH_BIN" soak --http "127.0.0.1:$SHARDCAST_PORT" --rtmp "127.0.0.1:$SHARDCAST_RTMP_PORT" \
        --server-pid "$SERVER_PID" --duration "${MINUTES}m" --settle-max "${settle}s" --fixture "$FIXTURE" \
        $SOAK_ARGS --token "$token" --json "$RUN_DIR/soak.json" --markdown "$RUN_DIR/soak-body.md" \
        >"$RUN_DIR/soak.txt" 2>"$RUN_DIR/soak.err" || rc=$?
    [[ -f "$RUN_DIR/soak-body.md" ]] || { cat "$RUN_DIR/soak.err" >&2; die "the soak did not run (exit $rc)"; }
    stop_server
    write_report "$rc"
    log "wrote $OUT ($(grep -m1 '^## Verdict' "$OUT" | sed 's/## //'))"
    return "$rc"
}

write_report() {
    local rc=$1 panics warns
    panics=$(grep -c -i 'panic' "$RUN_DIR/shardcast.log" || true)
    warns=$(grep -c ' WARN ' "$RUN_DIR/shardcast.log" || true)
    {
        echo "# Soak: $MINUTES minutes of churn"
        echo
        echo "Reproduce with \`just soak $MINUTES\` (\`bench/scripts/soak.sh $MINUTES\`); exit status $rc."
        echo
        machine_header | sed 's#, one shard / one nginx worker#, one shard#'
        echo "- memory: $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); loopback only"
        echo
        echo '```sh'
        echo "$SHARDCAST_CMD" | sed "s#$ROOT/##g"
        echo "$SHARDCAST_BIN token --user soak --room '*' --ttl 7d --config shardcast.toml   # TOKEN" | sed "s#$ROOT/##g"
        echo "$SOAK_CMD" | sed "s#$ROOT/##g"
        echo '```'
        echo
        echo "Server configuration (\`shardcast.toml\`, secret elided):"
        echo
        echo '```toml'
        sed 's/^secret = .*/secret = "(random, 32 bytes)"/' "$RUN_DIR/shardcast.toml"
        echo '```'
        echo
        echo "The ladder is off (\`[transcode] enabled = false\`): on two cores x264 would take the"
        echo "server core from the churn for the whole soak, so FFmpeg owners stay at zero here and"
        echo "the check on them only proves nothing else creates any. Publishers replay"
        echo "\`shards/media/tests/fixtures/avc_aac.flv\` (320x180 H.264 + AAC, 2 s, looped) with the"
        echo "sans-io RTMP client: no encoder runs on either core."
        echo
        cat "$RUN_DIR/soak-body.md"
        echo "## Server"
        echo
        echo "- log: $panics line(s) mentioning a panic, $warns WARN line(s) (\`${RUN_DIR#"$ROOT"/}/shardcast.log\`)"
        if [[ "$warns" -gt 0 ]]; then
            echo
            echo '```'
            grep ' WARN ' "$RUN_DIR/shardcast.log" | sed -E 's/^[^ ]+ +WARN +//' | sort | uniq -c | sort -rn | head -n 12
            echo '```'
            echo
        fi
        echo "- shutdown after the soak: $STOP_LINE"
        echo "- raw samples and counts: \`${RUN_DIR#"$ROOT"/}/soak.json\`"
    } >"$OUT"
}

main "$@"
