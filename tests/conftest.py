"""Test-wide settings: no calls home, one torch thread (small models; no oversubscription)."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="diffusion-lab-tests-"))

import torch  # noqa: E402

torch.set_num_threads(1)
