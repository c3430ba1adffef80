"""Data files that ship inside scikit-learn, found without importing it.

Importing scikit-learn costs ≈ 1.5 s and ≈ 110 MB per process (with SciPy); the digits and the
sample photos are plain files in its package, so we only locate the package and read them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def sklearn_datasets_dir() -> Path:
    """``sklearn/datasets`` of the installed scikit-learn; ``ValueError`` if it is missing."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("scikit-learn is not installed; its data files are unavailable")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets"
