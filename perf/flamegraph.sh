#!/usr/bin/env bash
# CPU flame graph of a running shardcast.
#
#   perf/flamegraph.sh [--pid PID] [--seconds N] [--call-graph dwarf|fp|lbr] [--freq HZ]
#                      [--cpus LIST] [--out DIR] [--keep-data]
#
# Records with `perf record -F 999 -g --call-graph dwarf`, folds the stacks with inferno and
# writes perf/out/flamegraph-<timestamp>.svg (plus the .folded stacks next to it).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT_DIR="$SCRIPT_DIR/out"
pid=""
seconds=20
call_graph=dwarf
freq=999
cpus=""
keep_data=0
colors=rust

usage() {
    cat <<'EOF'
usage: flamegraph.sh [options]

  --pid PID            process to record (default: newest process named shardcast, pgrep -n -x)
  --seconds N          recording time (default 20)
  --call-graph MODE    dwarf (default: works without frame pointers, larger data, slower to fold),
                       fp (needs a build with -C force-frame-pointers=yes), or lbr (Intel, bare metal)
  --freq HZ            sampling frequency (default 999: not a multiple of common timer rates)
  --cpus LIST          record these CPUs system-wide instead of one process (e.g. the shard cores
                       0-7): also shows softirq/network-stack time spent on those cores for any task
  --colors PALETTE     inferno palette (default rust; hot, io, ...)
  --out DIR            output directory (default: perf/out)
  --keep-data          keep the perf.data file (deleted by default: it is large with dwarf)

Build shardcast with `cargo build --profile bench-profile` (full debug info) for readable
dwarf stacks; the release profile has line tables only.
EOF
}

die() { echo "flamegraph.sh: $*" >&2; exit 2; }

while (($#)); do
    case "$1" in
        --pid) [[ $# -ge 2 ]] || die "--pid needs a value"; pid=$2; shift ;;
        --seconds) [[ $# -ge 2 ]] || die "--seconds needs a value"; seconds=$2; shift ;;
        --call-graph) [[ $# -ge 2 ]] || die "--call-graph needs a value"; call_graph=$2; shift ;;
        --fp) call_graph=fp ;;
        --freq) [[ $# -ge 2 ]] || die "--freq needs a value"; freq=$2; shift ;;
        --cpus) [[ $# -ge 2 ]] || die "--cpus needs a list"; cpus=$2; shift ;;
        --colors) [[ $# -ge 2 ]] || die "--colors needs a palette"; colors=$2; shift ;;
        --out) [[ $# -ge 2 ]] || die "--out needs a directory"; OUT_DIR=$2; shift ;;
        --keep-data) keep_data=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then die "--seconds must be a positive integer"; fi
[[ $freq =~ ^[0-9]+$ ]] || die "--freq must be an integer"
case "$call_graph" in dwarf | fp | lbr) ;; *) die "--call-graph must be dwarf, fp or lbr" ;; esac

# --- tools -------------------------------------------------------------------------------------

ensure_perf() {
    if command -v perf >/dev/null 2>&1 && perf version >/dev/null 2>&1; then return 0; fi
    if ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
        echo "perf not found: installing Debian package linux-perf"
        apt-get install -y linux-perf >/dev/null || die "apt-get install linux-perf failed"
        command -v perf >/dev/null 2>&1 || die "perf still not found after installing linux-perf"
        return 0
    fi
    die "perf not found: install it as root with 'apt-get install linux-perf' (Debian) or your distribution's perf package"
}

ensure_inferno() {
    # cargo installs into ~/.cargo/bin, which is not always on PATH in scripts.
    if [[ -d ${CARGO_HOME:-$HOME/.cargo}/bin ]]; then PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"; fi
    if command -v inferno-collapse-perf >/dev/null 2>&1 && command -v inferno-flamegraph >/dev/null 2>&1; then
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || die "inferno not found and cargo is missing: install Rust, then 'cargo install inferno --locked'"
    echo "inferno not found: cargo install inferno --locked"
    cargo install inferno --locked || die "cargo install inferno failed"
}

# Explain the usual reasons perf_event_open is refused.
explain_failure() {
    local paranoid
    paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo "?")
    cat >&2 <<EOF

perf record failed. kernel.perf_event_paranoid is $paranoid on this host:
  -1  no restrictions            0  no raw tracepoint access for users, CPU-wide allowed
   1  user+kernel profiling of your own processes, no CPU-wide (--cpus) recording
   2  user-space only, own processes (kernel frames missing)
   3  (Debian/Ubuntu patch) no perf_event_open at all for unprivileged users
Recording another user's process, kernel stacks, or --cpus needs root, CAP_PERFMON, or a lower
value for the duration of the profile:  sudo sysctl kernel.perf_event_paranoid=1
Kernel symbols appear as [unknown] unless run as root or with kernel.kptr_restrict=0.
Inside a container, perf_event_open is usually blocked by seccomp: profile from the host.
On a VM without a virtual PMU, perf falls back to the cpu-clock software event by itself.
EOF
}

# --- target ------------------------------------------------------------------------------------

ensure_perf
ensure_inferno

target=()
if [[ -n $cpus ]]; then
    target=(-a -C "$cpus")
    what="CPUs $cpus (system-wide)"
else
    if [[ -z $pid ]]; then
        pid=$(pgrep -n -x shardcast || true)
        [[ -n $pid ]] || die "no running process named shardcast; pass --pid PID"
    fi
    [[ $pid =~ ^[0-9]+$ && -d /proc/$pid ]] || die "no such process: $pid"
    target=(-p "$pid")
    what="pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null || echo '?'), $(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l) threads)"
fi

mkdir -p "$OUT_DIR"
stamp=$(date +%Y%m%d-%H%M%S)
data="$OUT_DIR/perf-$stamp.data"
folded="$OUT_DIR/flamegraph-$stamp.folded"
svg="$OUT_DIR/flamegraph-$stamp.svg"

cg=$call_graph
# dwarf copies 8 KiB of each sampled stack by default; 16 KiB reaches through deep Rust frames.
[[ $cg == dwarf ]] && cg=dwarf,16384

echo "recording $what for ${seconds}s at ${freq} Hz, call graph $call_graph"
if ! perf record -F "$freq" -g --call-graph "$cg" "${target[@]}" -o "$data" -- sleep "$seconds"; then
    explain_failure
    rm -f "$data"
    exit 1
fi
[[ -s $data ]] || { explain_failure; exit 1; }

# The recorded event: cycles on hosts with a PMU, cpu-clock (weighted in ns) on most VMs.
event=$(perf evlist -i "$data" 2>/dev/null | head -n1 | cut -d: -f1)
case "$event" in
    cpu-clock | task-clock) countname=ns ;;
    '') event=unknown countname=samples ;;
    *) countname=$event ;;
esac

if [[ $call_graph == dwarf ]]; then
    echo "folding stacks (dwarf unwinding happens now; it can take a while)"
else
    echo "folding stacks"
fi
perf script -i "$data" 2>/dev/null | inferno-collapse-perf --all >"$folded"
if [[ ! -s $folded ]]; then
    echo "flamegraph.sh: no samples were recorded (was the process idle? try --cpus or a longer --seconds)" >&2
    ((keep_data)) || rm -f "$data"
    exit 1
fi
inferno-flamegraph --colors "$colors" \
    --title "$what, ${seconds}s, $event @ ${freq} Hz, $call_graph stacks, $stamp" \
    --countname "$countname" <"$folded" >"$svg"

if ((keep_data)); then
    echo "perf data: $data"
else
    rm -f "$data"
fi
echo "folded stacks: $folded (weights in $countname of $event)"
echo "flame graph: $svg"
