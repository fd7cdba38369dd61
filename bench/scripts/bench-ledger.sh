#!/usr/bin/env bash
# Durable gifts through the server: `just bench-ledger` (or `bench/scripts/bench-ledger.sh`).
#
# For each backend (the embedded ledger on redb under a data dir on this repository's disk,
# and Redis with appendonly yes + appendfsync always, its AOF on the same disk) it starts
# shardcast (one shard, core 0; Redis unpinned), and for each rate in RATES runs
# `shardcast-bench gifts` on core 1: 16 clients, open loop, ack latency from each gift's
# scheduled send time. Beside each row: ledger writes per second from the server's
# `shardcast_state_ledger_batches_total` (on redb one write is one fsync; on Redis one script,
# and Redis fsyncs once per event-loop pass that wrote). Writes bench/results/ledger.md.
#
# Beside each row: the CPU (percent of one core, over the whole gifts run) of the server's
# shard thread, its ledger thread and the load generator, so a row says what limited it.
#
# Environment: RATES="5000 20000 50000" SECS=10 REDIS_PORT=16390 BACKENDS="embedded redis"
#   OUT=bench/results/ledger.md
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RATES=${RATES:-5000 20000 50000}
SECS=${SECS:-10}
REDIS_PORT=${REDIS_PORT:-16390}
PORT=${SHARDCAST_PORT:-18096}
SECRET="bench-ledger-secret-0123456789abcdef0123"
SERVERS=shardcast
BACKENDS=${BACKENDS:-embedded redis}
OUT=${OUT:-"$ROOT/bench/results/ledger.md"}
RUN_DIR="$ROOT/bench/results/tmp/ledger-$(date +%Y%m%d-%H%M%S)"

trap stop_started EXIT
trap 'exit 130' INT TERM

build_release
mkdir -p "$RUN_DIR"

metric() {
    curl -fsS "http://127.0.0.1:$PORT/metrics" | awk -v name="$1" '$1 == name { print $2 }'
}

start_server() {
    local backend=$1 dir="$RUN_DIR/$1"
    mkdir -p "$dir"
    {
        echo "[shards]"
        echo "cores = [$SERVER_CORE]"
        echo "[auth]"
        echo "secret = \"$SECRET\""
        echo "[danmaku]"
        echo "gift_rate_per_s = 100000"
        echo "gift_burst = 100000"
        echo "room_gift_max_per_s = 1000000"
        echo "[transcode]"
        echo "enabled = false"
        echo "[state]"
        echo "data_dir = \"$dir/data\""
        if [[ "$backend" == redis ]]; then
            echo "redis = \"redis://127.0.0.1:$REDIS_PORT\""
        fi
    } >"$dir/shardcast.toml"
    taskset -c "$SERVER_CORE" "$SHARDCAST_BIN" serve --shards 1 --http "127.0.0.1:$PORT" --rtmp "" \
        --config "$dir/shardcast.toml" >"$dir/stdout.log" 2>&1 &
    SHARDCAST_PID=$!
    STARTED_PIDS+=("$SHARDCAST_PID")
    wait_listening "$PORT" "$SHARDCAST_PID" shardcast
}

start_redis() {
    local dir="$RUN_DIR/redis"
    mkdir -p "$dir"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
        --appendfsync always --save "" --daemonize no >"$dir/redis.log" 2>&1 &
    REDIS_PID=$!
    STARTED_PIDS+=("$REDIS_PID")
    wait_listening "$REDIS_PORT" "$REDIS_PID" redis-server
}

# thread_ticks PID: "name ticks" per thread name of PID (user + system, summed over threads
# of one name).
thread_ticks() {
    local f
    for f in /proc/"$1"/task/*/stat; do
        sed -E 's/^[0-9]+ \((.*)\) (.*)$/\1|\2/' "$f" 2>/dev/null || true
    done | awk -F'|' '{ split($2, a, " "); t[$1] += a[12] + a[13] } END { for (n in t) print n, t[n] }'
}

# busy_percent BEFORE AFTER NAME SECONDS: NAME's share of one core between two thread_ticks.
busy_percent() {
    awk -v name="$3" -v secs="$4" -v hz="$(getconf CLK_TCK)" '
        FNR == NR { if ($1 == name) b = $2; next }
        $1 == name { a = $2 }
        END { printf "%.0f", (a - b) / hz / secs * 100 }' <(echo "$1") <(echo "$2")
}

rows=()
for backend in $BACKENDS; do
    [[ "$backend" == redis ]] && start_redis
    start_server "$backend"
    for rate in $RATES; do
        before=$(metric shardcast_state_ledger_batches_total)
        json="$RUN_DIR/$backend-$rate.json"
        ticks_before=$(thread_ticks "$SHARDCAST_PID")
        started=$(date +%s.%N)
        TIMEFORMAT='%U %S'
        { time taskset -c "$LOAD_CORE" "$BENCH_BIN" gifts --http "127.0.0.1:$PORT" --secret "$SECRET" \
            --shardcast "$SHARDCAST_BIN" --rate "$rate" --duration "${SECS}s" --warmup 2s \
            --json "$json" >"$RUN_DIR/$backend-$rate.txt" 2>"$RUN_DIR/$backend-$rate.err" ; } \
            2>"$RUN_DIR/$backend-$rate.time"
        cat "$RUN_DIR/$backend-$rate.txt"
        wall=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
        ticks_after=$(thread_ticks "$SHARDCAST_PID")
        shard_cpu=$(busy_percent "$ticks_before" "$ticks_after" shard-0 "$wall")
        ledger_cpu=$(busy_percent "$ticks_before" "$ticks_after" ledger "$wall")
        load_cpu=$(awk -v w="$wall" '{ printf "%.0f", ($1 + $2) / w * 100 }' "$RUN_DIR/$backend-$rate.time")
        after=$(metric shardcast_state_ledger_batches_total)
        # The batches counted cover the warm-up and the drain too: per second of the whole run.
        writes=$(( (after - before) / (SECS + 2) ))
        rows+=("$(python3 - "$json" "$backend" "$rate" "$writes" "$shard_cpu" "$ledger_cpu" "$load_cpu" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
refused = sum(r["refused"].values())
print(f"| {sys.argv[2]} | {int(sys.argv[3]):,} | {r['acked_per_s']:,.0f} | {r['ack_p50_ms']:.2f} | "
      f"{r['ack_p99_ms']:.2f} | {r['ack_p999_ms']:.2f} | {r['ack_max_ms']:.1f} | {refused} | "
      f"{r['unanswered']} | {int(sys.argv[4]):,} | {sys.argv[5]} | {sys.argv[6]} | {sys.argv[7]} |")
PY
)")
    done
    stop_started
done

{
    echo "# Ledger: durable gifts through the server"
    echo
    echo "\`just bench-ledger\`: each backend serves one shard on core $SERVER_CORE; \`shardcast-bench gifts\`"
    echo "runs 16 clients on core $LOAD_CORE, each with its own funded wallet, sending one-unit gifts to"
    echo "one room on a fixed schedule (open loop). Ack latency runs from a gift's scheduled send time"
    echo "to its GiftAck being read; ${SECS} s measured after 2 s warm-up. *writes/s* is the ledger's"
    echo "batches per second (\`shardcast_state_ledger_batches_total\`): on redb each is one"
    echo "transaction and one fsync; on Redis one Lua script (Redis with \`appendfsync always\`"
    echo "fsyncs the AOF once per event-loop pass that wrote, before answering)."
    echo
    machine_header
    echo "- disk: $(df -T "$RUN_DIR" | awk 'NR==2 {print $1, $2}')"
    echo
    echo "| backend | target/s | acked/s | ack p50 ms | p99 | p99.9 | max | refused | unanswered | writes/s | shard CPU % | ledger CPU % | load CPU % |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "The disk's own limit (a plain write + fdatasync loop on the same disk) is in state.md, §1."
    echo
    echo "*CPU %*: share of one core over the whole gifts run (connect, warm-up, measurement and"
    echo "drain): the server's shard thread (\`shard-0\`) and ledger thread (\`ledger\`), which share"
    echo "core $SERVER_CORE, and the load generator on core $LOAD_CORE. Redis is not pinned."
    echo
    echo "*unanswered*: gifts sent but not acknowledged when the run ended (past the server's"
    echo "capacity); the run does not wait for them, so they are backlog at the end, not counted losses."
} >"$OUT"
log "wrote $OUT"
