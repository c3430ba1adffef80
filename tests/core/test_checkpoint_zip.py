"""Checkpoint zip: export → import gives the same samples; hostile or wrong zips are refused with
a message the UI can show; the generated model card reads in plain words first."""

from __future__ import annotations

import json
import pickle
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from diffusion_core.checkpoints import (
    CARD,
    CONFIG,
    WEIGHTS,
    ZIP_MAX_BYTES,
    export_zip,
    import_zip,
    load_checkpoint,
    model_card_md,
    read_config,
    save_checkpoint,
)
from diffusion_core.models import UNet, UNetConfig
from diffusion_core.schedule import ScheduleConfig
from diffusion_core.workflows.image_sampling import sample_checkpoint, sampler_settings

CFG = UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2), groups=4, attn_heads=1,
                 attn_dim_head=8, level_blocks=1)
TRAINING = {"steps": 300, "wall_time_s": 41.7, "final_loss": 0.2134, "parameters": 0,
            "threads": 2, "device": "cpu",
            "config": {"batch_size": 64, "lr": 0.002, "ema_decay": 0.995, "seed": 0},
            "command": "python -m diffusion_core.train --dataset digits8 --steps 300"}


@pytest.fixture(scope="module")
def ckdir(tmp_path_factory):
    torch.manual_seed(0)
    model = UNet(CFG)
    training = dict(TRAINING, parameters=sum(p.numel() for p in model.parameters()))
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "tiny", model, CFG,
                           ScheduleConfig(kind="cosine", T=50),
                           dataset={"name": "digits8", "n": 1347, "shape": [1, 8, 8]},
                           training=training)


def _samples(ck, seed=3):
    with torch.no_grad():
        return sample_checkpoint(ck, sampler_settings(ck, {"steps": 5}), 4, seed)


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _members(ckdir, **changes) -> dict[str, bytes]:
    out = {CONFIG: (ckdir / CONFIG).read_bytes(), WEIGHTS: (ckdir / WEIGHTS).read_bytes()}
    out.update(changes)
    return out


def _refused(path, tmp_path, match):
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match=match) as e:
        import_zip(path, dest)
    assert str(e.value).startswith(path.name)  # the UI shows which file
    assert not dest.exists()  # nothing left behind
    return str(e.value)


def test_round_trip_gives_identical_samples(ckdir, tmp_path):
    z = export_zip(ckdir, tmp_path / "tiny.zip")
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == sorted([CONFIG, WEIGHTS, CARD])
        assert zf.read(WEIGHTS) == (ckdir / WEIGHTS).read_bytes()
        assert json.loads(zf.read(CONFIG)) == read_config(ckdir)
    ck = import_zip(z, tmp_path / "back")
    original = load_checkpoint(ckdir)
    a, b = _samples(original), _samples(ck)
    assert a.shape == (4, 1, 8, 8) and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, _samples(ck, seed=4))  # the comparison can fail
    assert ck.path == tmp_path / "back" and (ck.path / CARD).is_file()
    assert ck.dataset == original.dataset and ck.training == original.training
    # Deterministic bytes: the same checkpoint exports to the same zip.
    again = export_zip(ckdir, tmp_path / "again.zip")
    assert again.read_bytes() == z.read_bytes()


def test_export_a_loaded_checkpoint_object(ckdir, tmp_path):
    original = load_checkpoint(ckdir)
    z = export_zip(original, tmp_path / "obj.zip", quality={"frechet_distance": 0.52})
    ck = import_zip(z, tmp_path / "back")
    assert torch.equal(_samples(original), _samples(ck))
    card = (ck.path / CARD).read_text()
    assert "frechet_distance = 0.52" in card and "Not measured" not in card


def test_model_card_plain_words_first(ckdir):
    config = read_config(ckdir)
    card = model_card_md(config, None)
    params = config["training"]["parameters"]
    head, details = card.split("## Developer details")
    assert head.startswith("# Diffusion model trained on “digits8”")
    for words in ("**What it makes.** Greyscale 8×8 images", "1,347 examples",
                  f"{params:,} numbers to tune", "300 training steps", "42 s on 2 CPU threads",
                  "T = 50", "Not measured"):
        assert words in head, words
    for words in ("| parameters | " + f"{params:,}", "| schedule | cosine, T = 50",
                  "| final loss | 0.2134", "batch 64", "EMA 0.995", "`python -m diffusion_core"):
        assert words in details, words
    scored = model_card_md(config, {"summary": "Meets the digits bar.", "confidence": 0.9413})
    assert "**How good it is.** Meets the digits bar." in scored
    assert "| quality: confidence | 0.9413 |" in scored
    # Odd or missing fields never break it.
    assert model_card_md({"model": [], "training": {"steps": "x"}}, None).startswith("# ")


def test_non_zip_and_pickles_are_refused(ckdir, tmp_path):
    (tmp_path / "notes.zip").write_bytes(b"just some text, not a zip")
    _refused(tmp_path / "notes.zip", tmp_path, "is not a zip file")
    (tmp_path / "model.pt").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    msg = _refused(tmp_path / "model.pt", tmp_path, "pickle")
    assert "never loaded" in msg
    # torch.save writes a zip holding a pickle (data.pkl): refused, never unpickled.
    torch.save(UNet(CFG).state_dict(), tmp_path / "state.pt")
    _refused(tmp_path / "state.pt", tmp_path, "is a pickle file")
    (tmp_path / "state.pt").rename(tmp_path / "state.zip")  # a zip holding a pickle
    msg = _refused(tmp_path / "state.zip", tmp_path, r"state/data\.pkl, part of a pickle")
    assert "never loaded" in msg
    z = _zip(tmp_path / "bin.zip", _members(ckdir, **{"pytorch_model.bin": b"\x80\x04N."}))
    _refused(z, tmp_path, "pytorch_model.bin, part of a pickle")
    z = _zip(tmp_path / "extra.zip", _members(ckdir, **{"run.sh": b"rm -rf ~"}))
    _refused(z, tmp_path, "holds 'run.sh': a checkpoint zip holds only")
    del_weights = _members(ckdir)
    del del_weights[WEIGHTS]
    _refused(_zip(tmp_path / "nowts.zip", del_weights), tmp_path, "has no model.safetensors")


def test_wrong_shapes_kind_json_and_nan_are_refused(ckdir, tmp_path):
    conf = read_config(ckdir)
    wider = dict(conf, model=dict(conf["model"], dim=16))
    z = _zip(tmp_path / "wide.zip", _members(ckdir, **{CONFIG: json.dumps(wider).encode()}))
    _refused(z, tmp_path,
             r"weight time_mlp\.1\.weight has shape \[32, 8\], the config needs \[64, 16\]")
    deeper = dict(conf, model=dict(conf["model"], dim_mults=[1, 2, 2]))
    z = _zip(tmp_path / "deep.zip", _members(ckdir, **{CONFIG: json.dumps(deeper).encode()}))
    _refused(z, tmp_path, "do not match the model config: missing")
    # A config naming a huge model (18 G parameters) is compared on the meta device: refused
    # without allocating it.
    huge = dict(conf, model=dict(conf["model"], dim=1024, dim_mults=[16], groups=8))
    z = _zip(tmp_path / "huge.zip", _members(ckdir, **{CONFIG: json.dumps(huge).encode()}))
    _refused(z, tmp_path, "do not match the model config")
    alien = dict(conf, model={"kind": "gpt", "layers": 96})
    z = _zip(tmp_path / "gpt.zip", _members(ckdir, **{CONFIG: json.dumps(alien).encode()}))
    _refused(z, tmp_path, "config.json: kind must be one of .*got 'gpt'")
    z = _zip(tmp_path / "bad.zip", _members(ckdir, **{CONFIG: b"{not json"}))
    _refused(z, tmp_path, "config.json is not valid JSON")
    z = _zip(tmp_path / "deepjson.zip", _members(ckdir, **{CONFIG: b"[" * 100_000}))
    _refused(z, tmp_path, "config.json is not valid JSON")
    state = {k: v.contiguous().clone() for k, v in UNet(CFG).state_dict().items()}
    first = sorted(state)[0]
    state[first].view(-1)[0] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"))
    z = _zip(tmp_path / "nan.zip",
             _members(ckdir, **{WEIGHTS: (tmp_path / "nan.safetensors").read_bytes()}))
    _refused(z, tmp_path, f"weight {first} contains NaN or inf")
    ints = {k: v.contiguous().to(torch.int32) for k, v in UNet(CFG).state_dict().items()}
    save_file(ints, str(tmp_path / "int.safetensors"))
    z = _zip(tmp_path / "int.zip",
             _members(ckdir, **{WEIGHTS: (tmp_path / "int.safetensors").read_bytes()}))
    _refused(z, tmp_path, "stored as 'I32', not as floating point")
    z = _zip(tmp_path / "junk.zip", _members(ckdir, **{WEIGHTS: b"\xff" * 64}))
    _refused(z, tmp_path, "not a valid safetensors file")


def test_traversal_and_unsafe_members_are_refused(ckdir, tmp_path):
    for i, (name, match) in enumerate([
            ("../config.json", "outside the zip"), ("a/../../x", "outside the zip"),
            ("/etc/config.json", "absolute path"), ("C:\\Windows\\x", "absolute path"),
            ("..\\..\\evil", "outside the zip")]):
        z = _zip(tmp_path / f"t{i}.zip", _members(ckdir, **{name: b"x"}))
        _refused(z, tmp_path, match)
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(CONFIG, (ckdir / CONFIG).read_bytes())
        info = zipfile.ZipInfo(WEIGHTS)
        info.create_system, info.external_attr = 3, (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    _refused(z, tmp_path, "symbolic link")
    z = _zip(tmp_path / "split.zip", {f"a/{CONFIG}": (ckdir / CONFIG).read_bytes(),
                                      f"b/{WEIGHTS}": (ckdir / WEIGHTS).read_bytes()})
    _refused(z, tmp_path, "together")


def test_oversized_members_and_too_many_entries_are_refused(ckdir, tmp_path):
    z = _zip(tmp_path / "ck.zip", _members(ckdir))
    size = (ckdir / WEIGHTS).stat().st_size
    with pytest.raises(ValueError, match="unpacks to .*more than the limit"):
        import_zip(z, tmp_path / "d1", max_bytes=size - 1)
    assert not (tmp_path / "d1").exists()
    # A zip bomb: 129 MB of zeros deflate to ≈ 0.6 MB; the declared size is over the cap.
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(CONFIG, (ckdir / CONFIG).read_bytes())
        with zf.open(WEIGHTS, "w", force_zip64=True) as f:
            zero = bytes(2**20)
            for _ in range(ZIP_MAX_BYTES // 2**20 + 1):
                f.write(zero)
    assert bomb.stat().st_size < 2**20
    _refused(bomb, tmp_path, r"unpacks to 129\.0 MB, more than the limit of 128\.0 MB")
    many = _members(ckdir, **{f"__MACOSX/._{i}": b"" for i in range(20)})
    _refused(_zip(tmp_path / "many.zip", many), tmp_path, "22 entries, more than the limit of 16")


def test_folder_layout_and_mac_metadata_are_accepted(ckdir, tmp_path):
    z = _zip(tmp_path / "mac.zip", {"tiny/": b"", f"tiny/{CONFIG}": (ckdir / CONFIG).read_bytes(),
                                    f"tiny/{WEIGHTS}": (ckdir / WEIGHTS).read_bytes(),
                                    f"__MACOSX/tiny/._{CONFIG}": b"\x00\x05\x16\x07",
                                    "tiny/.DS_Store": b"\x00\x00"})
    ck = import_zip(z, tmp_path / "back")
    assert sorted(p.name for p in ck.path.iterdir()) == [CONFIG, WEIGHTS]
    assert torch.equal(_samples(ck), _samples(load_checkpoint(ckdir)))
    # The destination must be new or empty; a refusal leaves a given folder as it was.
    with pytest.raises(ValueError, match="new or empty folder"):
        import_zip(z, tmp_path / "back")
    (tmp_path / "empty").mkdir()
    bad = _zip(tmp_path / "bad.zip", _members(ckdir, **{CONFIG: b"[]"}))
    with pytest.raises(ValueError, match="not a Diffusion Lab checkpoint config"):
        import_zip(bad, tmp_path / "empty")
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())
