"""Tests for diffusion_core.data.toy2d_spec: the 2D toy sets' names and specs, torch-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from diffusion_core.data.toy2d_spec import TOY_DATASETS, TOY_SPECS, ToySpec

ROOT = Path(__file__).resolve().parents[3]


def test_toy_names_cover_the_required_sets() -> None:
    required = {"moons", "circles", "swiss_roll", "spirals", "s_curve", "gaussians8",
                "checkerboard"}
    assert required <= set(TOY_DATASETS)


def test_specs_match_their_names_and_make_2d() -> None:
    for name, spec in TOY_SPECS.items():
        assert isinstance(spec, ToySpec) and spec.name == name
        assert spec.scale > 0 and spec.default_noise >= 0 and len(spec.offset) == 2
    assert TOY_DATASETS == tuple(TOY_SPECS)


def test_toy2d_spec_imports_only_the_standard_library() -> None:
    # The UI lists the sets before torch (~1 s) is imported; numpy is not needed either.
    code = ("import sys; import diffusion_core.data.toy2d_spec as s; s.TOY_SPECS['moons']; "
            "bad = sorted({'torch', 'numpy', 'sklearn', 'PIL'} & set(sys.modules)); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
