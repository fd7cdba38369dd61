#!/usr/bin/env bash
# Vendors the watch page's players into web/vendor/ (embedded in the binary by build.rs):
# hls.js and dash.js, pinned by web/package.json and web/package-lock.json, installed with
# `npm ci` only when the installed versions differ from the lock file. No CDN is ever used.
# `just run` and `just test` run this (through scripts/setup.sh) before building.
set -euo pipefail

web=$(cd "$(dirname "${BASH_SOURCE[0]}")/../web" && pwd)

"$(dirname "${BASH_SOURCE[0]}")/npm-ci-if-stale.sh" "$web" "web/ (hls.js, dash.js)"

mkdir -p "$web/vendor"
copy() {
  # Copies only when the contents differ, so the binary is not rebuilt for nothing.
  if ! cmp -s "$1" "$2"; then
    cp "$1" "$2"
  fi
}
copy "$web/node_modules/hls.js/dist/hls.min.js" "$web/vendor/hls.min.js"
copy "$web/node_modules/hls.js/LICENSE" "$web/vendor/hls.js.LICENSE.txt"
copy "$web/node_modules/dashjs/dist/modern/umd/dash.mediaplayer.min.js" "$web/vendor/dash.mediaplayer.min.js"
copy "$web/node_modules/dashjs/LICENSE.md" "$web/vendor/dash.js.LICENSE.txt"
