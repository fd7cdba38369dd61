#!/usr/bin/env bash
# HTTPS serving, shardcast against nginx with TLS, on one server core each.
#
# Run with `just bench-https` (or directly). Writes bench/results/https.md; the raw h2load
# output of every run stays in bench/results/tmp/https-<time>/.
#
# The load generator is h2load (nghttp2-client, C and OpenSSL) in HTTP/1.1 mode, pinned to
# core 1: shardcast's own generator has no TLS. Both servers use the same certificate
# (ECDSA P-256, `shardcast cert --self-signed`) and TLS 1.3; the report prints the cipher
# h2load negotiated with each. Each row reports both cores' busy time, so a reader can see
# which side was the limit.
#
# Environment:
#   ROUNDS=3           rounds per server and workload (servers alternate; medians reported)
#   SECONDS_EACH=10    measurement window per run (after a 2 s warm-up)
#   NGINX_PORT=18090 SHARDCAST_PORT=18091 (HTTPS; its plain HTTP on the next port)
#   OUT=bench/results/https.md
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-10}
WARMUP_S=2
NGINX_PORT=${NGINX_PORT:-18090}
SHARDCAST_PORT=${SHARDCAST_PORT:-18091}
SHARDCAST_HTTP_PORT=$((SHARDCAST_PORT + 1))
SERVERS="nginx shardcast"
OUT=${OUT:-$ROOT/bench/results/https.md}
RUN_DIR="$ROOT/bench/results/tmp/https-$(date +%Y%m%d-%H%M%S)"

# name | file | connections
WORKLOADS=(
    "20 KiB (an LL-HLS part), 64 connections|20k.bin|64"
    "1 MiB (a segment), 16 connections|1m.bin|16"
)

trap stop_started EXIT
trap 'exit 130' INT TERM

ensure_h2load() {
    command -v h2load >/dev/null && return 0
    log "h2load is missing; installing nghttp2-client"
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get install -y nghttp2-client || { $sudo apt-get update && $sudo apt-get install -y nghttp2-client; } \
        || die "could not install nghttp2-client (h2load)"
}

make_cert() {
    "$SHARDCAST_BIN" cert --self-signed localhost --cert "$RUN_DIR/cert.pem" --key "$RUN_DIR/key.pem" \
        >/dev/null || die "shardcast cert failed"
}

start_servers() {
    start_nginx "$NGINX_PORT" "$ROOT/bench/peers/nginx-https.conf" \
        -e "s#@CERT@#$RUN_DIR/cert.pem#g" -e "s#@KEY@#$RUN_DIR/key.pem#g"
    start_shardcast "$SHARDCAST_HTTP_PORT" "[transcode]
enabled = false

[tls]
cert_file = \"$RUN_DIR/cert.pem\"
key_file = \"$RUN_DIR/key.pem\"" --rtmp 127.0.0.1:0 --https "127.0.0.1:$SHARDCAST_PORT"
    wait_listening "$SHARDCAST_PORT" "$SHARDCAST_PID" "shardcast (https)"
}

port_of() {
    case "$1" in
        nginx) echo "$NGINX_PORT" ;;
        shardcast) echo "$SHARDCAST_PORT" ;;
    esac
}

# One run: h2load against SERVER with WORKLOAD; its output and the cores' busy time.
run_one() {
    local server=$1 workload=$2 round=$3 name file conns out busy
    IFS='|' read -r name file conns <<<"$workload"
    out="$RUN_DIR/$file-$server-r$round.txt"
    taskset -c "$LOAD_CORE" h2load --h1 -c "$conns" -t 1 -D "$SECONDS_EACH" --warm-up-time "$WARMUP_S" \
        "https://127.0.0.1:$(port_of "$server")/static/$file" >"$out" 2>&1 &
    local load=$!
    sleep "$WARMUP_S"
    busy=$(cores_busy "$SECONDS_EACH")
    wait "$load" || die "h2load failed against $server: $(tail -5 "$out")"
    echo "busy: $busy" >>"$out"
    grep -q ' 0 failed, 0 errored, 0 timeout' "$out" || die "$server: failed requests: $(grep '^requests:' "$out")"
}

# What ROUNDS runs of WORKLOAD on SERVER give: "req/s MB/s server% load% cipher".
summary() {
    local server=$1 file=$2 f rps mbps sbusy lbusy cipher
    rps=$(for f in "$RUN_DIR/$file-$server"-r*.txt; do sed -n 's/^finished in .*s, \([0-9.]*\) req\/s.*/\1/p' "$f"; done | median)
    mbps=$(for f in "$RUN_DIR/$file-$server"-r*.txt; do
        sed -n 's/^finished in .* req\/s, \([0-9.]*\)\([KMG]\)B\/s.*/\1 \2/p' "$f" |
            awk '{ m = ($2 == "G") ? 1024 : ($2 == "K" ? 1 / 1024 : 1); printf "%.1f\n", $1 * m }'
    done | median)
    sbusy=$(for f in "$RUN_DIR/$file-$server"-r*.txt; do awk '/^busy:/ { print $2 }' "$f"; done | median)
    lbusy=$(for f in "$RUN_DIR/$file-$server"-r*.txt; do awk '/^busy:/ { print $3 }' "$f"; done | median)
    cipher=$(sed -n 's/^Cipher: //p' "$RUN_DIR/$file-$server-r1.txt")
    echo "$rps $mbps $sbusy $lbusy $cipher"
}

write_results() {
    {
        echo "# HTTPS serving: shardcast against nginx with TLS"
        echo
        echo "Written by \`just bench-https\` (bench/scripts/bench-https.sh); raw h2load output in \`bench/results/tmp/$(basename "$RUN_DIR")\`."
        echo
        machine_header
        echo "- load: h2load $(h2load --version | awk '{print $2}') (nghttp2), HTTP/1.1 over TLS 1.3, one thread; ${SECONDS_EACH} s per run after ${WARMUP_S} s of warm-up, $ROUNDS rounds, servers alternating; medians"
        echo "- nginx $("$NGINX_BIN" -v 2>&1 | sed 's#.*/##') with OpenSSL (bench/peers/nginx-https.conf); shardcast with rustls on aws-lc-rs, bodies from memory (\`http.static_dir\`)"
        echo "- kTLS: not on this kernel (CONFIG_TLS is not set), for either server"
        echo
        echo "| workload | server | req/s | MB/s | ratio to nginx | server core busy | load core busy | cipher |"
        echo "|---|---|---:|---:|---:|---:|---:|---|"
        local workload name file conns base rps mbps sbusy lbusy cipher
        for workload in "${WORKLOADS[@]}"; do
            IFS='|' read -r name file conns <<<"$workload"
            base=""
            for server in $SERVERS; do
                read -r rps mbps sbusy lbusy cipher <<<"$(summary "$server" "$file")"
                [[ -z "$base" ]] && base=$mbps
                echo "| $name | $server | $rps | $mbps | $(awk -v a="$mbps" -v b="$base" 'BEGIN { printf "%.2f", a / b }') | ${sbusy} % | ${lbusy} % | $cipher |"
            done
        done
    } >"$OUT"
    log "wrote $OUT"
}

main() {
    check_machine
    ensure_nginx
    ensure_h2load
    build_release
    mkdir -p "$RUN_DIR"
    make_bodies
    head -c 20480 /dev/urandom >"$BODIES/20k.bin"
    make_cert
    start_servers
    local round workload server
    for round in $(seq 1 "$ROUNDS"); do
        for workload in "${WORKLOADS[@]}"; do
            for server in $SERVERS; do
                log "round $round: $server, ${workload%%|*}"
                run_one "$server" "$workload" "$round"
            done
        done
    done
    write_results
}

main "$@"
