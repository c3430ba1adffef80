"""Decoding a user's upload: time and peak memory of ``load_image_file(path, max_side=256)``.

    python -m bench.upload_decode [--repeat 3] [--threads 2] [--concurrent 4]

Two files are generated in a temporary folder (a smooth colour field plus pixel noise, like a
photo): a 36-megapixel JPEG (7360 × 4912, a full-frame camera's size) and a 12-megapixel PNG
(4000 × 3000). Each is read two ways:

* ``reduced``: ``load_image_file`` as the app calls it (JPEG decoded at 1/8 scale, then
  ``Image.reduce``, float only at ≥ 2 × 256 px);
* ``full``: the full-size path it replaced (decode everything, float32 ``[H, W, C]``, then the
  torch resize), kept as ``files._load(..., early=False)``. It is a little leaner than the code
  before the change, which also made a full-size copy in ``ImageOps.exif_transpose`` (measured
  once on the 36 MP JPEG: 1.10 GB peak growth for that code, 0.95 GB for ``full``).

Every case runs in a fresh subprocess, so one case's freed-but-kept memory cannot hide the next
one's peak. The child imports everything and reads a small image first, resets its peak-RSS
counter (``/proc/self/clear_refs``), makes one call and reports ``VmHWM`` after it minus
``VmRSS`` before it: the memory a server needs on top of what it already holds. It then times
``--repeat`` more calls (median). A last pair of cases makes ``--concurrent`` calls at once on
threads (a classroom uploading together; PIL, numpy and torch release the GIL while they work).
The two paths' outputs are compared (mean |Δ| in [−1, 1] units). Writes
bench/results/upload_decode.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageChops

from bench.common import median_ms, write_results

ROOT = Path(__file__).resolve().parent.parent
MAX_SIDE = 256
FILES = {"jpeg_36mp": ("photo.jpg", (7360, 4912)), "png_12mp": ("photo.png", (4000, 3000))}


def photo(w: int, h: int, seed: int) -> Image.Image:
    """A smooth random colour field (features ~100 px) plus pixel-level noise (±12 levels)."""
    rng = np.random.default_rng(seed)
    smooth = rng.integers(30, 226, (h // 100, w // 100, 3), dtype=np.uint8)
    img = Image.fromarray(smooth).resize((w, h), Image.Resampling.BILINEAR)
    patch = rng.integers(116, 141, (251, 257, 3), dtype=np.uint8)
    noise = np.tile(patch, (h // 251 + 1, w // 257 + 1, 1))[:h, :w]
    return ImageChops.add(img, Image.fromarray(noise), scale=1.0, offset=-128)


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def child(spec: dict) -> dict:
    """One case, in this (fresh) process: peak memory of one call, then the median time."""
    from diffusion_core.data import files

    torch.set_num_threads(spec["threads"])
    early = spec["path"] == "reduced"

    def call(path: str) -> torch.Tensor:
        return files._load(path, max_side=MAX_SIDE, mode="RGB", center_crop=False,
                           max_pixels=files.MAX_IMAGE_PIXELS, early=early)[0]

    for warm in spec["warmup"]:  # imports, PIL plugins, torch kernels
        call(warm)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    rss0 = _status_mb("VmRSS")
    t0 = time.perf_counter()
    n = spec["concurrent"]
    if n == 1:
        out = call(spec["file"])
    else:
        outs: list[torch.Tensor] = []
        threads = [threading.Thread(target=lambda: outs.append(call(spec["file"])))
                   for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out = outs[0]
    first_s = time.perf_counter() - t0
    peak = _status_mb("VmHWM") - rss0
    result = {"peak_rss_growth_mb": round(peak, 1), "rss_before_mb": round(rss0, 1),
              "first_call_s": round(first_s, 3), "hwm_reset": reset}
    if n == 1:
        result["time"] = median_ms(lambda: call(spec["file"]), repeat=spec["repeat"], warmup=0)
        torch.save(out, spec["out"])
    return result


def run_child(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.upload_decode", "--child",
                           json.dumps(spec)], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"case {spec} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per case (median)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in each child")
    ap.add_argument("--concurrent", type=int, default=4,
                    help="calls at once in the concurrency cases (0: skip them)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        meta, warmup = {}, []
        for seed, (key, (name, (w, h))) in enumerate(FILES.items()):
            path = tmp / name
            photo(w, h, seed).save(path, quality=92) if name.endswith(".jpg") \
                else photo(w, h, seed).save(path)
            small = tmp / f"warm{path.suffix}"
            photo(800, 600, seed).save(small)
            warmup.append(str(small))
            meta[key] = {"width": w, "height": h, "megapixels": round(w * h / 1e6, 1),
                         "file_mb": round(path.stat().st_size / 2**20, 1),
                         "full_float32_mb": round(w * h * 3 * 4 / 2**20, 1)}
        results = []
        cases = [(key, p, 1) for key in FILES for p in ("reduced", "full")]
        if args.concurrent > 1:
            cases += [("jpeg_36mp", p, args.concurrent) for p in ("reduced", "full")]
        for key, path, n in cases:
            out = tmp / f"{key}_{path}.pt"
            spec = {"file": str(tmp / FILES[key][0]), "path": path, "concurrent": n,
                    "repeat": args.repeat, "threads": args.threads, "warmup": warmup,
                    "out": str(out)}
            r = {"file": key, "path": path, "concurrent": n, **run_child(spec)}
            results.append(r)
            t = r["time"]["median_ms"] / 1000 if "time" in r else r["first_call_s"]
            label = key if n == 1 else f"{n} × {key} at once"
            print(f"{label:>22} {path:>8}: {t:7.3f} s, peak RSS growth "
                  f"{r['peak_rss_growth_mb']:7.1f} MB", flush=True)
        agreement = {}
        for key in FILES:
            a, b = (torch.load(tmp / f"{key}_{p}.pt", weights_only=True)
                    for p in ("reduced", "full"))
            agreement[key] = {"mean_abs_diff": round(float((a - b).abs().mean()), 5),
                              "max_abs_diff": round(float((a - b).abs().max()), 5),
                              "shape": list(a.shape)}
            print(f"{key:>22}: reduced vs full mean |Δ| {agreement[key]['mean_abs_diff']:.4f}"
                  f" (max {agreement[key]['max_abs_diff']:.4f}), shape {tuple(a.shape)}")

    by = {(r["file"], r["path"], r["concurrent"]): r for r in results}
    ratios = {}
    for key, path, n in cases:
        if path == "reduced":
            new, old = by[(key, "reduced", n)], by[(key, "full", n)]
            name = key if n == 1 else f"{key}_x{n}"
            tn = new["time"]["median_ms"] if n == 1 else new["first_call_s"] * 1000
            to = old["time"]["median_ms"] if n == 1 else old["first_call_s"] * 1000
            ratios[name] = {"time_full_over_reduced": round(to / tn, 1),
                            "memory_full_over_reduced": round(
                                old["peak_rss_growth_mb"] / max(new["peak_rss_growth_mb"], 0.1),
                                1)}
    write_results("upload_decode", {"max_side": MAX_SIDE, "threads": args.threads,
                                    "repeat": args.repeat, "files": meta, "results": results,
                                    "ratios": ratios, "agreement": agreement})


if __name__ == "__main__":
    main()
