"""Classroom safety at the handler level: each cap fires with its message and keeps the work,
one heavy job per session, the limits' environment variables, the checked input components,
quiet logs for user mistakes, and the output-file sweep.

(The server-level parts — state expiry, dropping idle sessions, upload size, private
endpoints — are in tests/app/test_limits.py.)
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import itertools  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import gradio as gr  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from diffusion_core.checkpoints import save_checkpoint  # noqa: E402
from diffusion_core.models.build import build_model  # noqa: E402
from diffusion_core.models.unet_config import UNetConfig  # noqa: E402
from diffusion_core.schedule import ScheduleConfig  # noqa: E402
from pages import common, jobs, limits, sessions  # noqa: E402
from pages import sampler as sampler_tab  # noqa: E402
from pages import toy2d as tab  # noqa: E402
from pages.sampler import models as shelf  # noqa: E402
from pages.widgets import inputs as ui  # noqa: E402

BASE = dict(dataset="moons", n=1000, noise=0.05, seed=0, source="preset", kind="cosine", T=100,
            shared=ScheduleConfig(kind="cosine", T=1000).to_dict(), hidden=64, depth=2,
            time_embedding="sinusoidal", activation="silu", lr=3e-3, batch_size=128, steps=200)


@pytest.fixture()
def caps(monkeypatch):
    """Set the server's limits for one test: ``caps(train_seconds=0.3, ...)``."""
    def set_caps(**kw):
        monkeypatch.setattr(limits, "ACTIVE", limits.Limits(**kw))
        return limits.ACTIVE
    return set_caps


def request(session: str):
    """What Gradio passes as ``gr.Request``: only ``session_hash`` is read."""
    return gr.Request(SimpleNamespace(headers={}, query_params={}, cookies={}, client=None,
                                      url="", session={}, state=None, path_params={}),
                      session_hash=session)


# --- the limits and their environment variables ----------------------------------------------


def test_limits_from_env_override_the_defaults_and_refuse_nonsense():
    lim = limits.Limits.from_env({"DIFFUSION_LAB_TRAIN_SECONDS": "5",
                                  "DIFFUSION_LAB_MAX_SESSIONS": "12",
                                  "DIFFUSION_LAB_UPLOAD_MB": ""})
    assert lim.train_seconds == 5.0 and lim.max_sessions == 12
    assert lim.upload_mb == limits.Limits().upload_mb  # empty means the default
    assert lim.training_budget().stop_reason(1, 5.0) == "the 5 s limit"
    with pytest.raises(ValueError, match="DIFFUSION_LAB_TRAIN_STEPS='lots' is not a whole"):
        limits.Limits.from_env({"DIFFUSION_LAB_TRAIN_STEPS": "lots"})
    with pytest.raises(ValueError, match="DIFFUSION_LAB_SAMPLE_SECONDS must be a positive"):
        limits.Limits.from_env({"DIFFUSION_LAB_SAMPLE_SECONDS": "-3"})
    with pytest.raises(ValueError, match="DIFFUSION_LAB_TRAIN_SLOTS"):
        limits.Limits.from_env({"DIFFUSION_LAB_TRAIN_SLOTS": "2.5"})


def test_every_limit_is_documented_in_the_readme_and_the_module():
    readme = (common.EXPLANATIONS.parents[1] / "README.md").read_text(encoding="utf-8")
    for f in limits.Limits.__dataclass_fields__:
        name = limits.env_name(f)
        assert name in readme, f"{name} missing from README"
        assert name in limits.__doc__, f"{name} missing from pages/limits.py's table"


# --- the caps fire, say so, and keep the work ---------------------------------------------------


def test_training_stops_at_the_time_cap_and_keeps_the_model(caps):
    caps(train_seconds=0.4)
    t0 = time.perf_counter()
    outs = list(tab.train(None, **{**BASE, "steps": 20_000}))
    elapsed = time.perf_counter() - t0
    state, _, text, *_ = outs[-1]
    assert text.startswith("**⏱ Stopped at the 0.4 s limit**"), text
    assert "press ▶ Train to continue" in text
    assert 0 < state.trainer.step < 20_000 and len(state.losses) == state.trainer.step
    assert elapsed < 10  # stopped long before 20 000 steps
    # The follow-up keeps the message (it would otherwise write "Stopped after …").
    _, _, progress, _, _ = tab.train_finished(state, 50, text)
    assert progress == gr.skip()
    # ▶ Train again continues the same model.
    again = list(tab.train(state, **{**BASE, "steps": 20_000}))[-1][0]
    assert again is state and again.trainer.step > outs[-1][0].trainer.step - 1


def test_training_step_cap_refuses_bigger_requests_in_words(caps):
    caps(train_steps=500)
    with pytest.raises(gr.Error, match="Training steps must be a whole number from 1 to 500"):
        next(tab.train(None, **{**BASE, "steps": 501}))
    assert list(tab.train(None, **{**BASE, "steps": 20}))[-1][0].trainer.step == 20


def test_2d_sampling_stops_at_the_time_cap_with_a_message(caps):
    state = list(tab.train(None, **{**BASE, "source": "custom", "kind": "linear", "T": 2000,
                                    "steps": 2}))[-1][0]
    caps(sample_seconds=0.3)
    with pytest.warns(UserWarning, match="Sampling stopped at the 0.3 s limit"):
        outs = list(tab.sample(state, "ddpm", None, 0.0, 5000, 0))
    fig, text = outs[-1]
    assert fig == gr.skip()
    assert text.startswith("**⏱ Stopped at the 0.3 s limit**") and "no samples" in text
    assert tab.sample_finished(text) == (gr.skip(), gr.skip())  # keeps the message


def test_empty_2d_sampling_steps_mean_the_samplers_default():
    state = list(tab.train(None, **{**BASE, "steps": 5}))[-1][0]
    outs = list(tab.sample(state, "ddim", "", None, 50, None))
    assert "25 of 200 steps" in outs[-1][1]  # DDIM's default, not T (= 200)


@pytest.fixture()
def models_dir(tmp_path, monkeypatch):
    cfg = UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2), groups=4, attn_heads=1,
                     attn_dim_head=8, use_linear_attention=False, use_mid_attention=False)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "tiny", build_model(cfg), cfg,
                    ScheduleConfig(kind="cosine", T=400), dataset={"name": "test"})
    monkeypatch.setattr(shelf, "ASSETS_MODELS", tmp_path)
    return tmp_path


def test_image_sampling_stops_at_the_time_cap_and_keeps_its_frames(models_dir, caps):
    caps(sample_seconds=0.3)
    with pytest.warns(UserWarning, match="Sampling stopped at the 0.3 s limit"):
        outs = list(sampler_tab.run_sampler("tiny", "ddpm", "beta_tilde", 400, 0.0,
                                            "leading", 64, 0))
    _, _, text, run, *_ = outs[-1]
    assert text.startswith("⏱ Stopped at the 0.3 s limit") and "no files" in text
    assert not run.done and 0 < run.steps_done < 400 and run.xt and run.gif is None
    slider, status, *_ = sampler_tab.run_finished(run, text)
    assert status == text and slider["interactive"] is True


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_empty_image_steps_mean_the_checkpoints_default_never_T(models_dir, sampler):
    outs = list(sampler_tab.run_sampler("tiny", sampler, "beta_tilde", None, None, "trailing",
                                        None, None))
    run = outs[-1][3]  # the checkpoint records no sampler: the image preset's 25 steps
    assert run.num_steps == 25 and run.n_images == sampler_tab.handlers.DEFAULT_IMAGES


# --- one heavy job per session -------------------------------------------------------------------


def test_one_heavy_job_per_session_and_other_sessions_unaffected(caps):
    caps()
    a, b = request("session-a"), request("session-b")
    first = tab.train(None, **BASE, request=a)
    next(first)  # training has started for session a
    assert jobs.running("session-a") == "training a 2D model"
    with pytest.raises(gr.Error, match="You are already training a 2D model"):
        next(tab.sample(None, "ddpm", None, 0.0, 100, 0, request=a))
    state_b = list(tab.train(None, **BASE, request=b))[-1][0]  # another visitor: fine
    assert state_b.trainer.step == BASE["steps"]
    first.close()  # ■ Stop: the claim is released
    assert jobs.running("session-a") is None
    assert list(tab.train(None, **BASE, request=a))[-1][0].trainer.step == BASE["steps"]
    assert jobs.running("session-a") is None  # released after finishing, too


def test_a_failing_job_releases_its_claim(caps):
    caps()
    a = request("session-c")
    with pytest.raises(gr.Error):
        next(tab.train(None, **{**BASE, "lr": -1}, request=a))
    assert jobs.running("session-c") is None


def test_a_follow_up_waits_for_a_stop_that_takes_seconds():
    """After ■ Stop the job's work comes back when its close gets its turn in a shared worker:
    seconds on a busy server. The follow-up (the "■ Stopped" message, the files) waits."""
    jobs._claim("slow-stop", "testing")
    threading.Timer(3.0, jobs._release, ["slow-stop"]).start()
    jobs.wait_done(request("slow-stop"))
    assert jobs.running("slow-stop") is None


def test_a_job_nobody_drives_is_reported_once_with_where_it_waits(caps, caplog):
    """A heavy job whose generator was neither finished nor closed (past every cap) is a fault:
    the janitor logs it once, saying where the handler waits and what holds it."""
    caps(train_seconds=1, sample_seconds=1)
    gen = tab.train(None, **{**BASE, "steps": 20_000}, request=request("session-o"))
    next(gen)  # started, then abandoned: nobody asks for its next step
    try:
        assert jobs.overdue(limits.ACTIVE.overdue_s) == []  # not yet past every cap
        later = time.monotonic() + limits.ACTIVE.overdue_s + 1
        ((session, what, age, where),) = jobs.overdue(limits.ACTIVE.overdue_s, now=later)
        assert session == "session-o" and what == "training a 2D model" and age > 62
        assert "suspended at" in where and "handlers.py" in where and "held by" in where
        janitor = sessions.Janitor(None, session_idle_s=60, file_age_s=60)
        with caplog.at_level(logging.WARNING, logger="diffusion_lab"):
            janitor._report_overdue()  # not yet past every cap: nothing
            assert not caplog.records
            janitor._report_overdue(now=later)
            janitor._report_overdue(now=later + 30)  # once per job
        (record,) = caplog.records
        assert "training a 2D model" in record.getMessage() and "past every cap" in \
            record.getMessage() and "suspended at" in record.getMessage()
    finally:
        gen.close()
    assert jobs.overdue(0.0) == []  # closed: released


# --- checked input components ----------------------------------------------------------------


@pytest.mark.parametrize("payload", ["abc", "nan", "1e309", math.nan, math.inf, True, [1],
                                     {"a": 1}, 0, 1001, 2.5])
def test_number_box_answers_bad_values_with_its_label_and_range(payload):
    box = ui.Number(label="Steps", precision=0, minimum=1, maximum=1000)
    with pytest.raises(gr.Error) as e:
        box.preprocess(payload)
    msg = e.value.message
    assert msg.startswith("Steps must be") and len(msg) < 120, msg
    if payload not in (2.5,):
        assert "from 1 to 1,000" in msg


def test_number_box_empty_is_none_and_good_values_convert():
    box = ui.Number(label="lr", minimum=0, maximum=1)
    assert box.preprocess("") is None and box.preprocess(None) is None
    assert box.preprocess("0.5") == 0.5
    assert ui.Number(label="n", precision=0).preprocess(7.0) == 7


@pytest.mark.parametrize("payload", [None, "abc", math.nan, -1, 11])
def test_slider_answers_bad_values(payload):
    slider = ui.Slider(0, 10, step=1, label="t")
    with pytest.raises(gr.Error, match=r"t must be a whole number from 0 to 10"):
        slider.preprocess(payload)
    assert slider.preprocess(3) == 3


def test_choices_never_echo_a_huge_value():
    dd = ui.Dropdown(["a", "b"], value="a", label="Data set")
    huge = "x" * 100_000
    with pytest.raises(gr.Error) as e:
        dd.preprocess(huge)
    assert len(e.value.message) < 120 and "choices (a, b)" in e.value.message
    for bad in (None, 5, [], {"k": 1}):
        with pytest.raises(gr.Error, match="Data set"):
            dd.preprocess(bad)
    radio = ui.Radio(["ddpm", "ddim"], value="ddpm", label="Sampler")
    with pytest.raises(gr.Error, match="Sampler: 'euler' is not one of"):
        radio.preprocess("euler")
    group = ui.CheckboxGroup(["linear", "cosine"], label="Schedules")
    assert group.preprocess(None) == [] and group.preprocess(["cosine"]) == ["cosine"]
    for bad in ("linear", ["nope"], [None]):
        with pytest.raises(gr.Error, match="Schedules"):
            group.preprocess(bad)
    box = ui.Checkbox(label="clip x̂0")
    with pytest.raises(gr.Error, match="clip x̂0 must be true or false"):
        box.preprocess("abc")
    assert box.preprocess(False) is False


def test_checked_components_draw_as_the_gradio_ones():
    assert ui.Number(label="x").get_block_name() == "number"
    assert ui.Slider(0, 1).get_block_name() == "slider"
    assert ui.CheckboxGroup(["a"]).get_block_name() == "checkboxgroup"


# --- quiet logs ----------------------------------------------------------------------------------


def test_a_user_mistake_is_one_log_line_without_traceback(caplog):
    with caplog.at_level(logging.INFO, logger="diffusion_lab"):
        err = common.UserError("Steps must be a whole number (got 'x' * 500)" + "y" * 500)
    assert err.print_exception is False  # Gradio prints no traceback for it
    assert len(caplog.records) == 1 and len(caplog.records[0].getMessage()) <= 220


# --- output files --------------------------------------------------------------------------------


def test_the_allocator_is_tuned_where_glibc_is_there():
    # A no-op elsewhere (returns False); on Linux/glibc mallopt must accept the arena cap.
    # (What it buys is measured by bench/soak.py: RSS back near the start after expiry.)
    if sessions._glibc() is None:
        pytest.skip("no glibc")
    assert sessions.limit_arenas(2) is True


def test_output_folders_are_swept_by_age_and_cleared_at_start_up():
    old = sessions.output_dir("csv")
    (old / "a.csv").write_text("t\n0\n")
    new = sessions.output_dir("sampler")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert sessions.sweep_outputs(600) == 1
    assert not old.exists() and new.exists()
    sessions.clear_outputs()
    assert not sessions.output_root().exists()


def test_schedule_csv_export_writes_under_the_swept_root():
    from pages import schedules
    path = schedules.export_csv(["cosine"], "cosine", 10, 1e-4, 0.02, False, 0.008, 2.0)
    assert sessions.output_root() in Path(path).parents


# --- long jobs take turns -------------------------------------------------------------------------


def test_paced_counts_cpu_time_not_sleep():
    """A step that sleeps (a busy server's wait) adds no computed time; one that computes does."""
    def steps():
        time.sleep(0.2)
        yield 0
        t0 = time.thread_time()
        while time.thread_time() - t0 < 0.2:
            pass
        yield 1

    run = jobs.paced(steps(), long_after_s=100.0)
    assert next(run) == 0 and run.computed_s < 0.05
    assert next(run) == 1 and 0.2 <= run.computed_s < 0.3
    run.close()
    assert list(run) == []


def test_paced_passes_items_through_and_holds_the_lane_only_when_long():
    lane = jobs.Lane()
    held = []

    def steps():
        for i in range(6):
            held.append(lane._busy)  # inside hold() once the job is long
            end = time.thread_time() + 0.02
            while time.thread_time() < end:  # compute (CPU time is what counts)
                pass
            yield i

    assert list(jobs.paced(steps(), long_after_s=0.05, lane=lane)) == list(range(6))
    assert held[:2] == [False, False] and all(held[-2:])  # short at first, long at the end
    assert not lane._busy and not lane._waiting


def test_an_error_in_a_long_step_reaches_the_job():
    def steps():
        yield 1
        raise ValueError("diverged")

    with pytest.raises(ValueError, match="diverged"):
        list(jobs.paced(steps(), long_after_s=0.0, lane=jobs.Lane()))


def test_the_lane_goes_to_the_job_that_has_computed_least():
    lane = jobs.Lane()
    order = []
    gate = threading.Event()

    def job(name, attained):
        with lane.hold(attained):
            order.append(name)
            gate.wait(1.0)

    first = threading.Thread(target=job, args=("holder", 0.0))
    first.start()
    time.sleep(0.05)  # "holder" has the lane; three jobs queue up behind it
    waiters = [threading.Thread(target=job, args=(n, a))
               for n, a in (("greedy-60s", 60.0), ("greedy-30s", 30.0), ("preset-6s", 6.0))]
    for t in waiters:
        t.start()
        time.sleep(0.02)
    gate.set()
    for t in (first, *waiters):
        t.join()
    assert order == ["holder", "preset-6s", "greedy-30s", "greedy-60s"]


def test_two_greedy_jobs_alternate_on_the_lane():
    """Once both jobs are long and waiting, neither computes many steps in a row. The first,
    unpaced item of each job is a barrier (no CPU), so both reach the lane together even when
    the machine is loaded (otherwise one may run several steps before the other arrives)."""
    lane = jobs.Lane()
    order = []
    both = threading.Barrier(2)

    def steps(name):
        both.wait(10.0)
        yield None
        yield from _busy_steps(name, order, 6)

    def job(name):
        for _ in jobs.paced(steps(name), long_after_s=0.0, lane=lane):
            pass

    threads = [threading.Thread(target=job, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order.count("a") == order.count("b") == 6
    longest = max(len(list(g)) for _, g in itertools.groupby(order))
    assert longest <= 2, order  # neither computes many steps in a row while the other waits


def _busy_steps(name, order, n):
    for _ in range(n):
        order.append(name)
        end = time.thread_time() + 0.01
        while time.thread_time() < end:  # 10 ms of CPU per step: the service that counts
            pass
        yield


# --- a long run gives way when others wait ----------------------------------------------------


class _FakeQueue:
    """What jobs.waiting reads of a served Blocks: its queue's waiting events per group."""

    def __init__(self, **waiting):
        groups = {k: SimpleNamespace(queue=[object()] * n) for k, n in waiting.items()}
        self._queue = SimpleNamespace(event_queue_per_concurrency_id=groups)


def test_turn_over_only_when_computed_enough_and_someone_waits(monkeypatch, caps):
    caps(turn_s=10.0)
    monkeypatch.setattr(jobs, "_watched", _FakeQueue(train=2, sample=0))
    assert jobs.waiting(jobs.TRAIN_QUEUE) == 2 and jobs.waiting(jobs.SAMPLE_QUEUE) == 0
    assert jobs.turn_over(jobs.TRAIN_QUEUE, 9.9) is None  # has not computed enough
    assert jobs.turn_over(jobs.SAMPLE_QUEUE, 60.0) is None  # nobody waits
    assert (jobs.turn_over(jobs.TRAIN_QUEUE, 10.0)
            == "the end of its turn (10 s of computing; 2 others waiting)")
    monkeypatch.setattr(jobs, "_watched", None)
    assert jobs.waiting(jobs.TRAIN_QUEUE) == 0  # not served (tests, CLI): never gives way


def test_training_gives_way_to_a_waiting_user_and_keeps_its_model(monkeypatch, caps):
    caps(turn_s=0.3)
    monkeypatch.setattr(jobs, "_watched", _FakeQueue(train=1))
    state, _, text, *_ = list(tab.train(None, **{**BASE, "steps": 20_000}))[-1]
    assert text.startswith("**⏱ Stopped at the end of its turn (0.3 s of computing; 1 other "
                           "waiting)**"), text
    assert "press ▶ Train to continue" in text and 0 < state.trainer.step < 20_000


def test_cache_sweep_deletes_old_files_and_empty_folders_only(tmp_path):
    old_dir, new_dir = tmp_path / "a1" / "b", tmp_path / "c2"
    old_dir.mkdir(parents=True)
    new_dir.mkdir()
    old, new = old_dir / "x.png", new_dir / "y.png"
    old.write_bytes(b"1")
    new.write_bytes(b"2")
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert sessions.sweep_files(tmp_path, 600) == 1
    assert not old.exists() and not (tmp_path / "a1").exists()  # emptied folders go too
    assert new.read_bytes() == b"2"
    assert sessions.gradio_cache() == Path(os.environ["GRADIO_TEMP_DIR"])


def test_usage_decays_with_its_half_life():
    usage = jobs.Usage(half_life_s=10.0)
    usage.add("a", 4.0, now=100.0)
    assert usage.recent("a", now=100.0) == pytest.approx(4.0)
    assert usage.recent("a", now=110.0) == pytest.approx(2.0)
    usage.add("a", 1.0, now=120.0)  # 1.0 left of the 4, plus 1
    assert usage.recent("a", now=120.0) == pytest.approx(2.0)
    assert usage.recent("b", now=120.0) == 0.0 and usage.recent(None) == 0.0


def test_a_visitor_who_just_computed_a_lot_gives_way_at_once(monkeypatch, caps):
    """A job's turn counts what its session computed lately beyond one turn: after a long job,
    the same visitor's next job gives way at its first step when someone waits; another
    visitor's job, and one after only a little computing, get a whole turn. Only the job's own
    CPU time makes it long (the lane)."""
    caps(turn_s=0.2, long_after_s=10.0)
    usage = jobs.Usage(half_life_s=600.0)
    monkeypatch.setattr(jobs, "USAGE", usage)
    monkeypatch.setattr(jobs, "_watched", _FakeQueue(train=1))

    def busy(n):
        for i in range(n):
            t0 = time.thread_time()
            while time.thread_time() - t0 < 0.1:
                pass
            yield i

    seen = {}

    @jobs.heavy("training")
    def job(name, n, request=None):
        run = jobs.paced(busy(n))
        seen[name] = [(run.computed_s, run.carried_s)]
        for _ in run:
            seen[name].append(jobs.turn_over(jobs.TRAIN_QUEUE, run.turn_s))
        yield name

    greedy, other, light = (SimpleNamespace(session_hash=h) for h in ("g", "o", "l"))
    monkeypatch.setattr(jobs, "_session_of", lambda args, kwargs: kwargs["request"].session_hash)
    list(job("first", 5, request=greedy))  # 0.5 CPU s: 0.3 beyond one turn
    assert seen["first"][0] == (0.0, 0.0) and usage.recent("g") >= 0.49
    assert seen["first"][1] is None and seen["first"][2] is not None  # its own turn, then over
    list(job("again", 2, request=greedy))
    assert seen["again"][0][0] == 0.0 and seen["again"][0][1] >= 0.25
    assert seen["again"][1] is not None  # gives way at its first step
    list(job("student", 2, request=other))
    assert seen["student"][0] == (0.0, 0.0) and seen["student"][1] is None
    list(job("small", 1, request=light))  # 0.1 CPU s: within one turn, nothing carried
    list(job("small again", 1, request=light))
    assert seen["small again"][0] == (0.0, 0.0) and seen["small again"][1] is None


class _FakeHolder:
    """What sessions.drop_idle_sessions uses of Gradio's StateHolder."""

    def __init__(self, last_used):
        self.time_last_used = dict(last_used)
        self.session_data = {s: {} for s in last_used}
        self.lock = threading.Lock()
        self.deleted = []

    def delete_state(self, session):
        self.deleted.append(session)


def test_a_session_waiting_in_the_queue_is_not_idle(monkeypatch):
    import datetime

    old = datetime.datetime.now() - datetime.timedelta(seconds=120)
    holder = _FakeHolder({"waits": old, "gone": old, "fresh": datetime.datetime.now()})
    queue = _FakeQueue()
    queue._queue.event_queue_per_concurrency_id["train"] = SimpleNamespace(
        queue=[SimpleNamespace(session_hash="waits")])
    monkeypatch.setattr(jobs, "_watched", queue)
    assert jobs.queued_sessions() == {"waits"}
    assert sessions.drop_idle_sessions(holder, 60) == 1
    assert holder.deleted == ["gone"]
    assert set(holder.session_data) == {"waits", "fresh"}
    monkeypatch.setattr(jobs, "_watched", None)
    assert jobs.queued_sessions() == set()  # not served: nothing queued


def _cpu_ratio_in_a_new_thread(gen_fn) -> float:
    """Process CPU ÷ the thread's own CPU while a fresh thread runs ``gen_fn()`` to the end."""
    out = {}

    def work():
        p0, t0 = time.process_time(), time.thread_time()
        for _ in gen_fn():
            pass
        out["ratio"] = (time.process_time() - p0) / (time.thread_time() - t0)

    th = threading.Thread(target=work)
    th.start()
    th.join()
    return out["ratio"]


def test_a_heavy_job_computes_on_the_servers_thread_count(monkeypatch):
    # torch.set_num_threads holds for the calling thread only: a fresh worker thread computes
    # on every core unless the job sets it (then its CPU time, which turns count, is half).
    if (os.cpu_count() or 1) < 2 or os.environ.get("OMP_NUM_THREADS"):
        pytest.skip("needs ≥ 2 cores and OpenMP's default thread count")
    a = torch.randn(1200, 1200)

    def matmuls(request=None):
        for _ in range(12):
            yield a @ a

    req = gr.Request(session_hash="threads-test")
    monkeypatch.setattr(jobs, "_threads", None)
    default = _cpu_ratio_in_a_new_thread(lambda: jobs.heavy("testing")(matmuls)(request=req))
    jobs.set_threads(1)
    one = _cpu_ratio_in_a_new_thread(lambda: jobs.heavy("testing")(matmuls)(request=req))
    assert default > 1.4, f"a fresh thread used {default:.2f} cores: OpenMP's default changed?"
    assert one < 1.25, f"the job computed on {one:.2f} threads, not 1"


def test_a_long_step_waits_for_short_jobs_but_not_forever():
    lane = jobs.Lane(short_first_s=0.4)

    def waited() -> float:
        t0 = time.perf_counter()
        with lane.hold(10.0):
            pass
        return time.perf_counter() - t0

    assert waited() < 0.1  # no short job: at once
    lane.short_started()
    assert 0.35 <= waited() < 1.5  # a short job runs all along: the long step goes after 0.4 s
    threading.Timer(0.1, lane.short_ended).start()
    assert 0.05 <= waited() < 0.35  # the short job ends after 0.1 s: the long step goes then
    assert lane.shorts == 0


def test_a_short_job_that_stopped_stepping_no_longer_holds_long_steps_back():
    """A short job dropped without an end (held by a reference cycle, never collected) would
    make every long step wait for ever; once it has not stepped for ``short_stale_s`` it no
    longer counts."""
    lane = jobs.Lane(short_first_s=0.4, short_stale_s=0.3)
    held = []

    def steps():
        yield 0
        yield 1

    run = jobs.paced(steps(), long_after_s=10.0, lane=lane)
    next(run)  # short, between two steps (a cycle holds it: it is never closed)
    held.append(run)
    held.append(held)
    assert lane.shorts == 1
    time.sleep(0.35)
    assert lane.shorts == 0
    t0 = time.perf_counter()
    with lane.hold(10.0):
        pass
    assert time.perf_counter() - t0 < 0.1  # at once, not after short_first_s
    assert next(run) == 1 and lane.shorts == 1  # stepping again: counted again
    run.close()
    assert lane.shorts == 0


def test_paced_counts_as_short_until_long_or_over():
    lane = jobs.Lane(short_first_s=0.0)

    def steps(n):
        for i in range(n):
            end = time.thread_time() + 0.02
            while time.thread_time() < end:
                pass
            yield i

    run = jobs.paced(steps(3), long_after_s=10.0, lane=lane)
    assert lane.shorts == 0  # not started yet
    next(run)
    assert lane.shorts == 1
    assert list(run) == [1, 2] and lane.shorts == 0  # over: no longer counted
    run = jobs.paced(steps(5), long_after_s=0.03, lane=lane)
    next(run), next(run)
    assert lane.shorts == 1
    next(run)  # computed > 0.03 s: long now
    assert lane.shorts == 0
    run = jobs.paced(steps(5), long_after_s=10.0, lane=lane)
    next(run)
    run.close()  # ■ Stop
    assert lane.shorts == 0
