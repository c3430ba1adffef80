"""The app's plot style: the cut-down white template draws what plotly_white draws."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

from pages import common


def test_the_white_template_keeps_plotly_whites_look_for_2d_plots():
    full = pio.templates["plotly_white"].layout
    ours = common.white_template().layout
    for key in ("paper_bgcolor", "plot_bgcolor", "colorway", "font", "hovermode"):
        assert ours[key] == full[key], key
    for axis in ("xaxis", "yaxis"):
        assert ours[axis].to_plotly_json() == full[axis].to_plotly_json(), axis
    assert ours.scene.to_plotly_json() == {}  # 3D, polar, geo: not drawn here, left out
    fig = common.style_figure(go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), title="t",
                              x_title="x", y_title="y")
    assert fig.layout.template.layout.plot_bgcolor == "white"
    assert fig.layout.xaxis.title.text == "x" and fig.layout.title.text == "t"
