"""Tab 1 (noise schedules): handlers against the core's numbers, bad input, CSV, the built UI.

The server-side speed of the plot handler is measured by ``bench/ui_bench.py``, not here.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import csv  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diffusion_core.schedule import BUILTIN_KINDS, NoiseSchedule, ScheduleConfig  # noqa: E402
from pages import common, schedules  # noqa: E402
from tests.helpers import load_event_for  # noqa: E402

ALL = list(BUILTIN_KINDS)
DEFAULTS = dict(T=1000, beta_start=1e-4, beta_end=0.02, scale_to_T=False, cosine_s=0.008,
                power=2.0)


def run(kinds=ALL, primary="cosine", x_axis="t", **kw):
    p = {**DEFAULTS, **kw}
    return schedules.update_schedules(kinds, primary, p["T"], p["beta_start"], p["beta_end"],
                                      p["scale_to_T"], p["cosine_s"], p["power"], x_axis)


def traces_of(fig, kind):
    return [tr for tr in fig.data if tr.legendgroup == kind]


def test_figure_traces_are_the_core_buffers():
    fig, _, _ = run(T=1000)
    assert len(fig.data) == 5 * len(ALL)
    for kind in ALL:
        sched = NoiseSchedule(ScheduleConfig(kind=kind, T=1000))
        beta, abar, sig, noise, lsnr = traces_of(fig, kind)
        np.testing.assert_array_equal(beta.y, sched.betas.numpy())
        np.testing.assert_array_equal(abar.y, sched.alphas_cumprod.numpy())
        np.testing.assert_array_equal(sig.y, sched.sqrt_alphas_cumprod.numpy())
        np.testing.assert_array_equal(noise.y, sched.sqrt_one_minus_alphas_cumprod.numpy())
        np.testing.assert_array_equal(lsnr.y, sched.log_snr.numpy())
        np.testing.assert_array_equal(beta.x, np.arange(1000))  # t = 0 … T−1
        # Each panel on its own axes; the noise scale dashed; one legend entry per schedule.
        assert [(tr.xaxis, tr.yaxis) for tr in (beta, abar, sig, noise, lsnr)] == [
            ("x", "y"), ("x2", "y2"), ("x3", "y3"), ("x3", "y3"), ("x4", "y4")]
        assert noise.line.dash == "dash" and sig.line.dash is None
        assert [tr.showlegend for tr in (beta, abar, sig, noise, lsnr)] == [True] + [False] * 4
        assert {tr.line.color for tr in (beta, abar, sig, noise, lsnr)} == {
            common.SCHEDULE_COLORS[kind]}
        assert "%{y" in beta.hovertemplate
    assert fig.layout.yaxis.type == "log"  # β spans 1e-5 … 0.999
    assert "t (step, 0 … T−1)" in fig.layout.xaxis3.title.text
    assert fig.layout.template.layout.paper_bgcolor == "white"  # plotly_white look kept


def test_x_axis_t_over_T_and_overlay_order():
    fig, _, _ = run(kinds=["sigmoid", "linear"], x_axis="t / T", T=200)
    assert [tr.legendgroup for tr in fig.data[::5]] == ["linear", "sigmoid"]  # fixed order
    np.testing.assert_allclose(fig.data[0].x, np.arange(200) / 200, rtol=1e-6)
    assert fig.layout.xaxis3.title.text == "t / T"


def test_shared_schedule_is_the_primary_config():
    _, _, shared = run(kinds=["linear"], primary="polynomial", T=300, power=3.0,
                       beta_end=0.03)
    assert shared == ScheduleConfig(kind="polynomial", T=300, beta_end=0.03,
                                    power=3.0).to_dict()
    # The primary need not be overlaid, and the dict round-trips.
    assert ScheduleConfig.from_dict(shared).kind == "polynomial"


def test_health_table_values_and_warning():
    _, html, _ = run(kinds=["linear", "cosine"], primary="linear", T=50)
    h = NoiseSchedule(ScheduleConfig(kind="linear", T=50)).health()
    assert h.warning is not None  # linear 1e-4..0.02 with T = 50 keeps lots of signal
    assert f"{h.alpha_bar_last:.3g}" in html and f"{h.signal_last:.3g}" in html
    assert "⚠" in html and h.warning in html
    assert "linear</b> ★" in html
    _, html_ok, _ = run(kinds=["cosine"], primary="cosine", T=1000)
    assert "⚠" not in html_ok


def test_scaling_that_breaks_a_schedule_warns_and_skips_it():
    with pytest.warns(UserWarning, match="linear skipped: with the 1000/T scaling"):
        fig, html, shared = run(kinds=["linear", "cosine"], primary="linear", T=10,
                                scale_to_T=True)
    assert [tr.legendgroup for tr in fig.data[::5]] == ["cosine"]  # linear left out, no crash
    assert "linear skipped" in html
    assert shared == gr.skip()  # the shared schedule is not replaced by a broken one
    # With a buildable primary, the shared schedule still updates.
    with pytest.warns(UserWarning):
        _, _, shared = run(kinds=["linear"], primary="cosine", T=10, scale_to_T=True)
    assert shared["kind"] == "cosine" and shared["T"] == 10


def test_skips_with_the_same_reason_are_reported_once():
    with pytest.warns(UserWarning) as rec:
        fig, html, _ = run(kinds=ALL, primary="cosine", T=10, scale_to_T=True)
    msgs = [str(w.message) for w in rec]
    assert msgs == ["linear, quadratic, sigmoid, polynomial skipped: with the 1000/T scaling, "
                    "beta_end becomes 2 ≥ 1; use T ≥ 21 or turn the scaling off"]
    assert len(fig.data) == 5 and html.count("skipped") == 1


def test_scaling_applied_when_valid():
    fig, _, shared = run(kinds=["linear"], primary="linear", T=100, scale_to_T=True)
    assert fig.data[0].y[0] == pytest.approx(1e-3, rel=1e-6)
    assert fig.data[0].y[-1] == pytest.approx(0.2, rel=1e-6)
    assert shared["scale_to_T"] is True


@pytest.mark.parametrize("bad", [
    dict(T=5000), dict(T=1), dict(T="abc"), dict(T=10.5), dict(beta_end=1e-5),
    dict(beta_start=float("nan")), dict(cosine_s=-1), dict(power=50),
])
def test_bad_numbers_raise_gr_error(bad):
    with pytest.raises(gr.Error):
        run(**bad)


def test_bad_choices_raise_gr_error():
    with pytest.raises(gr.Error, match="Unknown schedule"):
        run(kinds=["linear", "banana"])
    with pytest.raises(gr.Error, match="Primary"):
        run(primary="custom")
    with pytest.raises(gr.Error, match="x axis"):
        run(x_axis="log t")


def test_cosine_only_ignores_beta_order():
    # β_end < β_start is meaningless for cosine, which ignores both: no error.
    fig, _, shared = run(kinds=["cosine"], primary="cosine", beta_start=0.02, beta_end=0.01)
    assert len(fig.data) == 5 and shared["kind"] == "cosine"


def test_no_overlay_gives_empty_figure_with_hint():
    fig, html, shared = run(kinds=[], primary="cosine")
    assert len(fig.data) == 0
    assert "Tick at least one" in fig.layout.annotations[-1].text
    assert "No schedule selected" in html and shared["kind"] == "cosine"


def test_export_csv_columns_and_values():
    path = Path(schedules.export_csv(["linear", "cosine"], "cosine", 100, 1e-4, 0.02, False,
                                     0.008, 2.0))
    temp_root = Path(os.environ["GRADIO_TEMP_DIR"]).resolve()
    assert temp_root in path.resolve().parents and path.suffix == ".csv"
    with path.open() as f:
        rows = list(csv.reader(f))
    header, body = rows[0], np.array(rows[1:], dtype=np.float64)
    cols = ["beta", "alpha_bar", "sqrt_alpha_bar", "sqrt_one_minus_alpha_bar", "log_snr"]
    assert header == ["t"] + [f"{k}_{c}" for k in ("linear", "cosine") for c in cols]
    assert body.shape == (100, 11)
    np.testing.assert_array_equal(body[:, 0], np.arange(100))
    sched = NoiseSchedule(ScheduleConfig(kind="cosine", T=100))
    for j, name in enumerate(["betas", "alphas_cumprod", "sqrt_alphas_cumprod",
                              "sqrt_one_minus_alphas_cumprod", "log_snr"]):
        np.testing.assert_allclose(body[:, 6 + j], sched.float64[name].numpy(), rtol=1e-9)


def test_export_button_reveals_file():
    upd = schedules.export_csv_shown(["sigmoid"], "sigmoid", 30, 1e-4, 0.02, False, 0.008,
                                     2.0)
    assert upd["visible"] is True and upd["value"].endswith("diffusion_schedules_T30.csv")
    assert Path(upd["value"]).read_text().startswith("t,sigmoid_beta,")


def test_export_csv_bad_input():
    with pytest.raises(gr.Error, match="at least one"):
        schedules.export_csv([], "cosine", 100, 1e-4, 0.02, False, 0.008, 2.0)
    with pytest.raises(gr.Error):
        schedules.export_csv(["linear"], "linear", 99999, 1e-4, 0.02, False, 0.008, 2.0)
    with pytest.warns(UserWarning), pytest.raises(gr.Error, match="None of the ticked"):
        schedules.export_csv(["linear"], "cosine", 10, 1e-4, 0.02, True, 0.008, 2.0)


def test_five_overlays_at_T1000_twice_give_the_same_figure():
    # The benchmark's case (its speed: bench/ui_bench.py); the cached layout is reused intact.
    first, again = run(T=1000)[0], run(T=1000)[0]
    assert len(first.data) == len(again.data) == 5 * len(ALL)
    assert first.layout == again.layout


def _build_tab():
    with gr.Blocks() as demo:
        shared = gr.State(ScheduleConfig(kind="sigmoid", T=500).to_dict())
        with gr.Tab("schedules"):
            schedules.render(shared)
    return demo, shared


def test_render_builds_and_draws_the_first_plot_on_page_load():
    demo, shared = _build_tab()
    deps = {fn.api_name: fn for fn in demo.fns.values()}
    assert {"schedules_plot", "schedules_csv"} <= set(deps)
    plot_dep = deps["schedules_plot"]
    assert shared in plot_dep.outputs  # the primary schedule is written to the shared state
    assert plot_dep.concurrency_limit == 8
    plots = [b for b in demo.blocks.values() if isinstance(b, gr.Plot)]
    assert len(plots) == 1 and plots[0].value is None  # nothing computed while building …
    first = load_event_for(demo, plots[0])  # … the page load draws it, no click needed
    assert first.api_visibility == "private"
    fig, html = first.fn()
    names = {tr.name for tr in fig.data}
    assert any("sigmoid" in n for n in names), names  # the shared schedule is overlaid
    assert "sigmoid" in html
    # Controls start from the shared schedule (sigmoid, T = 500).
    sliders = [b for b in demo.blocks.values()
               if isinstance(b, gr.Slider) and b.label == "T (steps)"]
    assert sliders[0].value == 500
    dropdowns = [b for b in demo.blocks.values() if isinstance(b, gr.Dropdown)]
    assert dropdowns[0].value == "sigmoid"


def test_whole_app_builds():
    import app

    demo = app.build_demo()
    names = {fn.api_name for fn in demo.fns.values()}
    assert {"schedules_plot", "schedules_csv"} <= names


def test_through_gradio_client():
    from gradio_client import Client

    from tests.helpers import serving

    demo, _ = _build_tab()
    with serving(demo) as url:
        client = Client(url, download_files=False, verbose=False)
        plot, html = client.predict(["linear", "cosine"], "linear", 50, 1e-4, 0.02, False, 0.008,
                                    2.0, "t", api_name="/schedules_plot")
        assert plot["type"] == "plotly" and "⚠" in html
        csv_file = client.predict(["linear"], "linear", 20, 1e-4, 0.02, False, 0.008, 2.0,
                                  api_name="/schedules_csv")
        # An update (value + visible) comes back as {"value": FileData, "__type__": "update"}.
        assert str(csv_file["value"]["path"]).endswith("diffusion_schedules_T20.csv")
        with pytest.raises(Exception, match="must be larger than β_start"):
            client.predict(["linear"], "linear", 100, 1e-4, 1e-5, False, 0.008, 2.0, "t",
                           api_name="/schedules_plot")


def test_explanation_states_the_code_definitions():
    md = schedules.explanation_md()
    # The sigmoid argument is linspace(−6, 6, T) = −6 + 12u, cosine is clipped at 0.999.
    assert r"\sigma(-6 + 12u)" in md and "0.999" in md and "t = 0 \\dots T-1" in md
