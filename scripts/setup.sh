#!/usr/bin/env bash
# Installs what shardcast needs on a Debian/Ubuntu machine, only where it is missing.
#   scripts/setup.sh            build and test needs (the README's table lists each one)
#   scripts/setup.sh bench      plus the benchmark peers (nginx) and h2load (bench-https)
#   scripts/setup.sh perf       plus perf and the inferno flame graph tools
set -euo pipefail

want=(gcc:gcc c++:g++ curl:curl pkg-config:pkg-config python3:python3 pip3:python3-pip node:nodejs npm:npm ffmpeg:ffmpeg ffprobe:ffmpeg redis-server:redis-server chromium:chromium)
# FFmpeg's development files (transcoding links them) and clang (bindgen reads their headers).
for pkg in libavcodec-dev libavfilter-dev libswscale-dev libavutil-dev libclang-dev clang; do
  dpkg -s "$pkg" >/dev/null 2>&1 || want+=("__pkg:$pkg")
done
for extra in "$@"; do
  case "$extra" in
    bench) want+=(nginx:nginx-light taskset:util-linux /usr/bin/time:time h2load:nghttp2-client) ;;
    perf) want+=(perf:linux-perf) ;;
    *) echo "setup.sh: unknown extra '$extra' (bench, perf)" >&2; exit 2 ;;
  esac
done

missing=()
for pair in "${want[@]}"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  if [ "$cmd" = __pkg ] || { ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; }; then
    # One package can provide several commands (ffmpeg, ffprobe): list it once.
    case " ${missing[*]} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

# The end-to-end tests drive the server with independent WebSocket clients too.
if ! python3 -c 'import websockets' >/dev/null 2>&1; then
  echo "setup: installing the Python websockets package"
  python3 -m pip install --quiet 'websockets==17.4' || python3 -m pip install --quiet --break-system-packages 'websockets==17.4'
fi

# HEVC over Enhanced RTMP needs an ffmpeg newer than Debian's 5.1: the imageio-ffmpeg wheel
# ships a static one (found by the tests through the package).
if ! python3 -c 'import imageio_ffmpeg' >/dev/null 2>&1; then
  echo "setup: installing imageio-ffmpeg (a recent static ffmpeg for HEVC publishing tests)"
  python3 -m pip install --quiet 'imageio-ffmpeg==0.8.1' || python3 -m pip install --quiet --break-system-packages 'imageio-ffmpeg==0.8.1'
fi

# ... and Node's ws package (pinned by bench/tests/interop/package-lock.json).
interop="$(dirname "$0")/../bench/tests/interop"
if [ ! -d "$interop/node_modules/ws" ]; then
  echo "setup: installing the Node ws package for the interop tests"
  npm ci --prefix "$interop" --no-audit --no-fund --silent
fi

# The browser tests drive Debian's Chromium with playwright-core (pinned by
# bench/tests/browser/package-lock.json; it never downloads a browser).
browser="$(dirname "$0")/../bench/tests/browser"
"$(dirname "$0")/npm-ci-if-stale.sh" "$browser" "playwright-core (browser tests)"

# The watch page's players (hls.js, dash.js) from npm into web/vendor/, embedded by build.rs.
"$(dirname "$0")/web.sh"

for extra in "$@"; do
  if [ "$extra" = perf ] && ! command -v inferno-flamegraph >/dev/null 2>&1; then
    cargo install inferno --locked
  fi
done
