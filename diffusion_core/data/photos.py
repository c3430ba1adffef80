"""The two sample photos shipped inside scikit-learn (``"china"``, ``"flower"``), for display.

Nothing is downloaded, and scikit-learn is only located, not imported (its import costs ~1.5 s,
which the forward tab's first view need not pay).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from ._checks import check_int
from ._sklearn_files import sklearn_datasets_dir

__all__ = ["sample_photos"]


@lru_cache(maxsize=1)
def _photos_raw() -> dict[str, np.ndarray]:
    """The JPEGs behind ``sklearn.datasets.load_sample_images``, read the way it reads them.

    They ship inside scikit-learn (no download). The package is only located, not imported:
    importing scikit-learn costs ~1.5 s, which the forward tab's first view need not pay.
    """
    folder = sklearn_datasets_dir() / "images"
    out = {}
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as img:
            out[path.stem] = np.asarray(img)
    return out


def sample_photos(size: int = 256) -> dict[str, torch.Tensor]:
    """scikit-learn's sample photos (``"china"``, ``"flower"``) as ``[3, size, size]`` in [−1, 1].

    Each photo (427×640) is centre-cropped to a square and resized with PIL (Lanczos).
    """
    size = check_int("size", size, 4, 1024)
    out = {}
    for name, arr in _photos_raw().items():
        h, w = arr.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = Image.fromarray(arr[top : top + s, left : left + s])
        img = img.resize((size, size), Image.Resampling.LANCZOS)
        t = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0)
        out[name] = t.permute(2, 0, 1).contiguous()
    return out
