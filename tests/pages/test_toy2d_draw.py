"""Tab 3's "Draw your own" data set (``pages/toy2d/draw.py``): the canvas → anchors, and every
part of the tab on a drawing (train, field, sample and its score, CSV, bound, lab, forward),
handlers called directly. The browser test is ``test_toy2d_draw_browser.py``."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diffusion_core.data.drawn import DEFAULT_SPREAD, MAX_ANCHORS, DrawnSpec  # noqa: E402
from diffusion_core.evaluation.toy2d import toy2d_quality  # noqa: E402
from pages import links  # noqa: E402
from pages import toy2d as tab  # noqa: E402
from pages.toy2d import draw, lab, why  # noqa: E402
from pages.toy2d.draw import CANVAS, EMPTY_TEXT  # noqa: E402
from pages.toy2d.inputs import DATA_CHOICES  # noqa: E402
from pages.widgets import inputs as ui  # noqa: E402

SLOTS = [v for name, steps, eta, var, sp in lab.DEFAULT_SLOTS
         for v in (True, name, steps, eta, var, sp)]
BASE = dict(dataset="drawn", n=1000, noise=0.03, seed=0, source="preset", kind="cosine",
            T=100, shared={}, hidden=64, depth=2, time_embedding="sinusoidal",
            activation="silu", lr=3e-3, batch_size=128, steps=100)


def ring_layer(radius: float = 100, width: float = 6, side: int = CANVAS) -> np.ndarray:
    """An RGBA stroke layer: a ring around the canvas centre, transparent elsewhere."""
    rows, cols = np.mgrid[0:side, 0:side]
    r = np.hypot(cols + 0.5 - side / 2, rows + 0.5 - side / 2)
    img = np.zeros((side, side, 4), np.uint8)
    img[np.abs(r - radius) <= width / 2] = (0, 114, 178, 255)
    return img


def canvas_value(*layers, composite=None) -> dict:
    """What gr.Sketchpad(type="numpy") hands a handler."""
    return {"background": None, "layers": list(layers), "composite": composite}


@pytest.fixture(scope="module")
def ring():
    anchors, fig, note = draw.use_drawing(canvas_value(ring_layer()), 1000, 0.03, 0)
    return anchors, fig, note


@pytest.fixture(scope="module")
def trained(ring):
    return list(tab.train(None, **BASE, drawing=ring[0]))[-1][0]


def _xy(trace):
    return np.asarray(trace.x, dtype=np.float64), np.asarray(trace.y, dtype=np.float64)


def test_use_my_drawing_gives_anchors_a_plot_and_a_note(ring):
    anchors, fig, note = ring
    assert anchors.shape == (MAX_ANCHORS, 2) and anchors.dtype == np.float32  # thinned
    r = np.hypot(anchors[:, 0], anchors[:, 1])  # the ring, centred and scaled to radius ≈ 1
    assert 0.9 < r.min() and r.max() < 1.01 and abs(float(np.median(r)) - 0.97) < 0.03
    x, y = _xy(fig.data[0])
    assert len(x) == 1000 and "drawn: 1,000 points" in fig.layout.title.text
    pr = np.hypot(x, y)
    assert abs(np.median(pr) - np.median(r)) < 0.02 and np.std(pr) < 0.08  # noise 0.03
    assert "Using your drawing" in note and "2,000 of them (at random) kept as anchors" in note
    assert MAX_ANCHORS == 2000
    assert ("Draw your own", "drawn") in DATA_CHOICES


@pytest.mark.parametrize(("value", "words"), [
    (None, "canvas is empty"),
    (canvas_value(np.zeros((CANVAS, CANVAS, 4), np.uint8)), "canvas is empty"),
    (canvas_value(), "canvas is empty"),
])
def test_an_empty_canvas_warns_and_changes_nothing(value, words):
    with pytest.warns(UserWarning, match=words):
        out = draw.use_drawing(value, 1000, 0.03, 0)
    assert all(o == gr.skip() for o in out)


def test_two_pixels_are_too_few_and_bad_numbers_are_refused():
    img = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    img[5, 5, 3] = img[9, 9, 3] = 255
    with pytest.warns(UserWarning, match="Only 2 pixels"):
        draw.use_drawing(canvas_value(img), 1000, 0.03, 0)
    with pytest.raises(gr.Error, match="Number of points"):
        draw.use_drawing(canvas_value(ring_layer()), "abc", 0.03, 0)


def test_the_composite_is_read_when_there_are_no_layers_and_layers_combine():
    white = np.full((CANVAS, CANVAS, 4), 255, np.uint8)
    ink = ring_layer()
    comp = np.where(ink[:, :, 3:] > 0, ink, white)  # the ring flattened on white
    from_comp = draw.canvas_image(canvas_value(composite=comp))
    assert np.array_equal(from_comp[:, :, 3] > 0, ink[:, :, 3] > 0)
    a, b = ring_layer(60), ring_layer(120)  # two layers: both rings count
    both = draw.canvas_image(canvas_value(a, b))[:, :, 3] > 0
    assert np.array_equal(both, (a[:, :, 3] > 0) | (b[:, :, 3] > 0))


def test_choosing_draw_your_own_shows_the_canvas_and_its_plot(ring):
    fig, noise = tab.dataset_changed("drawn", 500, 0, None)
    assert noise == DEFAULT_SPREAD and not fig.data
    assert fig.layout.annotations[0].text == EMPTY_TEXT
    fig, _ = tab.dataset_changed("drawn", 500, 0, ring[0])
    assert len(fig.data[0].x) == 500
    assert tab.data_plot("drawn", 700, 0.1, 2, ring[0]).layout.title.text.startswith(
        "drawn: 700 points")
    assert draw.show_canvas("drawn")["visible"] is True
    assert draw.show_canvas("moons")["visible"] is False


def test_training_on_a_drawing_and_what_is_refused(ring, trained):
    assert isinstance(trained.spec, DrawnSpec) and trained.spec.name == "drawn"
    assert trained.trainer.step == 100 and len(trained.data) == 1000
    np.testing.assert_array_equal(trained.spec.anchors, ring[0])
    assert np.mean(trained.losses[-30:]) < 0.8 * np.mean(trained.losses[:10])
    with pytest.raises(gr.Error, match="No drawing yet"):
        list(tab.train(None, **BASE))
    with pytest.raises(gr.Error, match="no classes"):
        list(tab.train(None, **{**BASE, "steps": 2}, conditional=True, drawing=ring[0]))
    # the same drawing continues the model; another drawing starts a new one
    state = list(tab.train(None, **{**BASE, "steps": 3}, drawing=ring[0]))[-1][0]
    _, _, text, *_ = list(tab.train(state, **{**BASE, "steps": 2}, drawing=ring[0].copy()))[-1]
    assert "Continuing the model from step 3" in text
    other = draw.use_drawing(canvas_value(ring_layer(60)), 1000, 0.03, 0)[0]
    _, _, text, *_ = list(tab.train(state, **{**BASE, "steps": 2}, drawing=other))[-1]
    assert "the data set changed" in text


def test_field_samples_score_csv_bound_lab_and_forward_run_on_a_drawing(trained):
    fig = tab.vector_field(trained, 50, "both")
    names = [tr.name or "" for tr in fig.data]  # the noised drawing, both fields' arrows
    assert any(n.startswith("x_t") for n in names) and any("ideal" in n for n in names), names
    fig, md = list(tab.sample(trained, "ddpm", 100, 0.0, 800, 0, False, "ideal"))[-1]
    score = trained.last_scores["ideal"]
    q = score.quality
    # The ideal denoiser's samples copy the training points (NN ratio < 1), drawn from the
    # drawing: the score's fresh draws of the drawing sit near them (≈ 1.6× the floor; a
    # finite training set, not the distribution), while moons are far from them.
    assert q.bad == 0 and q.ratio < 2.5 and q.nn < 1.0, q
    moons = toy2d_quality(score.samples, "moons", noise=0.03, projection_seed=0, floor_pairs=4)
    assert moons.ratio > 4 * q.ratio, (moons, q)
    assert "SW1" in md and "floor" in md
    btn = tab.samples_csv(trained, "ideal")
    assert btn["label"] == "⬇ drawn_samples_ideal_ddpm_100.csv"
    rows = np.loadtxt(btn["value"], delimiter=",", skiprows=1)
    assert rows.shape == (800, 2)
    # the bound on fresh points of the drawing (never trained on)
    fig, text = list(why.bound(trained, "beta_tilde", "fresh", 200))[-1]
    assert "nats per point" in text and len(fig.data) > 0
    # the sampler lab scores against the drawing too
    fig, md = list(lab.compare(trained, *SLOTS, True, 300, 0, 0))[-1]
    titles = [a.text for a in fig.layout.annotations if a.text and "<b>" in a.text]
    assert titles and all("SW1" in t for t in titles)
    fwd = tab.forward_animation("drawn", 500, 0.03, 0, "preset", "cosine", 100, {},
                                trained.spec.anchors)
    assert "Forward diffusion: drawn" in fwd.layout.title.text


def test_a_link_cannot_carry_a_drawing():
    with gr.Blocks():
        dataset = ui.Dropdown(list(DATA_CHOICES), value="moons", label="Data set")
    c = draw.link_control(dataset)
    assert c.parse("spirals") == "spirals"
    with pytest.raises(gr.Error, match="cannot carry a drawing"):
        c.parse("drawn")
    spec = links.LinkSpec({"toy2d": links.TabLinks((c,))})
    parsed = spec.parse({"tab": "toy2d", "dataset": "drawn"})
    assert parsed.tab == "toy2d" and parsed.given == {}
    assert "cannot carry a drawing" in spec.notice(parsed.ignored)
