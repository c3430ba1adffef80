"""Tab 4 with classifier-free guidance: the main sampler's Class and Guidance s controls, and the
"Guidance: digit × scale grid" section (``pages/sampler/guide.py``).

Convention: ε̃ = ε_u + s·(ε_c − ε_u); s = 0 the unconditional model, s = 1 the conditional
one, s > 1 guides harder. The handlers are called directly (generators: ``list(...)``); the
model folder holds a tiny unconditional U-Net, a tiny conditional one (classes a, b, c) and the
shipped ``digits_cond`` (linked).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from diffusion_core.checkpoints import save_checkpoint  # noqa: E402
from diffusion_core.images import make_grid  # noqa: E402
from diffusion_core.models import UNetConfig, build_model  # noqa: E402
from diffusion_core.sampling import sample_final  # noqa: E402
from diffusion_core.schedule import ScheduleConfig  # noqa: E402
from pages import limits  # noqa: E402
from pages import sampler as tab  # noqa: E402
from pages.sampler import guide, handlers  # noqa: E402
from pages.sampler import models as shelf  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2), groups=4, attn_heads=1,
                  attn_dim_head=8, use_linear_attention=False, use_mid_attention=False)
COND = UNetConfig(**{**TINY.__dict__, "num_classes": 3})
T = 20
DDIM5 = dict(sampler="ddim", variance="beta_tilde", steps=5, eta=0.0, spacing="trailing",
             n_images=4, seed=3, clip_x0=True)
DDPM = dict(sampler="ddpm", variance="beta_tilde", steps=T, eta=0.0, spacing="leading",
            n_images=4, seed=1, clip_x0=True)
OUT = ("xt", "x0", "status", "run", "frame", "gif", "png")
GRID_SCALES = [0.0, 2.0, 5.0]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """tiny (unconditional), tinyc (3 classes a, b, c; s = 3 recorded) and digits_cond."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    save_checkpoint(root / "tiny", build_model(TINY), TINY, ScheduleConfig(kind="cosine", T=T),
                    dataset={"name": "test"})
    torch.manual_seed(0)
    net = build_model(COND)
    with torch.no_grad():  # zero at initialisation: make the classes differ
        net.class_embed.embedding.weight.normal_(0.0, 1.0)
    save_checkpoint(root / "tinyc", net, COND, ScheduleConfig(kind="cosine", T=T),
                    dataset={"name": "test", "classes": ["a", "b", "c"]},
                    training={"guidance_default": 3.0})
    (root / "digits_cond").symlink_to(ROOT / "assets" / "models" / "digits_cond")
    return root


@pytest.fixture(autouse=True)
def _models(models_dir, monkeypatch):
    monkeypatch.setattr(shelf, "ASSETS_MODELS", models_dir)


def run_all(key, previous=None, **kw):
    outs = list(tab.run_sampler(key, previous=previous, **kw))
    return dict(zip(OUT, outs[-1], strict=True))


def _plain(model, ck, kw, n=None):
    n = n or kw["n_images"]
    g = torch.Generator().manual_seed(kw["seed"])
    x_T = torch.randn(n, 1, 8, 8, generator=g)
    return sample_final(model, ck.schedule, x_T, sampler=kw["sampler"], steps=kw["steps"],
                        eta=kw["eta"], spacing=kw["spacing"], variance=kw["variance"],
                        clip_x0=True, generator=g)


# --- the main sampler's Class and Guidance s controls ---------------------------------------------


def test_class_and_scale_controls_are_hidden_for_unconditional_models():
    *_, cls, s = tab.model_changed("tiny")
    assert cls["visible"] is False and s["visible"] is False
    assert cls["choices"] == [(handlers.ANY_LABEL, handlers.ANY)] and cls["value"] == "any"
    *_, cls, s = tab.model_changed("tinyc")
    assert cls["visible"] is True and s["visible"] is True
    assert [v for _, v in cls["choices"]] == ["any", "0", "1", "2", "rows"]
    assert [lab for lab, _ in cls["choices"]][1:4] == ["a", "b", "c"]
    assert s["value"] == 3.0  # the checkpoint's recorded guidance_default
    *_, cls, s = tab.model_changed("digits_cond")
    assert cls["visible"] and s["value"] == 2.0 and len(cls["choices"]) == 12


@pytest.mark.parametrize("key", ["tiny", "tinyc"])
def test_unguided_runs_are_bit_identical_to_the_plain_sampler(key):
    last = run_all(key, **DDPM)  # no class, no s: as scripts and older clients call it
    ck = tab.load_model(key)
    want = _plain(ck.model, ck, DDPM)
    assert torch.equal(last["run"].final, want) and not last["run"].guided
    np.testing.assert_array_equal(last["xt"], make_grid(want, scale=last["run"].scale,
                                                        pad=last["run"].scale))
    same = run_all(key, class_choice="any", guidance=7.0, **DDPM)  # s is moot without a class
    assert torch.equal(same["run"].final, want)


@pytest.mark.parametrize("kw", [DDIM5, DDPM], ids=["ddim", "ddpm"])
def test_guided_run_at_s0_and_s1_is_the_unconditional_and_conditional_model(kw):
    ck = tab.load_model("tinyc")
    s0 = run_all("tinyc", class_choice="1", guidance=0, **kw)
    s1 = run_all("tinyc", class_choice="1", guidance=1, **kw)
    y = torch.full((kw["n_images"],), 1)
    torch.testing.assert_close(s0["run"].final, _plain(ck.model, ck, kw), atol=1e-5, rtol=0)
    cond = _plain(lambda x, t: ck.model(x, t, y), ck, kw)
    torch.testing.assert_close(s1["run"].final, cond, atol=1e-5, rtol=0)
    assert (s1["run"].final - s0["run"].final).abs().max() > 0.05  # the class matters
    assert "class b, guidance s = 1" in s1["status"] and "Done" in s1["status"]
    assert s1["run"].guidance == 1.0 and s1["run"].labels.tolist() == [1] * kw["n_images"]
    # an empty s box means the checkpoint's default
    assert run_all("tinyc", class_choice="0", guidance=None, **DDIM5)["run"].guidance == 3.0


def test_one_row_per_class():
    last = run_all("tinyc", class_choice="rows", guidance=2.0, **{**DDIM5, "n_images": 5})
    run = last["run"]
    assert run.n_images == 15 and run.ncols == 5
    assert run.labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    np.testing.assert_array_equal(run.xt[-1], make_grid(run.final, ncols=5, pad=1)[..., 0])
    assert "one row per class (3 × 5), guidance s = 2" in last["status"]
    big = run_all("tinyc", class_choice="rows", guidance=2.0, **{**DDIM5, "n_images": 64})
    assert big["run"].n_images == 63 and "3 × 21" in big["status"]  # ≤ 64 images in all


@pytest.mark.parametrize(("key", "kw", "message"), [
    ("tiny", dict(class_choice="0"), "unconditional"),
    ("tiny", dict(class_choice="rows"), "unconditional"),
    ("tinyc", dict(class_choice="3"), "not a class of this model"),
    ("tinyc", dict(class_choice=None, guidance=2), None),  # None: unguided, accepted
    ("tinyc", dict(class_choice="0", guidance=10.5), "from 0 to 10"),
    ("tinyc", dict(class_choice="0", guidance=-1), "from 0 to 10"),
    ("tinyc", dict(class_choice="0", guidance="abc"), "from 0 to 10"),
    ("tinyc", dict(class_choice="0", guidance=float("nan")), "from 0 to 10"),
    ("tinyc", dict(class_choice=["0"]), "not a class"),
])
def test_bad_class_or_scale_is_a_readable_message(key, kw, message):
    if message is None:
        assert not run_all(key, **{**DDIM5, **kw})["run"].guided
        return
    with pytest.raises(gr.Error, match=message):
        run_all(key, **{**DDIM5, **kw})


# --- the guidance section -------------------------------------------------------------------------


def test_section_names_the_models_with_classes_for_an_unconditional_one():
    note, cls = guide.guide_model("tiny")
    assert "unconditional" in note and "digits_cond, tinyc" in note
    assert cls["choices"] == [(guide.ALL_LABEL, guide.ALL)]
    for handler, args in ((guide.guide_grid, ("all", GRID_SCALES, 1, 0)),
                          (guide.guide_measure, ("all", GRID_SCALES, 0))):
        outs = list(handler("tiny", *args))  # a note, not an error
        assert len(outs) == 1 and "unconditional" in outs[0][1] and "tinyc" in outs[0][1]
    note, cls = guide.guide_model("digits_cond")
    assert "10 classes" in note and "digit classifier" in note
    assert [v for _, v in cls["choices"]] == ["all", *map(str, range(10))]


def test_grid_handler_gives_a_labelled_pixel_exact_picture():
    outs = list(guide.guide_grid("tinyc", "all", [2.0, 0.0, 2.0], 2, 5))
    picture, md = outs[-1]
    assert all(o[0] is not None and isinstance(o[0], dict) for o in outs[:-1])  # status only
    assert isinstance(picture, np.ndarray) and picture.dtype == np.uint8
    ck = tab.load_model("tinyc")
    from diffusion_core.workflows import image_guidance

    grid = image_guidance.digit_scale_grid(ck, scales=[0.0, 2.0, 2.0], per_cell=2, seed=5,
                                           settings=image_guidance.deterministic_settings(ck))
    lay = grid.layout
    h, w = lay.height, lay.width
    # the samples' picture sits in the bottom right, unchanged; labels only in the margins
    np.testing.assert_array_equal(picture[-h:, -w:], grid.picture)
    top, left = picture.shape[0] - h, picture.shape[1] - w
    assert top >= guide.LABEL_PX and left >= guide.LABEL_PX
    assert (picture[:top] < 128).any() and (picture[:, :left] < 128).any()  # text drawn
    assert "3 classes × 3 scales" in md and "2 images per cell" in md and "seed 5" in md
    # columns sorted by s: the two s = 2 columns are the same images (same x_T, DDIM η = 0)
    assert grid.scales == (0.0, 2.0, 2.0)
    torch.testing.assert_close(grid.samples[:, 1], grid.samples[:, 2], atol=1e-5, rtol=0)


def test_grid_of_one_digit_and_the_shipped_model_reads_the_digit():
    outs = list(guide.guide_grid("digits_cond", "7", [2.0], 4, 0))
    picture, md = outs[-1]
    assert isinstance(picture, np.ndarray) and "one digit × 1 scales" in md
    from diffusion_core.workflows import image_guidance

    ck = tab.load_model("digits_cond")
    grid = image_guidance.digit_scale_grid(ck, classes=[7], scales=[2.0], per_cell=4, seed=0)
    from diffusion_core.evaluation.digits import default_digit_classifier, digits_to_8x8

    read = default_digit_classifier().predict_proba(
        digits_to_8x8(grid.samples.reshape(4, 1, 8, 8))).argmax(1)
    assert (read == 7).mean() >= 0.75, read


@pytest.mark.parametrize(("args", "message"), [
    (("all", [], 1, 0), "at least one"),
    (("all", None, 1, 0), "at least one"),
    (("all", [0.0, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0], 1, 0), "at most 6"),
    (("all", [0.3], 1, 0), "tick some of"),
    (("all", "2", 1, 0), "tick some of"),
    (("all", [True], 1, 0), "tick some of"),
    (("all", [2.0], 0, 0), "from 1 to 4"),
    (("all", [2.0], 5, 0), "from 1 to 4"),
    (("all", [2.0], "a", 0), "from 1 to 4"),
    (("all", [2.0], 1, -1), "Seed"),
    (("9", [2.0], 1, 0), "not a class of this model"),
    ((None, [2.0], 1, 0), "choose all"),
])
def test_grid_bad_input_is_a_readable_message(args, message):
    with pytest.raises(gr.Error, match=message):
        list(guide.guide_grid("tinyc", *args))


def test_measure_streams_a_growing_curve_and_a_table(monkeypatch):
    monkeypatch.setattr(guide, "CURVE_SAMPLES", 30)  # 3 per digit: fast
    outs = list(guide.guide_measure("digits_cond", "all", [5.0, 0.0], 0))
    figures = [o[0] for o in outs if not isinstance(o[0], dict)]
    assert len(figures) >= 3  # one per finished scale, then the last
    fig, md = outs[-1]
    names = [t.name for t in fig.data]
    assert names == ["accuracy", "P(requested)", "spread"]
    acc = dict(zip(fig.data[0].x, fig.data[0].y, strict=True))
    spread = dict(zip(fig.data[2].x, fig.data[2].y, strict=True))
    assert acc[0.0] <= 0.4 and acc[5.0] >= 0.8 and spread[5.0] < spread[0.0], (acc, spread)
    assert md.count("\n| ") == 3 and "| 0 |" in md and "| 5 |" in md  # header + 2 scales
    assert "3 samples per class × 10 classes" in md and "2 scales in" in md
    with pytest.raises(gr.Error, match="tick some of"):
        list(guide.guide_measure("digits_cond", "all", [0.25], 0))


def test_measure_without_a_judge_says_why():
    outs = list(guide.guide_measure("tinyc", "1", [0.0, 2.0], 0))
    fig, md = outs[-1]
    assert "accuracy is not measured" in md and "—" in md
    assert [t.name for t in fig.data] == []  # nothing to draw, and no error


def test_grid_and_measure_stop_at_the_time_budget(monkeypatch):
    monkeypatch.setattr(limits, "ACTIVE", limits.Limits(sample_seconds=1e-6))
    with pytest.warns(UserWarning, match="Stopped at the 1e-06 s limit"):
        outs = list(guide.guide_grid("tinyc", "all", GRID_SCALES, 1, 0))
    assert isinstance(outs[-1][0], dict) and outs[-1][1].startswith("⏱ Stopped at the 1e-06 s")
    with pytest.warns(UserWarning, match="stopped at the 1e-06 s limit"):
        outs = list(guide.guide_measure("tinyc", "all", GRID_SCALES, 0))
    assert outs[-1][1].startswith("⏱ Stopped at the 1e-06 s") and "| 0 |" not in outs[-1][1]


def test_closing_the_grid_mid_way_is_clean(monkeypatch):
    monkeypatch.setattr(guide, "YIELD_EVERY_S", 0.0)  # a status after every step
    gen = guide.guide_grid("tinyc", "all", GRID_SCALES, 1, 0)
    outs = [next(gen) for _ in range(3)]
    gen.close()  # what ■ Stop does
    _, text = guide.guide_finished(outs[-1][1])
    assert text.startswith("■ Stopped during: step")


def test_guide_finished_marks_a_stopped_run():
    out, text = guide.guide_finished("Running · step 3 / 25 …")
    assert text.startswith("■ Stopped during: step 3 / 25")
    assert guide.guide_finished("done") == (gr.skip(), gr.skip())


def test_tab_builds_with_the_guidance_section_and_keeps_the_run_api():
    with gr.Blocks() as demo, gr.Tab("4"):
        tab.render(gr.State(ScheduleConfig().to_dict()))
    eps = demo.get_api_info()["named_endpoints"]
    params = [(p["parameter_name"], p.get("parameter_default"))
              for p in eps["/sampler_run"]["parameters"]]
    # the older parameters keep their order; class and s come last, with defaults
    assert [n for n, _ in params] == ["key", "sampler", "variance", "steps", "eta", "spacing",
                                      "n_images", "seed", "clip_x0", "class_choice", "guidance"]
    assert params[-2:] == [("class_choice", "any"), ("guidance", 2.0)]
    assert {"/sampler_guide_grid", "/sampler_guide_measure"} <= set(eps)
    names = {fn.api_name for fn in demo.fns.values()}
    assert {"sampler_guide_model", "sampler_guide_open", "sampler_guide_grid_finished",
            "sampler_guide_measure_finished", "sampler_guide_stop"} <= names
    assert not any(n.endswith(("_finished", "_stop", "_open", "_model")) and n in eps
                   for n in names if n.startswith("sampler_guide"))
