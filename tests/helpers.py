"""Helpers the test modules share (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path

import torch

# Browser tests: Debian's chromium driven by playwright (never `playwright install`).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots (git-ignored)

ACROSS_CPUS = dict(rtol=1e-5, atol=1e-5)
"""``torch.testing.assert_close`` tolerance for float32 numbers recorded on another machine.

The same code gives bit-identical numbers on one CPU, but not across instruction sets: numbers
recorded on an AVX-512 machine differed on an AVX2 one (AMD EPYC) by ≤ 2e-6 absolute, ≤ 5e-6
relative (the matrix kernels add in another order). What such a test guards against — random
numbers drawn in another order, a changed layer — moves the numbers by 1e-2 or more."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(demo):
    """Launch ``demo`` on a free localhost port for the ``with`` block; yields its URL."""
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                        quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def load_events(demo) -> list:
    """The event functions ``demo`` runs when a browser opens the page (``Blocks.load``)."""
    return [fn for fn in demo.fns.values() if any(ev == "load" for _, ev in fn.targets)]


def load_event_for(demo, component):
    """The page-load event that fills ``component`` (exactly one must exist)."""
    found = [fn for fn in load_events(demo) if component in fn.outputs]
    assert len(found) == 1, f"{len(found)} load events fill {component!r}"
    return found[0]


# Data x0 ~ N(MU, SIGMA² I): its exact ε-predictor is known in closed form (sampler tests).
MU = torch.tensor([1.0, -0.5])


SIGMA = 0.5


class GaussianEps(torch.nn.Module):
    """The exact ε-predictor for data x0 ~ N(MU, SIGMA² I): E[ε | x_t] in closed form.

    x_t = √ᾱ x0 + √(1−ᾱ) ε is Gaussian, so E[ε | x_t] = √(1−ᾱ)(x_t − √ᾱ μ) / (ᾱ σ² + 1 − ᾱ).
    """

    def __init__(self, schedule):
        super().__init__()
        self.ab = schedule.float64["alphas_cumprod"]

    def forward(self, x_t, t):
        ab = self.ab[t].to(x_t.dtype)[:, None]
        return (1 - ab).sqrt() * (x_t - ab.sqrt() * MU) / (ab * SIGMA**2 + 1 - ab)


def diverge_at_step(monkeypatch, step: int) -> None:
    """Make every ``Trainer`` raise ``TrainingDiverged`` from training step ``step`` on, as a
    NaN loss would (the trainer's own NaN guard is tested in tests/core/training)."""
    from diffusion_core.training import Trainer, TrainingDiverged

    real_step = Trainer.train_step

    def flaky(self, lr):
        if self.step >= step:
            raise TrainingDiverged(f"the loss became nan at step {step + 1}")
        return real_step(self, lr)

    monkeypatch.setattr(Trainer, "train_step", flaky)


def trained_toy_page(browser, url: str, steps: int | None = None):
    """A new 1440×900 page of the app at ``url`` on tab 3, its 2D preset trained once (▶ Train
    waited to "Done"), for ``steps`` steps typed into the Steps box (None: the preset's 300);
    returns ``(context, page)`` (the caller closes the context)."""
    import re

    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.get_by_role("tab", name="1 · Noise schedules").first.click()  # past "Start here"
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    page.wait_for_timeout(800)
    page.get_by_role("tab", name=re.compile(r"^3 · ")).first.click()
    page.wait_for_timeout(600)
    if steps is not None:
        box = page.get_by_label("Steps", exact=True).filter(visible=True).first
        box.fill(str(steps))
        box.press("Tab")
    page.get_by_role("button", name="▶ Train").click()
    done = "Done: step" if steps is None else f"Done: step {steps} / {steps}"
    page.get_by_text(done, exact=False).first.wait_for(timeout=90_000)
    return ctx, page


# A drag in one task: the slider takes each value with an `input` event, as a fast drag does.
# Returns what the page shows right after (``probe``: a JS expression, read synchronously) and
# the values that reached the bubble phase on document within ``wait_ms`` — where Gradio hears
# them. With assets/paint_first.js: one, the last value, after the drawing.
_DRAG_JS = """([sel, values, probe, waitMs]) => new Promise((done) => {
  const el = document.querySelector(sel), heard = [];
  const hear = (ev) => { if (ev.target === el) heard.push(Number(el.value)); };
  document.addEventListener('input', hear);
  for (const v of values) {
    el.value = String(v);
    el.dispatchEvent(new Event('input', {bubbles: true}));
  }
  const shown = (0, eval)(probe);
  const early = heard.length;  // heard during the drag itself
  setTimeout(() => { document.removeEventListener('input', hear);
                     done({shown, early, heard}); }, waitMs);
})"""


def drag_in_one_task(page, slider: str, values, probe: str = "null", wait_ms: int = 400
                     ) -> dict:
    """``{"shown": probe's value right after the drag, "early": events Gradio heard during
    it, "heard": the values it heard within wait_ms}`` (see ``_DRAG_JS``)."""
    return page.evaluate(_DRAG_JS, [slider, list(values), probe, wait_ms])
