#!/usr/bin/env bash
# Installs the Debian packages sked needs to build, test and run, and only the
# missing ones. Uses sudo only when not already root. Safe to run repeatedly.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
      libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev postgresql
      libcurl4-openssl-dev libsodium-dev libcmocka-dev tzdata
      python3 python3-yaml python3-jsonschema nodejs npm procps curl
      prometheus)
# The alert tests' SMTP sink and its throwaway certificates (tests/e2e/sinks.py).
pkgs+=(python3-aiosmtpd openssl)
# The CLI reads YAML workflow documents (libyaml; its runtime library is libyaml-0-2).
pkgs+=(libyaml-dev)
# Plugin manifests are read from the ELF file without loading it (elfutils' libelf).
pkgs+=(libelf-dev)
# The dashboard's browser test (tests/browser) drives Debian's chromium, headless, with a
# pinned Playwright (npm); a font so its screenshots show text.
pkgs+=(chromium fonts-dejavu-core)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" && continue
  # npm and jsonschema may come from elsewhere (NodeSource's nodejs bundles npm
  # and conflicts with Debian's; pip): what is there to use counts as installed.
  case "$p" in
    npm) command -v npm >/dev/null && continue ;;
    python3-jsonschema) python3 -c 'import jsonschema' 2>/dev/null && continue ;;
    python3-yaml) python3 -c 'import yaml' 2>/dev/null && continue ;;
    # The SMTP sink of the alert tests runs it (tests/e2e/sinks.py).
    python3-aiosmtpd) python3 -c 'import aiosmtpd' 2>/dev/null && continue ;;
  esac
  missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
