#!/usr/bin/env bash
# Set up the test tools (pip packages, Debian's chromium) and run lint + every test layer.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/setup.sh --test
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
"$PY" -m ruff check .
# Two test processes (one per core of the reference machine), whole modules each: the suite
# computes on one thread at a time and waits on browsers and servers much of the time
# (measured on 2 cores: 10–12 min, against 16–18 in one). TEST_PROCESSES=0: one process.
"$PY" -m pytest -q -n "${TEST_PROCESSES:-2}" --dist loadfile "$@"
