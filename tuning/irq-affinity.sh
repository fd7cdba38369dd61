#!/usr/bin/env bash
# Keep a NIC's receive/transmit queue IRQs, RPS and XPS on shardcast's shard cores.
#
#   tuning/irq-affinity.sh [--check] [--iface IFACE] [--cores LIST]
#   tuning/irq-affinity.sh --apply [--dry-run] [--iface IFACE] [--cores LIST]
#
# Queue i's IRQ goes to the i-th core of LIST (round robin when there are more queues than
# cores). Use the same LIST as shardcast's `shards.cores`, so a packet's interrupt, softirq
# and the shard that owns its connection share one core and one cache.
set -euo pipefail

# Roots of /sys and /proc; overridable only to test this script against a fake tree.
SYS=${SHARDCAST_SYSFS:-/sys}
PROC=${SHARDCAST_PROCFS:-/proc}

mode=check
dry_run=0
iface=""
cores_arg=""

usage() {
    cat <<'EOF'
usage: irq-affinity.sh [--check | --apply] [--dry-run] [--iface IFACE] [--cores LIST]

  --check        show each queue IRQ of IFACE with its current and recommended core, RPS and XPS
                 masks, and whether irqbalance is running; changes nothing (default)
  --apply        write smp_affinity_list, rps_cpus and xps_cpus (root)
  --dry-run      with --apply: print the writes instead of doing them
  --iface IFACE  network interface (default: the interface of the default route)
  --cores LIST   shard cores, e.g. 0-7 or 0,2,4 (default: all online CPUs); use the same list
                 as shardcast's shards.cores

Queue i -> i-th core of LIST, round robin. --check exits 0 even when changes are recommended.
EOF
}

die() { echo "irq-affinity.sh: $*" >&2; exit 2; }

while (($#)); do
    case "$1" in
        --check) mode=check ;;
        --apply) mode=apply ;;
        --dry-run) dry_run=1 ;;
        --iface) [[ $# -ge 2 ]] || die "--iface needs a name"; iface=$2; shift ;;
        --cores) [[ $# -ge 2 ]] || die "--cores needs a list"; cores_arg=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
if ((dry_run)) && [[ $mode != apply ]]; then die "--dry-run only makes sense with --apply"; fi
if [[ $mode == apply ]] && ((!dry_run)) && ((EUID != 0)); then
    die "--apply needs root (or add --dry-run to see what it would do)"
fi

# ---------------------------------------------------------------------------------------------
# CPU lists and masks

# "0-3,8,10-11" -> "0 1 2 3 8 10 11" (sorted, unique)
expand_list() {
    local list=$1 part lo hi c
    local -a acc=()
    [[ -z $list ]] && return 0
    IFS=',' read -r -a parts <<<"$list"
    for part in "${parts[@]}"; do
        part=${part//[[:space:]]/}
        [[ -z $part ]] && continue
        if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
            lo=${BASH_REMATCH[1]} hi=${BASH_REMATCH[2]}
            ((lo <= hi)) || die "bad CPU range '$part'"
            for ((c = lo; c <= hi; c++)); do acc+=("$c"); done
        elif [[ $part =~ ^[0-9]+$ ]]; then
            acc+=("$part")
        else
            die "bad CPU list '$list'"
        fi
    done
    printf '%s\n' "${acc[@]}" | sort -n -u | tr '\n' ' ' | sed 's/ $//'
}

# "0 1 2 3 8" -> "0-3,8"
compress_list() {
    local -a cpus
    read -r -a cpus <<<"$*"
    ((${#cpus[@]})) || { printf '(none)'; return; }
    local res="" start=${cpus[0]} prev=${cpus[0]} c i
    for ((i = 1; i <= ${#cpus[@]}; i++)); do
        c=${cpus[i]:-}
        if [[ -n $c ]] && ((c == prev + 1)); then prev=$c; continue; fi
        [[ -n $res ]] && res+=","
        if ((start == prev)); then res+="$start"; else res+="$start-$prev"; fi
        [[ -n $c ]] && start=$c prev=$c
    done
    printf '%s' "$res"
}

# CPU ids -> hex mask as sysfs writes it: 32-bit words, comma separated, most significant first.
cpus_to_mask() {
    local -a words=()
    local c w max=0 i res=""
    for c in "$@"; do
        w=$((c / 32))
        words[w]=$((${words[w]:-0} | (1 << (c % 32))))
        ((w > max)) && max=$w
    done
    for ((i = max; i >= 0; i--)); do
        if [[ -z $res ]]; then res=$(printf '%x' "${words[i]:-0}"); else res+=$(printf ',%08x' "${words[i]:-0}"); fi
    done
    printf '%s' "$res"
}

# hex mask (with or without commas) -> "0 1 5" (ascending)
mask_to_cpus() {
    local hex=${1//,/} i d bit n=0
    local -a bits=()
    hex=${hex#0x}
    for ((i = ${#hex} - 1; i >= 0; i--)); do
        d=$((16#${hex:i:1}))
        for bit in 0 1 2 3; do
            ((d & (1 << bit))) && bits+=($((n + bit)))
        done
        n=$((n + 4))
    done
    printf '%s' "${bits[*]}"
}

# ---------------------------------------------------------------------------------------------
# interface and cores

default_iface() {
    local dev=""
    if command -v ip >/dev/null 2>&1 && [[ $PROC == /proc ]]; then
        dev=$(ip -o route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}')
    fi
    if [[ -z $dev && -r $PROC/net/route ]]; then
        dev=$(awk '$2 == "00000000" { print $1; exit }' "$PROC/net/route")
    fi
    printf '%s' "$dev"
}

if [[ -z $iface ]]; then
    iface=$(default_iface)
    [[ -n $iface ]] || die "no default route; name the interface with --iface"
fi
[[ -e $SYS/class/net/$iface ]] || die "no such interface: $iface"

online=$(expand_list "$(<"$SYS/devices/system/cpu/online")")
if [[ -n $cores_arg ]]; then
    cores=$(expand_list "$cores_arg")
    for c in $cores; do
        [[ " $online " == *" $c "* ]] || die "core $c is not online (online: $(compress_list "$online"))"
    done
else
    cores=$online
fi
read -r -a CORES <<<"$cores"
NCORES=${#CORES[@]}
((NCORES > 0)) || die "empty core list"

# ---------------------------------------------------------------------------------------------
# queue IRQs of the interface

# IRQ name = the last column of /proc/interrupts.
declare -A IRQ_NAME=()
while read -r num name; do
    IRQ_NAME[$num]=$name
done < <(awk '$1 ~ /^[0-9]+:$/ { sub(":", "", $1); print $1, $NF }' "$PROC/interrupts")

# Names of per-queue vectors across common drivers: i40e/ice/ixgbe/bnxt "<dev>-TxRx-N",
# ena "<dev>-Tx-Rx-N", mlx5 "mlx5_compN@pci:...", virtio-net "virtioK-input.N"/"-output.N",
# gve "gve-ntfy-blkN", others "<dev>-rx-N"/"-tx-N", "...-fp-N", "...-qN".
QUEUE_RE='(txrx|tx-rx|rx-?[0-9]|tx-?[0-9]|-rx|-tx|input\.|output\.|comp[0-9]|fp-?[0-9]|-q[0-9]|queue|ntfy-blk)'
# Vectors of the same device that carry no queue: config/admin/link/mailbox/async events.
OTHER_RE='(config|async|ctrl|event|misc|mbx|mgmnt|mgmt|link|aux|cmd|pages|admin|err)'

IRQS=()   # irq numbers, queue order
QIDX=()   # queue index of each
QNAME=()
irq_source=""

find_irqs() {
    local devlink=$SYS/class/net/$iface/device devpath msidir="" d n lname
    local -a cand=()
    if [[ -e $devlink ]]; then
        devpath=$(readlink -f "$devlink")
        # PCI NICs list their vectors in msi_irqs; a virtio NIC's vectors belong to the PCI
        # device one level up.
        for d in "$devpath" "$(dirname "$devpath")"; do
            if [[ -d $d/msi_irqs ]]; then msidir=$d/msi_irqs; break; fi
        done
    fi
    if [[ -n $msidir ]]; then
        irq_source=$msidir
        for n in "$msidir"/*; do
            [[ -e $n ]] || continue
            cand+=("$(basename "$n")")
        done
    else
        # No MSI list (or no device at all): accept IRQs named after the interface, if any.
        irq_source="/proc/interrupts names containing '$iface'"
        for n in "${!IRQ_NAME[@]}"; do
            [[ ${IRQ_NAME[$n]} == *"$iface"[-@_]* ]] && cand+=("$n")
        done
    fi
    ((${#cand[@]})) || return 0
    mapfile -t cand < <(printf '%s\n' "${cand[@]}" | sort -n)

    local -a picked=()
    for n in "${cand[@]}"; do
        [[ -n ${IRQ_NAME[$n]:-} ]] || continue
        lname=${IRQ_NAME[$n],,}
        [[ $lname =~ $OTHER_RE ]] && continue
        [[ $lname =~ $QUEUE_RE ]] && picked+=("$n")
    done
    if ((${#picked[@]} == 0)) && [[ -n $msidir ]]; then
        # Unknown naming: take every vector of the device that is not obviously a control one.
        for n in "${cand[@]}"; do
            [[ -n ${IRQ_NAME[$n]:-} ]] || continue
            [[ ${IRQ_NAME[$n],,} =~ $OTHER_RE ]] && continue
            picked+=("$n")
        done
        ((${#picked[@]})) && irq_source+=" (queue names not recognised: all non-control vectors)"
    fi

    local ord=0 base
    for n in "${picked[@]}"; do
        base=${IRQ_NAME[$n]%%@*}
        IRQS+=("$n")
        QNAME+=("${IRQ_NAME[$n]}")
        if [[ $base =~ ([0-9]+)[^0-9]*$ ]]; then QIDX+=($((10#${BASH_REMATCH[1]}))); else QIDX+=("$ord"); fi
        ord=$((ord + 1))
    done
}

irqbalance_status() {
    local pid
    pid=$(pgrep -x irqbalance 2>/dev/null | head -n1 || true)
    if [[ -n $pid ]]; then
        echo "irqbalance: RUNNING (pid $pid). It rewrites IRQ affinities every few seconds and will undo"
        echo "  this pinning. Stop it (systemctl disable --now irqbalance), or tell it to leave these IRQs"
        echo "  alone in /etc/default/irqbalance: IRQBALANCE_ARGS=\"$(printf -- '--banirq=%s ' "${IRQS[@]}" | sed 's/ $//')\""
        return 0
    fi
    echo "irqbalance: not running (good: nothing will move the IRQs back)"
}

# ---------------------------------------------------------------------------------------------

n_change=0
n_ok=0
n_failed=0

# write_sysfs PATH VALUE WHAT
write_sysfs() {
    local path=$1 value=$2 what=$3
    if ((dry_run)); then
        echo "would run: echo $value > $path   # $what"
        return 0
    fi
    if { printf '%s\n' "$value" >"$path"; } 2>/dev/null; then
        echo "wrote $value > $path   # $what"
    else
        echo "FAILED  $value > $path   # $what (kernel-managed IRQ, or not permitted)" >&2
        n_failed=$((n_failed + 1))
    fi
}

act() {
    # act OK PATH VALUE WHAT : count, and write in --apply mode
    local ok=$1
    if ((ok)); then n_ok=$((n_ok + 1)); return; fi
    n_change=$((n_change + 1))
    [[ $mode == apply ]] && write_sysfs "$2" "$3" "$4"
    return 0
}

echo "interface: $iface    shard cores: $(compress_list "$cores") ($NCORES)    online CPUs: $(compress_list "$online")"

find_irqs
if ((${#IRQS[@]} == 0)); then
    echo "no per-queue IRQs found for $iface (virtual, loopback or software device: nothing to pin)"
    exit 0
fi
echo "IRQs from: $irq_source"

if command -v ethtool >/dev/null 2>&1 && [[ $SYS == /sys ]]; then
    ch=$(ethtool -l "$iface" 2>/dev/null | awk '/Current hardware settings/ { cur = 1 } cur && /^Combined:/ { print $2; exit }' || true)
    if [[ -n $ch && $ch =~ ^[0-9]+$ ]]; then
        echo "channels: $ch combined queue(s)$( ((ch != NCORES)) && echo " — one per shard core is the goal: ethtool -L $iface combined $NCORES (if the NIC allows)")"
    fi
fi

echo
FMT='%-6s | %-32s | %-5s | %-12s | %-9s | %-11s | %s\n'
# shellcheck disable=SC2059 # the format is ours
printf "$FMT" "irq" "name" "queue" "affinity" "effective" "recommended" "status"
for i in "${!IRQS[@]}"; do
    irq=${IRQS[i]}
    want=${CORES[QIDX[i] % NCORES]}
    cur=$(<"$PROC/irq/$irq/smp_affinity_list")
    eff="-"
    [[ -r $PROC/irq/$irq/effective_affinity_list ]] && eff=$(<"$PROC/irq/$irq/effective_affinity_list")
    cur_set=$(expand_list "$cur")
    ok=0
    [[ $cur_set == "$want" ]] && ok=1
    # shellcheck disable=SC2059
    printf "$FMT" "$irq" "${QNAME[i]:0:32}" "${QIDX[i]}" "$cur" "${eff:--}" "$want" "$( ((ok)) && echo ok || echo CHANGE)"
    act "$ok" "$PROC/irq/$irq/smp_affinity_list" "$want" "irq $irq ${QNAME[i]} -> core $want"
done

# --- RPS / XPS ---------------------------------------------------------------------------------
qdir=$SYS/class/net/$iface/queues
rxq=()
txq=()
for d in "$qdir"/rx-*; do [[ -d $d ]] && rxq+=("$d"); done
for d in "$qdir"/tx-*; do [[ -d $d ]] && txq+=("$d"); done
mapfile -t rxq < <(printf '%s\n' "${rxq[@]}" | sort -t- -k2 -n)
mapfile -t txq < <(printf '%s\n' "${txq[@]}" | sort -t- -k2 -n)
NRX=${#rxq[@]}
NTX=${#txq[@]}

echo
echo "RPS (software receive steering): $NRX rx queue(s) for $NCORES shard core(s): $(
    if ((NRX >= NCORES)); then
        echo "off — every shard core has its own hardware queue, steering would only add an IPI"
    else
        echo "spread over all shard cores — fewer hardware queues than cores"
    fi
)"
FMT2='%-8s | %-32s | %-32s | %s\n'
# shellcheck disable=SC2059
printf "$FMT2" "queue" "current" "recommended" "status"
for d in "${rxq[@]}"; do
    q=$(basename "$d")
    if ! cur=$(cat "$d/rps_cpus" 2>/dev/null); then
        # shellcheck disable=SC2059
        printf "$FMT2" "$q" "n/a (no RPS support)" "-" "-"
        continue
    fi
    if ((NRX >= NCORES)); then want_cpus=""; else want_cpus=$cores; fi
    # shellcheck disable=SC2086 # word splitting of the CPU list is intended
    want_mask=$(if [[ -z $want_cpus ]]; then printf 0; else cpus_to_mask $want_cpus; fi)
    cur_cpus=$(mask_to_cpus "$cur")
    ok=0
    [[ $cur_cpus == "$want_cpus" ]] && ok=1
    # shellcheck disable=SC2059
    printf "$FMT2" "$q" "$cur [$(compress_list "$cur_cpus")]" "$want_mask [$(compress_list "$want_cpus")]" "$( ((ok)) && echo ok || echo CHANGE)"
    act "$ok" "$d/rps_cpus" "$want_mask" "RPS $q -> $(compress_list "$want_cpus")"
done

echo
echo "XPS (transmit queue per sending core): tx-i <- shard cores j with j = i (mod $NTX), so each core sends on the queue whose IRQ it owns"
# shellcheck disable=SC2059
printf "$FMT2" "queue" "current" "recommended" "status"
for i in "${!txq[@]}"; do
    d=${txq[i]}
    q=$(basename "$d")
    # Single-queue devices have the file but refuse to read it (ENOENT).
    if ! cur=$(cat "$d/xps_cpus" 2>/dev/null); then
        # shellcheck disable=SC2059
        printf "$FMT2" "$q" "n/a (single tx queue or no XPS)" "-" "-"
        continue
    fi
    want=()
    for j in "${!CORES[@]}"; do
        ((j % NTX == i)) && want+=("${CORES[j]}")
    done
    # more tx queues than cores: queue i is served by core i mod NCORES, like its IRQ
    ((${#want[@]})) || want+=("${CORES[i % NCORES]}")
    want_cpus=$(printf '%s\n' "${want[@]}" | sort -n -u | tr '\n' ' ' | sed 's/ $//')
    # shellcheck disable=SC2086
    want_mask=$(cpus_to_mask $want_cpus)
    cur_cpus=$(mask_to_cpus "$cur")
    ok=0
    [[ $cur_cpus == "$want_cpus" ]] && ok=1
    # shellcheck disable=SC2059
    printf "$FMT2" "$q" "$cur [$(compress_list "$cur_cpus")]" "$want_mask [$(compress_list "$want_cpus")]" "$( ((ok)) && echo ok || echo CHANGE)"
    act "$ok" "$d/xps_cpus" "$want_mask" "XPS $q -> $(compress_list "$want_cpus")"
done

echo
irqbalance_status
echo
if [[ $mode == check ]]; then
    echo "summary: $n_ok ok, $n_change to change.$( ((n_change)) && echo " Apply with: tuning/irq-affinity.sh --apply --iface $iface --cores $(compress_list "$cores")")"
    echo "shardcast: set shards.cores = \"$(compress_list "$cores")\" so the shards run where these queues interrupt."
    exit 0
fi
echo "summary: $n_ok already ok, $n_change $( ((dry_run)) && echo "would be written" || echo written), $n_failed failed"
((n_failed == 0))
