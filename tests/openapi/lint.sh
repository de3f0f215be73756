#!/usr/bin/env bash
# Lints docs/openapi.yaml with a pinned Redocly CLI (the ctest test
# docs.openapi_lint). The linter and everything under it are pinned by
# package-lock.json beside this script and installed with `npm ci` into
# DEST (default build/openapi-lint), once per lockfile: a stamp records the
# lockfile last installed, so later runs start the linter at once.
# Telemetry and the update check are off; the lint itself needs no network.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dest=${1:-$root/build/openapi-lint}
command -v npm >/dev/null || { echo "lint.sh: npm is missing (make deps installs it)" >&2; exit 1; }
mkdir -p "$dest"
if ! cmp -s "$here/package-lock.json" "$dest/.installed-lock" || [ ! -x "$dest/node_modules/.bin/redocly" ]; then
  rm -f "$dest/.installed-lock"
  cp "$here/package.json" "$here/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$here/package-lock.json" "$dest/.installed-lock"
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
exec "$dest/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" --format=stylish \
  "$root/docs/openapi.yaml"
