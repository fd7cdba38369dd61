#!/usr/bin/env bash
# Counter summary of a running shardcast: cycles, instructions, IPC, cache misses, context
# switches, migrations, page faults, and syscall / io_uring tracepoint counts.
#
#   perf/perf-stat.sh [--pid PID | --tid TID] [--seconds N] [--per COUNT] [--out DIR]
#
# Prints a table and writes it, with perf's raw output, to perf/out/perf-stat-<timestamp>.txt.
# Events this host cannot count (no PMU on a VM, tracepoints not readable) are listed, not fatal.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT_DIR="$SCRIPT_DIR/out"
pid=""
tid=""
seconds=10
per=""

usage() {
    cat <<'EOF'
usage: perf-stat.sh [options]

  --pid PID      process to count, all its threads (default: newest process named shardcast)
  --tid TID      one thread only, e.g. one shard (thread ids are in /proc/PID/task/)
  --seconds N    counting time (default 10)
  --per COUNT    also divide every counter by COUNT: the requests / messages / segments the load
                 generator delivered in the same window, to get e.g. syscalls per request
  --out DIR      output directory (default: perf/out)
EOF
}

die() { echo "perf-stat.sh: $*" >&2; exit 2; }

while (($#)); do
    case "$1" in
        --pid) [[ $# -ge 2 ]] || die "--pid needs a value"; pid=$2; shift ;;
        --tid) [[ $# -ge 2 ]] || die "--tid needs a value"; tid=$2; shift ;;
        --seconds) [[ $# -ge 2 ]] || die "--seconds needs a value"; seconds=$2; shift ;;
        --per) [[ $# -ge 2 ]] || die "--per needs a count"; per=$2; shift ;;
        --out) [[ $# -ge 2 ]] || die "--out needs a directory"; OUT_DIR=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then die "--seconds must be a positive integer"; fi
[[ -z $per || ($per =~ ^[0-9]+$ && $per -gt 0) ]] || die "--per must be a positive integer"

if ! command -v perf >/dev/null 2>&1; then
    if ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
        echo "perf not found: installing Debian package linux-perf"
        apt-get install -y linux-perf >/dev/null || die "apt-get install linux-perf failed"
    else
        die "perf not found: install it as root with 'apt-get install linux-perf'"
    fi
fi

if [[ -n $tid ]]; then
    [[ -z $pid ]] || die "give --pid or --tid, not both"
    [[ $tid =~ ^[0-9]+$ && -d /proc/$tid ]] || die "no such thread: $tid"
    pid=$tid
    target=(-t "$tid")
else
    if [[ -z $pid ]]; then
        pid=$(pgrep -n -x shardcast || true)
        [[ -n $pid ]] || die "no running process named shardcast; pass --pid PID"
    fi
    [[ $pid =~ ^[0-9]+$ && -d /proc/$pid ]] || die "no such process: $pid"
    target=(-p "$pid")
fi

# Software and hardware events: always requested; perf reports <not supported> for the ones
# this host lacks (a VM without a virtual PMU has no cycles/instructions/cache events).
BASE_EVENTS=(task-clock cycles instructions cache-references cache-misses branches branch-misses
    context-switches cpu-migrations page-faults major-faults)

# Tracepoints: an unknown one makes perf stat fail as a whole, so each is probed first.
#   raw_syscalls:sys_enter            every syscall (the denominator for "syscalls per request")
#   sys_enter_io_uring_enter          submit/wait calls of the io_uring engine
#   sys_enter_epoll_wait / _pwait(2)  waits of the epoll backend (or of a peer server)
#   io_uring:io_uring_submit_req      SQEs submitted (ops)
#   io_uring:io_uring_complete        CQEs posted (multishot ops post many per submission)
#   io_uring:io_uring_poll_arm        ops that could not complete at once and waited for readiness
#   io_uring:io_uring_queue_async_work ops punted to io-wq worker threads (should be ~0 for sockets)
#   io_uring:io_uring_cqe_overflow    completions that did not fit the CQ ring (must be 0)
#   io_uring:io_uring_local_work_run  DEFER_TASKRUN work batches run by the shard itself
TRACEPOINTS=(raw_syscalls:sys_enter
    syscalls:sys_enter_io_uring_enter
    syscalls:sys_enter_epoll_wait syscalls:sys_enter_epoll_pwait syscalls:sys_enter_epoll_pwait2
    syscalls:sys_enter_sendmsg syscalls:sys_enter_recvfrom syscalls:sys_enter_write
    io_uring:io_uring_submit_req io_uring:io_uring_complete io_uring:io_uring_poll_arm
    io_uring:io_uring_queue_async_work io_uring:io_uring_cqe_overflow io_uring:io_uring_local_work_run)

events=("${BASE_EVENTS[@]}")
unavailable_tp=()
for tp in "${TRACEPOINTS[@]}"; do
    if perf stat -x, -e "$tp" -- true >/dev/null 2>&1; then
        events+=("$tp")
    else
        unavailable_tp+=("$tp")
    fi
done

mkdir -p "$OUT_DIR"
stamp=$(date +%Y%m%d-%H%M%S)
out="$OUT_DIR/perf-stat-$stamp.txt"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

comm=$(cat "/proc/$pid/comm" 2>/dev/null || echo '?')
if [[ -n $tid ]]; then
    what="thread $tid ($comm)"
else
    what="pid $pid ($comm, $(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) threads)"
fi
echo "counting $what for ${seconds}s"
ev_list=$(IFS=,; echo "${events[*]}")
if ! perf stat -x, -o "$raw" -e "$ev_list" "${target[@]}" -- sleep "$seconds"; then
    paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo "?")
    echo "perf stat failed (kernel.perf_event_paranoid = $paranoid). Counting another user's process or" >&2
    echo "tracepoints needs root/CAP_PERFMON, or e.g. 'sudo sysctl kernel.perf_event_paranoid=-1' for the run." >&2
    exit 1
fi

# CSV: value,unit,event,run_time,pct_enabled,metric,metric_unit  (value may be <not supported>)
declare -A VAL=()
unsupported=()
not_counted=()
while IFS=, read -r value _unit event _rest; do
    [[ -z $event || $value == \#* ]] && continue
    case "$value" in
        '<not supported>') unsupported+=("$event") ;;
        '<not counted>') not_counted+=("$event") ;;
        *) VAL[$event]=$value ;;
    esac
done < <(grep -v '^#' "$raw" | grep -v '^$')

# %.0f, not %d: mawk clamps %d to 2^31-1, and cycle counts pass that in a second.
fmt_num() { awk -v v="$1" 'BEGIN { if (v == int(v)) printf "%.0f", v; else printf "%.2f", v }'; }
rate() { awk -v v="$1" -v s="$2" 'BEGIN { printf "%.0f", v / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.3f", a / b }'; }

{
    echo "shardcast perf stat — $(date -u +%Y-%m-%dT%H:%M:%SZ) — $what, ${seconds}s"
    echo "host: $(uname -r), $(nproc) CPUs$([[ -n $per ]] && echo ", per-unit column = counter / $per")"
    echo
    if [[ -n $per ]]; then
        printf '%-40s | %18s | %14s | %12s\n' "event" "count" "per second" "per unit"
    else
        printf '%-40s | %18s | %14s\n' "event" "count" "per second"
    fi
    for ev in "${events[@]}"; do
        [[ -n ${VAL[$ev]+set} ]] || continue
        v=${VAL[$ev]}
        if [[ $ev == task-clock ]]; then
            # task-clock is in msec: show CPUs used instead of a rate
            printf '%-40s | %15s ms | %14s' "$ev" "$(fmt_num "$v")" "$(awk -v v="$v" -v s="$seconds" 'BEGIN { printf "%.2f CPUs", v / 1000 / s }')"
        else
            printf '%-40s | %18s | %14s' "$ev" "$(fmt_num "$v")" "$(fmt_num "$(rate "$v" "$seconds")")"
        fi
        if [[ -n $per ]]; then printf ' | %12s\n' "$(ratio "$v" "$per")"; else printf '\n'; fi
    done
    echo
    echo "derived:"
    if [[ -n ${VAL[instructions]:-} && -n ${VAL[cycles]:-} ]]; then
        echo "  IPC (instructions per cycle)             $(ratio "${VAL[instructions]}" "${VAL[cycles]}")"
    else
        echo "  IPC                                      unavailable (no cycles/instructions counters on this host)"
    fi
    if [[ -n ${VAL[cache-misses]:-} && -n ${VAL[cache-references]:-} ]]; then
        echo "  cache misses per cache reference         $(ratio "${VAL[cache-misses]}" "${VAL[cache-references]}")"
    fi
    if [[ -n ${VAL[raw_syscalls:sys_enter]:-} && -n ${VAL[task-clock]:-} ]]; then
        echo "  syscalls per CPU-millisecond             $(ratio "${VAL[raw_syscalls:sys_enter]}" "${VAL[task-clock]}")"
    fi
    if [[ -n ${VAL[io_uring:io_uring_submit_req]:-} && -n ${VAL[syscalls:sys_enter_io_uring_enter]:-} ]]; then
        echo "  SQEs per io_uring_enter                  $(ratio "${VAL[io_uring:io_uring_submit_req]}" "${VAL[syscalls:sys_enter_io_uring_enter]}")"
    fi
    if [[ -n ${VAL[io_uring:io_uring_complete]:-} && -n ${VAL[syscalls:sys_enter_io_uring_enter]:-} ]]; then
        echo "  CQEs per io_uring_enter                  $(ratio "${VAL[io_uring:io_uring_complete]}" "${VAL[syscalls:sys_enter_io_uring_enter]}")"
    fi
    if [[ -n ${VAL[io_uring:io_uring_queue_async_work]:-} ]] && ((${VAL[io_uring:io_uring_queue_async_work]} > 0)); then
        echo "  WARNING: ${VAL[io_uring:io_uring_queue_async_work]} ops were punted to io-wq worker threads"
    fi
    if [[ -n ${VAL[io_uring:io_uring_cqe_overflow]:-} ]] && ((${VAL[io_uring:io_uring_cqe_overflow]} > 0)); then
        echo "  WARNING: ${VAL[io_uring:io_uring_cqe_overflow]} CQ ring overflows: the CQ ring is too small or reaped too late"
    fi
    echo
    if ((${#unsupported[@]})); then
        echo "not supported on this host: ${unsupported[*]}"
        echo "  (hardware counters are usually missing on VMs without a virtual PMU; measure IPC on bare metal)"
    fi
    if ((${#not_counted[@]})); then
        echo "not counted (the process never ran while enabled, or counters were multiplexed out): ${not_counted[*]}"
    fi
    if ((${#unavailable_tp[@]})); then
        echo "tracepoints unavailable (missing on this kernel, or tracefs not readable — run as root): ${unavailable_tp[*]}"
    fi
    echo
    echo "raw perf stat output (CSV: value,unit,event,run time,enabled %,metric,metric unit):"
    grep -v '^$' "$raw"
} | tee "$out"

echo
echo "written: $out"
