"""A short soak: a few concurrent client sessions and one greedy user against ``python app.py``.

The full soak (20 users, 5 minutes, speed and memory targets) is ``python -m bench.soak``; this
runs the same code for 15 s with 4 users and 1 greedy user against its own server process
(its own env and temp dir, not the session ``server`` fixture) and checks only what must hold
on any machine: no call fails other than by an expected refusal, every user got through, and
the light endpoints answered. Timing targets belong to the bench's output, not to unit tests.
The users think 0.2–1 s between calls (the bench's class: 2–8 s), so that they reach ▶ Train
while the greedy user's job runs; the server's start (~12 s) and the drain after the run
(~5 s) are fixed costs of the bench.
"""

from __future__ import annotations

import pytest

pytest.importorskip("gradio_client")

from bench.soak import LIGHT, SoakConfig, report, run_soak  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def soak_results():
    cfg = SoakConfig(users=4, greedy=1, seconds=15, ramp_s=1.0, think_s=(0.2, 1.0),
                     bad_input_rate=1.0, train_seconds=8, sample_seconds=8, warm_visit=False,
                     wait_expiry=False, verbose=False)
    with pytest.MonkeyPatch.context() as mp:
        # Its workers at the app's own low priority, whatever the suite set for its in-process
        # server (tests/conftest.py): five busy processes at the test processes' priority
        # would starve the other test process.
        mp.setenv("DIFFUSION_LAB_WORKER_NICE", "10")
        return run_soak(cfg)


def test_no_errors(soak_results):
    r = soak_results
    assert r["targets"]["server_up"]["status"] == "PASS", report(r)
    assert r["totals"]["errors"] == 0, report(r)
    assert not r["totals"]["hung_users"], report(r)
    assert r["targets"]["errors"]["status"] == "PASS", report(r)


def test_every_user_made_requests(soak_results):
    users = {u["user"]: u for u in soak_results["users"]}
    assert set(users) == {"g0", "u0", "u1", "u2", "u3"}, users
    for name, u in users.items():
        assert u["requests"] > 0 and u["ok"] + u["refused"] + u["cut"] > 0, (name, u)
    # the normal users got through the schedule, forward and 2D tabs at least once
    for name in ("u0", "u1", "u2", "u3"):
        assert users[name]["ok"] >= 3, (name, users[name])
    # and the run reached tab 3: a normal user's preset ▶ Train ran beside the greedy user
    assert soak_results["preset_train_start"]["presses"] >= 1, soak_results["endpoints"]


def test_light_endpoints_answered(soak_results):
    eps = soak_results["endpoints"]
    for ep in ("/schedules_plot", "/forward_schedule", "/forward_frame", "/toy_data_plot"):
        assert eps.get(ep, {}).get("ok", 0) > 0, (ep, eps.get(ep))
    for ep, s in eps.items():
        if ep in LIGHT:
            assert s["errors"] == 0 and s["ok"] > 0, (ep, s)


def test_greedy_user_was_refused_or_capped_not_failed(soak_results):
    g = next(u for u in soak_results["users"] if u["role"] == "greedy")
    assert g["errors"] == 0, g
    assert g["ok"] + g["refused"] + g["cut"] >= 1, g
