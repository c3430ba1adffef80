#!/usr/bin/env bash
# Install what Diffusion Lab needs. `--test` adds the test tools and Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ "${1:-}" == "--test" ]]; then
  "$PY" -m pip install --quiet -r requirements-test.txt
  if [[ ! -x /usr/bin/chromium ]]; then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
else
  "$PY" -m pip install --quiet -r requirements.txt
fi
