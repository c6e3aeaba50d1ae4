#!/usr/bin/env bash
# Create the virtual environment; on Debian without python3-venv, install it first (as root).
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
[[ -x "$venv/bin/python" ]] && exit 0
if ! "$python" -m venv "$venv" 2>/dev/null; then
  rm -rf "$venv"
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    minor=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${minor}-venv" || \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    "$python" -m venv "$venv"
  else
    echo "cannot create $venv: install python3-venv (sudo apt-get install python3-venv)" >&2
    exit 1
  fi
fi
