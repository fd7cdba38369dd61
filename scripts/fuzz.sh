#!/usr/bin/env bash
# Runs shardcast's fuzz targets (fuzz/fuzz_targets) with cargo-fuzz, one after another, and
# records the campaign in bench/results/fuzz.md.
#
#   scripts/fuzz.sh                      every target, FUZZ_RUNS (default 10,000,000) executions each
#   scripts/fuzz.sh ws_decoder flv       only the named targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh     a time budget per target instead of a run count
#   FUZZ_ARGS="-max_len=8192" scripts/fuzz.sh   extra libFuzzer flags
#
# Targets run one at a time in a single libFuzzer process each: the machines have two cores,
# and libFuzzer's -jobs/-workers would move the output into fuzz-N.log files.
#
# Each target starts from its committed seeds (fuzz/seeds/TARGET), copied into a working
# corpus (fuzz/corpus/TARGET, kept between runs and ignored by git) that libFuzzer grows.
# Crashes land in fuzz/artifacts/TARGET/; reproduce one with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…` and shrink it with
# `cargo +nightly fuzz tmin TARGET fuzz/artifacts/TARGET/crash-…`. Every target's seeds are
# replayed by `just test` (fuzz/src/lib.rs, `seeds_pass`).
#
# The report (bench/results/fuzz.md) is rewritten after each target, from the logs in
# bench/results/tmp/fuzz-<time>/, so an interrupted campaign keeps what it finished.
#
# cargo-fuzz needs the nightly toolchain (for -Zsanitizer); only this script uses it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

all_targets=(rtmp_server flv flv_file wire_client ws_decoder http_request http_response tls_http)
seconds="${FUZZ_SECONDS:-}"
runs="${FUZZ_RUNS:-10000000}"
run_dir="bench/results/tmp/fuzz-$(date +%Y%m%d-%H%M%S)"
report="bench/results/fuzz.md"
read -r -a extra_args <<<"${FUZZ_ARGS:-}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi
for target in "${targets[@]}"; do
    if [[ ! -d "fuzz/seeds/$target" ]]; then
        echo "fuzz.sh: unknown target '$target' (have: ${all_targets[*]})" >&2
        exit 2
    fi
done

# The report's rows as they stand, by target, for targets whose logs are not on this machine.
declare -A old_rows=()
if [[ -f "$report" ]]; then
    while IFS= read -r row; do
        name=$(sed -n 's/^| `\([a-z_]*\)` | [0-9].*/\1/p' <<<"$row")
        [[ -n "$name" ]] && old_rows[$name]=$row
    done <"$report"
fi

# Rewrites the report from every finished target's log, from this campaign or an earlier one.
write_report() {
    {
        echo "# Fuzzing campaign"
        echo
        echo "Reproduce with \`just fuzz\` (\`scripts/fuzz.sh\`). Each row is the newest finished run of"
        echo "its target (\`run\`: its log in bench/results/tmp/); one libFuzzer process per target,"
        echo "$(nproc) cores,"
        echo "\`-rss_limit_mb=2048\`, starting from the committed seeds plus the working corpus"
        echo "kept from earlier runs. \`cov\` and \`ft\` are from libFuzzer's final \`DONE\` line."
        echo
        echo "| target | run | executions | seconds | exec/s | cov | ft | corpus entries | crashes |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
        local t log execs secs rate cov ft corp crashes
        for t in "${all_targets[@]}"; do
            # The newest finished run of each target, from this campaign or an earlier one.
            log=""
            for candidate in bench/results/tmp/fuzz-*/"$t.log"; do
                [[ -e "$candidate" ]] && grep -q '^Done [0-9]* runs' "$candidate" && log=$candidate
            done
            if [[ -z "$log" ]]; then
                # No log on this machine (a fresh clone): keep the row the report already has.
                [[ -n "${old_rows[$t]:-}" ]] && echo "${old_rows[$t]}"
                continue
            fi
            execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
            secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
            rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
            cov=$(sed -n 's/.*DONE *cov: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
            ft=$(sed -n 's/.*DONE .* ft: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
            corp=$(sed -n 's/.*DONE .* corp: \([0-9]*\)\/.*/\1/p' "$log" | tail -n 1)
            crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | grep -c '^crash-' || true)
            echo "| \`$t\` | $(basename "$(dirname "$log")" | sed 's/fuzz-//') | ${execs:-?} | ${secs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${crashes:-0} |"
        done
        echo
        echo "Crash inputs, when any, are in \`fuzz/artifacts/TARGET/\`; each one found is fixed"
        echo "and its input added to the target's seeds, so \`just test\` replays it."
        if [[ -f fuzz/findings.md ]]; then
            echo
            cat fuzz/findings.md
        fi
    } >"$report"
}

mkdir -p "$run_dir"
status=0
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    cp -f "fuzz/seeds/$target/"* "$corpus/"
    if [[ -n "$seconds" ]]; then
        budget=(-max_total_time="$seconds")
        echo "==> $target: ${seconds}s, corpus $corpus"
    else
        budget=(-runs="$runs")
        echo "==> $target: $runs runs, corpus $corpus"
    fi
    # A crash fails this target but not the campaign: the others still run, and the exit
    # status says something was found.
    if ! cargo +nightly fuzz run "$target" "$corpus" -- \
        "${budget[@]}" -rss_limit_mb=2048 -print_final_stats=1 \
        ${extra_args[@]+"${extra_args[@]}"} 2>&1 | tee "$run_dir/$target.log"; then
        echo "fuzz.sh: $target failed; see fuzz/artifacts/$target/" >&2
        status=1
    fi
    write_report
done
echo "fuzz.sh: wrote $report"
exit "$status"
