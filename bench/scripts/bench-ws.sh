#!/usr/bin/env bash
# WebSocket danmaku broadcast: shardcast against a Node `ws` server, a uWebSockets.js pub/sub
# server and a tokio + tokio-tungstenite server (bench/peers/node-ws, bench/peers/uws-ws,
# bench/peers/tokio-ws), one server core each.
#
# Workloads (each server started fresh for each run, pinned to core 0; the load generator
# pinned to core 1, spread over 2 processes and source addresses 127.0.0.2-127.0.0.9):
#   a. 1 room x 10,000 viewers, 20 senders, 200 chats/s in total;
#      then a short ramp of rates per server: the highest rate with nothing missing and
#      p99 under 1 s, and shardcast's p99 at each peer's highest rate;
#   b. 1,000 rooms x 10 viewers, one sender per room, 1 chat/s per room;
#   c. 19,000 idle WebSocket connections (Hello anonymous, Welcome, then idle): server
#      RSS per connection (VmRSS before and after).
#
# Run with `just bench-ws` (or directly). Writes bench/results/ws.md; raw JSON reports and
# server logs stay in bench/results/tmp/.
#
# Environment:
#   OUT=bench/results/ws.md  where the report goes
#   ROUNDS=1              rounds of workloads a, b and c (medians reported); 3 for a report
#   SERVERS="node-ws uws-ws tokio-ws shardcast"   shardcast last: ratio rows are shardcast/peer
#   DURATION=10s WARMUP=2s   measurement window and warm-up of workloads a and b
#   RAMP_RATES="10 25 50 100 200 400 800 1600 3200"   chats/s of the ramp (a), in increasing order
#   RAMP_DURATION=4s      measurement window of each ramp step (1 s warm-up)
#   IDLE_CONNECTIONS=19000 HOLD=25s SETTLE=3   workload c
#   NODE_PORT=19001 TOKIO_PORT=19002 SHARDCAST_PORT=19003 UWS_PORT=19004
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${ROUNDS:-1}
SERVERS=${SERVERS:-node-ws uws-ws tokio-ws shardcast}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
RAMP_RATES=${RAMP_RATES:-10 25 50 100 200 400 800 1600 3200}
RAMP_DURATION=${RAMP_DURATION:-4s}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-19000}
HOLD=${HOLD:-25s}
SETTLE=${SETTLE:-3}
NODE_PORT=${NODE_PORT:-19001}
TOKIO_PORT=${TOKIO_PORT:-19002}
UWS_PORT=${UWS_PORT:-19004}
SHARDCAST_PORT=${SHARDCAST_PORT:-19003}
OUT=${OUT:-$ROOT/bench/results/ws.md}
RUN_DIR="$ROOT/bench/results/tmp/ws-$(date +%Y%m%d-%H%M%S)"
SOURCES=127.0.0.2-127.0.0.9
# Load processes for the latency-sensitive workloads (a, b, ramp): one process on the load
# core keeps the harness's own scheduling out of the latencies; workload c needs two (19k
# sockets do not fit one process's 20k open files with room to spare).
PROCESSES=${PROCESSES:-1}
IDLE_PROCESSES=${IDLE_PROCESSES:-2}
# p99 under this many microseconds counts as sustained in the ramp.
RAMP_P99_MAX_US=1000000
SECRET="bench-ws-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TOKIO_BIN="$ROOT/bench/peers/tokio-ws/target/release/shardcast-peer-tokio-ws"

trap stop_started EXIT
trap 'exit 130' INT TERM

build_all() {
    cd "$ROOT"
    if [[ " $SERVERS " == *" shardcast "* ]]; then
        log "building shardcast and shardcast-bench (release)"
        cargo build --release -p shardcast -p shardcast-bench || die "release build failed"
    else
        log "building shardcast-bench (release)"
        cargo build --release -p shardcast-bench || die "release build of shardcast-bench failed"
    fi
    if [[ " $SERVERS " == *" tokio-ws "* ]]; then
        log "building the tokio-ws peer (release)"
        (cd "$ROOT/bench/peers/tokio-ws" && cargo build --release) || die "tokio-ws build failed"
    fi
    for peer in node-ws uws-ws; do
        if [[ " $SERVERS " == *" $peer "* ]]; then
            command -v node >/dev/null || die "node is missing (scripts/setup.sh installs nodejs and npm)"
            log "installing the $peer peer (npm ci)"
            (cd "$ROOT/bench/peers/$peer" && npm ci --no-audit --no-fund --loglevel=error) \
                || die "npm ci in bench/peers/$peer failed"
        fi
    done
}

# Starts SERVER; sets SERVER_PID, SERVER_PORT and the server's command line.
start_server() {
    local server=$1 dir="$RUN_DIR/$1"
    mkdir -p "$dir"
    case "$server" in
        node-ws)
            SERVER_PORT=$NODE_PORT
            NODE_CMD="taskset -c $SERVER_CORE node server.js $SERVER_PORT"
            (cd "$ROOT/bench/peers/node-ws" && exec $NODE_CMD) >>"$dir/server.log" 2>&1 &
            ;;
        uws-ws)
            SERVER_PORT=$UWS_PORT
            UWS_CMD="taskset -c $SERVER_CORE node server.mjs $SERVER_PORT"
            (cd "$ROOT/bench/peers/uws-ws" && exec $UWS_CMD) >>"$dir/server.log" 2>&1 &
            ;;
        tokio-ws)
            SERVER_PORT=$TOKIO_PORT
            TOKIO_CMD="taskset -c $SERVER_CORE $TOKIO_BIN $SERVER_PORT"
            $TOKIO_CMD >>"$dir/server.log" 2>&1 &
            ;;
        shardcast)
            SERVER_PORT=$SHARDCAST_PORT
            cat >"$dir/shardcast.toml" <<TOML
[shards]
cores = [$SERVER_CORE]

[auth]
secret = "$SECRET"

# Admission set wide open so that the server does not shed the benchmark's load.
[danmaku]
chat_rate_per_s = 1000
chat_burst = 1000
room_inbound_max_per_s = 100000
# The load generator's readers are anonymous and make their rooms (no stream is live).
anonymous_rooms = "any"
TOML
            SHARDCAST_CMD="taskset -c $SERVER_CORE $SHARDCAST_BIN serve --shards 1 --http 127.0.0.1:$SERVER_PORT --config $dir/shardcast.toml"
            $SHARDCAST_CMD >>"$dir/server.log" 2>&1 &
            ;;
        *) die "unknown server '$server' in SERVERS (use node-ws, uws-ws, tokio-ws and/or shardcast)" ;;
    esac
    SERVER_PID=$!
    STARTED_PIDS+=("$SERVER_PID")
    wait_listening "$SERVER_PORT" "$SERVER_PID" "$server"
}

ws_command() {
    local port=$1 processes=$2
    shift 2
    echo "taskset -c $LOAD_CORE $BENCH_BIN ws --url ws://127.0.0.1:$port/ws --processes $processes --source-addrs $SOURCES $*"
}

workload_args() {
    case "$1" in
        a) echo "--connections 10000 --rooms 1 --senders 20 --rate 200 --duration $DURATION --warmup $WARMUP" ;;
        b) echo "--connections 10000 --rooms 1000 --senders 1000 --rate 1000 --duration $DURATION --warmup $WARMUP" ;;
        ramp) echo "--connections 10000 --rooms 1 --senders 20 --rate $2 --duration $RAMP_DURATION --warmup 1s" ;;
    esac
}

# Runs one load against a fresh SERVER; the report goes to $RUN_DIR/NAME.json.
run_load() {
    local server=$1 name=$2
    shift 2
    start_server "$server"
    local token=""
    [[ "$server" != shardcast ]] || token=$("$SHARDCAST_BIN" token --user bench --room '*' --role viewer --secret "$SECRET")
    local out="$RUN_DIR/$name"
    # The token is passed by value and not echoed in the report.
    $(ws_command "$SERVER_PORT" "$PROCESSES" "$@") --token "$token" --json "$out.json" >"$out.txt" 2>&1 \
        || { stop_pid "$SERVER_PID"; die "load against $server failed: $(tail -n 5 "$out.txt")"; }
    stop_pid "$SERVER_PID"
}

# Idle connections: sets MEASURED to "held rss_before_kib rss_after_kib bytes_per_connection".
measure_idle() {
    local server=$1 round=$2
    start_server "$server"
    sleep 1
    local before after out="$RUN_DIR/idle-$server-r$round"
    before=$(rss_kib "$SERVER_PID")
    : >"$out.txt"
    $(ws_command "$SERVER_PORT" "$IDLE_PROCESSES" --idle --connections "$IDLE_CONNECTIONS" --rooms 1 --duration "$HOLD") \
        --json "$out.json" >"$out.txt" 2>&1 &
    local load=$!
    STARTED_PIDS+=("$load")
    local waited=0
    until grep -q '^ready:' "$out.txt"; do
        kill -0 "$load" 2>/dev/null || die "idle load ended before all connections joined: $(tail -n 5 "$out.txt")"
        sleep 0.2
        waited=$((waited + 1))
        [[ $waited -lt 600 ]] || die "connections not joined after 120 s"
    done
    sleep "$SETTLE"
    after=$(rss_kib "$SERVER_PID")
    wait "$load" || die "idle load failed: $(tail -n 5 "$out.txt")"
    forget_pid "$load"
    stop_pid "$SERVER_PID"
    local held
    held=$(json_field "$out.json" joined)
    held=$((held - $(json_field "$out.json" closed_by_server)))
    [[ $held -gt 0 ]] || die "$server held no connections"
    MEASURED="$held $before $after $(((after - before) * 1024 / held))"
}

median_field() {
    printf '%s' "$1" | awk -v f="$2" 'NF { print $f }' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

main() {
    check_machine
    build_all
    mkdir -p "$RUN_DIR"
    local round server workload
    declare -A idle=()
    declare -gA RAMP_LINES=() RAMP_BESTS=()
    for round in $(seq 1 "$ROUNDS"); do
        for workload in a b; do
            for server in $SERVERS; do
                log "round $round/$ROUNDS: workload $workload on $server"
                run_load "$server" "$workload-$server-r$round" $(workload_args "$workload")
                grep -E '^(deliveries|latency)' "$RUN_DIR/$workload-$server-r$round.txt" | sed 's/^/    /' >&2
            done
        done
        for server in $SERVERS; do
            log "round $round/$ROUNDS: $IDLE_CONNECTIONS idle connections on $server"
            measure_idle "$server" "$round"
            log "    held, RSS before KiB, RSS after KiB, bytes per connection: $MEASURED"
            idle[$server]+="$MEASURED"$'\n'
        done
    done
    for server in $SERVERS; do
        ramp "$server"
        RAMP_BESTS[$server]=$RAMP_BEST
        log "    $server sustains $RAMP_BEST chats/s"
    done
    write_report idle
    log "wrote $OUT"
}

write_report() {
    local -n idle_rows=$1
    local server
    {
        echo "# WebSocket danmaku broadcast: shardcast, Node ws, uWebSockets.js and tokio-tungstenite"
        echo
        echo "Reproduce with \`just bench-ws\` (\`bench/scripts/bench-ws.sh\`; ROUNDS=$ROUNDS, DURATION=$DURATION, WARMUP=$WARMUP)."
        echo
        machine_header
        echo "- load: \`shardcast-bench ws\`, $PROCESSES worker process(es) on core $LOAD_CORE ($IDLE_PROCESSES for workload c), source addresses $SOURCES; each chat's text carries its sender, counter and send time (CLOCK_MONOTONIC µs); latency = receive − send; missing counted after a 1.1 s grace (2 × 50 ms batch + 1 s)"
        echo "- each run starts its server fresh; figures are medians over $ROUNDS round(s)"
        echo
        echo "## Servers"
        echo
        echo '```sh'
        [[ -z "${NODE_CMD:-}" ]] || echo "(cd bench/peers/node-ws && npm ci && $NODE_CMD)    # ws 8, one process; see server.js"
        [[ -z "${UWS_CMD:-}" ]] || echo "(cd bench/peers/uws-ws && npm ci && $UWS_CMD)    # uWebSockets.js v20 (npm uws-pack 20.0.8), app.publish per room; see server.mjs"
        [[ -z "${TOKIO_CMD:-}" ]] || echo "$TOKIO_CMD    # tokio current_thread + tokio-tungstenite, broadcast per room; see src/main.rs" | sed "s#$ROOT/##g"
        [[ -z "${SHARDCAST_CMD:-}" ]] || echo "$SHARDCAST_CMD" | sed -e "s#$ROOT/##g" -e "s#$RUN_DIR#RUN_DIR#g"
        echo '```'
        echo
        if [[ -n "${SHARDCAST_CMD:-}" ]]; then
            echo "shardcast's configuration (\`[danmaku]\` admission opened wide so that it does not shed"
            echo "the benchmark's chats; batching window \`danmaku.batch_ms\` at its default 50 ms; senders"
            echo "use a token from \`shardcast token --user bench --room '*' --role viewer\`, viewers are"
            echo "anonymous):"
            echo
            echo '```toml'
            sed "s/^secret = .*/secret = \"(random per run)\"/" "$RUN_DIR/shardcast/shardcast.toml"
            echo '```'
            echo
        fi
        echo "The peers send one frame per chat to every member (no batching window) and accept any token."
        echo "Both run with their libraries' defaults, as their users would: for tokio-tungstenite this"
        echo "includes a 128 KiB read buffer per connection (\`WebSocketConfig::read_buffer_size\`), which"
        echo "dominates its memory per idle connection (workload c)."
        echo
        echo "## a. 1 room × 10,000 viewers, 20 senders, 200 chats/s"
        echo
        echo '```sh'
        ws_command '$PORT' "$PROCESSES" "$(workload_args a)" '--token $TOKEN' | sed "s#$ROOT/##g"
        echo '```'
        echo
        table_of a
        echo
        ramp_section "1 room × 10,000 viewers, 20 senders"
        echo
        echo "## b. 1,000 rooms × 10 viewers, 1 sender per room, 1 chat/s per room"
        echo
        echo '```sh'
        ws_command '$PORT' "$PROCESSES" "$(workload_args b)" '--token $TOKEN' | sed "s#$ROOT/##g"
        echo '```'
        echo
        table_of b
        echo
        echo "## c. $IDLE_CONNECTIONS idle WebSocket connections"
        echo
        echo '```sh'
        ws_command '$PORT' "$IDLE_PROCESSES" --idle --connections "$IDLE_CONNECTIONS" --rooms 1 --duration "$HOLD" | sed "s#$ROOT/##g"
        echo '```'
        echo
        echo "Each connection upgrades, sends an anonymous \`Hello\`, gets \`Welcome\` and stays idle"
        echo "(answering pings). RSS is the server's \`VmRSS\` 1 s after start and ${SETTLE} s after every"
        echo "connection joined; per connection = (after − before) / connections held."
        echo
        echo "| server | rounds | connections held | RSS before KiB | RSS after KiB | bytes per connection |"
        echo "|---|---:|---:|---:|---:|---:|"
        for server in $SERVERS; do
            echo "| $server | $ROUNDS | $(median_field "${idle_rows[$server]}" 1) | $(median_field "${idle_rows[$server]}" 2) | $(median_field "${idle_rows[$server]}" 3) | $(median_field "${idle_rows[$server]}" 4) |"
        done
        echo
        echo "## Reading the tables"
        echo
        echo "- deliveries/s: first deliveries of chats sent in the measurement window, per second;"
        echo "  expected = viewers of a room × chats sent in it, over the whole send phase (warm-up included)."
        echo "- Ratio rows divide shardcast's figure by the peer's: above 1 is better for deliveries/s,"
        echo "  below 1 is better for latencies."
        echo "- shardcast batches a room's events every 50 ms (\`danmaku.batch_ms\`), so its latency includes"
        echo "  up to one batching window by design; the peers send every chat at once as its own frame."
        echo "- Everything runs on loopback: the kernel copies every byte sent, even for zero-copy sends"
        echo "  (\`send_zc\` falls back to a copy on loopback), so per-byte costs are not those of a NIC."
        echo "- load CPU % in window: the load generator's CPU during the measurement window (all"
        echo "  processes, percent of one core; the load has one core). Near 100 the load generator, not"
        echo "  the server, may limit the figures, and latencies then include its queueing."
        echo "- The ramp runs each rate once (4 s measured): on this shared machine a single slow"
        echo "  moment can decide a step; read it as an indication, the tables above as the measurement."
        echo "- errors: failed connects, upgrades and joins, server closes and protocol errors; server"
        echo "  errors: \`Error\` messages (for example 429) received."
    } >"$OUT"
}

main "$@"
