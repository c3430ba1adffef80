"""MLP2D: shapes, time conditioning, skip, validation, gradients, capacity."""

from __future__ import annotations

import pytest
import torch

from diffusion_core.models import (
    MLP2D,
    MLPConfig,
)
from tests.core.models.common import ACTIVATIONS, EMBEDDINGS, timesteps


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_mlp_output_shape(activation: str, time_embedding: str) -> None:
    cfg = MLPConfig(
        hidden=16, depth=2, activation=activation, time_embedding=time_embedding, num_timesteps=50
    )  # type: ignore[arg-type]
    model = MLP2D(cfg)
    for batch in (1, 7):
        x = torch.randn(batch, 2)
        out = model(x, timesteps(batch, 50))
        assert out.shape == (batch, 2)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_mlp_output_depends_on_t(time_embedding: str) -> None:
    torch.manual_seed(0)
    model = MLP2D(MLPConfig(hidden=32, depth=2, time_embedding=time_embedding, num_timesteps=100))
    if time_embedding == "onehot_linear":
        # PyTorch's default init gives every t its own random scalar; make sure of it anyway
        with torch.no_grad():
            model.time_embed.linear.weight.copy_(torch.linspace(-1, 1, 100)[None])
    x = torch.randn(1, 2).expand(4, 2)
    out = model(x, torch.tensor([0, 1, 50, 99]))
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(out[i], out[j], atol=1e-6), (i, j)


def test_mlp_onehot_linear_matches_explicit_one_hot() -> None:
    torch.manual_seed(0)
    model = MLP2D(MLPConfig(time_embedding="onehot_linear", num_timesteps=20))
    t = torch.tensor([0, 3, 19])
    one_hot = torch.nn.functional.one_hot(t, 20).float()
    torch.testing.assert_close(model.time_embed(t), model.time_embed.linear(one_hot))


def test_mlp_scalar_embedding_is_t_over_T() -> None:
    model = MLP2D(MLPConfig(time_embedding="scalar", num_timesteps=50))
    torch.testing.assert_close(
        model.time_embed(torch.tensor([0, 25, 49])), torch.tensor([[0.0], [0.5], [0.98]])
    )


def test_mlp_skip_starts_at_zero_and_adds_a_linear_map_of_x_t() -> None:
    cfg = MLPConfig(hidden=32, depth=2, input_frequencies=4, num_timesteps=50)
    torch.manual_seed(0)
    plain = MLP2D(cfg)
    torch.manual_seed(0)
    skipped = MLP2D(MLPConfig(**{**cfg.to_dict(), "skip": True}))
    x, t = torch.randn(16, 2), timesteps(16, 50)
    torch.testing.assert_close(skipped(x, t), plain(x, t))  # zero-initialised shortcut
    assert plain.skip is None and "skip.weight" not in plain.state_dict()
    with torch.no_grad():
        skipped.skip.weight.copy_(torch.tensor([[2.0, 0.0], [1.0, -1.0]]))
        skipped.skip.bias.copy_(torch.tensor([0.5, 0.0]))
    want = plain(x, t) + torch.stack((2 * x[:, 0] + 0.5, x[:, 0] - x[:, 1]), 1)
    torch.testing.assert_close(skipped(x, t), want)
    skipped(x, t).sum().backward()
    assert skipped.skip.weight.grad is not None and skipped.skip.weight.grad.abs().sum() > 0


def test_mlp_structure_follows_config() -> None:
    model = MLP2D(MLPConfig(hidden=64, depth=4, embed_dim=16))
    linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 5  # depth hidden layers + output
    assert linears[0].in_features == 2 + 16
    assert all(lin.out_features == 64 for lin in linears[:-1])
    assert linears[-1].out_features == 2


@pytest.mark.parametrize(
    ("x", "t", "match"),
    [
        (torch.randn(4, 3), torch.zeros(4, dtype=torch.long), "x_t"),
        (torch.randn(4), torch.zeros(4, dtype=torch.long), "x_t"),
        (torch.randn(4, 2, 1), torch.zeros(4, dtype=torch.long), "x_t"),
        (torch.randn(4, 2), torch.zeros(3, dtype=torch.long), r"t must have shape \[B\]"),
        (torch.randn(4, 2), torch.zeros(4, 1, dtype=torch.long), r"t must have shape \[B\]"),
        (torch.randn(4, 2), torch.zeros(4), "integer"),
        (torch.randn(4, 2), torch.tensor([0, 1, 2, 100]), r"0\.\.99"),
        (torch.randn(4, 2), torch.tensor([0, -1, 2, 3]), r"0\.\.99"),
    ],
)
def test_mlp_rejects_bad_inputs(x: torch.Tensor, t: torch.Tensor, match: str) -> None:
    model = MLP2D(MLPConfig(num_timesteps=100))
    with pytest.raises(ValueError, match=match):
        model(x, t)


def test_mlp_accepts_boundary_timesteps() -> None:
    model = MLP2D(MLPConfig(num_timesteps=100))
    assert model(torch.randn(2, 2), torch.tensor([0, 99])).shape == (2, 2)


@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_mlp_gradient_reaches_every_parameter(time_embedding: str) -> None:
    torch.manual_seed(0)
    model = MLP2D(MLPConfig(hidden=16, depth=3, time_embedding=time_embedding, num_timesteps=10))
    model(torch.randn(32, 2), torch.arange(32) % 10).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_mlp_overfits_a_fixed_mapping() -> None:
    torch.manual_seed(0)
    model = MLP2D(MLPConfig(hidden=64, depth=2, num_timesteps=10))
    x = torch.randn(64, 2)
    t = torch.arange(64) % 10
    target = torch.randn(64, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(300):
        loss = (model(x, t) - target).square().mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 10

