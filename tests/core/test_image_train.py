"""The image-training workflow (``diffusion_core.workflows.image_train``): training lowers the
loss, the panel's rows and the x̂0 identity, the restart rule, the step-cost guard, user images,
and the checkpoint (folder and zip) round trip."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core import checkpoints, presets
from diffusion_core.forward import q_sample
from diffusion_core.models import PixelMLPConfig, UNetConfig
from diffusion_core.sampling import SamplerSettings
from diffusion_core.schedule import ScheduleConfig
from diffusion_core.training import TrainConfig
from diffusion_core.workflows import image_sampling
from diffusion_core.workflows import image_train as wf

SCHED = ScheduleConfig(kind="cosine", T=200)


def _session(kind="pixel_mlp", steps=1, dataset="digits8", schedule=SCHED):
    data, desc, _ = wf.load_images(dataset)
    cfg = wf.train_config(dataset, "quick", steps=steps)
    session, reason = wf.start_or_continue(None, data, desc, kind, schedule, cfg)
    assert reason == "new model"
    return session


def _params(model):
    return torch.cat([p.detach().flatten().clone() for p in model.parameters()])


@pytest.fixture(scope="module")
def trained():
    """The pixel MLP on 8×8 digits after 250 steps (≈ 1 s)."""
    s = _session(steps=250)
    for _ in s.train():
        pass
    return s


# --- training ---------------------------------------------------------------------------------


def test_a_few_hundred_steps_lower_the_loss(trained):
    first, last = np.mean(trained.losses[:20]), np.mean(trained.losses[-20:])
    assert len(trained.losses) == trained.step == 250
    assert first > 0.5  # an untrained v-predictor (the quick recipe's): ‖v − v̂‖² ≈ 0.6
    assert last < 0.7 * first, (first, last)
    assert trained.train_seconds > 0
    assert trained.recent_loss(20) == pytest.approx(last)


def test_the_unet_trains_too_and_its_loss_is_finite():
    s = _session("unet_small", steps=3)
    before = _params(s.trainer.model)
    reports = list(s.train())
    assert [p.run_step for p in reports] == [1, 2, 3]  # a report after every step (■ Stop)
    assert all(math.isfinite(v) for v in s.losses)
    assert not torch.equal(before, _params(s.trainer.model))
    assert isinstance(s.model_config, UNetConfig) and s.model_config.image_size == 8


def test_model_kinds_and_their_configs():
    mlp = wf.model_config("pixel_mlp", 3, 16, 200)
    assert isinstance(mlp, PixelMLPConfig) and mlp.num_timesteps == 200
    assert (mlp.channels, mlp.image_size) == (3, 16)
    small, medium = (wf.model_config(k, 1, 16, 1000) for k in ("unet_small", "unet_medium"))
    # the quick recipe's U-Net and the shipped models' one
    assert small == replace(presets.QUICK_DIGITS8.model, image_size=16)
    assert medium == presets.DIGITS.model and len(small.dim_mults) < len(medium.dim_mults)
    assert set(wf.RECIPES) == set(presets.RECIPES)
    with pytest.raises(ValueError, match="model must be one of"):
        wf.model_config("resnet", 1, 16, 1000)
    with pytest.raises(ValueError, match="recipe must be one of"):
        wf.train_config("digits", "slow")


def test_the_batch_is_cut_for_big_images_so_stop_reacts_in_time():
    for kind in ("unet_small", "unet_medium"):
        big = wf.model_config(kind, 3, 32, 1000)
        batch = wf.fit_batch(big, 128)
        assert wf.MIN_BATCH <= batch < 128 and wf.step_seconds(big, batch) <= wf.MAX_STEP_S
        assert wf.step_seconds(big, 2 * batch) > wf.MAX_STEP_S  # the largest that fits
    for kind, c, s in (("unet_small", 1, 8), ("unet_medium", 3, 16), ("pixel_mlp", 3, 32)):
        assert wf.fit_batch(wf.model_config(kind, c, s, 1000), 128) == 128  # the recipe's
    huge = replace(wf.model_config("unet_medium", 3, 32, 1000), dim=128)
    with pytest.raises(ValueError, match="too big for this CPU"):
        wf.fit_batch(huge, 128)


# --- the panel ----------------------------------------------------------------------------------


def test_panel_rows_shapes_and_the_x0_identity(trained):
    p = trained.panel(n=8, seed=3)
    n, shape = 8, (8, 1, 8, 8)
    assert p.step == trained.step
    assert p.t == wf.panel_timesteps(SCHED.T, n) and list(p.t) == sorted(p.t)
    assert p.t[0] < 0.1 * SCHED.T and p.t[-1] > 0.9 * SCHED.T
    for x in (p.x0, p.eps, p.x_t, p.pred_eps, p.pred_x0, p.samples):
        assert x.shape == shape and torch.isfinite(x).all()
    t = torch.tensor(p.t)
    torch.testing.assert_close(p.x_t, q_sample(trained.schedule, p.x0, t, p.eps))  # eq. 4
    # x̂0 is eq. 4 solved for x0: x_t = √ᾱ x̂0 + √(1−ᾱ) ε̂ holds again
    ab = torch.tensor(p.alpha_bar, dtype=torch.float64).view(n, 1, 1, 1)
    rebuilt = ab.sqrt() * p.pred_x0.double() + (1 - ab).sqrt() * p.pred_eps.double()
    torch.testing.assert_close(rebuilt, p.x_t.double(), atol=2e-5, rtol=0)
    # ε̂ is the EMA (sampling) model's
    with torch.inference_mode():
        torch.testing.assert_close(p.pred_eps, trained.model(p.x_t, t))
    assert p.sampler == wf.PANEL_SAMPLER and p.sampler.sampler == "ddim"
    assert p.samples.abs().max() <= 1.0 + 1e-6  # DDIM with x̂0 clipped to the data range


def test_the_panel_is_the_same_batch_each_time_and_changes_nothing(trained):
    params, gen = _params(trained.trainer.model), trained.trainer.generator.get_state()
    a, b = trained.panel(seed=5), trained.panel(seed=5)
    for name in ("x0", "x_t", "pred_x0", "samples"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.x0, trained.panel(seed=6).x0)
    assert torch.equal(params, _params(trained.trainer.model))
    assert torch.equal(gen, trained.trainer.generator.get_state())
    assert trained.step == 250


def test_training_makes_low_noise_reconstructions_better(trained):
    """Row (b) at the lowest t: the trained network's x̂0 is near x0, the untrained one's is
    not (x_t itself is closer)."""
    fresh = _session(steps=1)
    for s, bound in ((trained, 0.5), (fresh, None)):
        p = s.panel(seed=1)
        err = (p.pred_x0[:2] - p.x0[:2]).pow(2).mean().sqrt().item()
        noise = (p.x_t[:2] - p.x0[:2]).pow(2).mean().sqrt().item()
        if bound is None:
            assert err > noise
        else:
            assert err < bound * (p.x_t[:2] - p.x0[:2]).pow(2).mean().sqrt().item() + 0.2
    assert fresh.step == 0


def test_panel_argument_checks(trained):
    with pytest.raises(ValueError, match="n must be an integer in 1..64"):
        trained.panel(n=0)
    p = trained.panel(n=3, sampler_steps=4)
    assert p.samples.shape[0] == 3 and p.sampler.steps == 4


# --- the restart rule ---------------------------------------------------------------------------


def test_same_settings_continue_the_model_and_other_settings_start_a_new_one():
    s = _session(steps=5)
    list(s.train())
    data, desc, _ = wf.load_images("digits8")
    cfg = wf.train_config("digits8", "quick", steps=7)
    same, reason = wf.start_or_continue(s, data, desc, "pixel_mlp", SCHED, cfg)
    assert reason is None and same is s and same.trainer.config.steps == 7 and same.runs == 2
    list(same.train())
    assert same.step == 12 and len(same.losses) == 12
    uid = same.uid
    for change, word in (
            (dict(model_kind="unet_small"), "model"),
            (dict(schedule_config=replace(SCHED, T=300)), "schedule"),
            (dict(recipe="default"), "recipe")):
        args = dict(model_kind="pixel_mlp", schedule_config=SCHED, recipe="quick") | change
        new, why = wf.start_or_continue(same, data, desc, args["model_kind"],
                                        args["schedule_config"], cfg, recipe=args["recipe"])
        assert new is not same and word in why and new.step == 0 and new.uid != uid
    data16, desc16, _ = wf.load_images("digits")
    new, why = wf.start_or_continue(same, data16, desc16, "pixel_mlp", SCHED, cfg)
    assert "data" in why and new.model_config.image_size == 16


# --- data ---------------------------------------------------------------------------------------


def _png(path, size, mode):
    rng = np.random.default_rng(len(str(path)))
    if mode == "I;16":
        Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16)).save(path)
    else:
        arr = rng.integers(0, 255, (*size[::-1], len(mode)), dtype=np.uint8)
        Image.fromarray(arr.squeeze(-1) if mode == "L" else arr, mode).save(path)
    return path


def test_registry_sets_are_what_the_train_cli_trains_on():
    data, desc, note = wf.load_images("digits")
    assert data.shape == (1, 16, 16) and desc == {"name": "digits", "kind": "image",
                                                  "n": len(data), "shape": [1, 16, 16]}
    assert "1,347 images" in note
    assert wf.load_images("digits")[0] is data  # cached, shared read-only


def test_uploaded_files_and_zips_load_resized_with_a_digest(tmp_path):
    files = [_png(tmp_path / "a.png", (40, 30), "RGBA"), _png(tmp_path / "b.png", (9, 9), "L"),
             _png(tmp_path / "c.png", (20, 20), "I;16")]
    data, desc, note = wf.load_images(wf.UPLOAD, files=files, size=16, channels=3)
    assert data.images.shape == (3, 3, 16, 16) and data.labels is None
    assert data.images.min() >= -1 and data.images.max() <= 1
    assert desc["name"] == wf.UPLOAD and desc["n"] == 3 and len(desc["digest"]) == 12
    assert "Loaded 3 images" in note
    import zipfile

    with zipfile.ZipFile(tmp_path / "imgs.zip", "w") as zf:
        for f in files:
            zf.write(f, f"folder/{f.name}")
    zdata, zdesc, _ = wf.load_images(wf.UPLOAD, files=[tmp_path / "imgs.zip"], size=32,
                                     channels=1)
    assert zdata.images.shape == (3, 1, 32, 32) and zdesc["digest"] != desc["digest"]
    again = wf.load_images(wf.UPLOAD, files=files, size=16, channels=3)[1]
    assert again["digest"] == desc["digest"]  # the same upload continues the same model


def test_bad_uploads_are_refused_in_plain_words(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    png = _png(tmp_path / "a.png", (8, 8), "L")
    with pytest.raises(ValueError, match="no images uploaded"):
        wf.load_images(wf.UPLOAD, files=[], size=16, channels=1)
    with pytest.raises(ValueError, match="not both"):
        wf.load_images(wf.UPLOAD, files=[tmp_path / "x.zip", png], size=16, channels=1)
    with pytest.raises(ValueError):
        wf.load_images(wf.UPLOAD, files=[text], size=16, channels=1)
    with pytest.raises(ValueError, match="image size must be one of 16, 32"):
        wf.load_images(wf.UPLOAD, files=[png], size=24, channels=1)
    with pytest.raises(ValueError, match="unknown data set"):
        wf.load_images("cifar10")


def test_a_tiny_upload_still_fills_the_panel(tmp_path):
    files = [_png(tmp_path / "a.png", (16, 16), "RGB"), _png(tmp_path / "b.png", (16, 16),
                                                              "RGB")]
    data, desc, _ = wf.load_images(wf.UPLOAD, files=files, size=16, channels=3)
    s, _ = wf.start_or_continue(None, data, desc, "pixel_mlp", SCHED,
                                wf.train_config(wf.UPLOAD, steps=2))
    list(s.train())
    p = s.panel(n=8)
    assert p.x0.shape == (8, 3, 16, 16) and torch.isfinite(p.samples).all()


# --- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_round_trip_gives_the_same_network(trained, tmp_path):
    directory = trained.to_checkpoint(tmp_path / "ck")
    assert {p.name for p in directory.iterdir()} == {"model.safetensors", "config.json",
                                                     "MODEL_CARD.md"}
    ck = checkpoints.load_checkpoint(directory)
    assert ck.model_config == trained.model_config
    assert ck.schedule_config == SCHED and ck.dataset["name"] == "digits8"
    assert ck.training["steps"] == 250 and ck.training["recipe"] == "quick"
    assert image_sampling.is_image_model(ck)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0, 50, 100, 199])
    with torch.inference_mode():
        torch.testing.assert_close(ck.model(x, t), trained.model(x, t), atol=0, rtol=0)
    card = (directory / "MODEL_CARD.md").read_text()
    assert "digits8" in card and "250" in card
    # the sampler settings recorded are the recipe's (tab 4 samples with them)
    assert image_sampling.sampler_settings(ck) == trained.sampler


def test_zip_round_trip_gives_identical_samples(trained, tmp_path):
    zipped = checkpoints.export_zip(trained.to_checkpoint(tmp_path / "ck"), tmp_path / "m.zip")
    ck = checkpoints.import_zip(zipped, tmp_path / "back")
    settings = SamplerSettings(sampler="ddim", steps=10, clip_x0=True)
    a = image_sampling.sample_checkpoint(ck, settings, 6, seed=4)
    b = image_sampling.sample_checkpoint(checkpoints.load_checkpoint(tmp_path / "ck"),
                                         settings, 6, seed=4)
    assert torch.equal(a, b) and a.shape == (6, 1, 8, 8)


def test_the_tabs_default_trains_exactly_what_the_cli_quick_preset_does(tmp_path):
    """8×8 digits, U-Net small, the quick recipe, cosine T = 1000: the same weights after the
    same steps as ``python -m diffusion_core.train --dataset digits8 --preset quick``."""
    from diffusion_core.cli.train import run

    out = run(["--dataset", "digits8", "--preset", "quick", "--steps", "3", "--out",
               str(tmp_path / "cli"), "--quiet"])
    cli = checkpoints.load_checkpoint(out)
    s = _session("unet_small", steps=3, schedule=ScheduleConfig(kind="cosine", T=1000))
    list(s.train())
    assert s.model_config == cli.model_config and s.schedule_config == cli.schedule_config
    assert replace(s.trainer.config, report_every=1) == replace(
        TrainConfig.from_dict(cli.training["config"]), report_every=1)
    ours = s.trainer.sampling_network().state_dict()
    theirs = cli.network.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
