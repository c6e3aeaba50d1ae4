#!/usr/bin/env bash
# Install telewatch with its dev and deep (PyTorch) extras into the venv.
# PyTorch from PyPI is a CUDA build of several GB on x86_64 Linux; telewatch's autoencoders run on the CPU.
# When a local CPU wheel is reachable (pip's find-links) it is used as is; otherwise the CPU index of
# download.pytorch.org is added so pip picks torch 2.13.0+cpu instead of the CUDA build.
set -euo pipefail
pip=${1:?usage: install-python-deps.sh VENV/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
extra=()
if ! "$pip" -m pip download --quiet --no-deps --no-index --dest "$tmp" 'torch==2.13.0' >/dev/null 2>&1; then
    extra=(--extra-index-url https://download.pytorch.org/whl/cpu)
fi
"$pip" -m pip install --quiet --disable-pip-version-check "${extra[@]}" -e '.[dev,deep]'
