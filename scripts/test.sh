#!/usr/bin/env bash
# Set up the test tools (pip packages, Debian's chromium) and run lint + every test layer.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/setup.sh --test
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
"$PY" -m ruff check .
# One test process by default. TEST_PROCESSES=2 runs two (pytest-xdist, whole modules each):
# 10–12 min instead of 13 on 2 cores, but there browser tests of tab 4 have timed out, their
# long jobs stalled, for a reason not yet found.
"$PY" -m pytest -q -n "${TEST_PROCESSES:-0}" --dist loadfile "$@"
