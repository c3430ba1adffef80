"""Tab 2's t slider, drawn in the browser: what the page needs to compute x_t itself, and its JS.

x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (DDPM eq. 4) is closed-form, so once the page holds x0, ε and the
schedule's two columns √ᾱ_t and √(1−ᾱ_t) (t = 0..T−1, the schedule's float32 buffers), each
``input`` event of the t slider redraws the three pictures (√ᾱ_t·x0, √(1−ᾱ_t)·ε, x_t) and the
histogram at once, before Gradio's round trip (:func:`pages.forward.show_t`) comes back and
replaces them: the server stays the source of truth, and it alone updates the table of numbers
and the t mirror.

The server sends the data only when it changes (:func:`image_payload` when the image or ε does,
:func:`schedule_payload` when the schedule does) into two hidden ``gr.JSON`` components, whose
browser-only change events hand them to the page JS (``assets/forward_fast.js``, installed once
per page by :func:`js`). The JS repeats the server's arithmetic: float32 products and sum as
``forward.q_sample``, the clipping, rounding (half to even) and nearest-neighbour enlargement of
:func:`pages.forward.views.to_image`, and ``torch.histc``'s bins (:data:`views.HIST_BINS` over
±:data:`views.HIST_RANGE`). x0 and ε travel as int16 steps of :data:`X0_STEP` and
:data:`EPS_STEP` (exact float32 values once scaled): a displayed pixel then differs from the
server's by at most one grey level, and only where a value sits within ~0.01 grey level of a
rounding boundary. Anything unusual (no data yet, t out of the data's range, a shape the JS does
not draw) leaves the redraw to the server.

Index convention: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``.
"""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path

import numpy as np

from pages import layout

from . import views

ASSETS = Path(__file__).resolve().parents[2] / "assets"

T_ELEM_ID = "dl-forward-t"
HIST_ELEM_ID = "dl-forward-hist"
# The three pictures the fast path redraws, by the part of x_t they show.
IMAGE_ELEM_IDS = {"signal": "dl-forward-sig", "noise": "dl-forward-noise", "x_t": "dl-forward-xt"}
X0_STEP = 2.0**-14  # x0 ∈ [−1, 1] as int16 multiples of this (error ≤ 3·10⁻⁵)
EPS_STEP = 2.0**-12  # ε as int16 multiples of this: |ε| < 8 (clipped beyond, p ≈ 10⁻¹⁵ a value)


def _int16_b64(x: np.ndarray, step: float) -> str:
    q = np.clip(np.rint(x / step), -32768, 32767).astype("<i2")
    return base64.b64encode(q.tobytes()).decode("ascii")


def image_payload(state) -> dict | None:
    """Image state → what the page needs of x0 and ε (``None``: no image, the server draws).

    ``{"shape": [C, H, W], "x0": base64 int16, "x0_step": float, "eps": ..., "eps_step": ...}``,
    values in C, H, W order (little-endian int16; value = integer · step).
    """
    if not isinstance(state, dict) or "x0" not in state or "eps" not in state:
        return None
    x0, eps = state["x0"], state["eps"]
    if x0.ndim != 4 or x0.shape[0] != 1 or x0.shape[1] not in (1, 3) or eps.shape != x0.shape:
        return None
    return {"shape": list(x0.shape[1:]),
            "x0": _int16_b64(x0[0].numpy(), X0_STEP), "x0_step": X0_STEP,
            "eps": _int16_b64(eps[0].numpy(), EPS_STEP), "eps_step": EPS_STEP}


def schedule_payload(sched) -> dict | None:
    """Schedule state → ``{"T": T, "signal": base64 float32 [T], "noise": base64 float32 [T]}``:
    √ᾱ_t and √(1−ᾱ_t), the schedule's own float32 buffers (``None``: no schedule)."""
    from .handlers import _schedule  # the session's cached NoiseSchedule

    try:
        s = _schedule(sched)
    except Exception:  # noqa: BLE001 (no or bad schedule: the server's path reports it)
        return None

    def b64(buf) -> str:
        return base64.b64encode(buf.numpy().astype("<f4").tobytes()).decode("ascii")

    return {"T": s.T, "signal": b64(s.sqrt_alphas_cumprod),
            "noise": b64(s.sqrt_one_minus_alphas_cumprod)}


# Browser-only change events of the two hidden JSON components: keep the payload for the page
# JS (it may not be installed yet: it then reads window.__dlForwardData when it starts).
STORE_JS = """(d) => {
  const s = (window.__dlForwardData = window.__dlForwardData || {});
  s.%s = d || null;
  if (window.__dlForwardPrepare) window.__dlForwardPrepare();
  return [];
}"""


@functools.cache
def js() -> str:
    """The page JS (``assets/forward_fast.js``) with this module's settings filled in, for
    ``root_block.load(None, js=...)``; it installs the slider's listener once per page."""
    text = (ASSETS / "forward_fast.js").read_text(encoding="utf-8")
    for key, value in (("__T_ELEM_ID__", json.dumps(T_ELEM_ID)),
                       ("__HIST_ELEM_ID__", json.dumps(HIST_ELEM_ID)),
                       ("__IMAGE_ELEM_IDS__", json.dumps(IMAGE_ELEM_IDS)),
                       ("__HIST_BINS__", str(views.HIST_BINS)),
                       ("__HIST_RANGE__", repr(float(views.HIST_RANGE))),
                       ("__DISPLAY_MIN__", str(views.DISPLAY_MIN)),
                       ("__PAINT_FIRST__", layout.paint_first_js())):
        text = text.replace(key, value)
    return text
