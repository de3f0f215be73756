#!/usr/bin/env bash
# Installs the Debian packages sked needs to build, test and run, and only the
# missing ones. Uses sudo only when not already root. Safe to run repeatedly.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
      libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev postgresql
      libcurl4-openssl-dev libsodium-dev libcmocka-dev tzdata
      python3 procps curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
