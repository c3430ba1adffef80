"""The sampler labs of tab 3 (``pages/toy2d/lab.py``) and tab 4 (``pages/sampler/lab.py``):
handlers called directly, then both ``render`` functions served and fuzzed with bad input.
The workflow underneath is tested in ``tests/core/workflows/test_sampler_lab.py``."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from diffusion_core import presets  # noqa: E402
from diffusion_core.workflows import toy2d as wf  # noqa: E402
from pages import common  # noqa: E402
from pages.sampler import lab as img_lab  # noqa: E402
from pages.toy2d import lab as toy_lab  # noqa: E402
from pages.widgets import inputs as ui  # noqa: E402
from tests.helpers import serving  # noqa: E402

SLOTS = [v for name, steps, eta, var, sp in toy_lab.DEFAULT_SLOTS
         for v in (True, name, steps, eta, var, sp)]


def slots(**changes):
    """The default slots with ``{"use2": False, "steps1": 50, …}`` applied."""
    out = list(SLOTS)
    fields = ("use", "sampler", "steps", "eta", "variance", "spacing")
    for key, value in changes.items():
        field, i = key[:-1], int(key[-1]) - 1
        out[i * len(fields) + fields.index(field)] = value
    return out


@pytest.fixture(scope="module")
def trained() -> wf.Toy2DSession:
    p = presets.TOY
    session = wf.Toy2DSession.create(wf.DataSpec("moons", 1000, 0.05, 0), p.schedule, p.model,
                                     p.train)
    for _ in session.train():
        pass
    return session


def last(gen):
    return list(gen)[-1]


def panel_titles(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations if a.text and "<b>" in a.text]


# --- tab 3: the comparison -------------------------------------------------------------------


def test_compare_without_a_model_asks_to_train():
    fig, md = last(toy_lab.compare(None, *slots()))
    assert md == toy_lab.NO_MODEL


def test_compare_draws_one_panel_per_ticked_sampler_with_nfe_and_quality(trained):
    fig, md = last(toy_lab.compare(trained, *slots(), True, 500, 100, 0))
    titles = panel_titles(fig)
    assert len(titles) == 4
    for t, nfe in zip(titles, (200, 20, 20, 10), strict=True):
        assert f"NFE {nfe}" in t and "SW1" in t and "NN ratio" in t
    assert "| 4 | DPM-Solver++ 2M" in md and "same x_T" in md
    # the paths: one line trace per panel, [start, …] of 100 points with NaN gaps
    lines = [tr for tr in fig.data if tr.mode == "lines"]
    assert len(lines) == 4
    assert np.isnan(np.asarray(lines[1].x, dtype=float)).sum() == 100
    # two ticked → two panels, in slot order
    fig2, md2 = last(toy_lab.compare(trained, *slots(use1=False, use3=False), True, 300, 50, 0))
    assert [t.split("</b>")[0] for t in panel_titles(fig2)] == [
        "<b>DDIM η=0 · trailing", "<b>DPM-Solver++ 2M · trailing"]
    assert "| 2 |" in md2 and "| 4 |" in md2 and "| 1 |" not in md2


def test_compare_warns_when_trailing_ode_samplers_run_unclipped(trained):
    _, md = last(toy_lab.compare(trained, *slots(use1=False, use3=False), False, 200, 0, 0))
    assert "clip x̂0" in md and "ᾱ_(T−1)" in md
    _, md_clipped = last(toy_lab.compare(trained, *slots(use1=False, use3=False), True, 200, 0,
                                         0))
    assert "ᾱ_(T−1)" not in md_clipped


@pytest.mark.parametrize("changes, words", [
    (dict(use1=False, use2=False, use3=False), "at least 2"),
    (dict(steps2="abc"), "Sampler 2 steps"),
    (dict(eta3=2.0), "Sampler 3 η"),
    (dict(sampler4="euler"), "Sampler 4 must be one of"),
    (dict(spacing1="random"), "spacing must be one of"),
    (dict(use2="yes"), "true or false"),
])
def test_compare_refuses_bad_slots_with_text(trained, changes, words):
    with pytest.raises(gr.Error, match=words):
        last(toy_lab.compare(trained, *slots(**changes), True, 100, 10, 0))


def test_compare_refuses_bad_counts_with_text(trained):
    with pytest.raises(gr.Error, match="Points"):
        last(toy_lab.compare(trained, *slots(), True, 5, 10, 0))
    with pytest.raises(gr.Error, match="Paths"):
        last(toy_lab.compare(trained, *slots(), True, 100, 10_000, 0))
    with pytest.raises(gr.Error, match="Seed"):
        last(toy_lab.compare(trained, *slots(), True, 100, 10, -1))


def test_compare_spent_budget_shows_the_finished_samplers(trained, monkeypatch):
    from pages import limits

    monkeypatch.setattr(limits, "ACTIVE", limits.Limits(sample_seconds=1e-9))
    fig, md = last(toy_lab.compare(trained, *slots(), True, 100, 10, 0))
    assert md.startswith(toy_lab.LIMIT_PREFIX) and "0 of 4 samplers" in md


def test_slot_changed_enables_the_options_that_apply():
    eta, var = toy_lab.slot_changed("ddim")
    assert eta["interactive"] and not var["interactive"]
    eta, var = toy_lab.slot_changed("ddpm")
    assert not eta["interactive"] and var["interactive"]
    eta, var = toy_lab.slot_changed("dpmpp_2m")
    assert not eta["interactive"] and not var["interactive"]
    with pytest.raises(gr.Error):
        toy_lab.slot_changed("nope")


def test_lab_finished_says_stopped_only_for_a_run_in_progress():
    assert toy_lab.lab_finished(toy_lab.RUNNING + " Sampler 1 …")[1].startswith("■ Stopped")
    assert toy_lab.lab_finished("All samplers …")[1] == gr.skip()
    assert img_lab.lab_finished(img_lab.RUNNING + " run 1")[1].startswith("■ Stopped")


# --- tab 3: steps vs quality ------------------------------------------------------------------


def test_sweep_draws_one_line_per_sampler_with_one_point_per_step_count(trained):
    fig, md = last(toy_lab.sweep(trained, *slots(use1=False), True, 300, 0, [2, 5, 10, 500]))
    lines = [tr for tr in fig.data if tr.mode == "lines+markers"]
    assert len(lines) == 3 * 2  # 3 samplers × (SW1, NN ratio)
    for tr in lines:
        assert list(tr.x) == [2, 5, 10]  # x = NFE = steps; 500 > T was left out
    assert "500" in md and "left out" in md
    names = {tr.name for tr in lines}
    assert any(n.startswith("2: DDIM η=0") for n in names)
    with pytest.raises(gr.Error, match="tick at least one"):
        last(toy_lab.sweep(trained, *slots(), True, 300, 0, []))
    with pytest.raises(gr.Error, match="above this model's T"):
        last(toy_lab.sweep(trained, *slots(), True, 300, 0, [500, 1000]))
    with pytest.raises(gr.Error, match="choose among"):
        last(toy_lab.sweep(trained, *slots(), True, 300, 0, [3]))


# --- tab 3: inversion -------------------------------------------------------------------------


def test_invert_error_falls_with_steps_and_redraws_at_another_count(trained):
    fig, md, record = last(toy_lab.invert(trained, 300, [2, 10, 50, 1000], "noise", 10))
    assert isinstance(record, toy_lab.InversionRecord)
    errors = [tr.rms for tr in record.trips]
    assert [tr.steps for tr in record.trips] == [2, 10, 50]  # 1000 > the noisy top
    assert errors[0] > errors[1] > errors[2]
    assert "RMS error by steps" in md and "t = " in md
    assert "at 10 steps" in fig.layout.annotations[2].text
    other = toy_lab.show_round_trip(record, 50)
    assert "at 50 steps" in other.layout.annotations[2].text
    assert toy_lab.show_round_trip(None, 50) == gr.skip()
    # trailing spacing ends at T − 1 of the cosine schedule: the round trip blows up
    _, md_t, rec_t = last(toy_lab.invert(trained, 300, [10], "trailing", 10))
    assert rec_t.trips[0].rms > 1.0 and rec_t.trips[0].t_top == trained.T - 1
    with pytest.raises(gr.Error, match="ends must be one of"):
        last(toy_lab.invert(trained, 300, [10], "middle", 10))


def test_invert_without_a_model_asks_to_train():
    _, md, _ = last(toy_lab.invert(None, 300, [10], "noise", 10))
    assert md == toy_lab.NO_MODEL


# --- tab 4 ------------------------------------------------------------------------------------


def test_image_sweep_on_the_digits_model(monkeypatch):
    fig, md = last(img_lab.quality_sweep("digits", ["ddim_eta0", "dpmpp_2m"], [2, 5],
                                         "trailing", True, 16, 0))
    lines = [tr for tr in fig.data if tr.mode == "lines+markers"]
    assert len(lines) == 2 * 2 and all(list(tr.x) == [2, 5] for tr in lines)
    assert "Fréchet" in fig.layout.annotations[0].text
    assert "2 of" not in md and "4 of 4 runs" in md


def test_image_sweep_says_when_there_is_no_judge():
    _, md = last(img_lab.quality_sweep(":demo:", ["ddim_eta0"], [2], "trailing", True, 16, 0))
    assert "No quality judge" in md


@pytest.mark.parametrize("args, words", [
    ((["nope"], [5]), "Samplers"),
    (([], [5]), "tick at least one"),
    ((["ddpm"], [3]), "Step counts"),
])
def test_image_sweep_refuses_bad_lists(args, words):
    with pytest.raises(gr.Error, match=words):
        last(img_lab.quality_sweep("digits", *args, "trailing", True, 16, 0))


def test_interpolate_digits_strip_and_reconstruction():
    img, md = last(img_lab.interpolate_digits("digits", "3", "8", 0, 20, 5, "leading"))
    assert img.dtype == np.uint8 and img.ndim == 3
    size = 8 * img_lab.STRIP_PX // 8  # 8×8 digits enlarged to about STRIP_PX
    assert img.shape[1] > 7 * size and img.shape[0] > 2 * size  # 2 rows of 5 + 2 tiles
    assert "Reconstruction error" in md and "3 → 8" in md
    err = float(md.split("first ")[1].split(",")[0])
    assert err < 0.2
    _, md_t = last(img_lab.interpolate_digits("digits", "3", "8", 0, 20, 5, "trailing"))
    assert "blew up" in md_t


def test_interpolate_digits_refuses_other_models_and_bad_examples():
    _, md = last(img_lab.interpolate_digits(":demo:", "3", "8", 0, 20, 5, "leading"))
    assert "choose the *digits* model" in md
    with pytest.raises(gr.Error, match="Example #"):
        last(img_lab.interpolate_digits("digits", "3", "8", 41, 20, 5, "leading"))
    with pytest.raises(gr.Error, match="held-out 3s"):  # (every class has > 40 in this split)
        img_lab._heldout_digit(8, "3", 1000)
    with pytest.raises(gr.Error, match="Digit must be one of"):
        last(img_lab.interpolate_digits("digits", "x", "8", 0, 20, 5, "leading"))


# --- both labs served: endpoints and bad input ------------------------------------------------


PREPARE = "/lab_test_prepare"  # puts the trained 2D model into the caller's session


@pytest.fixture(scope="module")
def lab_server(trained):
    """Both labs in one app, as tabs 3 and 4 will hold them; ``/lab_test_prepare`` gives the
    calling session the trained 2D model (what ▶ Train does in the app)."""
    with gr.Blocks() as demo:
        state = gr.State(None)
        toy_lab.render(state)
        model = ui.Dropdown([("digits", "digits")], value="digits", label="Pretrained model")
        img_lab.render(model)
        gr.Button(visible=False).click(lambda: trained, None, state,
                                       api_name=PREPARE.lstrip("/"))
    with serving(demo) as url:
        yield url


def test_only_the_lab_buttons_are_public(lab_server):
    from gradio_client import Client

    api = Client(lab_server, download_files=False, verbose=False).view_api(
        return_format="dict", print_info=False)["named_endpoints"]
    assert sorted(set(api) - {PREPARE}) == [
        "/sampler_lab_invert", "/sampler_lab_sweep", "/toy_lab_compare", "/toy_lab_invert",
        "/toy_lab_show", "/toy_lab_sweep"]
    names = [p["parameter_name"] for p in api["/toy_lab_compare"]["parameters"]]
    assert names[:7] == ["use1", "sampler1", "steps1", "eta1", "variance1", "spacing1", "use2"]


def test_compare_through_the_client(lab_server):
    from gradio_client import Client

    client = Client(lab_server, download_files=False, verbose=False)
    out = client.predict(*slots(), True, 300, 50, 0, api_name="/toy_lab_compare")
    assert out[1] == toy_lab.NO_MODEL  # a new session has no model yet
    client.predict(api_name=PREPARE)
    out = client.predict(*slots(), True, 300, 50, 0, api_name="/toy_lab_compare")
    assert "| 4 | DPM-Solver++ 2M" in out[1]
    fig, md = client.predict(300, [2, 10], "noise", 10, api_name="/toy_lab_invert")
    assert "RMS error by steps" in md


def test_stop_frees_the_session_for_the_next_run(lab_server):
    """■ Stop (a cancel) closes the generator: its ``finally`` releases the visitor's one heavy
    job, so the next run starts at once."""
    import time

    from gradio_client import Client

    client = Client(lab_server, download_files=False, verbose=False)
    client.predict(api_name=PREPARE)
    job = client.submit(*slots(), True, 5000, 0, list(toy_lab.STEP_CHOICES),
                        api_name="/toy_lab_sweep")
    deadline = time.time() + 30
    while not any(o and str(o[1]).startswith(toy_lab.RUNNING) for o in job.outputs()):
        assert time.time() < deadline, "no progress"
        time.sleep(0.05)
    job.cancel()
    time.sleep(1.0)
    out = client.predict(*slots(), True, 200, 10, 0, api_name="/toy_lab_compare")
    assert "| 4 |" in out[1]


def test_every_bad_lab_input_gets_a_clear_message(lab_server, monkeypatch):
    """tests/app/test_bad_input.py's sweep, on the labs' endpoints (cheap baselines)."""
    from tests.app import test_bad_input as fuzz

    # (a baseline that finishes within the sweep's 0.5 s grace is never cancelled: a late
    # cancel could otherwise hit the session's next call of the same endpoint)
    short = {"steps1": 5, "steps2": 5, "steps3": 5, "steps4": 5}
    cheap = {"/toy_lab_compare": {"n_points": 100, "n_paths": 10, **short},
             "/toy_lab_sweep": {"n_points": 100, "counts": [2], **short},
             "/toy_lab_invert": {"n_points": 50, "counts": [2]},
             "/sampler_lab_sweep": {"n_images": 16, "counts": [2], "samplers": ["ddim_eta0"]},
             "/sampler_lab_invert": {"steps": 2, "frames": 3}}
    monkeypatch.setattr(fuzz, "CHEAP", cheap)
    monkeypatch.setattr(fuzz, "PREPARE", {"/toy_lab": [(PREPARE, {})]})
    from diffusion_core.workflows import sampler_lab

    sampler_lab.image_judge("digits8", (1, 8, 8), 16)  # fit the digit classifier up front
    from concurrent.futures import ThreadPoolExecutor

    api = fuzz._public_endpoints(fuzz._client(lab_server))
    targets = [(name, ep) for name, ep in api.items() if name != PREPARE]
    try:
        with fuzz._allow_nan_in_requests(), ThreadPoolExecutor(3) as pool:
            outcomes = [o for per in pool.map(
                lambda item: fuzz._sweep_endpoint(lab_server, *item, None), targets)
                for o in per]
    finally:
        fuzz._close_sessions()
    bad = [o for o in outcomes if o.verdict != "ok"]
    assert not bad, fuzz._report(bad)
    assert len(outcomes) == sum(len(fuzz.cases(*item)) for item in targets) > 100


def test_render_needs_no_torch_at_build_time():
    """Building the labs' layout imports nothing heavy (the first event does)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import os, sys\nos.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'\n"
            "import gradio as gr\nfrom pages.toy2d import lab as a\n"
            "from pages.sampler import lab as b\n"
            "with gr.Blocks():\n    a.render(gr.State(None))\n"
            "    b.render(gr.Dropdown(['digits'], value='digits'))\n"
            "print('torch' in sys.modules)\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("False")


def test_explanation_loads():
    text = common.explanation("sampler_lab")
    assert "NFE" in text and "slerp" in text and torch is not None
