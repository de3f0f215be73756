#!/usr/bin/env bash
# The dashboard's browser test (the ctest test e2e.browser): installs the
# Playwright driver pinned by package-lock.json beside this script into
# BUILD/browser-test (npm ci, once per lockfile: tests/npm_ci.sh), then runs
# dashboard.test.mjs, which starts a real `sked dev` ($SKED_BIN, default
# BUILD/sked) and drives Debian's chromium ($SKED_CHROMIUM, default
# /usr/bin/chromium) headless. Playwright never downloads a browser.
# Screenshots of every page land in BUILD/screenshots/.
#
#     tests/browser/run.sh [BUILD]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bash "$root/tests/npm_ci.sh" "$here" "$build/browser-test" node_modules/playwright-core/package.json
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export SKED_BIN=${SKED_BIN:-$build/sked}
export SKED_BROWSER_MODULES=$build/browser-test/node_modules
export SKED_SCREENSHOTS=${SKED_SCREENSHOTS:-$build/screenshots}
exec node --test-reporter=spec "$here/dashboard.test.mjs"
