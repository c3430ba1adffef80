"""An animated Plotly figure that survives ``gr.Plot`` (play/pause, a scrubbing slider).

Gradio's ``gr.Plot`` hands only ``data`` and ``layout`` to ``Plotly.react`` and drops
``frames``. :class:`AnimatedFigure` is a ``go.Figure`` (tests see ``fig.frames``) whose JSON
moves the frames into ``layout.meta``; a few lines of browser JS (:data:`FRAMES_JS`, run on
the plot's ``change`` event, see :func:`register_frames`) hand them to ``Plotly.addFrames``.

Use::

    plot = gr.Plot(elem_classes=[ELEM_CLASS])          # the JS looks for this class
    register_frames(plot)                               # while the Blocks is being built
    ...
    fig = AnimatedFigure(); fig.add_trace(...)          # in a handler
    return animate(fig, frame_traces, labels, [1], prefix="t = ")
"""

from __future__ import annotations

import uuid

import gradio as gr
import plotly.graph_objects as go
import plotly.io as pio

ELEM_CLASS = "dl-anim"  # the CSS class of every gr.Plot that shows an AnimatedFigure


class AnimatedFigure(go.Figure):
    """A ``go.Figure`` with frames that survive ``gr.Plot``.

    ``gr.Plot`` serialises with ``to_json()`` and its front end calls
    ``Plotly.react(data, layout)``, dropping ``frames``. Here ``to_json`` moves the frames into
    ``layout.meta.dl_frames`` (with a fresh ``dl_key``); :data:`FRAMES_JS` registers them in
    the browser. In Python, ``fig.frames`` stays the usual tuple of frames.
    """

    def to_json(self, *args, **kwargs) -> str:  # noqa: D102 - see class docstring
        d = self.to_plotly_json()
        frames = d.pop("frames", None) or []
        layout = d.setdefault("layout", {})
        meta = layout.get("meta")
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta.update(dl_frames=frames, dl_key=uuid.uuid4().hex)
        layout["meta"] = meta
        return pio.json.to_json_plotly(d)


# Runs in the browser on each animated plot's change event: installs (once) a light poller that
# hands frames stored in layout.meta to Plotly.addFrames whenever a plot shows a new figure
# (also after the plot is re-mounted, e.g. when its tab is shown again).
FRAMES_JS = """
() => {
  if (!window.__dlAnimPoller) {
    const scan = () => {
      const P = window.Plotly;
      if (!P) return;
      document.querySelectorAll('.dl-anim .js-plotly-plot').forEach((gd) => {
        const meta = gd.layout && gd.layout.meta;
        if (!meta || !meta.dl_frames || gd.__dlKey === meta.dl_key) return;
        gd.__dlKey = meta.dl_key;
        try {
          const old = (gd._transitionData && gd._transitionData._frames) || [];
          if (old.length) P.deleteFrames(gd, old.map((_, i) => i));
          P.addFrames(gd, meta.dl_frames);
        } catch (e) { console.warn('Diffusion Lab: could not add frames', e); }
      });
    };
    window.__dlAnimPoller = setInterval(scan, 250);
  }
  return [];
}
"""


def register_frames(*plots: gr.Plot) -> None:
    """Browser-only: register animation frames with Plotly whenever one of ``plots`` changes.

    Call while the Blocks is being built; each plot needs ``elem_classes=[ELEM_CLASS]``.
    """
    for plot in plots:
        plot.change(None, None, None, js=FRAMES_JS, queue=False, api_visibility="private")


def animate(fig: AnimatedFigure, frame_traces: list[list[go.Scatter]], labels: list[str],
            trace_ids: list[int], *, prefix: str, height: int, duration_ms: int = 90
            ) -> AnimatedFigure:
    """Add frames (each replacing ``trace_ids``), a play/pause menu and a scrubbing slider.

    ``labels[i]`` names frame i on the slider (shown after ``prefix``); the figure gets
    ``height`` plus room for the controls below the plot.
    """
    names = [f"f{i}" for i in range(len(labels))]
    fig.frames = [go.Frame(data=traces, traces=trace_ids, name=name)
                  for traces, name in zip(frame_traces, names, strict=True)]
    play = dict(frame=dict(duration=duration_ms, redraw=False), transition=dict(duration=0),
                fromcurrent=True, mode="immediate")
    pause = dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0),
                 mode="immediate")
    fig.update_layout(
        updatemenus=[dict(
            type="buttons", direction="left", showactive=False, x=0.0, y=-0.2,
            xanchor="left", yanchor="top", pad=dict(t=0, r=6),
            buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                     dict(label="❚❚ Pause", method="animate", args=[[None], pause])],
        )],
        sliders=[dict(
            active=0, x=0.3, y=-0.13, len=0.7, xanchor="left", yanchor="top",
            pad=dict(t=0, b=0), currentvalue=dict(prefix=prefix, font=dict(size=13)),
            steps=[dict(label=label, method="animate",
                        args=[[name], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                           transition=dict(duration=0))])
                   for label, name in zip(labels, names, strict=True)],
        )],
    )
    fig.update_layout(margin=dict(b=115), height=height + 70)
    return fig
