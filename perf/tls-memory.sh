#!/usr/bin/env bash
# What an idle TLS connection costs the server in memory, against an idle plain one: starts a
# release shardcast (one shard, a self-signed certificate), opens N keep-alive connections over
# plain HTTP, then over HTTPS (one request each), and prints the resident-memory growth per
# connection. Loopback only; every process it starts it stops.
#
#   perf/tls-memory.sh [N]      # default 4000 connections
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-4000}"
bin="$root/target/release/shardcast"
[[ -x "$bin" ]] || (cd "$root" && cargo build --release -p shardcast)
work="$(mktemp -d)"
server=""
trap '[[ -n "$server" ]] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)"
"$bin" cert --self-signed localhost --cert "$work/cert.pem" --key "$work/key.pem" >/dev/null
printf '[tls]\ncert_file = "%s"\nkey_file = "%s"\n[transcode]\nenabled = false\n[state]\ndata_dir = "%s/data"\n[http]\nidle_timeout_ms = 120000\n' \
    "$work/cert.pem" "$work/key.pem" "$work" >"$work/shardcast.toml"
for mode in plain tls; do
    "$bin" serve --shards 1 --http 127.0.0.1:18501 --rtmp "" --https 127.0.0.1:18543 \
        --config "$work/shardcast.toml" >"$work/server-$mode.log" 2>&1 &
    server=$!
    sleep 1.5
    before=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
    port=18501
    [[ $mode == tls ]] && port=18543
    python3 "$root/perf/hold_connections.py" 127.0.0.1 "$port" "$n" "$mode" 30 >"$work/client-$mode.log" &
    client=$!
    for _ in $(seq 120); do
        grep -q '^open' "$work/client-$mode.log" && break
        sleep 0.5
    done
    sleep 2
    after=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
    echo "$mode: $n idle connections: RSS ${before} kB -> ${after} kB, $(( (after - before) * 1024 / n )) B each"
    kill "$client" 2>/dev/null || true
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=""
done
