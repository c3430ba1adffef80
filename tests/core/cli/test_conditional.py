"""The CLIs with class-conditional models: ``train --conditional --p-uncond`` and
``sample --class-label K [K ...] --guidance S`` (ε̃ = ε_u + s·(ε_c − ε_u))."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.checkpoints import load_checkpoint, read_config, save_checkpoint
from diffusion_core.cli import sample as sample_cli
from diffusion_core.cli import train as train_cli
from diffusion_core.data import to_data_coords
from diffusion_core.images import make_grid
from diffusion_core.models import UNetConfig, build_model
from diffusion_core.presets import DIGITS, TOY
from diffusion_core.sampling import GUIDANCE_DEFAULT, GuidedModel, SamplerSettings, sample_final
from diffusion_core.schedule import ScheduleConfig
from diffusion_core.training.config import P_UNCOND_DEFAULT

QUICK = ["--steps", "3", "--quiet", "--threads", "1"]
T = 20
TINY_UNET = UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2), groups=4,
                       attn_heads=1, attn_dim_head=8, use_linear_attention=False,
                       use_mid_attention=False, num_classes=3)
RECORDED = SamplerSettings(sampler="ddim", steps=4, spacing="trailing", clip_x0=True)


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def image_ck(tmp_path_factory):
    """A tiny conditional U-Net (3 classes, random class table) recording DDIM 4 and s = 2."""
    torch.manual_seed(0)
    net = build_model(TINY_UNET)
    with torch.no_grad():
        net.class_embed.embedding.weight.normal_(0.0, 1.0)
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "img", net, TINY_UNET,
                           ScheduleConfig(kind="cosine", T=T),
                           dataset={"name": "test", "classes": ["a", "b", "c"]},
                           training={"sampler_defaults": RECORDED.kwargs(),
                                     "guidance_default": 2.0})


def test_train_conditional_2d(tmp_path):
    argv = ["--dataset", "moons", "--out", str(tmp_path / "m"), "--conditional",
            "--p-uncond", "0.15", "--n", "300", *QUICK]
    ck = load_checkpoint(train_cli.run(argv))
    assert ck.model_config == replace(TOY.model, num_classes=2)
    assert ck.num_classes == 2 and ck.class_names == ("upper moon", "lower moon")
    assert ck.dataset["classes"] == ["upper moon", "lower moon"]
    tr = ck.training
    assert tr["config"] == replace(TOY.train, steps=3, p_uncond=0.15).to_dict()
    assert tr["guidance_default"] == GUIDANCE_DEFAULT
    assert tr["cpu_time_s"] >= 0 and tr["command"].endswith(" ".join(argv))
    assert read_config(tmp_path / "m")["model"]["num_classes"] == 2  # torch-free


def test_train_conditional_digits_default_p_uncond(tmp_path):
    ck = load_checkpoint(train_cli.run(["--dataset", "digits8", "--out", str(tmp_path / "d"),
                                        "--conditional", *QUICK]))
    assert ck.model_config == replace(DIGITS.model, channels=1, image_size=8, num_classes=10)
    assert ck.training["config"]["p_uncond"] == P_UNCOND_DEFAULT
    assert ck.class_names == tuple("0123456789")


def test_unconditional_train_records_no_classes(tmp_path):
    ck = load_checkpoint(train_cli.run(["--dataset", "moons", "--out", str(tmp_path / "u"),
                                        "--n", "200", *QUICK]))
    assert ck.num_classes == 0 and "classes" not in ck.dataset
    assert "guidance_default" not in ck.training


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "swiss_roll", "--conditional"], "has none"),
        (["--dataset", "gradients", "--conditional"], "has none"),
        (["--dataset", "moons", "--p-uncond", "0.1"], "--conditional"),
        (["--dataset", "moons", "--conditional", "--p-uncond", "1.5"], "p_uncond"),
    ],
)
def test_train_bad_arguments(tmp_path, capsys, args, message):
    assert train_cli.main([*args, "--out", str(tmp_path / "x"), *QUICK]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def _expected(ck_dir, labels, n, seed, scale, **kwargs) -> torch.Tensor:
    ck = load_checkpoint(ck_dir)
    y = torch.tensor(labels).repeat_interleave(n)
    g = torch.Generator().manual_seed(seed)
    shape = (1, 8, 8) if isinstance(ck.model_config, UNetConfig) else (2,)
    x_T = torch.randn((len(y), *shape), generator=g)
    return sample_final(GuidedModel(ck.model, y, scale), ck.schedule, x_T, generator=g,
                        **kwargs)


def test_sample_a_grid_one_row_per_label(image_ck, tmp_path, capsys):
    out = sample_cli.run(["--checkpoint", str(image_ck), "--out", str(tmp_path / "g"),
                          "--n", "4", "--class-label", "2", "0", "--seed", "3"])
    data = np.load(out["npz"])
    assert data["samples"].shape == (8, 1, 8, 8)
    assert data["labels"].tolist() == [2] * 4 + [0] * 4
    want = _expected(image_ck, [2, 0], 4, 3, 2.0, **RECORDED.sample_kwargs(T))  # s recorded
    np.testing.assert_array_equal(data["samples"], want.numpy())
    png = np.asarray(Image.open(out["png"]).convert("RGB"))
    np.testing.assert_array_equal(png, make_grid(torch.from_numpy(data["samples"]), ncols=4,
                                                 scale=4))
    assert png.shape[0] < png.shape[1]  # two rows of four
    assert "class c, a, guidance s = 2" in capsys.readouterr().out


@pytest.mark.parametrize("scale", ["0", "1", "4.5"])
def test_sample_guidance_scale_reaches_the_model(image_ck, tmp_path, scale):
    out = sample_cli.run(["--checkpoint", str(image_ck), "--out", str(tmp_path / "s"),
                          "--n", "3", "--class-label", "1", "--guidance", scale])
    want = _expected(image_ck, [1], 3, 0, float(scale), **RECORDED.sample_kwargs(T))
    np.testing.assert_array_equal(np.load(out["npz"])["samples"], want.numpy())


def test_sample_all_labels_and_comma_lists(image_ck, tmp_path):
    a = sample_cli.run(["--checkpoint", str(image_ck), "--out", str(tmp_path / "a"), "--n", "2",
                        "--class-label", "all"])
    b = sample_cli.run(["--checkpoint", str(image_ck), "--out", str(tmp_path / "b"), "--n", "2",
                        "--class-label", "0,1,2"])
    np.testing.assert_array_equal(np.load(a["npz"])["samples"], np.load(b["npz"])["samples"])
    assert np.load(a["npz"])["labels"].tolist() == [0, 0, 1, 1, 2, 2]


def test_sample_conditional_without_label_is_the_unconditional_model(image_ck, tmp_path):
    out = sample_cli.run(["--checkpoint", str(image_ck), "--out", str(tmp_path / "u"),
                          "--n", "3"])
    ck = load_checkpoint(image_ck)
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(3, 1, 8, 8, generator=g)
    want = sample_final(ck.model, ck.schedule, x_T, generator=g, **RECORDED.sample_kwargs(T))
    np.testing.assert_array_equal(np.load(out["npz"])["samples"], want.numpy())
    assert "labels" not in np.load(out["npz"])


def test_sample_2d_conditional(tmp_path):
    ck_dir = train_cli.run(["--dataset", "moons", "--out", str(tmp_path / "m"), "--conditional",
                            "--n", "200", *QUICK])
    out = sample_cli.run(["--checkpoint", str(ck_dir), "--out", str(tmp_path / "p"),
                          "--n", "5", "--class-label", "1", "0", "--guidance", "3",
                          "--sampler", "ddim", "--steps", "5"])
    data = np.load(out["npz"])
    assert sorted(out) == ["npz"] and data["labels"].tolist() == [1] * 5 + [0] * 5
    want = to_data_coords(_expected(ck_dir, [1, 0], 5, 0, 3.0, sampler="ddim", steps=5,
                                    spacing="trailing"), "moons")
    np.testing.assert_allclose(data["samples"], want.numpy(), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--guidance", "3"], "--class-label"),
        (["--class-label", "3"], "0..2"),
        (["--class-label", "x"], "integers"),
        (["--class-label", "0", "--guidance", "nan"], "finite"),
    ],
)
def test_sample_bad_arguments(image_ck, tmp_path, capsys, args, message):
    assert sample_cli.main(["--checkpoint", str(image_ck), "--out", str(tmp_path / "x"),
                            *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_sample_label_on_an_unconditional_checkpoint(tmp_path, capsys):
    cfg = replace(TINY_UNET, num_classes=0)
    ck = save_checkpoint(tmp_path / "u", build_model(cfg), cfg, ScheduleConfig(T=T),
                         dataset={"name": "test"})
    assert sample_cli.main(["--checkpoint", str(ck), "--out", str(tmp_path / "x"),
                            "--class-label", "0"]) == 2
    assert "unconditional" in capsys.readouterr().err


def test_checkpoint_class_names_must_match(tmp_path):
    with pytest.raises(ValueError, match="3 classes"):
        save_checkpoint(tmp_path / "bad", build_model(TINY_UNET), TINY_UNET, ScheduleConfig(T=T),
                        dataset={"name": "test", "classes": ["a", "b"]})
