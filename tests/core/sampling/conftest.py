"""Fixtures for the sampler tests."""

import pytest

from diffusion_core.schedule import NoiseSchedule


@pytest.fixture(scope="module")
def sched():
    """Linear β (1000/T-scaled), T = 100: short enough to run whole chains in tests."""
    return NoiseSchedule(kind="linear", T=100, scale_to_T=True)
