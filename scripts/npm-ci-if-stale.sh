#!/usr/bin/env bash
# Runs `npm ci` in DIR unless every package in DIR/package-lock.json is installed at the
# locked version already (so a warm tree costs no network and no time).
#   scripts/npm-ci-if-stale.sh DIR [WHAT]    WHAT names the packages in the log line
set -euo pipefail
dir=$1
what=${2:-$dir}
if node -e '
  const fs = require("fs"), path = require("path");
  const dir = process.argv[1];
  const lock = JSON.parse(fs.readFileSync(path.join(dir, "package-lock.json"), "utf8"));
  for (const [key, want] of Object.entries(lock.packages)) {
    if (!key.startsWith("node_modules/") || want.optional) continue;
    const manifest = path.join(dir, key, "package.json");
    if (!fs.existsSync(manifest)) process.exit(1);
    if (JSON.parse(fs.readFileSync(manifest, "utf8")).version !== want.version) process.exit(1);
  }' "$dir" 2>/dev/null; then
  exit 0
fi
echo "npm ci for $what" >&2
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
