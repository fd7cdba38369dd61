#!/usr/bin/env bash
# Ledger chaos: `just chaos N` (or `bench/scripts/chaos.sh N`).
#
# Runs the end-to-end ledger test (bench/tests/e2e_ledger.rs) with N kills instead of 5: four
# clients storm gifts, the server is killed with SIGKILL mid-storm N times and restarted on the
# same data, then every client retries everything it ever sent. The test fails unless every
# acknowledged gift answers its first entry, every gift sent is in the ledger exactly once and
# every wallet equals its credits minus its gifts. Writes bench/results/chaos.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N=${1:-}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: chaos.sh N (kills, at least 1)" >&2; exit 2; }
OUT="$ROOT/bench/results/chaos.md"
ROWS="$(mktemp)"
trap 'rm -f "$ROWS"' EXIT

cd "$ROOT"
cargo build -p shardcast
cargo build -p shardcast-bench --tests
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SHARDCAST_CHAOS_KILLS="$N" SHARDCAST_CHAOS_REPORT="$ROWS" \
    cargo test -p shardcast-bench --test e2e_ledger -- --nocapture --test-threads 1
{
    echo "# Ledger chaos: kill -9 during gift storms"
    echo
    echo "\`just chaos $N\` on $started, commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)'),"
    echo "$(nproc) cores, $(uname -r), ledger on $(df -T "$ROOT" | awk 'NR==2 {print $2}') under the test's data dir."
    echo
    echo "Four clients send one-heart gifts (400 each per round) to one room on a 2-shard server"
    echo "(debug build); the server is killed with SIGKILL 150–500 ms into each round and restarted"
    echo "on the same data. Then every client retries every key it ever sent. The run passes only if"
    echo "every gift acknowledged before a kill answers the same ledger entry and balance on retry,"
    echo "every key sent is in the room's gift log exactly once, every wallet equals its credits"
    echo "minus its gifts, and the leaderboard sums to the log. It passed."
    echo
    cat "$ROWS"
} >"$OUT"
echo "chaos: $N kills passed; wrote $OUT"
