#!/usr/bin/env bash
# The ledger store choice (bench/results/state.md): cd bench/peers/ledger-store && ./run.sh (about 7 min; each run ≤ 13 s, hard cap 60 s)
# Output rows go to stdout and results/raw-<timestamp>.md
set -u
cd "$(dirname "$0")"
nice -n 19 cargo build --release -q || exit 1
B=./target/release/ledger-store-bench
DIR=${LEDGER_DIR:-$PWD/data}   # on the disk the ledger would use (state.data_dir)
SECS=${SECS:-10}
mkdir -p results
OUT=results/raw-$(date +%Y%m%d-%H%M%S).md
run() { timeout 60 nice -n 19 "$B" "$@" --dir "$DIR" --secs "$SECS" --warmup 1 | tee -a "$OUT"; }
{ date; uname -r; df -T "$DIR" | tail -n +2; cat /proc/loadavg; } | tee -a "$OUT"
echo "## disk: label | fsyncs/s | fdatasync p50 ms | p99 | max | write+fdatasync p99 | syncs" | tee -a "$OUT"
run disk --size 128
run disk --size 4096
run disk --size 128 --prealloc
run disk --size 4096 --prealloc
echo "## pipeline: label | records/s | fsyncs/s | commits/s | recs/commit | ack p50 ms | p99 | max | info" | tee -a "$OUT"
for e in log redb fjall; do
  for n in 1 4 16; do run $e --producers $n; done
  run $e --rate 20000
done
echo "## ceiling: open-loop at higher offered rates (achieved < offered => saturated)" | tee -a "$OUT"
for e in log redb fjall; do
  for r in 50000 100000; do run $e --rate $r; done
done
if [ "${SKIP_DELAY:-0}" != 1 ]; then
  echo "## sensitivity: +2000 us added after every fsync (emulated slower device)" | tee -a "$OUT"
  for e in log redb fjall; do
    LEDGER_SYNC_DELAY_US=2000 run $e --producers 16
    LEDGER_SYNC_DELAY_US=2000 run $e --rate 20000
    LEDGER_SYNC_DELAY_US=2000 run $e --rate 50000
  done
fi
rm -rf "$DIR"
echo "written $OUT"
