#!/usr/bin/env bash
# Set up (if needed) and launch Diffusion Lab on http://127.0.0.1:7860
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" app.py
