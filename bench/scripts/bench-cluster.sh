#!/usr/bin/env bash
# Danmaku fan-out across hosts: two shardcast processes sharing rooms through one Redis,
# against two Node processes running Socket.IO 4 with @socket.io/redis-adapter
# (bench/peers/socketio-redis), the same workload on the same cores.
#
# Layout: Redis and both hosts of a run pinned to core 0; the load generator pinned to core
# 1 (one process, source addresses 127.0.0.2-127.0.0.9). Connection i goes to host
# (i / rooms) mod 2, so every room has half its members on each host; the senders are on
# host A, so every chat crosses Redis to reach host B's half.
#
# Workloads (servers and Redis started fresh for each run):
#   a. 1 room x 10,000 viewers (5,000 per host), 20 senders, at RATE_A chats/s;
#   b. 100 rooms x 100 viewers (50 per host), one sender per room, 1 chat/s per room;
#   ramp: workload a at increasing rates per server: the highest rate with nothing missing
#      and p99 under 1 s, and shardcast's p99 at the peer's highest rate;
#   sizes: one room at SIZE_RATE chats/s with SIZES viewers: how latency grows with the
#      fan-out of one chat (every viewer's frame is sent by core 0 and read by core 1).
#
# Redis runs without persistence for both (`--appendonly no`): the Socket.IO adapter only
# publishes, and shardcast's chat relay needs no fsync. shardcast is told so with
# `state.redis_require_fsync = false` (that check protects the gift ledger, which this
# benchmark does not use). Run with `just bench-cluster`; writes bench/results/state.md's
# companion bench/results/cluster.md. Raw reports and logs stay in bench/results/tmp/.
#
# Environment:
#   ROUNDS=1   SERVERS="socketio-redis shardcast"   (shardcast last: ratio rows are shardcast/peer)
#   DURATION=10s WARMUP=2s RATE_A=200
#   RAMP_RATES="1 2 5 10 25 50 100 200 400"   RAMP_DURATION=4s
#   SIZES="1000 2500 5000 10000"   SIZE_RATE=5
#   WORKLOADS="a b ramp sizes"     which parts to run (the report shows those run)
#   OUT=bench/results/cluster.md
#   PORT_A=19011 PORT_B=19012 REDIS_PORT=19013
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${ROUNDS:-1}
SERVERS=${SERVERS:-socketio-redis shardcast}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
RATE_A=${RATE_A:-200}
RAMP_RATES=${RAMP_RATES:-1 2 5 10 25 50 100 200 400}
RAMP_DURATION=${RAMP_DURATION:-4s}
SIZES=${SIZES:-1000 2500 5000 10000}
SIZE_RATE=${SIZE_RATE:-5}
WORKLOADS=${WORKLOADS:-a b ramp sizes}
PORT_A=${PORT_A:-19011}
PORT_B=${PORT_B:-19012}
REDIS_PORT=${REDIS_PORT:-19013}
OUT=${OUT:-"$ROOT/bench/results/cluster.md"}
RUN_DIR="$ROOT/bench/results/tmp/cluster-$(date +%Y%m%d-%H%M%S)"
SOURCES=127.0.0.2-127.0.0.9
RAMP_P99_MAX_US=1000000
SECRET="bench-cluster-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PEER_DIR="$ROOT/bench/peers/socketio-redis"

trap stop_started EXIT
trap 'exit 130' INT TERM

build_all() {
    cd "$ROOT"
    command -v redis-server >/dev/null || die "redis-server is missing (scripts/setup.sh installs it)"
    log "building shardcast and shardcast-bench (release)"
    cargo build --release -p shardcast -p shardcast-bench || die "release build failed"
    if [[ " $SERVERS " == *" socketio-redis "* ]]; then
        command -v node >/dev/null || die "node is missing (scripts/setup.sh installs nodejs and npm)"
        log "installing the socketio-redis peer (npm ci)"
        (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error) \
            || die "npm ci in bench/peers/socketio-redis failed"
    fi
}

start_redis() {
    local dir="$RUN_DIR/redis"
    mkdir -p "$dir"
    REDIS_CMD="taskset -c $SERVER_CORE redis-server --port $REDIS_PORT --bind 127.0.0.1 --appendonly no --save '' --daemonize no"
    taskset -c "$SERVER_CORE" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" \
        --appendonly no --save "" --daemonize no >>"$dir/redis.log" 2>&1 &
    REDIS_PID=$!
    STARTED_PIDS+=("$REDIS_PID")
    wait_listening "$REDIS_PORT" "$REDIS_PID" redis-server
}

# Starts Redis and both hosts of SERVER; sets HOST_PIDS and the URL path.
start_hosts() {
    local server=$1 dir="$RUN_DIR/$1" host port
    mkdir -p "$dir"
    start_redis
    HOST_PIDS=()
    for host in a b; do
        port=$PORT_A
        [[ "$host" == a ]] || port=$PORT_B
        case "$server" in
            socketio-redis)
                URL_PATH="/socket.io/?EIO=4&transport=websocket"
                PEER_CMD="taskset -c $SERVER_CORE node server.mjs PORT redis://127.0.0.1:$REDIS_PORT"
                (cd "$PEER_DIR" && exec taskset -c "$SERVER_CORE" node server.mjs "$port" "redis://127.0.0.1:$REDIS_PORT") \
                    >>"$dir/$host.log" 2>&1 &
                ;;
            shardcast)
                URL_PATH="/ws"
                cat >"$dir/$host.toml" <<TOML
[shards]
cores = [$SERVER_CORE]

[auth]
secret = "$SECRET"

[state]
data_dir = "$dir/data-$host"
redis = "redis://127.0.0.1:$REDIS_PORT"
# This Redis keeps no AOF (see the script's header); the ledger is not used here.
redis_require_fsync = false

# Admission set wide open so that the server does not shed the benchmark's load.
[danmaku]
chat_rate_per_s = 1000
chat_burst = 1000
room_inbound_max_per_s = 100000
# The load generator's readers are anonymous and make their rooms (no stream is live).
anonymous_rooms = "any"
TOML
                SHARDCAST_CMD="taskset -c $SERVER_CORE $SHARDCAST_BIN serve --shards 1 --http 127.0.0.1:PORT --config HOST.toml"
                taskset -c "$SERVER_CORE" "$SHARDCAST_BIN" serve --shards 1 --http "127.0.0.1:$port" \
                    --rtmp "127.0.0.1:0" --config "$dir/$host.toml" >>"$dir/$host.log" 2>&1 &
                ;;
            *) die "unknown server '$server' in SERVERS (use socketio-redis and/or shardcast)" ;;
        esac
        HOST_PIDS+=("$!")
        STARTED_PIDS+=("$!")
        wait_listening "$port" "$!" "$server host $host"
    done
}

stop_hosts() {
    local pid
    for pid in "${HOST_PIDS[@]}" "$REDIS_PID"; do
        stop_pid "$pid"
    done
}

ws_command() {
    local path=$1 protocol=$2
    shift 2
    echo "taskset -c $LOAD_CORE $BENCH_BIN ws --protocol $protocol --url ws://127.0.0.1:$PORT_A$path --url ws://127.0.0.1:$PORT_B$path --processes 1 --source-addrs $SOURCES $*"
}

workload_args() {
    case "$1" in
        a) echo "--connections 10000 --rooms 1 --senders 20 --rate $RATE_A --duration $DURATION --warmup $WARMUP" ;;
        b) echo "--connections 10000 --rooms 100 --senders 100 --rate 100 --duration $DURATION --warmup $WARMUP" ;;
        ramp) echo "--connections 10000 --rooms 1 --senders 20 --rate $2 --duration $RAMP_DURATION --warmup 1s" ;;
        size) echo "--connections $2 --rooms 1 --senders 20 --rate $SIZE_RATE --duration $RAMP_DURATION --warmup 1s" ;;
    esac
}

# Whether WORKLOADS names PART.
runs() {
    [[ " $WORKLOADS " == *" $1 "* ]]
}

# The sizes table: p50, p99 and missing per server and room size.
sizes_table() {
    local server size json
    echo "| server | viewers | p50 µs | p99 µs | missing | load CPU % in window |"
    echo "|---|---:|---:|---:|---:|---:|"
    for server in $SERVERS; do
        for size in $SIZES; do
            json="$RUN_DIR/size-$server-$size.json"
            [[ -f "$json" ]] || continue
            printf '| %s | %s | %.0f | %.0f | %s | %.0f |\n' "$server" "$size" \
                "$(json_field "$json" p50)" "$(json_field "$json" p99)" \
                "$(json_field "$json" missing)" "$(json_field "$json" client_cpu_percent_window)"
        done
    done
}

protocol_of() {
    [[ "$1" == shardcast ]] && echo shardcast || echo socketio
}

# Runs one load against fresh hosts of SERVER; the report goes to $RUN_DIR/NAME.json.
run_load() {
    local server=$1 name=$2
    shift 2
    start_hosts "$server"
    local token=""
    [[ "$server" != shardcast ]] || token=$("$SHARDCAST_BIN" token --user bench --room '*' --role viewer --secret "$SECRET")
    local out="$RUN_DIR/$name"
    # The URL holds `&`: the command is run as an array, never through a shell.
    local command
    read -r -a command <<<"$(ws_command "$URL_PATH" "$(protocol_of "$server")" "$@")"
    "${command[@]}" --token "$token" --json "$out.json" >"$out.txt" 2>&1 \
        || { stop_hosts; die "load against $server failed: $(tail -n 5 "$out.txt")"; }
    stop_hosts
}

main() {
    check_machine
    build_all
    mkdir -p "$RUN_DIR"
    local round server workload
    declare -gA RAMP_LINES=() RAMP_BESTS=()
    for round in $(seq 1 "$ROUNDS"); do
        for workload in a b; do
            runs "$workload" || continue
            for server in $SERVERS; do
                log "round $round/$ROUNDS: workload $workload on $server"
                run_load "$server" "$workload-$server-r$round" $(workload_args "$workload")
                grep -E '^(deliveries|latency|missing)' "$RUN_DIR/$workload-$server-r$round.txt" | sed 's/^/    /' >&2 || true
            done
        done
    done
    if runs ramp; then
        for server in $SERVERS; do
            ramp "$server"
            RAMP_BESTS[$server]=$RAMP_BEST
            log "    $server sustains $RAMP_BEST chats/s"
        done
    fi
    if runs sizes; then
        local size
        for server in $SERVERS; do
            for size in $SIZES; do
                log "sizes: $server, one room of $size viewers at $SIZE_RATE chats/s"
                run_load "$server" "size-$server-$size" $(workload_args size "$size")
            done
        done
    fi
    write_report
    log "wrote $OUT"
}

write_report() {
    local server
    {
        echo "# Danmaku fan-out across hosts: shardcast + Redis and Socket.IO + Redis adapter"
        echo
        echo "Reproduce with \`just bench-cluster\` (\`bench/scripts/bench-cluster.sh\`; ROUNDS=$ROUNDS, DURATION=$DURATION, WARMUP=$WARMUP)."
        echo
        machine_header
        echo "- both hosts of a pair and their Redis share core $SERVER_CORE; connection i goes to host (i / rooms) mod 2, so every room has half its viewers on each host, and the senders are all on host A: every chat reaches host B's half through Redis"
        echo "- load: \`shardcast-bench ws\` with two \`--url\`s, 1 process on core $LOAD_CORE, source addresses $SOURCES; latency = receive − send (CLOCK_MONOTONIC µs in the chat text); missing counted after a 1.1 s grace"
        echo "- each run starts Redis and both hosts fresh; figures are medians over $ROUNDS round(s)"
        echo
        echo "## Servers"
        echo
        echo '```sh'
        echo "$REDIS_CMD"
        [[ -z "${PEER_CMD:-}" ]] || echo "(cd bench/peers/socketio-redis && npm ci && $PEER_CMD)    # × 2 hosts; socket.io 4.8.4, @socket.io/redis-adapter 8.3.0, redis 4.7.1; see server.mjs"
        [[ -z "${SHARDCAST_CMD:-}" ]] || echo "$SHARDCAST_CMD    # × 2 hosts" | sed "s#$ROOT/##g"
        echo '```'
        echo
        if [[ -n "${SHARDCAST_CMD:-}" ]]; then
            echo "shardcast's configuration (host A; B differs only in \`data_dir\`):"
            echo
            echo '```toml'
            sed -e "s/^secret = .*/secret = \"(random per run)\"/" -e "s#$RUN_DIR#RUN_DIR#g" "$RUN_DIR/shardcast/a.toml"
            echo '```'
            echo
        fi
        echo "Socket.IO sends every chat at once to the room on each host (\`io.to(room).emit\`, one"
        echo "Redis PUBLISH per chat, JSON text frames, no sequence numbers); shardcast orders each room"
        echo "on its home host, publishes each 50 ms batch once to Redis (one Lua script: seq, XADD,"
        echo "PUBLISH), and every host that has members encodes it once per shard."
        echo
        if runs a; then
            echo "## a. 1 room × 10,000 viewers (5,000 per host), 20 senders, $RATE_A chats/s"
            echo
            echo '```sh'
            ws_command '$URL_PATH' '$PROTOCOL' "$(workload_args a)" '--token $TOKEN' | sed "s#$ROOT/##g"
            echo '```'
            echo
            table_of a
            echo
        fi
        if runs ramp; then
            ramp_section "workload a's shape"
            echo
        fi
        if runs b; then
            echo "## b. 100 rooms × 100 viewers (50 per host), 1 sender per room, 1 chat/s per room"
            echo
            echo '```sh'
            ws_command '$URL_PATH' '$PROTOCOL' "$(workload_args b)" '--token $TOKEN' | sed "s#$ROOT/##g"
            echo '```'
            echo
            table_of b
            echo
        fi
        if runs sizes; then
            echo "## Latency against room size: one room at $SIZE_RATE chats/s, half its viewers on each host"
            echo
            echo "Every chat is one frame per viewer: core $SERVER_CORE writes them all (both hosts and Redis"
            echo "share it) and core $LOAD_CORE reads them all, so the last viewer's latency grows with the"
            echo "room. ($RAMP_DURATION each after 1 s of warm-up.)"
            echo
            echo '```sh'
            ws_command '$URL_PATH' '$PROTOCOL' "$(workload_args size N)" '--token $TOKEN' | sed "s#$ROOT/##g"
            echo '```'
            echo
            sizes_table
            echo
        fi
        echo "## Reading the tables"
        echo
        echo "- deliveries/s: first deliveries of chats sent in the measurement window, per second;"
        echo "  expected = viewers of a room × chats sent in it, over the whole send phase."
        echo "- Ratio rows divide shardcast's figure by the peer's: above 1 is better for deliveries/s,"
        echo "  below 1 is better for latencies."
        echo "- shardcast's latency includes up to one batching window (\`danmaku.batch_ms\`, 50 ms) by design."
        echo "- Three server processes share one core here, and the load generator has one core: near"
        echo "  100 % load CPU the generator, not the servers, limits the figures."
    } >"$OUT"
}

main "$@"
