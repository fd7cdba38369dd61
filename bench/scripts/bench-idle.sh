#!/usr/bin/env bash
# Server memory per idle connection, shardcast against nginx, one server core each.
#
# For each server: start it, read its RSS, hold CONNECTIONS idle connections (each served
# one GET /healthz first) from two load processes on separate source addresses, read the RSS
# again at steady state, and report (RSS after - RSS before) / connections held. For nginx
# the RSS is the worker's (the master does not hold connections).
#
# Run with `just bench-idle` (or directly). Writes bench/results/idle.md.
#
# Environment:
#   CONNECTIONS=19000   idle connections in total (split over two processes, <= 10k per source address)
#   HOLD=30s            how long each hold process keeps its connections (ramp included)
#   RAMP=5000           new connections per second per hold process
#   SETTLE=3            seconds between "all connections ready" and the RSS reading
#   ROUNDS=1            rounds per server (median reported)
#   SERVERS="nginx shardcast"   the first is the ratio baseline
#   NGINX_PORT=18080 SHARDCAST_PORT=18081
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CONNECTIONS=${CONNECTIONS:-19000}
HOLD=${HOLD:-30s}
RAMP=${RAMP:-5000}
SETTLE=${SETTLE:-3}
ROUNDS=${ROUNDS:-1}
SERVERS=${SERVERS:-nginx shardcast}
NGINX_PORT=${NGINX_PORT:-18080}
SHARDCAST_PORT=${SHARDCAST_PORT:-18081}
OUT="$ROOT/bench/results/idle.md"
RUN_DIR="$ROOT/bench/results/tmp/idle-$(date +%Y%m%d-%H%M%S)"
SOURCES=(127.0.0.2-127.0.0.3 127.0.0.4-127.0.0.5)

trap stop_started EXIT
trap 'exit 130' INT TERM

hold_command() {
    local port=$1 sources=$2 count=$3
    echo "taskset -c $LOAD_CORE $BENCH_BIN hold --target 127.0.0.1:$port --connections $count --source-addrs $sources --duration $HOLD --ramp-per-sec $RAMP --request-first"
}

# Sets MEASURED to: held rss_before_kib rss_after_kib bytes_per_connection. Runs in the
# main shell (not a subshell) so the processes it starts stay known to the EXIT trap.
measure() {
    local server=$1 round=$2 port pid rss_pid
    case "$server" in
        nginx)
            port=$NGINX_PORT
            start_nginx "$port"
            pid=$NGINX_PID
            rss_pid=$(pgrep -P "$NGINX_PID" | head -n 1)
            [[ -n "$rss_pid" ]] || die "nginx worker not found"
            ;;
        shardcast)
            port=$SHARDCAST_PORT
            start_shardcast "$port"
            pid=$SHARDCAST_PID
            rss_pid=$SHARDCAST_PID
            ;;
        *) die "unknown server '$server' in SERVERS (use nginx and/or shardcast)" ;;
    esac
    sleep 1
    local before
    before=$(rss_kib "$rss_pid")

    local half=$((CONNECTIONS / 2)) holds=() i outputs=()
    for i in 0 1; do
        local count=$half
        [[ $i -eq 0 ]] || count=$((CONNECTIONS - half))
        local out="$RUN_DIR/hold-$server-r$round-$i"
        outputs+=("$out")
        : >"$out.txt"
        $(hold_command "$port" "${SOURCES[$i]}" "$count") --json "$out.json" >"$out.txt" 2>&1 &
        holds+=($!)
        STARTED_PIDS+=($!)
    done

    # Wait for both "ready:" lines (every connection attempted and, with a request, served).
    local waited=0
    until grep -q '^ready:' "${outputs[0]}.txt" && grep -q '^ready:' "${outputs[1]}.txt"; do
        for i in 0 1; do
            kill -0 "${holds[$i]}" 2>/dev/null || die "hold process ended before all connections were ready: $(cat "${outputs[$i]}.txt")"
        done
        sleep 0.2
        waited=$((waited + 1))
        [[ $waited -lt 600 ]] || die "connections not ready after 120 s"
    done
    sleep "$SETTLE"
    local after
    after=$(rss_kib "$rss_pid")
    for i in 0 1; do
        wait "${holds[$i]}" || die "hold process failed: $(cat "${outputs[$i]}.txt")"
        forget_pid "${holds[$i]}"
    done
    stop_pid "$pid"

    local held=0 n
    for i in 0 1; do
        n=$(sed -n 's/^  "held": \([0-9]*\),$/\1/p' "${outputs[$i]}.json")
        held=$((held + n))
    done
    [[ $held -gt 0 ]] || die "$server held no connections"
    MEASURED="$held $before $after $(((after - before) * 1024 / held))"
}

main() {
    check_machine
    [[ " $SERVERS " != *" nginx "* ]] || ensure_nginx
    build_release
    mkdir -p "$RUN_DIR"
    make_bodies
    local server round
    declare -A results=()
    for round in $(seq 1 "$ROUNDS"); do
        for server in $SERVERS; do
            log "round $round/$ROUNDS: $server with $CONNECTIONS idle connections"
            measure "$server" "$round"
            log "    held, RSS before KiB, RSS after KiB, bytes per connection: $MEASURED"
            results[$server]+="$MEASURED"$'\n'
        done
    done
    write_report results
    log "wrote $OUT"
}

median_field() {
    # Median of field $2 over the lines in $1.
    printf '%s' "$1" | awk -v f="$2" 'NF { print $f }' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

write_report() {
    local -n rows=$1
    local server baseline_bytes=""
    {
        echo "# Server memory per idle connection: shardcast and nginx"
        echo
        echo "Reproduce with \`just bench-idle\` (\`bench/scripts/bench-idle.sh\`; CONNECTIONS=$CONNECTIONS, ROUNDS=$ROUNDS)."
        echo
        machine_header
        echo "- workload: $CONNECTIONS connections from two \`hold\` processes (source addresses ${SOURCES[*]}), each connection served one \`GET /healthz\`, then idle"
        echo "- RSS: \`VmRSS\` of the serving process (nginx: its single worker) 1 s after start and ${SETTLE} s after every connection was ready; per connection = (after - before) / connections held"
        echo
        echo '```sh'
        [[ -z "${NGINX_CMD:-}" ]] || echo "$NGINX_CMD    # config: bench/peers/nginx-http.conf" | sed "s#$ROOT/##g"
        [[ -z "${SHARDCAST_CMD:-}" ]] || echo "$SHARDCAST_CMD" | sed "s#$ROOT/##g"
        local i
        for i in 0 1; do
            hold_command '$PORT' "${SOURCES[$i]}" "$((i == 0 ? CONNECTIONS / 2 : CONNECTIONS - CONNECTIONS / 2))" | sed "s#$ROOT/##g"
        done
        echo '```'
        echo
        echo "| server | rounds | connections held | RSS before KiB | RSS after KiB | bytes per connection | ratio | whole RSS per connection |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        for server in $SERVERS; do
            local held before after bytes ratio="1.00x"
            held=$(median_field "${rows[$server]}" 1)
            before=$(median_field "${rows[$server]}" 2)
            after=$(median_field "${rows[$server]}" 3)
            bytes=$(median_field "${rows[$server]}" 4)
            if [[ -z "$baseline_bytes" ]]; then
                baseline_bytes=$bytes
            elif [[ "$baseline_bytes" -gt 0 ]]; then
                ratio=$(awk -v a="$bytes" -v b="$baseline_bytes" 'BEGIN { printf "%.2fx", a / b }')
            else
                ratio="n/a"
            fi
            local whole
            whole=$(awk -v a="$after" -v n="$held" 'BEGIN { if (n > 0) printf "%d", a * 1024 / n; else print "n/a" }')
            echo "| $server | $ROUNDS | $held | $before | $after | $bytes | $ratio | $whole |"
        done
        echo
        echo "The ratio divides by the first server's bytes per connection (below 1 is better)."
        echo "Kernel socket memory is not in RSS and is the same for both servers."
        echo "\"whole RSS per connection\" divides the entire RSS after by the connections held: it"
        echo "counts everything allocated at start as well (for shardcast: the shard's connection tables"
        echo "sized for http.max_connections_per_shard and its 16 MiB receive buffer pool)."
    } >"$OUT"
}

main "$@"
