"""The layout module's assets fit together, and the app wires them (no browser: see
tests/app/test_layout_browser.py for the layouts themselves)."""

from __future__ import annotations

import re

import gradio as gr

from pages import layout


def test_js_has_every_setting_filled_in_and_css_uses_the_same_width():
    js = layout.js()
    assert "__" not in re.sub(r"_dl\w*|__dl\w*", "", js)  # no placeholder left
    assert f"const NARROW = {layout.NARROW_PX};" in js
    assert f"const FONT_SCALE = {layout.FONT_SCALE};" in js
    for prefix in layout.HIDDEN_IN_PRESENTATION:
        assert f'"{prefix}"' in js
    css = layout.head()
    assert css.startswith("<style>") and css.endswith("</style>")
    widths = set(re.findall(r"@media \(max-width: ([\d.]+)px\)", css))
    assert f"{layout.NARROW_PX - 0.02:.2f}" in widths


def test_the_app_has_the_toggle_and_tab_bars_that_never_hide_tabs():
    import app

    demo = app.build_demo()
    boxes = [b for b in demo.blocks.values() if isinstance(b, gr.Checkbox)
             and b.elem_id == "dl-present-box"]
    assert len(boxes) == 1 and boxes[0].label == layout.TOGGLE_LABEL
    tabs = [b for b in demo.blocks.values() if isinstance(b, gr.Tabs)]
    assert tabs and all(t.overflow_behavior == "wrap" for t in tabs)
    assert app.launch_kwargs()["head"] == layout.head()
    assert app.launch_kwargs()["js"] == layout.js()
