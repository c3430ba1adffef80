"""Start-up: building the UI imports no torch; the page-load events fill every first view.

The start-up benchmark (``bench/ui_bench.py``) measures the time to HTTP 200; these tests pin
the two things that make it fast without changing what a visitor sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from tests.helpers import load_events

ROOT = Path(__file__).resolve().parents[2]


def test_building_the_app_imports_neither_torch_nor_scikit_learn():
    code = (
        "import sys, app\n"
        "demo = app.build_demo()\n"
        "heavy = sorted(m for m in ('torch', 'sklearn', 'scipy') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout, out.stdout


def test_every_page_load_event_fills_its_outputs():
    import app

    demo = app.build_demo()
    events = load_events(demo)
    filled = set()
    for ev in events:
        if ev.fn is None:  # a browser-only script (tab 1's fast path): it fills nothing
            assert not ev.outputs and ev.js, ev.name
            continue
        result = ev.fn()
        values = result if isinstance(result, tuple) else (result,)
        assert len(values) == len(ev.outputs), ev.name
        filled.update(id(o) for o, v in zip(ev.outputs, values, strict=True) if v is not None)
    # Every tab's first view comes from a page-load event (nothing is computed while building):
    # the schedule plot and the 2D data plot, the forward tab's image and schedule states,
    # and the text beside them (image note, model summary, model card).
    kinds = [type(b) for b in demo.blocks.values() if id(b) in filled]
    assert kinds.count(gr.Plot) == 2, kinds
    assert kinds.count(gr.State) == 2, kinds
    assert kinds.count(gr.Markdown) >= 3, kinds
    schedule_event = next(ev for ev in events if isinstance(ev.outputs[0], gr.Plot))
    fig = schedule_event.fn()[0]
    assert isinstance(fig, go.Figure) and len(fig.data) >= 2  # the overlaid schedules
