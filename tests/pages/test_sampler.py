"""Tab 4 (image sampler): model listing/loading, the streaming sampler, frames, files, errors.

The run itself is ``diffusion_core.workflows.image_sampling`` (its own tests are in
``tests/core/workflows/test_image_sampling.py``); these drive the tab's handlers.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from diffusion_core import sampling as samplers  # noqa: E402
from diffusion_core.checkpoints import save_checkpoint  # noqa: E402
from diffusion_core.images import make_grid  # noqa: E402
from diffusion_core.models import UNetConfig, build_model  # noqa: E402
from diffusion_core.schedule import NoiseSchedule, ScheduleConfig  # noqa: E402
from diffusion_core.workflows import image_sampling  # noqa: E402
from pages import sampler as tab  # noqa: E402
from pages.sampler import handlers  # noqa: E402
from pages.sampler import models as shelf  # noqa: E402

TINY = UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2), groups=4, attn_heads=1,
                  attn_dim_head=8, use_linear_attention=False, use_mid_attention=False)
T = 20
# key, sampler, variance, steps, eta, spacing, n_images, seed, clip_x0
DDIM5 = dict(sampler="ddim", variance="beta_tilde", steps=5, eta=0.0, spacing="trailing",
             n_images=4, seed=3, clip_x0=True)
DDPM = dict(sampler="ddpm", variance="beta_tilde", steps=T, eta=0.0, spacing="leading",
            n_images=5, seed=1, clip_x0=True)
OUT = ("xt", "x0", "status", "run", "frame", "gif", "png")


@pytest.fixture()
def models_dir(tmp_path, monkeypatch):
    """A model folder with one tiny checkpoint ("tiny", T = 20); the tab looks only there."""
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "tiny", build_model(TINY), TINY,
                    ScheduleConfig(kind="cosine", T=T), dataset={"name": "test"})
    monkeypatch.setattr(shelf, "ASSETS_MODELS", tmp_path)
    return tmp_path


def run_all(key="tiny", previous=None, **kw):
    outs = list(tab.run_sampler(key, previous=previous, **kw))
    return outs, dict(zip(OUT, outs[-1], strict=True))


# --- models -----------------------------------------------------------------------------------


def test_empty_folder_offers_only_the_demo(tmp_path):
    assert tab.list_models(tmp_path) == [(tab.DEMO_LABEL, tab.DEMO_KEY)]
    assert tab.list_models(tmp_path / "missing") == [(tab.DEMO_LABEL, tab.DEMO_KEY)]
    (tmp_path / "half_written").mkdir()  # no weights yet: not listed
    assert tab.list_models(tmp_path) == [(tab.DEMO_LABEL, tab.DEMO_KEY)]
    assert "random weights" in tab.DEMO_LABEL


def test_demo_model_is_deterministic_and_works():
    ck = tab.load_model(tab.DEMO_KEY)
    assert isinstance(ck.model_config, UNetConfig)
    assert not any(p.requires_grad for p in ck.model.parameters())
    x = torch.randn(2, 1, 16, 16)
    with torch.inference_mode():
        out = ck.model(x, torch.tensor([0, 999]))
    assert out.shape == x.shape and torch.isfinite(out).all()
    shelf._demo_checkpoint.cache_clear()
    again = tab.load_model(tab.DEMO_KEY)
    for a, b in zip(ck.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b)  # seeded: the same demo weights every time


def test_checkpoint_is_listed_loads_and_is_cached(models_dir):
    choices = tab.list_models(models_dir)
    assert [k for _, k in choices] == ["tiny"]
    assert "test" in choices[0][0] and "1×8×8" in choices[0][0]
    ck = tab.load_model("tiny")
    assert ck.schedule.T == T and ck.model_config == TINY
    assert tab.load_model("tiny") is ck  # the shared read-only cache
    with pytest.raises(gr.Error):
        tab.load_model("../../etc")  # only listed keys load
    with pytest.raises(gr.Error):
        tab.load_model(None)


def test_model_card_and_summary(models_dir):
    out = tab.model_changed("tiny")
    summary, card, steps = out[0], out[1], out[2]
    assert "cosine, T = 20" in summary and "test" in summary
    assert "No model card" in card and "- **schedule**: cosine, T = 20" in card
    assert steps["maximum"] == T and 1 <= steps["value"] <= T
    assert "schedule is not used here" in summary
    (models_dir / "tiny" / tab.CARD).write_text("# Tiny\n\nA card.")
    # plain words first, the card itself collapsed under "Developer details" (issue #14)
    card = tab.model_changed("tiny")[1]
    assert card.startswith("**What it learned:**") and "\n\n# Tiny\n\nA card.\n\n" in card
    assert card.index("<details>") < card.index("# Tiny") < card.index("</details>")
    demo = tab.model_changed(tab.DEMO_KEY)
    assert "Untrained demo" in demo[0]


def test_sampler_changed_sets_steps(models_dir):
    steps, eta, variance = tab.sampler_changed("ddpm", "tiny")
    assert steps["value"] == T and eta["interactive"] is False and variance["interactive"]
    steps, eta, _ = tab.sampler_changed("ddim", "tiny")
    assert steps["value"] == min(25, T) and eta["interactive"]
    with pytest.raises(gr.Error):
        tab.sampler_changed("euler", "tiny")


def test_rescan_finds_new_models(models_dir):
    assert tab.rescan_models("tiny")["value"] == "tiny"
    torch.manual_seed(1)
    save_checkpoint(models_dir / "another", build_model(TINY), TINY,
                    ScheduleConfig(kind="linear", T=10), dataset={"name": "x"})
    upd = tab.rescan_models("gone")
    assert [k for _, k in upd["choices"]] == ["another", "tiny"] and upd["value"] == "another"


# --- sampling ---------------------------------------------------------------------------------


def _grid_shape(n, size, scale):
    ncols = int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    return (nrows * (size + 2) * scale, ncols * (size + 2) * scale, 3)


@pytest.mark.parametrize("kw", [DDIM5, DDPM], ids=["ddim5", "ddpm20"])
def test_run_to_the_end(models_dir, kw):
    outs, last = run_all(**kw)
    run = last["run"]
    n, steps = kw["n_images"], kw["steps"]
    # every step kept (≤ 100 steps) plus the final sample
    assert run.done and run.steps_done == steps and len(run.xt) == len(run.x0) == steps + 1
    assert len(run.captions) == steps + 1 and run.captions[-1].startswith("t = −1")
    scale = run.scale
    assert image_sampling.MIN_SCALE <= scale <= image_sampling.MAX_SCALE
    final = last["xt"]
    assert final.dtype == np.uint8 and final.shape == _grid_shape(n, 8, scale)
    # the final grid is exactly what the core sampler gives with the same seed
    ck = tab.load_model("tiny")
    g = torch.Generator().manual_seed(kw["seed"])
    x_T = torch.randn(n, 1, 8, 8, generator=g)
    want = samplers.sample_final(ck.model, ck.schedule, x_T, sampler=kw["sampler"],
                                 steps=steps, eta=kw["eta"], spacing=kw["spacing"],
                                 variance=kw["variance"], clip_x0=True, generator=g)
    np.testing.assert_array_equal(final, make_grid(want, scale=scale, pad=scale))
    # the last kept frame, enlarged, is that same grid; the first is x_T
    np.testing.assert_array_equal(handlers._show(run.xt[-1], scale), final)
    np.testing.assert_array_equal(run.xt[0], make_grid(x_T, pad=1)[..., 0])
    # files: the PNG is the same grid, enlarged 4–8× for slides
    png = Image.open(last["png"]["value"])
    fs = png.size[0] // (final.shape[1] // scale)
    assert png.format == "PNG" and 4 <= fs <= 8
    assert png.size == (final.shape[1] // scale * fs, final.shape[0] // scale * fs)
    np.testing.assert_array_equal(np.asarray(png.convert("RGB")),
                                  make_grid(want, scale=fs, pad=fs))
    gif = Image.open(last["gif"]["value"])
    assert gif.format == "GIF" and gif.n_frames == len(run.xt)  # ≤ 60 frames: all of them
    side = run.xt[0].shape[1]
    gscale = max(1, min(scale, image_sampling.GIF_SIDE // side))
    width = 2 * side * gscale + 4 * gscale
    # the panels under a label band, above a band with the t counter (issue #14)
    assert gif.size == (width, run.xt[0].shape[0] * gscale + 2 * (handlers.gif_font_px(width)
                                                                  + 10))
    assert gif.info["duration"] == handlers.GIF_FRAME_MS
    assert last["frame"]["maximum"] == steps and last["frame"]["interactive"]
    assert "ms per step" in last["status"] and "Done" in last["status"]
    assert all(len(o) == len(OUT) for o in outs)


def test_fixed_seed_gives_identical_run(models_dir):
    _, a = run_all(**DDIM5)
    _, b = run_all(**{**DDIM5, "eta": 0.0})
    np.testing.assert_array_equal(a["xt"], b["xt"])
    _, c = run_all(**{**DDIM5, "seed": 4})
    assert not np.array_equal(a["xt"], c["xt"])
    # stochastic samplers are reproducible too
    _, d1 = run_all(**{**DDPM, "seed": 9})
    _, d2 = run_all(**{**DDPM, "seed": 9})
    np.testing.assert_array_equal(d1["xt"], d2["xt"])


def test_frames_are_subsampled_for_long_chains(models_dir):
    assert len(image_sampling.kept_steps(1000, 100)) == 99
    kept = image_sampling.kept_steps(1000, 100)
    assert 0 in kept and 999 in kept
    assert image_sampling.kept_steps(5, 100) == set(range(5))
    assert image_sampling.frame_budget(64, 3, 256) >= 2  # huge images: fewer frames, never < 2


def test_display_scale_keeps_grids_crisp_and_in_the_box():
    assert image_sampling.grid_scale(16, 16) == 4  # 16 images of 16×16: 4× (288 px)
    for n in (1, 4, 16, 64):
        for size in (8, 16, 32):
            s = image_sampling.grid_scale(n, size)
            side = int(np.ceil(np.sqrt(n))) * (size + 2)
            assert image_sampling.MIN_SCALE <= s <= image_sampling.MAX_SCALE
            assert (side * s <= image_sampling.DISPLAY_SIDE
                    or s == image_sampling.MIN_SCALE)


def test_new_run_frees_the_previous_runs_files(models_dir):
    _, a = run_all(**DDIM5)
    old = a["run"].out_dir
    assert old.is_dir()
    run_all(previous=a["run"], **DDIM5)
    assert not old.exists()


def test_frame_slider_returns_the_right_frame(models_dir):
    _, last = run_all(**DDIM5)
    run = last["run"]
    for i in (0, 2, len(run.xt) - 1):
        xt, x0, caption = tab.show_frame(run, i)
        np.testing.assert_array_equal(xt, handlers._show(run.xt[i], run.scale))
        np.testing.assert_array_equal(x0, handlers._show(run.x0[i], run.scale))
        assert caption.startswith(f"Frame {i} / {len(run.xt) - 1}")
        assert "ms per step" in caption
    assert "t = −1" in tab.show_frame(run, len(run.xt) - 1)[2]
    with pytest.raises(gr.Error):
        tab.show_frame(run, len(run.xt))
    with pytest.raises(gr.Error):
        tab.show_frame(None, 0)


def test_closing_mid_way_is_clean(models_dir, monkeypatch):
    monkeypatch.setattr(handlers, "BEAT_S", 0.0)  # yield after every step
    gen = tab.run_sampler("tiny", previous=None, **DDPM)
    outs = [next(gen) for _ in range(6)]
    run = outs[-1][3]
    gen.close()  # what ■ Stop does
    assert not run.done and 0 < run.steps_done < T and run.gif is None
    slider, text, xt_img, _ = tab.run_finished(run, "")
    assert "Stopped after step" in text and slider["maximum"] == len(run.xt) - 1
    np.testing.assert_array_equal(xt_img, handlers._show(run.xt[-1], run.scale))
    xt, _, _ = tab.show_frame(run, len(run.xt) - 1)
    assert xt.shape[2] == 3
    # the session stays usable
    _, last = run_all(previous=run, **DDIM5)
    assert last["run"].done


def test_run_finished_after_success_keeps_text(models_dir):
    _, last = run_all(**DDIM5)
    slider, text, *_ = tab.run_finished(last["run"], "✓ Done")
    assert text == "✓ Done" and slider["value"] == len(last["run"].xt) - 1


@pytest.mark.parametrize("bad", [
    dict(n_images=0), dict(n_images=10**6), dict(n_images="many"), dict(n_images=2.5),
    dict(eta=2), dict(eta=-0.1), dict(eta="abc"), dict(steps=T + 1), dict(steps=0),
    dict(steps="ten"), dict(seed=-1), dict(seed="x"), dict(sampler="euler"),
    dict(spacing="random"), dict(variance="big"),
])
def test_bad_input_is_a_plain_error(models_dir, bad):
    with pytest.raises(gr.Error):
        list(tab.run_sampler("tiny", previous=None, **{**DDIM5, **bad}))


def test_unknown_model_is_a_plain_error(models_dir):
    with pytest.raises(gr.Error, match="Unknown model"):
        list(tab.run_sampler("/etc/passwd", previous=None, **DDIM5))


def test_demo_runs_when_no_models(tmp_path, monkeypatch):
    monkeypatch.setattr(shelf, "ASSETS_MODELS", tmp_path)
    _, last = run_all(key=tab.DEMO_KEY, **{**DDIM5, "steps": 2, "n_images": 1})
    assert last["run"].done and last["xt"].shape == _grid_shape(1, 16, last["run"].scale)


def test_render_builds(models_dir):
    with gr.Blocks() as demo, gr.Tab("4"):
        tab.render(gr.State(ScheduleConfig().to_dict()))
    names = {fn.api_name for fn in demo.fns.values()}
    assert "sampler_rescan" in names  # runs on page load
    assert {"sampler_model", "sampler_rescan", "sampler_kind", "sampler_run",
            "sampler_run_finished", "sampler_stop", "sampler_frame"} <= names


def test_whole_app_builds():
    import app

    demo = app.build_demo()
    assert any(fn.api_name == "sampler_run" for fn in demo.fns.values())


def test_schedule_is_the_checkpoints(models_dir):
    ck = tab.load_model("tiny")
    want = NoiseSchedule(ScheduleConfig(kind="cosine", T=T))
    assert torch.equal(ck.schedule.alphas_cumprod, want.alphas_cumprod)


class _SlowZeroModel(torch.nn.Module):
    """ε̂ = 0 after a short sleep: a stand-in for a network that costs time per step."""

    def forward(self, x, t):
        import time

        time.sleep(0.002)
        return torch.zeros_like(x)


def test_pictures_are_rate_limited_but_yields_are_frequent(monkeypatch):
    from diffusion_core.checkpoints import Checkpoint

    ck = Checkpoint(model=_SlowZeroModel(), model_config=TINY,
                    schedule=NoiseSchedule(ScheduleConfig(kind="cosine", T=200)),
                    dataset={"name": "zeros"})
    monkeypatch.setattr(handlers, "load_model", lambda key: ck)
    monkeypatch.setattr(handlers, "BEAT_S", 0.0)  # a heartbeat after every step
    outs = list(tab.run_sampler("zeros", previous=None, **{**DDIM5, "steps": 200}))
    pictures = [o for o in outs[1:-1] if isinstance(o[0], np.ndarray)]
    assert len(outs) > 150  # Stop can react after every step …
    assert 5 <= len(pictures) <= handlers.MAX_UI_UPDATES + 2  # … but pictures are sent ≤ ~30 times
    run = outs[-1][3]
    assert len(run.xt) == image_sampling.MAX_FRAMES  # 99 kept steps + the final sample
    # streamed pictures are the scale-1 frames (the browser enlarges them); the last one, which
    # the image's own download saves, comes enlarged by the run's scale
    assert run.scale > 1
    frame_shape = run.xt[0].shape[:2]
    assert all(p[0].shape[:2] == frame_shape and p[1].shape[:2] == frame_shape
               for p in pictures)
    final = outs[-1][0]
    assert final.shape[:2] == (frame_shape[0] * run.scale, frame_shape[1] * run.scale)
    np.testing.assert_array_equal(final[::run.scale, ::run.scale], handlers._show(
        run.xt[-1], 1))


def test_rgb_checkpoint(models_dir):
    rgb = UNetConfig(channels=3, image_size=8, dim=8, dim_mults=(1, 2), groups=4, attn_heads=1,
                     attn_dim_head=8, use_linear_attention=False, use_mid_attention=False)
    torch.manual_seed(2)
    save_checkpoint(models_dir / "rgb", build_model(rgb), rgb, ScheduleConfig(kind="cosine", T=10),
                    dataset={"name": "colours"})
    _, last = run_all(key="rgb", **{**DDIM5, "steps": 3, "n_images": 3})
    run = last["run"]
    assert run.xt[0].ndim == 3 and last["xt"].shape == _grid_shape(3, 8, run.scale)
    gif = Image.open(last["gif"]["value"])
    assert gif.n_frames == 4
    assert np.asarray(Image.open(last["png"]["value"]).convert("RGB")).std(axis=2).max() > 0


def test_a_long_chain_carries_pictures_at_only_a_few_steps(models_dir, monkeypatch):
    from diffusion_core.sampling.config import SamplerSettings

    monkeypatch.setattr(image_sampling, "PICTURES", 6)  # (the tiny model's T is 20)
    ck = handlers.load_model("tiny")
    settings = SamplerSettings(sampler="ddpm", steps=ck.schedule.T)
    run = image_sampling.SamplingRun.plan(ck, settings, 4, seed=0)
    items = list(run.pictures(ck))
    shown = [p.index for p in items if p.x_t is not None]
    assert len(items) == ck.schedule.T > image_sampling.PICTURES
    assert len(shown) == image_sampling.PICTURES and shown[-1] == len(items) - 1
    assert all((p.pred_x0 is None) == (p.x_t is None) for p in items)
    assert run.done and items[-1].t_prev == -1
