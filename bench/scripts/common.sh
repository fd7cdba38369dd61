# Shared helpers of the benchmark scripts (sourced, not run).
# Every process a script starts is recorded in STARTED_PIDS and killed by PID on exit.

STARTED_PIDS=()
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=/dev/shm/shardcast-bench
BODIES="$BENCH_DIR/bodies"
BENCH_BIN="$ROOT/target/release/shardcast-bench"
SHARDCAST_BIN="$ROOT/target/release/shardcast"
SERVER_CORE=0
LOAD_CORE=1

die() {
    echo "error: $*" >&2
    exit 1
}

log() {
    echo "[$(date +%H:%M:%S)] $*" >&2
}

stop_started() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    STARTED_PIDS=()
}

# Removes one PID from STARTED_PIDS after it was stopped deliberately.
forget_pid() {
    local keep=() pid
    for pid in "${STARTED_PIDS[@]}"; do
        [[ "$pid" == "$1" ]] || keep+=("$pid")
    done
    STARTED_PIDS=("${keep[@]}")
}

stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

check_machine() {
    local cores
    cores=$(nproc)
    [[ "$cores" -ge 2 ]] || die "need at least 2 cores (server on core $SERVER_CORE, load on core $LOAD_CORE); found $cores"
    command -v taskset >/dev/null || die "taskset is missing (util-linux)"
    # Connections count against the open-file limit; use the whole hard limit.
    ulimit -n "$(ulimit -Hn)"
}

ensure_nginx() {
    NGINX_BIN=$(command -v nginx || true)
    [[ -n "$NGINX_BIN" ]] || [[ ! -x /usr/sbin/nginx ]] || NGINX_BIN=/usr/sbin/nginx
    if [[ -z "$NGINX_BIN" ]]; then
        log "nginx is missing; installing nginx-light"
        local sudo=""
        [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
        $sudo apt-get install -y nginx-light || { $sudo apt-get update && $sudo apt-get install -y nginx-light; } \
            || die "could not install nginx-light"
        NGINX_BIN=/usr/sbin/nginx
    fi
}

# Installs libnginx-mod-rtmp when $RTMP_MODULE (the caller sets it) is missing.
ensure_rtmp_module() {
    [[ -f "$RTMP_MODULE" ]] && return 0
    log "the nginx RTMP module is missing; installing libnginx-mod-rtmp"
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get install -y libnginx-mod-rtmp \
        || { $sudo apt-get update && $sudo apt-get install -y libnginx-mod-rtmp; } \
        || die "could not install libnginx-mod-rtmp"
    [[ -f "$RTMP_MODULE" ]] || die "$RTMP_MODULE is missing after installing libnginx-mod-rtmp"
}

# Builds shardcast and the load generator. SERVERS (space-separated) decides whether
# shardcast is needed; without it only the load generator is built.
build_release() {
    cd "$ROOT"
    if [[ " $SERVERS " == *" shardcast "* ]]; then
        log "building shardcast and shardcast-bench (release)"
        # SHARDCAST_FEATURES: extra features of the server build, e.g. "heap-stats" (soak.sh).
        cargo build --release -p shardcast -p shardcast-bench \
            ${SHARDCAST_FEATURES:+--features "shardcast/$SHARDCAST_FEATURES"} \
            || die "release build failed (SERVERS=\"nginx\" runs the nginx baseline alone)"
        [[ -x "$SHARDCAST_BIN" ]] || die "$SHARDCAST_BIN is missing after the build: is the shardcast binary built by this workspace yet? (SERVERS=\"nginx\" runs the nginx baseline alone)"
    else
        log "building shardcast-bench (release)"
        cargo build --release -p shardcast-bench || die "release build of shardcast-bench failed"
    fi
}

make_bodies() {
    mkdir -p "$BODIES"
    head -c 200 /dev/urandom >"$BODIES/200b.bin"
    head -c 1048576 /dev/urandom >"$BODIES/1m.bin"
}

# Waits until HOST:PORT accepts a connection and PID is still alive.
wait_listening() {
    local port=$1 pid=$2 name=$3 i
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up (see its log in $RUN_DIR)"
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "$name did not listen on 127.0.0.1:$port within 10 s"
}

# Starts nginx on PORT with CONF (default bench/peers/nginx-http.conf), its @PORT@, @BODIES@
# and @RUNDIR@ filled in, and any further `sed` arguments applied; sets NGINX_PID (the master).
start_nginx() {
    local port=$1 conf=${2:-$ROOT/bench/peers/nginx-http.conf} dir="$RUN_DIR/nginx"
    shift $(($# < 2 ? $# : 2))
    mkdir -p "$dir"
    sed -e "s#@PORT@#$port#g" -e "s#@BODIES@#$BODIES#g" -e "s#@RUNDIR@#$dir#g" "$@" \
        "$conf" >"$dir/nginx.conf"
    NGINX_CMD="taskset -c $SERVER_CORE $NGINX_BIN -c $dir/nginx.conf -p $dir -e $dir/error.log"
    $NGINX_CMD >"$dir/stdout.log" 2>&1 &
    NGINX_PID=$!
    STARTED_PIDS+=("$NGINX_PID")
    wait_listening "$port" "$NGINX_PID" nginx
}

# Starts shardcast with one shard on core 0, HTTP on PORT, EXTRA_TOML appended to its config
# and any further arguments passed to `serve`; sets SHARDCAST_PID.
start_shardcast() {
    local port=$1 extra=${2:-} dir="$RUN_DIR/shardcast"
    shift $(($# < 2 ? $# : 2))
    mkdir -p "$dir"
    cat >"$dir/shardcast.toml" <<TOML
[shards]
cores = [$SERVER_CORE]

[http]
static_dir = "$BODIES"
# The load comes from a few loopback addresses (bench-idle holds ~5k per address).
max_connections_per_address = 20000
$extra
TOML
    SHARDCAST_CMD="taskset -c $SERVER_CORE $SHARDCAST_BIN serve --shards 1 --http 127.0.0.1:$port --config $dir/shardcast.toml $*"
    $SHARDCAST_CMD >"$dir/stdout.log" 2>&1 &
    SHARDCAST_PID=$!
    STARTED_PIDS+=("$SHARDCAST_PID")
    wait_listening "$port" "$SHARDCAST_PID" shardcast
}

# VmRSS of a process in KiB.
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

machine_header() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    cat <<MD
- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- kernel: $(uname -r)
- CPU: $cpu, $(nproc) cores
- core layout: server pinned to core $SERVER_CORE (\`taskset -c $SERVER_CORE\`, one shard / one nginx worker), load generator pinned to core $LOAD_CORE (\`taskset -c $LOAD_CORE\`)
MD
}

# cores_busy SECONDS: the busy percentage of the server core and of the load core over the
# next SECONDS, from /proc/stat ("SERVER LOAD").
cores_busy() {
    local seconds=$1 before after
    before=$(grep -E "^cpu($SERVER_CORE|$LOAD_CORE) " /proc/stat)
    sleep "$seconds"
    after=$(grep -E "^cpu($SERVER_CORE|$LOAD_CORE) " /proc/stat)
    awk -v server="cpu$SERVER_CORE" -v load="cpu$LOAD_CORE" '
        { total = 0; for (i = 2; i <= 9; i++) total += $i; idle = $5 + $6
          if (NR <= 2) { t0[$1] = total; i0[$1] = idle } else { t1[$1] = total; i1[$1] = idle } }
        END {
            for (c in t1) busy[c] = 100 * (1 - (i1[c] - i0[c]) / (t1[c] - t0[c]))
            printf "%.0f %.0f\n", busy[server], busy[load]
        }' <(echo "$before"; echo "$after")
}

# The first numeric value of "KEY" in a pretty-printed JSON report: json_field FILE KEY.
json_field() {
    sed -n "s/^ *\"$2\": \([0-9.e+-]*\),\{0,1\}$/\1/p" "$1" | head -n 1
}

# The JSON reports of WORKLOAD on SERVER over ROUNDS rounds, comma-separated.
files_of() {
    local workload=$1 server=$2 round files=""
    for round in $(seq 1 "$ROUNDS"); do
        files+="${files:+,}$RUN_DIR/$workload-$server-r$round.json"
    done
    echo "$files"
}

# The `shardcast-bench ws-table` comparison of WORKLOAD over SERVERS.
table_of() {
    local workload=$1 server args=()
    for server in $SERVERS; do
        args+=(--server "$server=$(files_of "$workload" "$server")")
    done
    "$BENCH_BIN" ws-table "${args[@]}"
}

# Ramp of one server over RAMP_RATES, with the script's `run_load` and `workload_args ramp
# RATE`: sets RAMP_BEST (highest rate with nothing missing and p99 under RAMP_P99_MAX_US, or
# "none") and appends "rate missing p99 sustained" lines to RAMP_LINES[server].
ramp() {
    local server=$1 rate missing p99 ok
    RAMP_BEST=none
    for rate in $RAMP_RATES; do
        log "ramp: $server at $rate chats/s"
        run_load "$server" "ramp-$server-$rate" $(workload_args ramp "$rate")
        missing=$(json_field "$RUN_DIR/ramp-$server-$rate.json" missing)
        p99=$(json_field "$RUN_DIR/ramp-$server-$rate.json" p99)
        ok=$(awk -v m="$missing" -v p="$p99" -v max="$RAMP_P99_MAX_US" 'BEGIN { print (m == 0 && p > 0 && p < max) ? "yes" : "no" }')
        RAMP_LINES[$server]+="$rate $missing $p99 $ok"$'\n'
        [[ "$ok" == yes ]] || break
        RAMP_BEST=$rate
    done
}

# The ramp's section: TITLE's heading, what the ramp did, and its tables.
ramp_section() {
    echo "### Highest rate sustained ($1)"
    echo
    echo "Ramp over $RAMP_RATES chats/s ($RAMP_DURATION each after 1 s of warm-up), stopping at the first"
    echo "rate with any delivery missing or p99 ≥ 1 s."
    echo
    ramp_tables
}

# The ramp's two Markdown tables: every step, then each server's best with shardcast's p99
# at that rate (from RAMP_LINES and RAMP_BESTS).
ramp_tables() {
    local server
    echo "| server | rate chats/s | missing | p99 µs | sustained |"
    echo "|---|---:|---:|---:|---|"
    for server in $SERVERS; do
        printf '%s' "${RAMP_LINES[$server]:-}" | awk -v s="$server" 'NF { printf "| %s | %s | %s | %.0f | %s |\n", s, $1, $2, $3, $4 }'
    done
    echo
    echo "| server | highest rate sustained, chats/s | shardcast p99 µs at that rate |"
    echo "|---|---:|---:|"
    for server in $SERVERS; do
        local best=${RAMP_BESTS[$server]:-none} sc_p99="n/a"
        if [[ "$best" != none && " $SERVERS " == *" shardcast "* ]]; then
            sc_p99=$(printf '%s' "${RAMP_LINES[shardcast]:-}" | awk -v r="$best" '$1 == r { printf "%.0f", $3 }')
            [[ -n "$sc_p99" ]] || sc_p99="not reached"
        fi
        echo "| $server | $best | $sc_p99 |"
    done
}

# The median of the numbers on stdin ("n/a" for none).
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) { print v[(NR + 1) / 2] } else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 }
    }'
}

# med SERVER SUFFIX JQ [FORMAT]: the median of a jq figure over the rounds of a server (its
# reports are $RUN_DIR/SERVER-rROUND-SUFFIX.json).
med() {
    local server=$1 suffix=$2 expr=$3 format=${4:-%.1f} files value
    files=$(ls "$RUN_DIR/$server"-r*-"$suffix".json 2>/dev/null || true)
    [[ -n "$files" ]] || { echo "n/a"; return; }
    value=$(for f in $files; do jq -r "$expr" "$f"; done | grep -v null | median)
    if [[ "$value" == "n/a" ]]; then echo "n/a"; else printf "$format" "$value"; fi
}

# ratio A B: A/B as "1.23x" ("n/a" when either is missing or B is 0).
ratio() {
    if [[ "$1" == "n/a" || "$2" == "n/a" ]] || awk "BEGIN { exit !($2 == 0) }"; then
        echo "n/a"
    else
        awk "BEGIN { printf \"%.2fx\", $1 / $2 }"
    fi
}

# kind KIND JQ: a jq filter of one request kind's figure in an hls report.
kind() {
    echo ".kinds[] | select(.kind == \"$1\") | $2"
}
