#!/usr/bin/env bash
# Set up the test tools (pip packages, Debian's chromium) and run lint + every test layer.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/setup.sh --test
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
"$PY" -m ruff check .
"$PY" -m pytest -q "$@"
