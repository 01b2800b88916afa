#!/usr/bin/env bash
# Install the Debian packages listed in $1 that are missing. Needs root (CI and dev machines are).
set -euo pipefail
list=$(grep -v '^\s*#' "$1" | tr -s ' \n' ' ' | xargs || true)
[ -n "$list" ] || exit 0
missing=()
for p in $list; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
