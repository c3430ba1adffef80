"""Phone and projector layouts: the CSS and page JS for narrow screens, and the
"presentation mode" checkbox.

Below :data:`NARROW_PX` of viewport width (a phone) the tab bars scroll sideways, a row's plot
comes before the controls that drive it, HTML tables scroll, and Plotly figures with subplots
side by side (tab 1's 2×2 schedules, …) are restacked one subplot per row in the browser
(``assets/layout.js``; the server sends the same figure to every screen). The Plotly toolbar
shows only while the pointer is over a plot.

Presentation mode (a projector in a lecture room) enlarges the page's text and every plot's
fonts (× :data:`FONT_SCALE`) and lines (× :data:`LINE_SCALE`) — Plotly lays the larger text
out itself — and hides the explanation accordions and advanced settings named in
:data:`HIDDEN_IN_PRESENTATION`. It is a class on the page's ``<body>``, so it stays on while
switching tabs, and this browser remembers it (``localStorage``) for the next visit.

Use (while the app's Blocks is being built, and at launch)::

    layout.presentation_toggle()
    demo.launch(css=common.CSS, head=layout.head(), js=layout.js())
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import gradio as gr

ASSETS = Path(__file__).resolve().parent.parent / "assets"
NARROW_PX = 700  # viewport width (CSS px) below which the phone layout applies (the @media
#                  rules of assets/layout.css say max-width: 699.98px)
FONT_SCALE = 1.3  # presentation mode: plot fonts × this
LINE_SCALE = 1.6  # presentation mode: plot line widths × this

# Accordions whose label starts with one of these are hidden in presentation mode (the long
# explanations and the advanced settings; the features in accordions stay).
HIDDEN_IN_PRESENTATION = (
    "How this works", "How guidance works", "What am I looking at", "Why the bound",
    "Why the simple loss", "Model card", "cosine s, polynomial p", "Model and custom schedule",
    "Bring a model back",
)

TOGGLE_LABEL = "Presentation mode (projector)"
TOGGLE_INFO = ("Larger text, thicker plot lines; hides the explanations and advanced "
               "settings. Stays on across tabs.")


@functools.cache
def head() -> str:
    """The layout CSS (``assets/layout.css``) as a ``<style>`` element for ``launch(head=...)``.

    Not ``launch(css=...)``: Gradio scopes that CSS by prefixing every selector with
    ``.gradio-container… .contain``, which breaks rules on ``body`` (presentation mode's class)
    inside ``@media`` blocks.
    """
    return "<style>\n" + (ASSETS / "layout.css").read_text(encoding="utf-8") + "</style>"


@functools.cache
def paint_first_js() -> str:
    """``assets/paint_first.js``: a JS function ``(event, slider)`` that a slider's browser-side
    fast path calls after drawing, so Gradio's own reaction to the ``input`` event waits until
    the drawing is on screen (tabs 2 and 3; spliced into their scripts)."""
    return (ASSETS / "paint_first.js").read_text(encoding="utf-8").strip()


@functools.cache
def js() -> str:
    """The page JS (``assets/layout.js``) with this module's settings filled in; a function
    for ``launch(js=...)`` that installs ``window.dlLayout`` once per page."""
    text = (ASSETS / "layout.js").read_text(encoding="utf-8")
    for key, value in (("__NARROW__", NARROW_PX), ("__FONT_SCALE__", FONT_SCALE),
                       ("__LINE_SCALE__", LINE_SCALE),
                       ("__EXPLAIN__", json.dumps(list(HIDDEN_IN_PRESENTATION)))):
        text = text.replace(key, str(value))
    return text


# A browser-only event (no server round trip): the checkbox's change (a click, or the page JS
# restoring the choice this browser remembered) applies it.
_APPLY_JS = """(on) => {
  document.body.classList.toggle('dl-present', !!on);
  try { localStorage.setItem('dl-present', on ? '1' : '0'); } catch (e) { /* private mode */ }
  if (window.dlLayout) window.dlLayout.refresh();
  return [];
}"""


def presentation_toggle() -> gr.Checkbox:
    """The presentation-mode checkbox, wired to the page JS; call inside the app's Blocks."""
    box = gr.Checkbox(False, label=TOGGLE_LABEL, info=TOGGLE_INFO, elem_id="dl-present-box",
                      container=True)
    box.change(None, inputs=[box], outputs=None, js=_APPLY_JS, api_visibility="private",
               queue=False)
    return box
