"""Tab 3's "Draw your own" data set: a canvas, the drawing's anchors per session, its handlers.

Choosing *Draw your own* in the Data set list shows a square canvas (:func:`render`). The
learner draws strokes or clicks points and presses *Use my drawing*: :func:`use_drawing` turns
the canvas into anchors (:func:`diffusion_core.data.drawn.anchors_from_image`: every drawn
pixel, thinned to ≤ 2,000, moved into model coordinates like the built-in sets) and keeps them
in a per-session ``gr.State``. From then on the data set ``"drawn"`` is those anchors
resampled, plus Gaussian jitter of std *Noise* (the spread around the strokes), *Points* of
them, with the data *Seed* (:class:`~diffusion_core.data.drawn.DrawnSpec`); the tab's handlers
take the anchors as their last input (``drawing``) and everything — ▶ Train, the vector field,
sampling and its score, the ideal denoiser, the bound, the sampler lab, forward diffusion —
runs on them. Not offered for a drawing: training with class labels (guidance needs classes;
refused with a message), and shareable links (a link cannot carry a drawing:
:func:`link_control` makes a link with ``dataset=drawn`` fall back to the default set with a
notice).

============================  =================================================================
name                          what it is
============================  =================================================================
:class:`DrawControls`         the canvas group, the canvas, the button, the note, the state
:func:`render`                builds them (inside the tab's left column)
:func:`wire`                  shows the canvas for "drawn"; *Use my drawing* → anchors + plot
:func:`use_drawing`           handler: the canvas → anchors, data plot, note (gr.Warning for
                              an empty canvas or too few pixels)
:func:`canvas_image`          the canvas value (layers, composite) → one RGBA image
:func:`empty_figure`          the data plot before anything is drawn
:func:`link_control`          the Data set's shareable control, refusing ``drawn``
============================  =================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from diffusion_core.data.drawn import ALPHA_DRAWN, DRAWN
from pages import common, limits, links, sessions
from pages.toy2d.figures import data_figure, scatter_style
from pages.toy2d.inputs import DEFAULT_DATASET, DRAW_LABEL, data_numbers, data_spec

drawn = common.LazyModule("diffusion_core.data.drawn")

__all__ = ["CANVAS", "DrawControls", "blank_canvas", "canvas_image", "empty_figure",
           "link_control", "render", "show_canvas", "use_drawing", "wire"]

CANVAS = 256  # canvas side in pixels (square, fixed)
BRUSH = 6  # default brush diameter in pixels
INK_BELOW = 128  # a flattened (composite) pixel is ink when a channel is darker than this
EMPTY_TEXT = "Draw on the canvas,<br>then press <b>Use my drawing</b>"

HELP_MD = (
    "Draw strokes or click points, then press **Use my drawing**. Each painted pixel is an "
    "anchor; the data are *Points* draws of the anchors plus noise of std *Noise (std)*, "
    "centred and scaled to span [−1, 1]. A link cannot carry a drawing, and guidance needs a "
    "set with classes."
)


@dataclass(frozen=True)
class DrawControls:
    """The drawing's components: ``group`` (shown for *Draw your own*) holds ``canvas``,
    ``use`` (the *Use my drawing* button) and ``note``; ``anchors`` is the per-session
    ``gr.State`` with the anchors ``[m, 2]`` float32 of the drawing in use (None: none yet)."""

    group: Any
    canvas: Any
    use: Any
    note: Any
    anchors: Any


def render(dataset_value: str = DEFAULT_DATASET) -> DrawControls:
    """Build the canvas group (hidden unless ``dataset_value`` is ``"drawn"``) and its state;
    call inside the tab's layout where the canvas should appear."""
    lim = limits.ACTIVE
    anchors = gr.State(None, time_to_live=lim.state_ttl_s,
                       delete_callback=sessions.on_free("drawing"))
    with gr.Group(visible=dataset_value == DRAWN, elem_id="toy-draw") as group:
        canvas = gr.Sketchpad(
            value=blank_canvas(), label="Your data",
            type="numpy", image_mode="RGBA", format="png", canvas_size=(CANVAS, CANVAS),
            fixed_canvas=True, layers=False, transforms=(), sources=(), height=CANVAS + 80,
            brush=gr.Brush(default_size=BRUSH, colors=[common.DATA_COLOR], color_mode="fixed"),
            eraser=gr.Eraser(default_size=BRUSH * 2), elem_id="toy-draw-canvas")
        use = gr.Button("Use my drawing", variant="secondary", size="sm")
        note = gr.Markdown(HELP_MD, elem_classes=["dl-health"])
    return DrawControls(group=group, canvas=canvas, use=use, note=note, anchors=anchors)


def wire(c: DrawControls, dataset, n_points, noise, seed, data_fig) -> None:
    """The canvas shows for *Draw your own* (also when a link or lesson sets the list);
    *Use my drawing* fills the anchors' state and redraws the data plot."""
    dataset.change(show_canvas, dataset, c.group, api_name="toy_show_canvas",
                   api_visibility="private", queue=False, show_progress="hidden")
    c.use.click(use_drawing, [c.canvas, n_points, noise, seed], [c.anchors, data_fig, c.note],
                api_name="toy_use_drawing", concurrency_limit=8, concurrency_id="toy_data")


def blank_canvas() -> np.ndarray:
    """The canvas's white background, ``[CANVAS, CANVAS, 4]`` (with a background the editor
    starts with its brush selected; the strokes go into a layer above it)."""
    return np.full((CANVAS, CANVAS, 4), 255, np.uint8)


def show_canvas(dataset) -> dict:
    """The canvas group's visibility for this choice of data set."""
    return gr.update(visible=dataset == DRAWN)


def empty_figure() -> go.Figure:
    """The data plot of *Draw your own* before a drawing is used: empty axes, how to start."""
    fig = scatter_style(go.Figure(), 1.25, title="Your drawing")
    fig.add_annotation(text=EMPTY_TEXT, x=0, y=0, showarrow=False, font=dict(size=14))
    return fig


def _layer_alpha(layer) -> np.ndarray | None:
    a = np.asarray(layer) if layer is not None else None
    if a is None or a.ndim != 3 or a.shape[2] != 4:
        return None
    return a[:, :, 3]


def canvas_image(value) -> np.ndarray:
    """The canvas's value (``{"background", "layers", "composite"}``, numpy) as one RGBA
    ``[H, W, 4]`` uint8 image whose alpha marks the drawn pixels: the layers' alpha combined
    (the strokes); a canvas without layers falls back to the composite's ink (any channel
    darker than :data:`INK_BELOW` on the white background). ``ValueError`` (for the learner)
    when there is no canvas value at all."""
    if not isinstance(value, dict):
        raise ValueError("The canvas is empty: draw a few strokes or click some points, then "
                         "press 'Use my drawing'.")
    alphas = [a for a in map(_layer_alpha, value.get("layers") or []) if a is not None]
    if alphas and len({a.shape for a in alphas}) == 1:
        alpha = np.max(np.stack(alphas), axis=0).astype(np.uint8)
    else:
        comp = value.get("composite")
        comp = np.asarray(comp) if comp is not None else None
        if comp is None or comp.ndim != 3 or comp.shape[2] < 3:
            raise ValueError("The canvas is empty: draw a few strokes or click some points, "
                             "then press 'Use my drawing'.")
        ink = (comp[:, :, :3] < INK_BELOW).any(axis=2)
        if comp.shape[2] == 4:
            ink &= comp[:, :, 3] >= ALPHA_DRAWN
        alpha = np.where(ink, 255, 0).astype(np.uint8)
    image = np.zeros((*alpha.shape, 4), dtype=np.uint8)
    image[:, :, 3] = alpha
    return image


def use_drawing(value, n, noise, seed):
    """*Use my drawing*: the canvas → anchors (kept in the session), the data plot, a note.

    Returns ``(anchors [m, 2] float32, data figure, note Markdown)``; an empty canvas or one
    with fewer than three painted pixels gets a ``gr.Warning`` and changes nothing. Bad
    *Points* / *Noise* / *Seed* values are refused like everywhere on the tab.
    """
    data_numbers(n, noise, seed)  # bad numbers are refused first, whatever the canvas holds
    try:
        drawing = drawn.anchors_from_image(canvas_image(value))
    except ValueError as e:
        gr.Warning(str(e))
        return gr.skip(), gr.skip(), gr.skip()
    spec = data_spec(DRAWN, n, noise, seed, drawing.anchors)
    kept = len(drawing.anchors)
    anchors = ("each one an anchor" if kept == drawing.pixels
               else f"{kept:,} of them (at random) kept as anchors")
    note = (f"**Using your drawing**: {drawing.pixels:,} painted pixels, {anchors}, scaled "
            f"×{drawing.scale:.2f} to span [−1, 1]. Press ▶ Train; draw again and press "
            "*Use my drawing* to change the data.")
    return drawing.anchors, data_figure(spec, spec.draw()), note


def link_control(dataset) -> links.Control:
    """The Data set's shareable control: the list's own check, but a link (or a lesson) cannot
    carry a drawing, so ``drawn`` is refused and the link opens with the default set and a
    notice (:mod:`pages.links`)."""
    own = dataset.preprocess

    def check(value):
        if value == DRAWN:
            raise common.UserError(f"a link cannot carry a drawing, so the {DEFAULT_DATASET} "
                                   f"set is shown: choose '{DRAW_LABEL}' and draw again")
        return own(value)

    return links.control("dataset", dataset, check=check)
