#!/usr/bin/env bash
# `just run-cluster`: one redis-server and two shardcast hosts that share rooms and the gift
# ledger through it, all on this machine, in the foreground until Ctrl-C (which stops all
# three).
#
#   host A: http://localhost:8080  rtmp://localhost:1935
#   host B: http://localhost:8081  rtmp://localhost:1936
#   Redis:  127.0.0.1:6390 (appendonly yes, appendfsync always), data in target/cluster/redis
#
# A viewer on A and a viewer on B in the same room see the same chats in the same order.
# Environment: REDIS_PORT=6390, CLUSTER_DIR=target/cluster.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REDIS_PORT=${REDIS_PORT:-6390}
DIR=${CLUSTER_DIR:-$ROOT/target/cluster}
BIN="$ROOT/target/release/shardcast"
[ -x "$BIN" ] || { echo "run-cluster: build first (cargo build --release -p shardcast)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "run-cluster: redis-server is missing (scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$DIR/redis" "$DIR/a" "$DIR/b"

pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DIR/redis" \
    --appendonly yes --appendfsync always --save "" --daemonize no \
    >"$DIR/redis/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.05
done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { echo "run-cluster: redis-server did not start (see $DIR/redis/redis.log)" >&2; exit 1; }

# One secret for both hosts, so a token minted for one is good on the other.
secret_file="$DIR/secret"
[ -s "$secret_file" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret_file"
secret=$(cat "$secret_file")
for host in a b; do
    cat >"$DIR/$host/shardcast.toml" <<TOML
[auth]
secret = "$secret"

[state]
data_dir = "$DIR/$host/data"
redis = "redis://127.0.0.1:$REDIS_PORT"
TOML
done

"$BIN" serve --config "$DIR/a/shardcast.toml" --http 0.0.0.0:8080 --rtmp 0.0.0.0:1935 &
pids+=($!)
"$BIN" serve --config "$DIR/b/shardcast.toml" --http 0.0.0.0:8081 --rtmp 0.0.0.0:1936 &
pids+=($!)
echo "run-cluster: hosts on :8080 and :8081 share Redis 127.0.0.1:$REDIS_PORT; mint tokens with: $BIN token --secret \"\$(cat $secret_file)\" ..."
wait -n
