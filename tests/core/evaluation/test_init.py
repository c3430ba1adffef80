"""Tests for the diffusion_core.evaluation package: lazy exports, and no torch at import time."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import diffusion_core.evaluation as evaluation

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_package_imports_no_torch() -> None:
    code = ("import sys; import diffusion_core.evaluation as e; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "e.toy2d_quality; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_every_exported_name_is_its_module_s_object() -> None:
    assert dir(evaluation) == sorted(evaluation.__all__)
    for name in evaluation.__all__:
        value = getattr(evaluation, name)
        homes = [m for m in ("distances", "toy2d", "digits", "gradients", "shapes", "guidance",
                                  "vlb")
                 if getattr(importlib.import_module(f"diffusion_core.evaluation.{m}"), name, None)
                 is value]
        assert homes, name
    with pytest.raises(AttributeError, match="nope"):
        evaluation.nope  # noqa: B018
