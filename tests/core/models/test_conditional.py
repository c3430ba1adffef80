"""Class-conditional MLP2D and UNet: labels, the null class, unconditional models unchanged.

The reference values below were recorded with the code BEFORE class labels existed (commit
1556a7e, torch 2.13.0+cpu; identical with 1 and 2 threads): an unconditional network must
still compute exactly them (to float32 rounding on another CPU: ``tests.helpers.ACROSS_CPUS``).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from diffusion_core.models import MLPConfig, UNetConfig, build_model, config_from_dict
from diffusion_core.models.embeddings import ClassEmbedding, check_labels
from diffusion_core.presets import TOY
from tests.helpers import ACROSS_CPUS

from .common import small_unet

# MLP2D(TOY.model) built after torch.manual_seed(0), in eval mode, on
# x = randn(6, 2, generator=manual_seed(1)) and t = [0, 1, 50, 100, 150, 199]: ε̂ flattened.
TOY_INIT_EPS = [-0.06118032708764076, -0.022913947701454163, -0.06809937953948975,
                -0.03558170422911644, -0.07745503634214401, 0.005259388126432896,
                -0.026975572109222412, 0.022418398410081863, -0.022307371720671654,
                -0.017609864473342896, -0.08937199413776398, -0.02495415136218071]


def _toy_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
    return x, torch.tensor([0, 1, 50, 100, 150, 199])


def test_unconditional_mlp_is_bit_identical_to_before_labels_existed():
    torch.manual_seed(0)
    model = build_model(TOY.model).eval()
    assert model.class_embed is None and model.null_class is None
    with torch.inference_mode():
        out = model(*_toy_inputs())
    torch.testing.assert_close(out.flatten(), torch.tensor(TOY_INIT_EPS), **ACROSS_CPUS)


@pytest.mark.parametrize("kind", ["mlp", "unet"])
def test_fresh_conditional_network_equals_the_unconditional_one(kind):
    """The class table starts at zero and is built last: same weights, same outputs."""
    cfg = TOY.model if kind == "mlp" else small_unet()
    torch.manual_seed(0)
    plain = build_model(cfg).eval()
    torch.manual_seed(0)
    cond = build_model(replace(cfg, num_classes=3)).eval()
    shared = {k: v for k, v in cond.state_dict().items() if not k.startswith("class_embed")}
    assert shared.keys() == plain.state_dict().keys()
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in shared.items())
    x = torch.randn(4, 2) if kind == "mlp" else torch.randn(4, 1, 8, 8)
    t = torch.tensor([0, 3, 7, 99])
    with torch.inference_mode():
        ref = plain(x, t)
        assert torch.equal(cond(x, t), ref)
        assert torch.equal(cond(x, t, torch.tensor([0, 1, 2, 3])), ref)


@pytest.mark.parametrize("kind", ["mlp", "unet"])
def test_labels_change_the_prediction_and_none_is_the_null_class(kind):
    cfg = replace(TOY.model if kind == "mlp" else small_unet(), num_classes=4)
    torch.manual_seed(1)
    model = build_model(cfg).eval()
    assert model.null_class == 4
    with torch.no_grad():
        model.class_embed.embedding.weight.normal_(0, 1.0)
    x = torch.randn(3, 2) if kind == "mlp" else torch.randn(3, 1, 8, 8)
    t = torch.tensor([5, 5, 5])
    with torch.inference_mode():
        a = model(x, t, torch.tensor([0, 0, 0]))
        b = model(x, t, torch.tensor([1, 1, 1]))
        null = model(x, t, torch.tensor([4, 4, 4]))
        assert torch.equal(model(x, t), null)
        assert torch.equal(model(x, t, None), null)
        # per-sample labels: each row as if alone
        mixed = model(x, t, torch.tensor([0, 1, 4]))
    assert not torch.allclose(a, b)
    torch.testing.assert_close(mixed, torch.stack([a[0], b[1], null[2]]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["mlp", "unet"])
def test_class_embedding_gets_gradients(kind):
    cfg = replace(TOY.model if kind == "mlp" else small_unet(), num_classes=2)
    model = build_model(cfg)
    x = torch.randn(4, 2) if kind == "mlp" else torch.randn(4, 1, 8, 8)
    model(x, torch.tensor([1, 2, 3, 4]), torch.tensor([0, 1, 2, 0])).square().mean().backward()
    grad = model.class_embed.embedding.weight.grad
    assert grad is not None and (grad.abs().sum(1) > 0).all()  # rows 0, 1 and the null row 2


@pytest.mark.parametrize("kind", ["mlp", "unet"])
def test_bad_labels_are_refused(kind):
    cfg = TOY.model if kind == "mlp" else small_unet()
    x = torch.randn(2, 2) if kind == "mlp" else torch.randn(2, 1, 8, 8)
    t = torch.tensor([1, 2])
    with pytest.raises(ValueError, match="unconditional"):
        build_model(cfg)(x, t, torch.tensor([0, 1]))
    model = build_model(replace(cfg, num_classes=3))
    for y, msg in [(torch.tensor([0, 4]), "0..3"), (torch.tensor([-1, 0]), "0..3"),
                   (torch.tensor([0.0, 1.0]), "integer"), (torch.tensor([0]), r"\[B\] = \[2\]"),
                   ([0, 1], "torch.Tensor")]:
        with pytest.raises(ValueError, match=msg):
            model(x, t, y)


def test_check_labels_accepts_the_null_class():
    check_labels(torch.tensor([0, 2, 3]), 3, 3)
    with pytest.raises(ValueError):
        check_labels(torch.tensor([4]), 1, 3)
    emb = ClassEmbedding(3, 5)
    assert emb.null_class == 3 and emb(None, 2).shape == (2, 5)
    assert torch.count_nonzero(emb.embedding.weight) == 0


@pytest.mark.parametrize("cls", [MLPConfig, UNetConfig])
def test_num_classes_field(cls):
    base = cls() if cls is MLPConfig else small_unet()
    assert base.num_classes == 0
    cfg = replace(base, num_classes=10)
    assert config_from_dict(cfg.to_dict()) == cfg
    old = base.to_dict()
    del old["num_classes"]  # a config.json written before the field existed
    assert config_from_dict(old) == base
    for bad in (-1, 1001, 2.0, True):
        with pytest.raises(ValueError, match="num_classes"):
            replace(base, num_classes=bad)


def test_parameter_count_of_the_class_table():
    cfg = replace(TOY.model, num_classes=8)
    plain, cond = build_model(TOY.model), build_model(cfg)
    extra = sum(p.numel() for p in cond.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == 9 * TOY.model.hidden  # 8 classes + the null class
    u = small_unet(num_classes=10)
    extra = (sum(p.numel() for p in build_model(u).parameters())
             - sum(p.numel() for p in build_model(small_unet()).parameters()))
    assert extra == 11 * 4 * u.dim  # rows × the time embedding width 4·dim
