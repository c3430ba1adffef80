"""Visited timesteps (leading / trailing / linspace) and evenly spaced picks."""

from __future__ import annotations

import pytest

from diffusion_core.sampling import evenly_spaced, time_pairs, timesteps


def test_timesteps_known_lists():
    assert timesteps(10, 5, "leading") == [8, 6, 4, 2, 0]
    assert timesteps(10, 5, "trailing") == [9, 7, 5, 3, 1]
    assert timesteps(10, 4, "linspace") == [9, 6, 3, 0]
    assert timesteps(1000, 1000, "leading") == list(range(999, -1, -1))
    for spacing in ("leading", "trailing", "linspace"):
        for n in (1, 3, 7, 333, 1000):
            ts = timesteps(1000, n, spacing)
            assert len(ts) == n and all(a > b for a, b in zip(ts, ts[1:], strict=False))
    assert time_pairs([8, 4, 0]) == [(8, 4), (4, 0), (0, -1)]


@pytest.mark.parametrize("bad", [dict(num_steps=11), dict(num_steps=0), dict(spacing="odd")])
def test_timesteps_bad_input(bad):
    with pytest.raises(ValueError):
        timesteps(10, **{"num_steps": 5, "spacing": "leading", **bad})



@pytest.mark.parametrize("n, k, want", [(10, 3, [0, 4, 9]), (5, 10, [0, 1, 2, 3, 4]),
                                        (1, 4, [0]), (100, 2, [0, 99]), (0, 3, []),
                                        (7, 1, [0])])
def test_evenly_spaced_known_values(n, k, want):
    assert evenly_spaced(n, k) == want


def test_evenly_spaced_keeps_ends_and_count():
    for n in range(2, 60):
        for k in range(2, 12):
            got = evenly_spaced(n, k)
            assert got[0] == 0 and got[-1] == n - 1
            assert len(got) == min(n, k) and got == sorted(set(got))
