#!/usr/bin/env bash
# Installs the npm packages pinned by SRC/package-lock.json into DEST with
# `npm ci`, once per lockfile: a stamp (DEST/.installed-lock) records the
# lockfile last installed, so later runs do nothing. CHECK (a path under DEST)
# must exist after an install, else the install is redone (a removed
# node_modules). Install scripts never run (--ignore-scripts), and nothing is
# downloaded but the locked packages (no browser downloads, no audit).
# Used by the tests that need a pinned npm tool: tests/openapi/lint.sh and
# tests/browser/run.sh.
#
#     tests/npm_ci.sh SRC DEST CHECK
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: npm_ci.sh SRC DEST CHECK" >&2; exit 2; }
src=$1 dest=$2 check=$3
command -v npm >/dev/null || { echo "npm_ci.sh: npm is missing (make deps installs it)" >&2; exit 1; }
mkdir -p "$dest"
# Tests that share DEST (e2e.browser and e2e.browser.postgres) may start at
# once under ctest -j: the first installs, the other waits for it.
exec 9>"$dest/.lock"
flock 9
if ! cmp -s "$src/package-lock.json" "$dest/.installed-lock" || [ ! -e "$dest/$check" ]; then
  rm -f "$dest/.installed-lock"
  cp "$src/package.json" "$src/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  [ -e "$dest/$check" ] || { echo "npm_ci.sh: $dest/$check missing after npm ci" >&2; exit 1; }
  cp "$src/package-lock.json" "$dest/.installed-lock"
fi
