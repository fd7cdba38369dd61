#!/usr/bin/env bash
# Runs shardcast's fuzz targets (fuzz/fuzz_targets) with cargo-fuzz, one after another.
#
#   scripts/fuzz.sh                      every target, FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh ws_decoder flv       only the named targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh     a longer campaign
#   FUZZ_ARGS="-max_len=8192" scripts/fuzz.sh   extra libFuzzer flags
#
# Targets run one at a time in a single libFuzzer process each: the machines have two cores,
# and libFuzzer's -jobs/-workers would move the output into fuzz-N.log files.
#
# Each target starts from its committed seeds (fuzz/seeds/TARGET), copied into a working
# corpus (fuzz/corpus/TARGET, kept between runs and ignored by git) that libFuzzer grows.
# Crashes land in fuzz/artifacts/TARGET/; reproduce one with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…` and shrink it with
# `cargo +nightly fuzz tmin TARGET fuzz/artifacts/TARGET/crash-…`.
#
# cargo-fuzz needs the nightly toolchain (for -Zsanitizer); only this script uses it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

all_targets=(rtmp_server flv flv_file wire_client ws_decoder http_request)
seconds="${FUZZ_SECONDS:-60}"
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

status=0
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    cp -f "fuzz/seeds/$target/"* "$corpus/"
    echo "==> $target: ${seconds}s, corpus $corpus"
    # A crash fails this target but not the campaign: the others still run, and the exit
    # status says something was found.
    if ! cargo +nightly fuzz run "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        ${extra_args[@]+"${extra_args[@]}"}; then
        echo "fuzz.sh: $target failed; see fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit "$status"
