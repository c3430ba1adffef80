"""Tests for the diffusion_core.data package: lazy exports, and no torch at import time."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import diffusion_core.data as data

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_package_and_its_specs_imports_no_torch() -> None:
    code = ("import sys; from diffusion_core import data; "
            "names = data.TOY_DATASETS, data.TOY_SPECS, data.ToySpec; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "data.make_2d('moons', 3); assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_every_exported_name_is_its_module_s_object() -> None:
    assert "make_2d" in data.__all__ and "load_image_dataset" in data.__all__
    assert dir(data) == sorted(data.__all__)
    for name in data.__all__:
        value = getattr(data, name)
        homes = [m for m in ("toy2d_spec", "toy2d", "imageset", "digits", "synthetic", "photos",
                             "files", "registry")
                 if getattr(importlib.import_module(f"diffusion_core.data.{m}"), name, None)
                 is value]
        assert homes, name
    assert data.make_2d("moons", 5, seed=1).shape == (5, 2)
    with pytest.raises(AttributeError, match="nope"):
        data.nope  # noqa: B018
