"""Issue #14, item 7 ("everything listed under Why"), as a learner meets it: DDIM in tab 3 works
with its defaults, labels in words, one-click downloads with real names, downloads and a
replay after ■ Stop, a labelled GIF, model cards and the steps question in plain words.

Handlers are called directly; what only a browser shows is in ``test_learner_browser.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import types  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from diffusion_core.data.toy2d_spec import TOY_SPECS  # noqa: E402
from diffusion_core.sampling import SamplerSettings, sample_final  # noqa: E402
from diffusion_core.schedule import ScheduleConfig  # noqa: E402
from diffusion_core.training.config import TrainConfig  # noqa: E402
from diffusion_core.workflows import toy2d as wf  # noqa: E402
from pages import common, schedules  # noqa: E402
from pages import toy2d as tab  # noqa: E402
from pages.forward import views as forward_views  # noqa: E402
from pages.sampler import handlers as sampler  # noqa: E402
from pages.sampler import lab as image_lab  # noqa: E402
from pages.sampler import models  # noqa: E402
from pages.toy2d import figures  # noqa: E402
from pages.toy2d.inputs import DEFAULT_DATASET, DEFAULT_POINTS, PRESET  # noqa: E402

SHARED = ScheduleConfig(kind="cosine", T=1000).to_dict()
# Tab 3 exactly as it opens: the default data set and the 2D preset (model, schedule, recipe).
DEFAULTS = dict(dataset=DEFAULT_DATASET, n=DEFAULT_POINTS,
                noise=TOY_SPECS[DEFAULT_DATASET].default_noise, seed=0, source="preset",
                kind="cosine", T=100, shared=SHARED, hidden=PRESET.model.hidden,
                depth=PRESET.model.depth, time_embedding=PRESET.model.time_embedding,
                activation=PRESET.model.activation, lr=PRESET.train.lr,
                batch_size=PRESET.train.batch_size, steps=PRESET.train.steps)


def last(gen):
    """The last value a generator yields."""
    return list(gen)[-1]


@pytest.fixture(scope="module")
def preset():
    """The preset model on the default data, trained by one press of ▶ Train (~2 s)."""
    return last(tab.train(None, **DEFAULTS))[0]


def ratio(state, sampler_name, steps, seed, clip_x0=False) -> float:
    """SW1 / floor of one Sample press (the tab's defaults otherwise: η 0, 1,000 points)."""
    last(tab.sample(state, sampler_name, steps, 0.0, 1000, seed, clip_x0))
    return state.last_scores["network"].quality.ratio


# --- 1. DDIM in tab 3 works with its defaults --------------------------------------------------


def test_ddim_and_dpm_solver_defaults_score_like_ddpm(preset):
    """Before: DDIM with the Steps box as it is (T = 200) scored 15× the floor, with 25 steps
    114× (moons, seeds 0 and 1); DDPM ~1×. The data box keeps them within 2× of DDPM."""
    T = preset.T
    assert preset.schedule.alpha_bar(T - 1) < 1e-7  # the schedule that caused it
    ddpm = np.mean([ratio(preset, "ddpm", T, s) for s in (0, 1)])
    assert ddpm < 2.0
    for name, seeds in (("ddim", (0, 1)), ("dpmpp_2m", (0,))):
        for steps in (T, None):  # the Steps box as it stands, and empty (25 steps)
            got = np.mean([ratio(preset, name, steps, s) for s in seeds])
            assert got < 2 * ddpm, (name, steps, got, ddpm)
    # the text says what keeps x̂0 in place, and a tick of the [−1, 1] clip replaces it
    _, md = last(tab.sample(preset, "ddim", None, 0.0, 200, 0))
    assert "x̂0 kept in the data's box" in md and "⚠" not in md
    _, md = last(tab.sample(preset, "ddim", None, 0.0, 200, 0, True))
    assert "x̂0 clipped" in md and "data's box" not in md


def test_the_box_is_off_by_default_in_the_workflow_and_never_on_the_ideal_denoiser(preset):
    settings = SamplerSettings("ddim", 10, spacing="trailing")
    plain = wf.Toy2DSampling(preset, settings, 50, 3)
    assert not plain.x0_box  # the workflow's default: the sampler as written
    boxed = wf.sample_session(preset, settings, 50, 3, x0_box=True)
    g = torch.Generator().manual_seed(3)
    x_T = torch.randn(50, 2, generator=g)
    raw = sample_final(preset.model, preset.schedule, x_T, generator=g,
                       **settings.sample_kwargs(preset.T))
    bound = 1.1 * float(preset.data.abs().max())
    assert boxed.x0_box and float(raw.abs().max()) > 2 * bound  # unboxed DDIM flies off …
    assert float(boxed.samples.abs().max()) < 1.05 * bound  # … boxed stays near the data
    ideal = wf.Toy2DSampling(preset, settings, 10, 0, denoiser="ideal", x0_box=True)
    assert not ideal.x0_box  # its x̂0 is a mean of training points: inside the box already
    with pytest.raises(ValueError, match="x0_box"):
        wf.Toy2DSampling(preset, settings, 10, 0, x0_box="yes")


# --- 2. labels in words --------------------------------------------------------------------


def test_chain_ends_are_words_and_the_index_is_in_the_hover(preset):
    fig, _ = last(tab.sample(preset, "ddim", 10, 0.0, 100, 0))
    steps = fig.layout.sliders[0].steps
    assert [steps[0].label, steps[-1].label] == ["pure noise", "samples"]
    assert steps[1].label.startswith("t = ") and fig.layout.sliders[0].currentvalue.prefix == ""
    assert "t = 199 (the start)" in fig.frames[0].data[0].hovertemplate
    assert "t = −1" in fig.frames[-1].data[0].hovertemplate
    # a schedule that never reaches noise (tab 1's linear, T = 50: ᾱ_49 ≈ 0.6) keeps its t
    linear50 = ScheduleConfig(kind="linear", T=50).to_dict()
    fwd = tab.forward_animation("moons", 300, 0.05, 0, "shared", "cosine", 100, linear50)
    labels = [s.label for s in fwd.layout.sliders[0].steps]
    assert labels[0] == "data" and labels[-1] == "t = 49"
    assert "ᾱ = 0.6" in fwd.frames[-1].data[0].hovertemplate
    assert "t = −1 (ᾱ = 1)" in fwd.frames[0].data[0].hovertemplate
    assert all(len(label) <= 12 for label in labels)  # short enough not to be cut


def test_loss_chart_explains_its_target_beside_the_axis():
    stf = figures.loss_figure(None)  # the preset trains on the stable target
    assert stf.layout.yaxis.title.text.startswith("‖ε_STF − ε̂‖²/2")
    words = stf.layout.annotations[0].text  # the left chart's title, above its axis
    assert words.startswith("loss per step") and "ε_STF: the <b>stable target</b>" in words
    assert "Xu et al. 2023" in words
    plain = figures.loss_words(TrainConfig(target="eps"))
    assert plain == "ε: the noise that was added to make x_t"
    v = figures.loss_words(TrainConfig(target="stf", prediction="v"))
    assert v.startswith("v: the <b>stable target</b>") and "the velocity" in v


def test_progress_names_this_press_and_all_presses(preset):
    state = last(tab.train(None, **{**DEFAULTS, "steps": 5}))[0]
    _, _, text, *_ = last(tab.train(state, **{**DEFAULTS, "steps": 5}))
    assert text.startswith("**Done: step 5 / 5** of this press")
    assert "trained **10 steps** in all 2 presses" in text


def test_forward_table_has_headers_and_enough_digits():
    stats = types.SimpleNamespace(t=0, T=1000, alpha_bar=0.999959, signal=0.99998,
                                  noise=0.0064, snr=2.4e4, snr_db=43.9, psnr_db=50.1)
    md = forward_views.numbers_markdown(stats)
    header = md.splitlines()[0]
    assert header == "| quantity | at t = 0 (of 0…999) |"
    assert all(cell.strip() for cell in header.strip("|").split("|"))  # no empty header
    assert "| 0.999959 (1 − ᾱ = 4.1e-05) |" in md and "| 1 |" not in md
    assert forward_views.near_one(0.8459) == "0.8459"
    assert forward_views.near_one(0.99996) == "0.999960"


def test_schedule_hover_names_its_x_value():
    fig = schedules.schedules_figure({}, "t")
    assert fig.layout.xaxis.unifiedhovertitle.text == "t = %{x}"
    assert fig.layout.xaxis4.unifiedhovertitle.text == "t = %{x}"
    assert schedules.schedules_figure({}, "t / T").layout.xaxis.unifiedhovertitle.text \
        == "t / T = %{x:.3f}"


# --- 3. downloads ----------------------------------------------------------------------------


def test_samples_csv_is_ready_after_a_run_with_a_real_name(preset):
    assert tab.samples_csv(None)["interactive"] is False
    last(tab.sample(preset, "ddpm", None, 0.0, 200, 4))
    upd = tab.samples_csv(preset, "network")
    path = Path(upd["value"])
    assert path.name == "moons_samples_ddpm_200.csv" and upd["interactive"]
    assert upd["label"] == "⬇ moons_samples_ddpm_200.csv"
    lines = path.read_text().splitlines()
    assert lines[0] == "x1,x2" and len(lines) == 201
    pts = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_allclose(pts, preset.last_scores["network"].samples.numpy(), atol=1e-5)
    assert tab.handlers.samples_csv_name("spirals", SamplerSettings("ddim", 25), 200,
                                         "ideal") == "spirals_samples_ideal_ddim_25.csv"
    assert tab.samples_csv(preset, "ideal")["interactive"] is False  # no ideal run yet


def test_schedule_csv_downloads_in_one_click():
    import app

    demo = app.build_demo()
    export = next(fn for fn in demo.fns.values() if fn.api_name == "schedules_csv")
    (button,) = export.outputs
    assert isinstance(button, gr.DownloadButton) and button.elem_id == schedules.CSV_ELEM_ID
    follow = [fn for fn in demo.fns.values() if fn.js == schedules.CLICK_DOWNLOAD_JS]
    assert len(follow) == 1 and follow[0].fn is None  # the browser clicks it: no second click
    assert ".dl-offscreen" in common.CSS


# --- tab 4: files after ■ Stop, the labelled GIF, ▶ Replay ------------------------------------

DDIM = dict(sampler="ddim", variance="beta_tilde", steps=10, eta=0.0, spacing="trailing",
            n_images=4, seed=0)


def stopped_run(steps_done: int = 4):
    """A digits run closed after ``steps_done`` steps (what ■ Stop does)."""
    gen = sampler.run_sampler("digits", **{**DDIM, "steps": 40})
    run = next(gen)[3]
    while run.steps_done < steps_done:
        next(gen)
    gen.close()
    return run


def test_stop_leaves_gif_and_png_of_the_frames_so_far(monkeypatch):
    monkeypatch.setattr(sampler, "BEAT_S", 0.0)  # a yield after every step
    run = stopped_run()
    assert not run.done and run.gif is None
    _, text, *_ = sampler.run_finished(run, "")
    assert "⬇ GIF and ⬇ PNG hold the frames made so far" in text
    gif_btn, png_btn, replay_btn = sampler.files_so_far(run)
    assert gif_btn["interactive"] and png_btn["interactive"] and replay_btn["interactive"]
    gif = Image.open(gif_btn["value"])
    assert gif.n_frames == len(run.xt) and gif_btn["label"].startswith("⬇ GIF (")
    png = Image.open(png_btn["value"])
    assert png.size[0] > 2 * png.size[1]  # x_t beside x̂0
    sampler._cleanup(run)
    assert not Path(gif_btn["value"]).exists()


def test_gif_has_labels_a_t_counter_and_holds_the_samples():
    run = last(sampler.run_sampler("digits", **DDIM))[3]
    gif = Image.open(run.gif)
    assert gif.n_frames == len(run.xt) == 11
    durations = []
    for i in range(gif.n_frames):
        gif.seek(i)
        durations.append(gif.info["duration"])
    assert durations[:-1] == [sampler.GIF_FRAME_MS] * 10 and durations[-1] == 1500
    gif.seek(0)
    first = np.asarray(gif.convert("L"), dtype=np.int16)
    gif.seek(gif.n_frames - 1)
    final = np.asarray(gif.convert("L"), dtype=np.int16)
    band = sampler.gif_font_px(gif.size[0]) + 10
    head, foot = first[:band], first[-band:]
    assert (head < 128).mean() > 0.01 and (foot < 128).mean() > 0.01  # text drawn there
    assert np.array_equal(head, final[:band])  # the same panel names on every frame
    assert not np.array_equal(foot, final[-band:])  # … and a different t under each
    assert [sampler.gif_caption(run, i) for i in (0, 10)] == [
        "t = 999   step 1 of 10", "t = -1   the samples (10 steps)"]


def test_replay_plays_the_kept_frames_and_instant_runs_replay_once():
    run = last(sampler.run_sampler("digits", **DDIM))[3]
    outs = list(sampler.replay(run))
    frames = [o[2]["value"] for o in outs[:-1]]
    assert frames == list(range(len(run.xt)))  # ≤ REPLAY_FRAMES: every kept frame, in order
    np.testing.assert_array_equal(outs[-2][0], sampler._show(run.xt[-1], run.scale))
    assert outs[-1][3].startswith("✓ Done · Replayed 11 frames")
    run.total_s = 0.2
    assert len(list(sampler.replay_instant(run))) == len(outs)
    run.total_s = 5.0
    assert list(sampler.replay_instant(run)) == [(gr.skip(),) * 4]
    with pytest.raises(gr.Error, match="Sample first"):
        next(sampler.replay(None))


# --- 4. model cards and "how many steps do I need?" ---------------------------------------------


@pytest.mark.parametrize("key", ["digits", "digits_cond", "gradients", "shapes"])
def test_model_cards_start_in_plain_words_with_the_details_collapsed(key):
    ck = models.load_model(key)
    card = models.model_card_md(key, ck)
    assert card.startswith("**What it learned:**") and "**How good are its samples?**" in card
    plain, details = card.split("<details>", 1)
    assert "--" not in plain and "`" not in plain and "|" not in plain  # no flags, no tables
    assert details.startswith(f"<summary>{models.DETAILS_SUMMARY}</summary>")
    assert (ck.path / models.CARD).read_text(encoding="utf-8") in details


def test_table_cells_never_break_words():
    assert "word-break: normal !important" in common.CSS
    assert "overflow-x: auto" in common.CSS  # a wide table scrolls instead


def fake_sweep(curves: dict[str, tuple[list[int], list[float]]], hint="lower is better"):
    metric = types.SimpleNamespace(key="fd", label="Fréchet distance (features)", hint=hint,
                                   reference=0.19)
    names = list(curves)
    return types.SimpleNamespace(
        judge=types.SimpleNamespace(metrics=(metric,)),
        curve=lambda c, key: tuple(np.asarray(v, dtype=float) for v in curves[names[c]])), names


def test_steps_question_is_answered_in_words_from_the_numbers():
    sweep, labels = fake_sweep({
        "DDIM η = 0": ([5, 10, 20, 50], [1.01, 0.60, 0.525, 0.51]),
        "DDPM (σ² = β̃)": ([5, 10, 20, 50], [9.0, 4.0, 2.0, 1.0]),
        "DPM-Solver++ 2M": ([5, 10, 20, 50], [0.55, 0.52, 0.51, 0.52]),
    })
    md = image_lab.steps_answer_md(sweep, labels)
    # the target: within 10 % of the best score reached (0.51), i.e. ≤ 0.561
    assert md.startswith("**How many steps do I need?** To come within 10% of the best "
                         "Fréchet distance any sampler reached here (0.51; lower is better; "
                         "real data score 0.19 at this N):")
    assert "- **DDIM η = 0**: **20 steps** (0.525)." in md
    assert ("- **DDPM (σ² = β̃)**: does not get there at these counts (its best: 1 at 50 "
            "steps; still improving at 50: tick a larger count).") in md
    assert "- **DPM-Solver++ 2M**: **5 steps**, the fewest tried (0.55)." in md
    assert md.endswith("Fewest steps: **DPM-Solver++ 2M**, 5.")
    higher, labels = fake_sweep({"DDIM η = 0": ([5, 10, 20], [0.80, 0.93, 0.94])},
                                hint="higher is better")
    one = image_lab.steps_answer_md(higher, labels)
    assert "**10 steps** (0.93)" in one and "Fewest" not in one
    empty, labels = fake_sweep({"DDIM η = 0": ([], [])})
    assert image_lab.steps_answer_md(empty, labels) == ""
