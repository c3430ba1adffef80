"""The image sampling run (``diffusion_core.workflows.image_sampling``): which frames are kept,
seeds, the PNG and GIF files, and a checkpoint's sampler settings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.checkpoints import Checkpoint
from diffusion_core.images import make_grid
from diffusion_core.models import MLPConfig, UNetConfig, build_model
from diffusion_core.presets import IMAGE_SAMPLER, TOY
from diffusion_core.sampling import SamplerSettings, sample_final
from diffusion_core.schedule import NoiseSchedule, ScheduleConfig
from diffusion_core.workflows import image_sampling as wf

TINY = UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2), groups=4, attn_heads=1,
                  attn_dim_head=8, use_linear_attention=False, use_mid_attention=False)
T = 150
DDIM5 = SamplerSettings(sampler="ddim", steps=5, eta=0.0, spacing="trailing", clip_x0=True)
DDPM = SamplerSettings(sampler="ddpm", steps=None, variance="beta_tilde", clip_x0=True)


def _checkpoint(config=TINY, *, T=T, training=None, seed=0) -> Checkpoint:
    torch.manual_seed(seed)
    model = build_model(config).eval().requires_grad_(False)
    return Checkpoint(model=model, model_config=config,
                      schedule=NoiseSchedule(ScheduleConfig(kind="cosine", T=T)),
                      dataset={"name": "test"}, training=training or {})


@pytest.fixture(scope="module")
def ck() -> Checkpoint:
    return _checkpoint()


def _run(ck, settings, n=4, seed=3, **plan) -> wf.SamplingRun:
    run = wf.SamplingRun.plan(ck, settings, n, seed, **plan)
    for _ in wf.stream(ck, run):
        pass
    return run


# --- frames -----------------------------------------------------------------------------------


def test_a_long_chain_keeps_max_frames_ending_with_the_final_sample(ck):
    run = _run(ck, DDPM, n=3)  # the full chain: 150 steps
    assert run.done and run.steps_done == run.num_steps == T
    assert len(run.xt) == len(run.x0) == len(run.ts) == wf.MAX_FRAMES  # 99 steps + the sample
    assert run.step_of[0] == 0 and run.step_of[-2] == T - 1  # first and last step kept
    assert run.ts[0] == T - 1 and run.ts[-1] == -1
    np.testing.assert_array_equal(run.xt[-1], wf.frame_grid(run.final))
    assert run.captions[-1].startswith("t = −1") and run.captions[0].startswith(f"t = {T - 1}")
    assert run.nbytes <= wf.FRAME_BYTES


def test_a_small_budget_keeps_fewer_frames_evenly(ck):
    run = _run(ck, DDIM5, max_frames=3)
    assert run.step_of == [0, 4, 4] and run.ts[-1] == -1 and len(run.xt) == 3
    short = _run(ck, DDIM5)  # ≤ 100 steps: every step, then the sample
    assert short.step_of == [0, 1, 2, 3, 4, 4]


@pytest.mark.parametrize(("n", "channels", "size"), [(1, 1, 8), (16, 1, 16), (64, 3, 32),
                                                       (64, 3, 128), (64, 3, 256), (500, 3, 32)])
def test_frame_budget_stays_within_the_bytes(n, channels, size):
    budget = wf.frame_budget(n, channels, size)
    shown = min(n, wf.FRAME_IMAGES)
    ncols = int(np.ceil(np.sqrt(shown)))
    pair = 2 * int(np.ceil(shown / ncols)) * (size + 2) * ncols * (size + 2) * channels
    assert 2 <= budget <= wf.MAX_FRAMES
    assert budget * pair <= wf.FRAME_BYTES or budget == 2


def test_frames_show_at_most_frame_images():
    x = torch.zeros(100, 1, 4, 4)
    assert wf.frame_grid(x).shape == wf.frame_grid(x[:wf.FRAME_IMAGES]).shape == (48, 48)


def test_closing_the_stream_stops_the_run_and_keeps_its_frames(ck):
    run = wf.SamplingRun.plan(ck, replace(DDPM, steps=20), 2, 0)  # every step kept
    chain = wf.stream(ck, run)
    for _ in range(4):
        progress = next(chain)
    chain.close()
    assert progress.step.index == 3 and progress.per_step_s > 0
    assert not run.done and run.steps_done == 4 and len(run.xt) == 4 and run.final is None
    with pytest.raises(ValueError, match="not finished"):
        wf.write_files(run, "unused")


def test_plan_refuses_a_2d_model():
    two_d = _checkpoint(MLPConfig(hidden=8, depth=1, num_timesteps=20), T=20)
    with pytest.raises(ValueError, match="image model"):
        wf.SamplingRun.plan(two_d, DDIM5, 4, 0)


# --- seeds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [DDIM5, replace(DDPM, steps=20)], ids=["ddim", "ddpm"])
def test_same_seed_same_samples(ck, settings):
    a, b = _run(ck, settings, seed=9), _run(ck, settings, seed=9)
    assert torch.equal(a.final, b.final)
    assert all(np.array_equal(x, y) for x, y in zip(a.xt, b.xt, strict=True))
    assert not torch.equal(a.final, _run(ck, settings, seed=10).final)
    # the one-call sampler and the core loop give the same samples from the same seed
    assert torch.equal(wf.sample_checkpoint(ck, settings, 4, 9), a.final)
    g = torch.Generator().manual_seed(9)
    x_T = torch.randn(4, 1, 8, 8, generator=g)
    want = sample_final(ck.model, ck.schedule, x_T, generator=g, **settings.sample_kwargs(T))
    assert torch.equal(a.final, want)


def test_options_of_the_other_sampler_are_ignored(ck):
    """A DDPM run with η left at 0.5 (the UI's η box keeps its value) samples as with η = 0."""
    ddpm = replace(DDPM, steps=10)
    assert torch.equal(_run(ck, replace(ddpm, eta=0.5)).final, _run(ck, ddpm).final)


# --- files ------------------------------------------------------------------------------------


def test_files_are_written_and_readable(ck, tmp_path):
    run = wf.write_files(_run(ck, DDIM5, n=5), tmp_path / "out")
    assert run.out_dir == tmp_path / "out" and run.total_s >= run.net_s > 0
    png = Image.open(run.png)
    fs = wf.file_scale(run)
    assert png.format == "PNG" and run.png.name == wf.PNG_NAME and fs >= run.scale
    np.testing.assert_array_equal(np.asarray(png.convert("RGB")),
                                  make_grid(run.final, scale=fs, pad=fs))
    gif = Image.open(run.gif)
    assert gif.format == "GIF" and gif.n_frames == len(run.xt) == 6
    side = run.xt[0].shape[1]
    scale = max(1, min(run.scale, wf.GIF_SIDE // side))
    assert gif.size == (2 * side * scale + 4 * scale, run.xt[0].shape[0] * scale)
    gif.seek(gif.n_frames - 1)
    last = np.asarray(gif.convert("L"))[:, :side * scale]
    np.testing.assert_array_equal(last, wf.enlarge(run.xt[-1], scale))


def test_a_long_gif_has_gif_frames(ck, tmp_path):
    run = _run(ck, DDPM, n=1)
    gif = Image.open(wf.save_gif(run, tmp_path / "chain.gif"))
    assert len(run.xt) > wf.GIF_FRAMES and gif.n_frames == wf.GIF_FRAMES


def test_rgb_frames_and_files(tmp_path):
    rgb = _checkpoint(replace(TINY, channels=3), T=10, seed=2)
    run = wf.write_files(_run(rgb, replace(DDIM5, steps=3), n=3), tmp_path)
    assert run.xt[0].ndim == 3 and run.xt[0].shape[2] == 3
    assert Image.open(run.gif).n_frames == 4
    assert np.asarray(Image.open(run.png).convert("RGB")).std(axis=2).max() > 0


# --- sampler settings of a checkpoint -------------------------------------------------------


def test_settings_without_a_record_are_the_image_preset():
    ck = _checkpoint(T=100)
    got = wf.sampler_settings(ck)
    assert got == IMAGE_SAMPLER and got.resolved_steps(100) == 25
    assert wf.sampler_settings(_checkpoint(T=10)).resolved_steps(10) == 10  # at most T
    assert wf.sampler_settings(replace(ck, training="not a dict")) == IMAGE_SAMPLER
    two_d = _checkpoint(MLPConfig(hidden=8, depth=1, num_timesteps=20), T=20)
    assert wf.sampler_settings(two_d) == TOY.sampler  # 2D points: DDPM's full chain


def test_a_recorded_ddpm_samples_the_full_chain():
    rec = SamplerSettings(sampler="ddpm", steps=None, spacing="leading").kwargs()
    got = wf.sampler_settings(_checkpoint(T=100, training={"sampler_defaults": rec}))
    assert (got.sampler, got.spacing, got.resolved_steps(100)) == ("ddpm", "leading", 100)


def test_a_recorded_ddim_keeps_its_steps_even_all_t():
    """The old tab turned a recorded DDIM over all T steps into 25; the shared rule keeps T."""
    rec = replace(IMAGE_SAMPLER, steps=100).kwargs()
    got = wf.sampler_settings(_checkpoint(T=100, training={"sampler_defaults": rec}))
    assert (got.sampler, got.resolved_steps(100)) == ("ddim", 100)


def test_choosing_another_sampler_without_steps_takes_its_default():
    ck = _checkpoint(T=100, training={"sampler_defaults": replace(IMAGE_SAMPLER,
                                                                  steps=10).kwargs()})
    assert wf.sampler_settings(ck).resolved_steps(100) == 10
    ddpm = wf.sampler_settings(ck, {"sampler": "ddpm", "steps": None})
    assert ddpm.sampler == "ddpm" and ddpm.resolved_steps(100) == 100
    assert wf.sampler_settings(ck, {"sampler": "ddpm", "steps": 7}).resolved_steps(100) == 7
    back = wf.sampler_settings(
        _checkpoint(T=100, training={"sampler_defaults": DDPM.kwargs()}), {"sampler": "ddim"})
    assert back.resolved_steps(100) == 25
    with pytest.raises(ValueError, match="eta"):
        wf.sampler_settings(ck, {"eta": 2.0})
