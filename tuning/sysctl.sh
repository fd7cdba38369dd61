#!/usr/bin/env bash
# shardcast host sysctl profile and resource limits.
#
#   tuning/sysctl.sh [--check]                 compare this host with the profile (default)
#   tuning/sysctl.sh --apply [--persist]       write the values (root); --persist also installs
#                                              /etc/sysctl.d/60-shardcast.conf,
#                                              /etc/security/limits.d/60-shardcast.conf and
#                                              /etc/modules-load.d/shardcast.conf
#   tuning/sysctl.sh --apply --dry-run [...]   print what --apply would run and write, change nothing
#
# The profile itself is data: tuning/shardcast.sysctl.conf (every key with its reason).
set -euo pipefail
shopt -s extglob

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF="$SCRIPT_DIR/shardcast.sysctl.conf"
SYSCTL_DEST=/etc/sysctl.d/60-shardcast.conf
LIMITS_DEST=/etc/security/limits.d/60-shardcast.conf
MODULES_DEST=/etc/modules-load.d/shardcast.conf

# Resource limits, checked for this shell (and for a running shardcast, if any).
#
# memlock (RLIMIT_MEMLOCK, `ulimit -l`, KiB): io_uring charges pinned memory to it for processes
# without CAP_IPC_LOCK, per user (all processes of the user share one budget):
#   - kernels < 5.12 charge the rings themselves (64 B per SQ entry + 16 B per CQ entry, per
#     shard), which is why the old 64 KiB default broke io_uring programs; newer kernels charge
#     ring memory to the memory cgroup instead;
#   - registered (fixed) buffers stay pinned for the ring's lifetime;
#   - SEND_ZC pins the pages of every zero-copy send until its notification CQE, i.e. until the
#     peer has ACKed the data: at 25 Gbit/s x 100 ms that is up to 312.5 MB in flight.
# Recommended: unlimited. Anything >= 1 GiB (3x the in-flight bound, plus rings) is accepted.
RECOMMENDED_MEMLOCK_KIB=1048576
# nofile (RLIMIT_NOFILE, `ulimit -n`): direct descriptors do not count against it, but the epoll
# backend, listeners, logs and the store do. 1048576 = the kernel default of fs.nr_open, so the
# limits file can never exceed it.
RECOMMENDED_NOFILE=1048576

mode=check
persist=0
dry_run=0

usage() {
    cat <<'EOF'
usage: sysctl.sh [--check | --apply] [--persist] [--dry-run] [--conf FILE]

  --check      print `key | current | recommended | status` for every key of the profile, plus
               the memlock and open-files limits; changes nothing (default)
  --apply      write every value that differs (sysctl -w); requires root. Keys marked at-least
               in the profile are never lowered. Loads tcp_bbr / sch_fq with modprobe if needed.
  --persist    with --apply: also install /etc/sysctl.d/60-shardcast.conf,
               /etc/security/limits.d/60-shardcast.conf and /etc/modules-load.d/shardcast.conf
  --dry-run    with --apply: print the commands and file contents instead of running/writing
  --conf FILE  use another profile (default: tuning/shardcast.sysctl.conf)

Keys missing on this kernel are reported as "missing" and skipped. --check exits 0 whether or
not values differ; a non-zero exit means the script itself failed.
EOF
}

die() { echo "sysctl.sh: $*" >&2; exit 2; }

while (($#)); do
    case "$1" in
        --check) mode=check ;;
        --apply) mode=apply ;;
        --persist) persist=1 ;;
        --dry-run) dry_run=1 ;;
        --conf) [[ $# -ge 2 ]] || die "--conf needs a file"; CONF=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

[[ -r $CONF ]] || die "cannot read profile $CONF"
if ((persist)) && [[ $mode != apply ]]; then
    die "--persist only makes sense with --apply"
fi
if ((dry_run)) && [[ $mode != apply ]]; then
    die "--dry-run only makes sense with --apply"
fi
if [[ $mode == apply ]] && ((!dry_run)) && ((EUID != 0)); then
    die "--apply needs root (or add --dry-run to see what it would do)"
fi

# ---------------------------------------------------------------------------------------------
# profile parsing

KEYS=()
VALUES=()
POLICIES=() # exact | at-least
MODULES=()  # kernel module the key needs, or ""

trim() {
    local s=$1
    s=${s#"${s%%[![:space:]]*}"}
    s=${s%"${s##*[![:space:]]}"}
    printf '%s' "$s"
}

# Collapse runs of blanks/tabs into one space (sysctl prints tuples tab-separated).
normalize() {
    local s
    s=$(printf '%s' "$1" | tr -s '[:space:]' ' ')
    trim "$s"
}

load_profile() {
    local line key value policy=exact module=""
    while IFS= read -r line || [[ -n $line ]]; do
        line=$(trim "$line")
        case "$line" in
            '#@'*)
                line=$(trim "${line#'#@'}")
                case "$line" in
                    at-least) policy=at-least ;;
                    module\ *) module=$(trim "${line#module}") ;;
                    *) die "$CONF: unknown directive '#@ $line'" ;;
                esac
                ;;
            '' | '#'* | ';'*) ;;
            *=*)
                key=$(trim "${line%%=*}")
                value=$(normalize "${line#*=}")
                KEYS+=("$key")
                VALUES+=("$value")
                POLICIES+=("$policy")
                MODULES+=("$module")
                policy=exact
                module=""
                ;;
            *) die "$CONF: cannot parse line: $line" ;;
        esac
    done <"$CONF"
    ((${#KEYS[@]} > 0)) || die "$CONF: no keys"
}

key_path() { printf '/proc/sys/%s' "${1//.//}"; }

# Prints the current value (normalized); returns 1 if the key does not exist on this kernel.
read_key() {
    local path
    path=$(key_path "$1")
    [[ -r $path ]] || return 1
    normalize "$(<"$path")"
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# uint_ge A B: A >= B for decimal strings of any length (fs.file-max may be LONG_MAX or more).
uint_ge() {
    local a=${1##+(0)} b=${2##+(0)}
    ((${#a} != ${#b})) && { ((${#a} > ${#b})); return; }
    [[ $a > $b || $a == "$b" ]]
}

# value_ok CURRENT RECOMMENDED POLICY
value_ok() {
    local cur=$1 rec=$2 policy=$3
    [[ $cur == "$rec" ]] && return 0
    [[ $policy == at-least ]] || return 1
    local -a c r
    read -r -a c <<<"$cur"
    read -r -a r <<<"$rec"
    ((${#c[@]} == ${#r[@]})) || return 1
    local i
    for i in "${!r[@]}"; do
        is_uint "${c[i]}" && is_uint "${r[i]}" || return 1
        uint_ge "${c[i]}" "${r[i]}" || return 1
    done
    return 0
}

module_satisfied() {
    # Is the feature behind this key available without loading anything?
    local key=$1 value=$2
    case "$key" in
        net.ipv4.tcp_congestion_control)
            grep -qw -- "$value" /proc/sys/net/ipv4/tcp_available_congestion_control 2>/dev/null
            ;;
        *) return 0 ;; # qdiscs are auto-loaded by the kernel when the key is written
    esac
}

# ---------------------------------------------------------------------------------------------
# limits

# Prints a limit in KiB-or-"unlimited" form for memlock, count-or-"unlimited" for nofile.
limit_ok() {
    local have=$1 want=$2
    [[ $have == unlimited || $have == infinity ]] && return 0
    is_uint "$have" && ((have >= want))
}

shardcast_pid() { pgrep -n -x shardcast 2>/dev/null || true; }

# /proc/PID/limits prints bytes for "Max locked memory"; convert to KiB like ulimit -l.
proc_limit() {
    local pid=$1 name=$2 which=$3 line soft hard
    line=$(grep -E "^$name " "/proc/$pid/limits" 2>/dev/null) || return 1
    line=${line#"$name"}
    read -r soft hard _ <<<"$line"
    local v=$soft
    [[ $which == hard ]] && v=$hard
    if [[ $name == "Max locked memory" ]] && is_uint "$v"; then v=$((v / 1024)); fi
    printf '%s' "$v"
}

print_limits() {
    local fmt=$1 row status
    local -a rows=()
    rows+=("memlock soft (ulimit -Sl, KiB)|$(ulimit -Sl)|unlimited (>= $RECOMMENDED_MEMLOCK_KIB)|$RECOMMENDED_MEMLOCK_KIB")
    rows+=("memlock hard (ulimit -Hl, KiB)|$(ulimit -Hl)|unlimited (>= $RECOMMENDED_MEMLOCK_KIB)|$RECOMMENDED_MEMLOCK_KIB")
    rows+=("nofile soft (ulimit -Sn)|$(ulimit -Sn)|>= $RECOMMENDED_NOFILE|$RECOMMENDED_NOFILE")
    rows+=("nofile hard (ulimit -Hn)|$(ulimit -Hn)|>= $RECOMMENDED_NOFILE|$RECOMMENDED_NOFILE")
    local pid
    pid=$(shardcast_pid)
    if [[ -n $pid ]]; then
        local v
        for which in soft hard; do
            v=$(proc_limit "$pid" "Max locked memory" "$which") &&
                rows+=("shardcast[$pid] memlock $which (KiB)|$v|unlimited (>= $RECOMMENDED_MEMLOCK_KIB)|$RECOMMENDED_MEMLOCK_KIB")
        done
        for which in soft hard; do
            v=$(proc_limit "$pid" "Max open files" "$which") &&
                rows+=("shardcast[$pid] nofile $which|$v|>= $RECOMMENDED_NOFILE|$RECOMMENDED_NOFILE")
        done
    fi
    echo
    echo "resource limits (this shell$([[ -n $pid ]] && echo ", and the running shardcast"))"
    # shellcheck disable=SC2059 # the format is ours
    printf "$fmt" "limit" "current" "recommended" "status"
    local name cur rec want
    for row in "${rows[@]}"; do
        IFS='|' read -r name cur rec want <<<"$row"
        if limit_ok "$cur" "$want"; then status=ok; else status=CHANGE; limits_change=$((limits_change + 1)); fi
        # shellcheck disable=SC2059
        printf "$fmt" "$name" "$cur" "$rec" "$status"
    done
    if [[ $(id -u) == 0 ]]; then
        echo "note: root has CAP_IPC_LOCK, so io_uring does not charge memlock for root processes;"
        echo "      the memlock limit matters for a shardcast running as an unprivileged user."
    fi
    if [[ -z $pid ]]; then
        echo "note: no running shardcast found; a systemd service gets its limits from the unit"
        echo "      (LimitMEMLOCK=infinity, LimitNOFILE=$RECOMMENDED_NOFILE), not from limits.d."
    fi
}

# ---------------------------------------------------------------------------------------------
# informational checks

default_iface() {
    local dev=""
    if command -v ip >/dev/null 2>&1; then
        dev=$(ip -o route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}')
    fi
    if [[ -z $dev && -r /proc/net/route ]]; then
        dev=$(awk '$2 == "00000000" { print $1; exit }' /proc/net/route)
    fi
    printf '%s' "$dev"
}

print_info() {
    echo
    local tcp_mem high page bdp_pages
    if tcp_mem=$(read_key net.ipv4.tcp_mem); then
        read -r _ _ high <<<"$tcp_mem"
        page=$(getconf PAGESIZE)
        # 2 x BDP = 2 x 312.5 MB = 625,000,000 bytes
        bdp_pages=$((625000000 / page))
        if ((high >= bdp_pages)); then
            echo "info: net.ipv4.tcp_mem max = $high pages ($((high * page / 1048576)) MiB) >= 2 x BDP ($bdp_pages pages): ok (left to the kernel)"
        else
            echo "info: net.ipv4.tcp_mem max = $high pages ($((high * page / 1048576)) MiB) < 2 x BDP ($bdp_pages pages):"
            echo "      TCP will hit memory pressure before the link is full; this host has little RAM for 25 Gbit/s"
        fi
    fi
    local iface
    iface=$(default_iface)
    if [[ -n $iface ]] && command -v tc >/dev/null 2>&1; then
        local root
        root=$(tc qdisc show dev "$iface" root 2>/dev/null | head -n1)
        echo "info: root qdisc of $iface (default route): ${root:-unknown}"
        echo "      net.core.default_qdisc only applies to qdiscs created later; after changing it run"
        echo "      'tc qdisc replace dev $iface root mq' (multi-queue NIC) or '... root fq' (single queue)"
    fi
}

# ---------------------------------------------------------------------------------------------

FMT='%-38s | %-28s | %-28s | %s\n'
limits_change=0

check() {
    local i key rec cur status n_ok=0 n_change=0 n_missing=0
    echo "shardcast sysctl profile: $CONF"
    # shellcheck disable=SC2059
    printf "$FMT" "key" "current" "recommended" "status"
    for i in "${!KEYS[@]}"; do
        key=${KEYS[i]}
        rec=${VALUES[i]}
        if ! cur=$(read_key "$key"); then
            status=missing
            cur="-"
            n_missing=$((n_missing + 1))
        elif value_ok "$cur" "$rec" "${POLICIES[i]}"; then
            status=ok
            n_ok=$((n_ok + 1))
        else
            status=CHANGE
            if [[ -n ${MODULES[i]} ]] && ! module_satisfied "$key" "$rec"; then
                status="CHANGE (needs module ${MODULES[i]})"
            fi
            n_change=$((n_change + 1))
        fi
        [[ ${POLICIES[i]} == at-least ]] && rec=">= $rec"
        # shellcheck disable=SC2059
        printf "$FMT" "$key" "$cur" "$rec" "$status"
    done
    print_limits "$FMT"
    print_info
    echo
    echo "summary: ${#KEYS[@]} keys: $n_ok ok, $n_change to change, $n_missing missing on this kernel;" \
        "limits: $limits_change to change.$( ((n_change + limits_change > 0)) && echo " Run 'tuning/sysctl.sh --apply' as root (add --persist to keep it across reboots).")"
}

# run CMD... : execute, or print in dry-run mode
run() {
    if ((dry_run)); then
        printf 'would run:'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

# install_file DEST MODE : content from stdin
install_file() {
    local dest=$1 mode=$2 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if ((dry_run)); then
        echo "would write $dest (mode $mode):"
        sed 's/^/    /' "$tmp"
    else
        install -D -m "$mode" "$tmp" "$dest"
        echo "wrote $dest"
    fi
    rm -f "$tmp"
}

declare -A BEFORE=()

apply() {
    local i key rec cur module n_changed=0 n_failed=0 n_skipped=0
    ((dry_run)) && echo "dry run: nothing is changed"
    for i in "${!KEYS[@]}"; do
        key=${KEYS[i]}
        rec=${VALUES[i]}
        module=${MODULES[i]}
        if ! cur=$(read_key "$key"); then
            echo "missing  $key: not on this kernel, skipped"
            n_skipped=$((n_skipped + 1))
            continue
        fi
        BEFORE[$key]=$cur
        if value_ok "$cur" "$rec" "${POLICIES[i]}"; then
            continue
        fi
        if [[ -n $module ]] && ! module_satisfied "$key" "$rec"; then
            if ! command -v modprobe >/dev/null 2>&1; then
                echo "skipped  $key: needs module $module and modprobe is not installed (apt-get install kmod)"
                n_skipped=$((n_skipped + 1))
                continue
            fi
            if ! run modprobe "$module"; then
                echo "skipped  $key: module $module is unavailable on this kernel (modprobe failed); keeping '$cur'"
                n_skipped=$((n_skipped + 1))
                continue
            fi
            if ((!dry_run)) && ! module_satisfied "$key" "$rec"; then
                echo "skipped  $key: '$rec' still unavailable after loading $module; keeping '$cur'"
                n_skipped=$((n_skipped + 1))
                continue
            fi
        fi
        if run sysctl -q -w "$key=$rec"; then
            if ((dry_run)); then
                echo "         $key: '$cur' -> '$rec'"
            else
                echo "changed  $key: '$cur' -> '$(read_key "$key" || echo '?')'"
            fi
            n_changed=$((n_changed + 1))
        else
            echo "FAILED   $key: could not write '$rec' (still '$cur')" >&2
            n_failed=$((n_failed + 1))
        fi
    done

    if ((persist)); then
        persist_files
    else
        echo "not persisted: values last until reboot (add --persist to install $SYSCTL_DEST and the limits file)"
    fi

    local iface
    iface=$(default_iface)
    echo "note: net.core.default_qdisc only affects qdiscs created from now on; to move ${iface:-IFACE} to fq now:"
    echo "      tc qdisc replace dev ${iface:-IFACE} root mq   (multi-queue NIC: children are re-created as fq)"
    echo "      tc qdisc replace dev ${iface:-IFACE} root fq   (single-queue device)"
    echo "note: limits of a running process do not change with limits.d; for a running shardcast use"
    echo "      prlimit --pid PID --memlock=unlimited --nofile=$RECOMMENDED_NOFILE, for a service the unit's LimitMEMLOCK=/LimitNOFILE="
    echo
    echo "summary: $n_changed $( ((dry_run)) && echo "would be changed" || echo changed), $n_skipped skipped, $n_failed failed"
    ((n_failed == 0))
}

persist_files() {
    local line key cur i now
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    # The sysctl.d file is the profile itself, except: keys this kernel lacks and at-least keys
    # whose current value is already higher are commented out (a boot-time sysctl would lower them).
    {
        echo "# Installed by shardcast tuning/sysctl.sh --persist on $now from $(basename "$CONF")."
        echo "# Edit the profile in the repository and re-run, rather than this file."
        local pending_at_least=0
        while IFS= read -r line || [[ -n $line ]]; do
            local t
            t=$(trim "$line")
            case "$t" in
                '#@ at-least') pending_at_least=1; echo "$line"; continue ;;
                '' | '#'* | ';'*) echo "$line"; continue ;;
            esac
            key=$(trim "${t%%=*}")
            i=-1
            local j
            for j in "${!KEYS[@]}"; do [[ ${KEYS[j]} == "$key" ]] && i=$j && break; done
            if [[ -z ${BEFORE[$key]+set} ]]; then
                echo "# not on this kernel when installed: $t"
            elif ((pending_at_least)) && ((i >= 0)) && [[ ${BEFORE[$key]} != "${VALUES[i]}" ]] &&
                value_ok "${BEFORE[$key]}" "${VALUES[i]}" at-least; then
                echo "# kept the higher value found on this host (${BEFORE[$key]}): $t"
            else
                echo "$line"
            fi
            pending_at_least=0
        done <"$CONF"
    } | install_file "$SYSCTL_DEST" 0644

    install_file "$LIMITS_DEST" 0644 <<EOF
# Installed by shardcast tuning/sysctl.sh --persist on $now.
# Applies to login sessions (pam_limits) only; systemd services take LimitMEMLOCK= and
# LimitNOFILE= from their unit. "*" does not match root, hence the root lines.
#
# memlock: io_uring pins SEND_ZC pages until the peer ACKs them (up to 25 Gbit/s x 100 ms =
# 312.5 MB in flight), plus registered buffers and, on kernels < 5.12, the rings themselves.
# nofile: $RECOMMENDED_NOFILE, the kernel default of fs.nr_open, so logins never fail before
# the sysctl profile raises fs.nr_open.
*     soft  memlock  unlimited
*     hard  memlock  unlimited
*     soft  nofile   $RECOMMENDED_NOFILE
*     hard  nofile   $RECOMMENDED_NOFILE
root  soft  memlock  unlimited
root  hard  memlock  unlimited
root  soft  nofile   $RECOMMENDED_NOFILE
root  hard  nofile   $RECOMMENDED_NOFILE
EOF

    # Load the modules the profile needs at boot, before systemd-sysctl writes the keys.
    local -a mods=()
    for i in "${!MODULES[@]}"; do
        [[ -n ${MODULES[i]} ]] && mods+=("${MODULES[i]}")
    done
    if ((${#mods[@]})); then
        {
            echo "# Installed by shardcast tuning/sysctl.sh --persist: modules its sysctl profile needs."
            printf '%s\n' "${mods[@]}"
        } | install_file "$MODULES_DEST" 0644
    fi
    if ((!dry_run)); then
        echo "persisted: reload with 'sysctl --system'; limits apply to new login sessions"
    fi
}

load_profile
case "$mode" in
    check) check ;;
    apply) apply ;;
esac
