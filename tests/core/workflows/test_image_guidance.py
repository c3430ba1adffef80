"""Classifier-free guidance in the image workflows: guided runs of ``image_sampling`` and the
class × scale grid and the accuracy / spread curve of ``image_guidance``.

Convention: ε̃ = ε_u + s·(ε_c − ε_u); s = 0 the unconditional model, s = 1 the conditional
one, s > 1 guides harder. A tiny conditional U-Net (3 classes, a random class table so the
classes differ) checks the mechanics exactly; the shipped ``digits_cond`` model checks the
figures (DDIM 25, small n: seconds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffusion_core.checkpoints import Checkpoint, load_checkpoint
from diffusion_core.images import make_grid
from diffusion_core.models import UNetConfig, build_model
from diffusion_core.sampling import GUIDANCE_DEFAULT, SamplerSettings, sample_final
from diffusion_core.schedule import NoiseSchedule, ScheduleConfig
from diffusion_core.workflows import image_guidance as ig
from diffusion_core.workflows import image_sampling as wf

ROOT = Path(__file__).resolve().parents[3]
DIGITS_COND = ROOT / "assets" / "models" / "digits_cond"
TINY = UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2), groups=4, attn_heads=1,
                  attn_dim_head=8, use_linear_attention=False, use_mid_attention=False,
                  num_classes=3)
T = 40
DDIM = SamplerSettings(sampler="ddim", steps=6, eta=0.0, spacing="trailing", clip_x0=True)
DDPM = SamplerSettings(sampler="ddpm", steps=8, spacing="leading", clip_x0=True)


def _checkpoint(config=TINY, training=None) -> Checkpoint:
    torch.manual_seed(0)
    model = build_model(config)
    if config.num_classes:
        with torch.no_grad():  # zero at initialisation: make the classes differ
            model.class_embed.embedding.weight.normal_(0.0, 1.0)
    model.eval().requires_grad_(False)
    names = ["a", "b", "c"][:config.num_classes] if config.num_classes else None
    dataset = {"name": "test", **({"classes": names} if names else {})}
    return Checkpoint(model=model, model_config=config,
                      schedule=NoiseSchedule(ScheduleConfig(kind="cosine", T=T)),
                      dataset=dataset, training=training or {})


@pytest.fixture(scope="module")
def ck() -> Checkpoint:
    return _checkpoint()


@pytest.fixture(scope="module")
def digits_cond() -> Checkpoint:
    return load_checkpoint(DIGITS_COND)


def _run(ck, settings, n=4, seed=3, **plan) -> wf.SamplingRun:
    run = wf.SamplingRun.plan(ck, settings, n, seed, **plan)
    for _ in wf.stream(ck, run):
        pass
    return run


def _reference(model, ck, settings, n, seed) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, 1, 8, 8, generator=g)
    return sample_final(model, ck.schedule, x_T, generator=g, **settings.sample_kwargs(T))


# --- guided runs of image_sampling ---------------------------------------------------------------


@pytest.mark.parametrize("conditional", [True, False], ids=["conditional", "unconditional"])
def test_an_unguided_run_is_bit_identical_to_the_plain_chain(conditional):
    ck = _checkpoint(TINY if conditional else UNetConfig(**{**TINY.__dict__, "num_classes": 0}))
    run = _run(ck, DDPM, n=5, seed=2)
    assert not run.guided and run.labels is None and run.guidance is None
    want = _reference(ck.model, ck, DDPM, 5, 2)  # what the tab ran before guidance existed
    assert torch.equal(run.final, want)
    np.testing.assert_array_equal(run.xt[-1], wf.frame_grid(want))
    assert torch.equal(wf.sample_checkpoint(ck, DDPM, 5, 2), want)


@pytest.mark.parametrize("settings", [DDIM, DDPM], ids=["ddim", "ddpm"])
def test_s0_is_the_unconditional_model_and_s1_the_conditional_one(ck, settings):
    y = torch.tensor([2, 0, 1, 2])
    s0 = _run(ck, settings, labels=y.tolist(), guidance=0.0).final
    s1 = _run(ck, settings, labels=y, guidance=1.0).final
    s3 = _run(ck, settings, labels=y, guidance=3.0).final
    uncond = _reference(ck.model, ck, settings, 4, 3)
    cond = _reference(lambda x, t: ck.model(x, t, y), ck, settings, 4, 3)
    torch.testing.assert_close(s0, uncond, atol=1e-5, rtol=0)
    torch.testing.assert_close(s1, cond, atol=1e-5, rtol=0)
    assert (cond - uncond).abs().max() > 0.1  # the classes matter: the check can fail
    assert (s3 - cond).abs().max() > 0.05  # and s = 3 is neither
    assert torch.equal(wf.sample_checkpoint(ck, settings, 4, 3, labels=y, guidance=3.0), s3)


def test_the_guidance_default_is_the_checkpoints(ck):
    assert wf.guidance_default(ck) == GUIDANCE_DEFAULT
    recorded = _checkpoint(training={"guidance_default": 4.5})
    assert wf.guidance_default(recorded) == 4.5
    y = [1, 1]
    a = _run(recorded, DDIM, n=2, labels=y).final  # no scale given: the recorded 4.5
    b = _run(recorded, DDIM, n=2, labels=y, guidance=4.5).final
    assert torch.equal(a, b) and _run(recorded, DDIM, n=2, labels=y).guidance == 4.5
    assert wf.guidance_default(_checkpoint(training={"guidance_default": "x"})) == GUIDANCE_DEFAULT


def test_one_row_per_class_lays_the_frames_and_the_png_out_in_rows(ck, tmp_path):
    per = 3
    y = [k for k in range(3) for _ in range(per)]
    run = _run(ck, DDIM, n=9, labels=y, guidance=2.0, ncols=per)
    assert run.xt[0].shape == (3 * 10, per * 10)  # 3 rows of 3 tiles, 8 px + 2 px borders
    np.testing.assert_array_equal(run.xt[-1], make_grid(run.final, ncols=per, pad=1)[..., 0])
    wf.write_files(run, tmp_path)
    from PIL import Image

    png = np.asarray(Image.open(run.png).convert("RGB"))
    fs = wf.file_scale(run)
    np.testing.assert_array_equal(png, make_grid(run.final, ncols=per, scale=fs, pad=fs))


@pytest.mark.parametrize(("kw", "message"), [
    (dict(labels=[0, 3, 1, 1]), "0..2"),
    (dict(labels=[-1, 0, 0, 0]), "0..2"),
    (dict(labels=[0, 1]), "2 class labels for 4 samples"),
    (dict(labels=[0.5, 1, 1, 1]), "integers"),
    (dict(labels=torch.ones(4)), "integers"),
    (dict(labels=[0, 0, 0, 0], guidance=float("nan")), r"\[0, 10\]"),
    (dict(labels=[0, 0, 0, 0], guidance=-1.0), r"\[0, 10\]"),
    (dict(labels=[0, 0, 0, 0], guidance=10.5), r"\[0, 10\]"),
    (dict(guidance=2.0), "needs class labels"),
])
def test_bad_guidance_is_a_readable_value_error(ck, kw, message):
    with pytest.raises(ValueError, match=message):
        wf.SamplingRun.plan(ck, DDIM, 4, 0, **kw)


def test_labels_for_an_unconditional_checkpoint_are_refused():
    ck = _checkpoint(UNetConfig(**{**TINY.__dict__, "num_classes": 0}))
    with pytest.raises(ValueError, match="unconditional"):
        wf.SamplingRun.plan(ck, DDIM, 2, 0, labels=[0, 0])
    with pytest.raises(ValueError, match="unconditional"):
        wf.sample_checkpoint(ck, DDIM, 2, 0, labels=[0, 0])
    with pytest.raises(ValueError, match="unconditional"):
        ig.digit_scale_grid(ck, scales=[1.0])


# --- the class × scale grid ----------------------------------------------------------------------


def test_grid_is_one_chain_with_the_same_x_T_along_every_row(ck):
    scales = [0.0, 2.0, 2.0, 1.0, 5.0]
    grid = ig.digit_scale_grid(ck, classes=[2, 0, 1], scales=scales, per_cell=2, seed=4,
                               settings=DDIM)
    x = grid.samples
    assert x.shape == (3, 5, 2, 1, 8, 8) and grid.n_images == 30
    assert grid.class_names == ("c", "a", "b") and grid.scales == tuple(scales)
    # DDIM η = 0 and the same x_T: two columns with the same s are the same images …
    torch.testing.assert_close(x[:, 1], x[:, 2], atol=1e-5, rtol=0)
    # … and other scales are not (the check can fail)
    assert (x[:, 1] - x[:, 4]).abs().amax(dim=(1, 2, 3, 4)).min() > 0.05
    # s = 0 ignores the label: the column is one image per j in every row; s = 1 is the
    # conditional model from that same start z_j (the batched pass agrees to float rounding)
    g = torch.Generator().manual_seed(4)
    z = torch.randn(2, 1, 8, 8, generator=g)
    uncond = sample_final(ck.model, ck.schedule, z, **DDIM.sample_kwargs(T))
    for r, k in enumerate((2, 0, 1)):
        torch.testing.assert_close(x[r, 0], uncond, atol=1e-5, rtol=0)
        cond = sample_final(lambda x_t, t, k=k: ck.model(x_t, t, torch.full((2,), k)),
                            ck.schedule, z, **DDIM.sample_kwargs(T))
        torch.testing.assert_close(x[r, 3], cond, atol=1e-5, rtol=0)
    assert (x[0, 3] - x[1, 3]).abs().max() > 0.05  # rows differ where the label counts


def test_grid_picture_follows_its_layout_pixel_for_pixel(ck):
    grid = ig.digit_scale_grid(ck, scales=[0.0, 3.0], per_cell=3, seed=0, settings=DDIM)
    lay = grid.layout
    assert grid.picture.dtype == np.uint8 and grid.picture.shape == (lay.height, lay.width, 3)
    assert (lay.rows, lay.cols, lay.per_cell) == (3, 2, 3)
    assert ig.MIN_PIXEL <= lay.pixel <= ig.MAX_PIXEL
    for r in range(3):
        for c in range(2):
            top, left, bottom, right = lay.cell(r, c)
            np.testing.assert_array_equal(
                grid.picture[top:bottom, left:right],
                make_grid(grid.samples[r, c], ncols=3, scale=lay.pixel, pad=lay.pad))
            assert top < lay.row_centers[r] < bottom and left < lay.col_centers[c] < right
    # the gaps between cells are white
    assert (grid.picture[:lay.gap] == 255).all() and (grid.picture[:, :lay.gap] == 255).all()


def test_grid_stops_when_closed(ck):
    run = ig.GridRun(ck, classes=None, scales=[1.0, 2.0], seed=0, settings=DDIM)
    it = iter(run)
    steps = [next(it) for _ in range(3)]
    it.close()
    assert run.grid is None and steps[0].x_t.shape == (6, 1, 8, 8)


@pytest.mark.parametrize(("kw", "message"), [
    (dict(classes=[0, 3], scales=[1.0]), "0..2"),
    (dict(classes=[1, 1], scales=[1.0]), "once"),
    (dict(classes=[], scales=[1.0]), "non-empty"),
    (dict(scales=[]), "non-empty"),
    (dict(scales=[1.0, 11.0]), r"\[0, 10\]"),
    (dict(scales=[float("inf")]), r"\[0, 10\]"),
    (dict(scales=[1.0], per_cell=0), "per_cell"),
])
def test_bad_grid_inputs_are_readable_value_errors(ck, kw, message):
    with pytest.raises(ValueError, match=message):
        ig.GridRun(ck, **{"classes": None, **kw})


# --- the curve against s --------------------------------------------------------------------------


def test_curve_streams_the_same_x_T_at_every_scale_and_says_why_no_accuracy(ck):
    items = list(ig.scale_curve(ck, scales=[0.0, 2.0], n_per_class=3, seed=1, settings=DDIM))
    steps = [p for p in items if p.step is not None]
    points = [p.point for p in items if p.point is not None]
    assert len(steps) == 2 * 6 and [p.steps_done for p in steps] == list(range(1, 13))
    assert [p.scale for p in points] == [0.0, 2.0] and all(p.n == 9 for p in points)
    assert torch.equal(steps[0].step.x_t, steps[6].step.x_t)  # the same x_T at every scale
    # no classifier reads "a", "b", "c", and the app cannot rebuild a "test" data set
    judge = ig.guidance_judge(ck)
    assert not judge.has_accuracy and not judge.has_spread and "only the digits" in judge.note
    assert points[0].accuracy is None and np.isnan(points[0].spread)


def test_shipped_digits_at_the_default_scale_are_read_as_requested(digits_cond):
    """10 digits × 5 images at s = 2 in one grid: ≥ 90 % read as the requested digit (the card
    measured 99.6 % of 1000)."""
    from diffusion_core.evaluation.digits import default_digit_classifier, digits_to_8x8

    grid = ig.digit_scale_grid(digits_cond, scales=[GUIDANCE_DEFAULT], per_cell=5, seed=0)
    x = grid.samples.reshape(50, 1, 8, 8)
    want = np.repeat(np.arange(10), 5)
    read = default_digit_classifier().predict_proba(digits_to_8x8(x)).argmax(1)
    assert (read == want).mean() >= 0.9, read


def test_shipped_digits_curve_fidelity_up_diversity_down(digits_cond):
    """5 samples per digit: accuracy near chance at s = 0 (card: 11.8 %), high at s = 5, and
    spread lower at s = 5 than at s = 0 (card: 0.89 vs 1.30)."""
    judge = ig.guidance_judge(digits_cond)
    assert judge.has_accuracy and judge.has_spread
    points = {p.point.scale: p.point for p in ig.scale_curve(
        digits_cond, scales=[0.0, 5.0], n_per_class=5, seed=0) if p.point is not None}
    assert points[0.0].accuracy <= 0.4, points
    assert points[5.0].accuracy >= 0.9, points
    assert points[5.0].spread < points[0.0].spread, points
    assert points[0.0].spread > 1.0  # at s = 0 a "class" is every digit
    assert len(points[5.0].accuracy_per_class) == 10


def test_a_conditional_shapes_model_gets_spread_only_and_the_reason():
    """No classifier reads shapes for guidance here, but the app rebuilds the training shapes
    with their classes: spread against them (real shapes score ≈ 1, copies of one image 0)."""
    from diffusion_core.data.synthetic import SHAPE_CLASSES
    from diffusion_core.workflows.image_why import training_data

    cfg = UNetConfig(**{**TINY.__dict__, "channels": 3, "image_size": 16,
                        "num_classes": len(SHAPE_CLASSES)})
    torch.manual_seed(0)
    ck = Checkpoint(model=build_model(cfg).eval(), model_config=cfg,
                    schedule=NoiseSchedule(ScheduleConfig(kind="cosine", T=T)),
                    dataset={"name": "shapes", "classes": list(SHAPE_CLASSES)}, training={})
    judge = ig.guidance_judge(ck)
    assert judge.has_spread and not judge.has_accuracy and "accuracy is not measured" in judge.note
    train = training_data(ck).train
    real = train.images[-400:]  # 400 real shapes with their classes
    scores = judge.score(real, train.labels[-400:])
    assert scores["accuracy"] is None and 0.9 < scores["spread"] < 1.1, scores
    copies = real[:1].expand(8, -1, -1, -1)
    assert judge.score(copies, torch.zeros(8, dtype=torch.long))["spread"] == 0.0
