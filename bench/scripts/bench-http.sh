#!/usr/bin/env bash
# HTTP static serving, shardcast against nginx, on one server core each.
#
# Run with `just bench-http` (or directly). Writes bench/results/http.md; the raw JSON
# reports of every run stay in bench/results/tmp/http-<time>/.
#
# Environment:
#   ROUNDS=3           rounds per server and workload (servers alternate; medians reported)
#   DURATION=10s       measurement window per run
#   WARMUP=2s          load before each window
#   SERVERS="nginx shardcast"   which servers to run; the first is the ratio baseline
#   NGINX_PORT=18080 SHARDCAST_PORT=18081
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SERVERS=${SERVERS:-nginx shardcast}
NGINX_PORT=${NGINX_PORT:-18080}
SHARDCAST_PORT=${SHARDCAST_PORT:-18081}
OUT="$ROOT/bench/results/http.md"
RUN_DIR="$ROOT/bench/results/tmp/http-$(date +%Y%m%d-%H%M%S)"

# name | file | body bytes | load options
WORKLOADS=(
    "200 B, 64 connections, pipeline 1|200b.bin|200|--connections 64 --pipeline 1"
    "200 B, 64 connections, pipeline 16|200b.bin|200|--connections 64 --pipeline 16"
    "1 MiB, 16 connections, pipeline 1|1m.bin|1048576|--connections 16 --pipeline 1"
)

trap stop_started EXIT
trap 'exit 130' INT TERM

port_of() {
    case "$1" in
        nginx) echo "$NGINX_PORT" ;;
        shardcast) echo "$SHARDCAST_PORT" ;;
        *) die "unknown server '$1' in SERVERS (use nginx and/or shardcast)" ;;
    esac
}

load_command() {
    local port=$1 workload=$2 json=$3
    local name file bytes options
    IFS='|' read -r name file bytes options <<<"$workload"
    echo "taskset -c $LOAD_CORE $BENCH_BIN http --url http://127.0.0.1:$port/static/$file $options --duration $DURATION --warmup $WARMUP --expect-body-bytes $bytes --json $json"
}

# A short run that must complete requests without errors before the real rounds.
check_server() {
    local server=$1 port=$2 json="$RUN_DIR/check-$1.json"
    taskset -c "$LOAD_CORE" "$BENCH_BIN" http --url "http://127.0.0.1:$port/static/200b.bin" \
        --connections 2 --duration 300ms --warmup 0s --expect-body-bytes 200 --json "$json" \
        >"$RUN_DIR/check-$server.txt" || die "load generator failed against $server"
    grep -q '"errors_total": 0,' "$json" && ! grep -q '"requests": 0,' "$json" \
        || die "$server does not serve /static/200b.bin correctly: $(cat "$RUN_DIR/check-$server.txt")"
}

main() {
    check_machine
    for server in $SERVERS; do
        port_of "$server" >/dev/null
        if (exec 3<>"/dev/tcp/127.0.0.1/$(port_of "$server")") 2>/dev/null; then
            die "port $(port_of "$server") is already in use"
        fi
    done
    [[ " $SERVERS " != *" nginx "* ]] || ensure_nginx
    build_release
    mkdir -p "$RUN_DIR"
    make_bodies

    local server
    for server in $SERVERS; do
        case "$server" in
            nginx) start_nginx "$NGINX_PORT" ;;
            shardcast) start_shardcast "$SHARDCAST_PORT" ;;
        esac
        check_server "$server" "$(port_of "$server")"
        log "$server is up on 127.0.0.1:$(port_of "$server")"
    done

    local round index order
    read -r -a order <<<"$SERVERS"
    for round in $(seq 1 "$ROUNDS"); do
        for index in "${!WORKLOADS[@]}"; do
            for server in "${order[@]}"; do
                local json="$RUN_DIR/w$index-$server-r$round.json"
                log "round $round/$ROUNDS, ${WORKLOADS[$index]%%|*}, $server"
                # Both cores' busy time over the middle of the window.
                (sleep $(( ${WARMUP%s} + 1 )); cores_busy $(( ${DURATION%s} - 2 )) >"${json%.json}.cores") &
                local sampler=$!
                $(load_command "$(port_of "$server")" "${WORKLOADS[$index]}" "$json") \
                    >"${json%.json}.txt" || die "load run failed (see ${json%.json}.txt)"
                wait "$sampler" || true
                grep -E 'req/s|latency|errors' "${json%.json}.txt" | sed 's/^/    /' >&2
                log "    busy: server core, load core (%): $(cat "${json%.json}.cores")"
            done
            # Alternate which server goes first from one workload and round to the next.
            order=("${order[@]:1}" "${order[0]}")
        done
    done
    write_report
    log "wrote $OUT"
}

write_report() {
    {
        echo "# HTTP static serving: shardcast and nginx"
        echo
        echo "Reproduce with \`just bench-http\` (\`bench/scripts/bench-http.sh\`; ROUNDS=$ROUNDS)."
        echo
        machine_header
        echo "- rounds: $ROUNDS per server and workload, servers alternating; every figure is the median over the rounds"
        echo "- each run: $WARMUP warm-up, then $DURATION measured; closed loop (a new request as soon as a response frees a slot)"
        echo "- bodies: \`$BODIES\` (tmpfs): \`200b.bin\` (200 bytes), \`1m.bin\` (1 MiB)"
        echo
        echo "Servers:"
        echo
        echo '```sh'
        [[ -z "${NGINX_CMD:-}" ]] || echo "$NGINX_CMD    # config: bench/peers/nginx-http.conf" | sed "s#$ROOT/##g"
        [[ -z "${SHARDCAST_CMD:-}" ]] || {
            echo "$SHARDCAST_CMD" | sed "s#$ROOT/##g"
            echo "# $(tr '\n' ' ' <"$RUN_DIR/shardcast/shardcast.toml")"
        }
        echo '```'
        echo
        echo "Load (PORT is the server's):"
        echo
        echo '```sh'
        local workload
        for workload in "${WORKLOADS[@]}"; do
            load_command PORT "$workload" FILE.json | sed "s#$ROOT/##; s#127.0.0.1:PORT#127.0.0.1:\$PORT#"
        done
        echo '```'
        local index server
        for index in "${!WORKLOADS[@]}"; do
            echo
            echo "## ${WORKLOADS[$index]%%|*}"
            echo
            local args=()
            for server in $SERVERS; do
                local files
                files=$(ls "$RUN_DIR"/w"$index"-"$server"-r*.json | paste -sd, -)
                args+=(--server "$server=$files")
            done
            "$BENCH_BIN" table "${args[@]}"
            echo
            echo "| server | server core busy % | load core busy % |"
            echo "|---|---:|---:|"
            for server in $SERVERS; do
                echo "| $server | $(cut -d' ' -f1 "$RUN_DIR"/w"$index"-"$server"-r*.cores | median) | $(cut -d' ' -f2 "$RUN_DIR"/w"$index"-"$server"-r*.cores | median) |"
            done
        done
        echo
        echo "## Notes"
        echo
        echo "- Latency is per request, from send to the last body byte, in microseconds (HDR histogram)."
        echo "  Gbit/s counts every byte received (headers and bodies)."
        echo "- The ratio row divides each figure by nginx's: above 1 is better for req/s and Gbit/s,"
        echo "  below 1 is better for latencies."
        echo "- Loopback copies even for zero-copy sends: data sent with MSG_ZEROCOPY or io_uring's"
        echo "  zero-copy send is copied when the kernel loops it back to a local receiver. The"
        echo "  receiver (the load generator) reads each body's first 4 KiB and discards the rest in"
        echo "  the kernel (recv with MSG_TRUNC), so it does not copy the bodies into its memory."
        echo "- \"load CPU %\" is the load generator's CPU over the run (100 = its whole core); the core"
        echo "  busy figures (/proc/stat, over the middle 8 s of each window) also count the kernel's"
        echo "  work on each core. Near 100 on the load core the load generator may be the limit."
        echo "- Raw reports: \`${RUN_DIR#"$ROOT"/}\`."
    } >"$OUT"
}

main "$@"
