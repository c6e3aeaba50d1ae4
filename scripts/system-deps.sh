#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only those that are missing.
# The list grows with the suite: real servers (PostgreSQL, ClickHouse, Prometheus, snmpd) and Chromium.
set -euo pipefail
packages=(${TELEWATCH_TEST_PACKAGES:-})
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
((${#missing[@]})) || exit 0
if [[ $(id -u) != 0 ]]; then
  echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
