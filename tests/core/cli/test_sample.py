"""``python -m diffusion_core.sample``: sampling a checkpoint from the command line.

On tiny checkpoints saved in a temporary folder (a U-Net for images, an MLP for 2D points): the
files it writes and their shapes, seeds, the checkpoint's recorded sampler settings and the
reset of the steps when another sampler is chosen, and bad arguments (exit status 2, one line
on stderr, nothing written).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.checkpoints import load_checkpoint, save_checkpoint
from diffusion_core.cli import sample as sample_cli
from diffusion_core.data import to_data_coords
from diffusion_core.images import make_grid
from diffusion_core.models import MLPConfig, UNetConfig, build_model
from diffusion_core.sampling import SamplerSettings, sample_final
from diffusion_core.schedule import ScheduleConfig

TINY_UNET = UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2), groups=4,
                       attn_heads=1, attn_dim_head=8, use_linear_attention=False,
                       use_mid_attention=False)
T = 20
RECORDED = SamplerSettings(sampler="ddim", steps=4, spacing="trailing", clip_x0=True)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """``{"image": dir, "points": dir}``: a tiny U-Net that recorded DDIM with 4 steps, and a
    tiny 2D MLP trained (never, here) on moons that recorded nothing."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    image = save_checkpoint(root / "image", build_model(TINY_UNET), TINY_UNET,
                            ScheduleConfig(kind="cosine", T=T), dataset={"name": "test"},
                            training={"sampler_defaults": RECORDED.kwargs()})
    mlp = MLPConfig(hidden=16, depth=1, num_timesteps=T)
    points = save_checkpoint(root / "points", build_model(mlp), mlp,
                             ScheduleConfig(kind="cosine", T=T), dataset={"name": "moons"})
    return {"image": image, "points": points}


def _run(ck_dir, out, *extra):
    return sample_cli.run(["--checkpoint", str(ck_dir), "--out", str(out), *extra])


def _expected(ck_dir, n, seed, **kwargs) -> torch.Tensor:
    """The core loop from x_T ~ N(0, I) drawn first from a generator seeded with ``seed``."""
    ck = load_checkpoint(ck_dir)
    g = torch.Generator().manual_seed(seed)
    shape = (1, 8, 8) if isinstance(ck.model_config, UNetConfig) else (2,)
    x_T = torch.randn((n, *shape), generator=g)
    return sample_final(ck.model, ck.schedule, x_T, generator=g, **kwargs)


def test_images_write_npz_png_and_gif(checkpoints, tmp_path, capsys):
    out = _run(checkpoints["image"], tmp_path / "sub" / "digits", "--n", "5", "--seed", "2")
    assert sorted(out) == ["gif", "npz", "png"]
    assert all(p.is_file() and p.stem == "digits" for p in out.values())
    samples = np.load(out["npz"])["samples"]
    assert samples.shape == (5, 1, 8, 8) and samples.dtype == np.float32
    # the checkpoint's recorded settings: DDIM, 4 steps
    want = _expected(checkpoints["image"], 5, 2, **RECORDED.sample_kwargs(T))
    np.testing.assert_array_equal(samples, want.numpy())
    assert "ddim with 4 steps" in capsys.readouterr().out
    png = Image.open(out["png"])
    assert png.format == "PNG"
    np.testing.assert_array_equal(np.asarray(png.convert("RGB")),
                                  make_grid(torch.from_numpy(samples), scale=4))
    gif = Image.open(out["gif"])
    assert gif.format == "GIF" and gif.n_frames == 4 + 1  # every step, then the samples


def test_points_write_npz_in_data_coordinates(checkpoints, tmp_path, capsys):
    out = _run(checkpoints["points"], tmp_path / "moons", "--n", "300", "--seed", "1")
    assert sorted(out) == ["npz"]
    assert not (tmp_path / "moons.png").exists() and not (tmp_path / "moons.gif").exists()
    samples = np.load(out["npz"])["samples"]
    assert samples.shape == (300, 2)
    # no record: the 2D preset (DDPM over all T), then mapped back into moons' coordinates
    want = to_data_coords(_expected(checkpoints["points"], 300, 1, sampler="ddpm", steps=T,
                                    spacing="trailing"), "moons")
    np.testing.assert_allclose(samples, want.numpy(), rtol=0, atol=1e-6)
    assert f"ddpm with {T} steps" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["image", "points"])
def test_same_seed_same_samples(checkpoints, tmp_path, kind):
    def samples(name, seed):
        out = _run(checkpoints[kind], tmp_path / name, "--n", "6", "--seed", str(seed),
                   "--sampler", "ddpm", "--steps", "5")
        return np.load(out["npz"])["samples"]

    a, b, c = samples("a", 7), samples("b", 7), samples("c", 8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_ddpm_without_steps_runs_the_full_chain(checkpoints, tmp_path, capsys):
    """The checkpoint recorded DDIM with 4 steps; ``--sampler ddpm`` alone means all T."""
    out = _run(checkpoints["image"], tmp_path / "full", "--n", "2", "--sampler", "ddpm")
    assert f"ddpm with {T} steps" in capsys.readouterr().out
    want = _expected(checkpoints["image"], 2, 0, sampler="ddpm", steps=T, spacing="trailing",
                     clip_x0=True, variance="beta_tilde")
    np.testing.assert_array_equal(np.load(out["npz"])["samples"], want.numpy())
    assert Image.open(out["gif"]).n_frames == T + 1
    _run(checkpoints["image"], tmp_path / "few", "--sampler", "ddpm", "--steps", "3")
    assert "ddpm with 3 steps" in capsys.readouterr().out


def test_overrides_reach_the_sampler(checkpoints, tmp_path):
    out = _run(checkpoints["image"], tmp_path / "o", "--n", "3", "--steps", "6", "--eta", "1",
               "--spacing", "leading", "--seed", "4")
    want = _expected(checkpoints["image"], 3, 4, sampler="ddim", steps=6, eta=1.0,
                     spacing="leading", clip_x0=True)
    np.testing.assert_array_equal(np.load(out["npz"])["samples"], want.numpy())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "0"], "--n"),
        (["--steps", str(T + 1)], "--steps"),
        (["--steps", "0"], "steps"),
        (["--eta", "2"], "eta"),
        (["--sampler", "euler"], "euler"),
        (["--spacing", "random"], "random"),
        (["--n", "many"], "--n"),
        (["--device", "tpu"], "tpu"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(checkpoints, tmp_path, capsys, args, message):
    code = sample_cli.main(["--checkpoint", str(checkpoints["image"]),
                            "--out", str(tmp_path / "x"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:") and message in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_missing_or_pickled_checkpoint_is_refused(tmp_path, capsys):
    assert sample_cli.main(["--checkpoint", str(tmp_path / "nope"), "--out",
                            str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "model.pt").write_bytes(b"not really")
    assert sample_cli.main(["--checkpoint", str(tmp_path / "model.pt"), "--out",
                            str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "pickle" in err and len(err.strip().splitlines()) == 1
    assert sample_cli.main(["--out", str(tmp_path / "x")]) == 2  # --checkpoint is required
    assert "--checkpoint" in capsys.readouterr().err


def test_python_dash_m_runs_it(checkpoints, tmp_path):
    """The documented command, in a fresh interpreter: files, and status 2 for a bad argument."""
    root = Path(__file__).resolve().parents[3]
    cmd = [sys.executable, "-m", "diffusion_core.sample", "--checkpoint", str(checkpoints["image"]),
           "--n", "2", "--out", str(tmp_path / "m")]
    ok = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert {p.name for p in tmp_path.iterdir()} == {"m.npz", "m.png", "m.gif"}
    bad = subprocess.run([*cmd, "--steps", "0"], cwd=root, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_a_checkpoint_zip_from_the_app_samples_like_its_folder(checkpoints, tmp_path, capsys):
    from diffusion_core.checkpoints import export_zip

    z = export_zip(checkpoints["image"], tmp_path / "mine.zip")
    args = ("--n", "4", "--seed", "3", "--sampler", "ddim", "--steps", "3")
    from_zip = np.load(_run(z, tmp_path / "z", *args)["npz"])["samples"]
    from_dir = np.load(_run(checkpoints["image"], tmp_path / "d", *args)["npz"])["samples"]
    np.testing.assert_array_equal(from_zip, from_dir)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK not a zip at all")
    assert sample_cli.main(["--checkpoint", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "bad.zip" in err and len(err.strip().splitlines()) == 1
