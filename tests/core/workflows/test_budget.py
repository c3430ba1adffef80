"""Budget: the step and wall-time caps of one job."""

from __future__ import annotations

import math

import pytest

from diffusion_core.workflows.budget import Budget


def test_no_caps_never_stop():
    b = Budget()
    assert b.stop_reason(10**9, 1e9) is None
    assert b.check_steps(10**9) == 10**9
    assert b.describe() == "no limit"


def test_time_cap_fires_at_its_value_and_names_it():
    b = Budget(max_seconds=60)
    assert b.stop_reason(5, 59.999) is None
    assert b.stop_reason(5, 60.0) == "the 60 s limit"


def test_step_cap_fires_and_the_time_cap_is_checked_first():
    b = Budget(max_steps=1000, max_seconds=2.5)
    assert b.stop_reason(999, 1.0) is None
    assert b.stop_reason(1000, 1.0) == "the 1,000-step limit"
    assert b.stop_reason(1000, 2.5) == "the 2.5 s limit"
    assert b.describe() == "≤ 1,000 steps and ≤ 2.5 s per run"


def test_check_steps_refuses_more_than_the_cap_in_words():
    b = Budget(max_steps=20_000)
    assert b.check_steps(20_000) == 20_000
    with pytest.raises(ValueError, match=r"At most 20,000 training steps per run .*100,000"):
        b.check_steps(100_000, "training steps")


@pytest.mark.parametrize("kw", [
    dict(max_steps=0), dict(max_steps=2.5), dict(max_steps=True), dict(max_seconds=0),
    dict(max_seconds=-1), dict(max_seconds=math.inf), dict(max_seconds=math.nan),
    dict(max_seconds="60"),
])
def test_bad_caps_are_refused(kw):
    with pytest.raises(ValueError):
        Budget(**kw)
