"""The engine installs as a package, and the README's Python example runs against the install."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use the engine from Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "the README's Python section has no python code block"
    return match.group(1)


def test_dependencies_match_requirements_txt():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert sorted(project["dependencies"]) == sorted(reqs)
    assert project["requires-python"] == ">=3.11"


@pytest.mark.slow
def test_pip_install_then_readme_example(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "diffusion_core", src / "diffusion_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(src)], check=True,
                   timeout=300)
    assert (site / "diffusion_core" / "schedule" / "config.py").is_file()
    (tmp_path / "example.py").write_text(
        "import diffusion_core\nprint('from', diffusion_core.__file__)\n" + _readme_example())
    run = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={"PYTHONPATH": str(site),
                                                      "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert f"from {site}" in run.stdout, run.stdout  # the installed copy, not the checkout
    assert "step 300:" in run.stdout and "samples (1000, 2)" in run.stdout, run.stdout
