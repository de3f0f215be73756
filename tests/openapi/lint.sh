#!/usr/bin/env bash
# Lints docs/openapi.yaml with a pinned Redocly CLI (the ctest test
# docs.openapi_lint). The linter and everything under it are pinned by
# package-lock.json beside this script and installed with `npm ci` into
# DEST (default build/openapi-lint), once per lockfile (tests/npm_ci.sh), so
# later runs start the linter at once.
# Telemetry and the update check are off; the lint itself needs no network.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dest=${1:-$root/build/openapi-lint}
bash "$root/tests/npm_ci.sh" "$here" "$dest" node_modules/.bin/redocly
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
exec "$dest/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" --format=stylish \
  "$root/docs/openapi.yaml"
