"""Training in a worker process (diffusion_core.workflows.remote) gives the local result, exactly.

The server trains in worker processes because Python's lock slowed in-thread training ~100×
beside busy threads (bench/gil_contention.py). These tests hold the worker path to the local
one: same losses, weights, EMA and generator state; Stop (close) and divergence return the
trained state; a killed worker leaves the model as it was; the worker's CPU time is counted.
"""

from __future__ import annotations

import pickle
import threading
import time
from dataclasses import replace

import pytest
import torch

from diffusion_core.presets import TOY
from diffusion_core.schedule import NoiseSchedule, ScheduleConfig
from diffusion_core.training import TrainingDiverged
from diffusion_core.workflows import toy2d as wf
from diffusion_core.workflows.remote import WorkerLost, WorkerPool, thread_clock, travels

SPEC = wf.DataSpec("moons", 512, 0.05, 0)
TRAIN = replace(TOY.train, batch_size=128, report_every=10)


def session(train=TRAIN) -> wf.Toy2DSession:
    return wf.Toy2DSession.create(SPEC, TOY.schedule, TOY.model, train)


def same_state(a: wf.Toy2DSession, b: wf.Toy2DSession) -> None:
    ta, tb = a.trainer, b.trainer
    assert ta.step == tb.step
    assert a.losses == b.losses
    for x, y in zip(ta.model.state_dict().values(), tb.model.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    for x, y in zip(ta.ema.state_dict().values(), tb.ema.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    assert torch.equal(ta.generator.get_state(), tb.generator.get_state())
    assert torch.equal(ta._bin_eps_sum, tb._bin_eps_sum)


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(1)
    yield p
    p.close()


@pytest.fixture(scope="module")
def shared():
    """One worker that holds two runs at once (each test leaves it idle)."""
    p = WorkerPool(1, runs_per_worker=2)
    yield p
    assert not p.busy_workers()
    p.close()


def test_schedule_pickles_to_an_equal_schedule():
    s = NoiseSchedule(ScheduleConfig(kind="linear", T=50))
    back = pickle.loads(pickle.dumps(s))
    assert back.config == s.config and back.T == 50
    assert torch.equal(back.float64["alphas_cumprod"], s.float64["alphas_cumprod"])
    assert torch.equal(back.posterior_variance, s.posterior_variance)


def test_remote_training_equals_local_training_bit_for_bit(pool):
    local, remote = session(), session()
    reports_local = [p.step for p in local.train(40)]
    reports_remote = [p.step for p in remote.train(40, pool=pool)]
    assert reports_remote == reports_local == [10, 20, 30, 40]
    same_state(local, remote)
    # and it continues the same way (optimiser state and generator came back too)
    list(local.train(20))
    list(remote.train(20, pool=pool))
    same_state(local, remote)


def test_progress_is_mirrored_while_the_run_goes(pool):
    s = session()
    run = s.train(40, pool=pool)
    p = next(run)
    assert s.trainer.step == p.step == 10  # mirrored before the weights come back
    assert s.eps_curve() is not None and s.eps_curve().steps == 10
    run.close()


def test_stop_returns_the_state_trained_so_far(pool):
    local, remote = session(), session()
    run_l, run_r = local.train(40), remote.train(40, pool=pool)
    for _ in range(2):
        next(run_l), next(run_r)
    run_l.close()
    run_r.close()
    assert remote.trainer.step == 20
    same_state(local, remote)
    # the worker is free again: a second run starts at once
    assert [p.step for p in remote.train(10, pool=pool)] == [30]


def test_peek_shows_the_workers_live_weights_without_advancing(pool):
    local, remote = session(), session()
    run_l, run_r = local.trainer.run(40), pool.train(remote.trainer, 40)
    for _ in range(2):
        next(run_l), next(run_r)
    seen = run_r.peek("ema", "step")
    assert seen["step"] == 20 and remote.trainer.step == 20
    for x, y in zip(seen["ema"].state_dict().values(), local.trainer.ema.state_dict().values(),
                    strict=True):
        assert torch.equal(x, y)  # the worker's EMA after 20 steps, not the caller's (step 0)
    assert not torch.equal(next(iter(seen["ema"].state_dict().values())),
                           next(iter(remote.trainer.ema.state_dict().values())))
    assert next(run_r).step == next(run_l).step == 30  # the peek did not advance the run
    with pytest.raises(AttributeError):
        run_r.peek("no_such_thing")
    assert next(run_r).step == next(run_l).step == 40  # a failed peek leaves the run going
    run_l.close()
    run_r.close()
    assert run_r.peek("step") == {"step": 40}  # ended: the caller's own (returned) values
    same_state(local, remote)


def test_divergence_raises_and_keeps_the_last_good_weights(pool):
    local, remote = session(), session()
    for s in (local, remote):  # a far point: a batch that draws it overflows the loss
        s.trainer.data[5] = 1e30
    with pytest.raises(TrainingDiverged, match="loss became"):
        list(local.train(200))
    with pytest.raises(TrainingDiverged, match="loss became"):
        list(remote.train(200, pool=pool))
    assert 0 < remote.trainer.step < 200
    assert all(torch.isfinite(v).all() for v in remote.trainer.model.state_dict().values())
    same_state(local, remote)


def test_the_workers_cpu_time_counts_as_the_callers(pool):
    s = session()
    list(s.train(10, pool=pool))  # the worker is warm
    c0, t0 = thread_clock(), time.thread_time()
    list(s.train(40, pool=pool))
    own = time.thread_time() - t0
    counted = thread_clock() - c0
    assert counted - own > 0.02  # 40 steps of a 2×128 MLP on 128 points: tens of ms of CPU
    assert counted > 2 * own


@pytest.mark.parametrize("which, holds", [("pool", 1), ("shared", 2)])
def test_a_full_pool_makes_the_next_run_wait(request, which, holds):
    p = request.getfixturevalue(which)  # one worker holding one run, or two
    runs = [session().train(20, pool=p) for _ in range(holds)]
    for run in runs:
        next(run)
    waiting = session()
    started = threading.Event()

    def other():
        for _ in waiting.train(10, pool=p):
            started.set()

    th = threading.Thread(target=other)
    th.start()
    time.sleep(0.3)
    assert not started.is_set()  # every run the worker may hold is taken
    runs[0].close()
    th.join(timeout=30)
    assert started.is_set() and waiting.trainer.step == 10
    for run in runs[1:]:
        run.close()


def test_runs_sharing_one_worker_take_turns_and_each_equals_local_training(shared):
    a, b = session(), session(replace(TRAIN, seed=1))
    run_a, run_b = a.train(40, pool=shared), b.train(40, pool=shared)  # (lent at their first next)
    steps = []
    for _ in range(4):  # interleaved, a report each
        steps += [next(run_a).step, next(run_b).step]
        assert len(shared.pids()) == 1 and shared.busy_workers()[0].jobs == 2
    assert steps == [10, 10, 20, 20, 30, 30, 40, 40]
    assert a.trainer.step == b.trainer.step == 40
    run_a.close(), run_b.close()
    la, lb = session(), session(replace(TRAIN, seed=1))
    list(la.train(40)), list(lb.train(40))
    same_state(la, a)
    same_state(lb, b)
    assert not shared.busy_workers()


def test_a_run_goes_to_an_idle_worker_first_then_the_least_loaded():
    p = WorkerPool(2, runs_per_worker=2)
    try:
        sessions_ = [session() for _ in range(4)]
        runs = []
        for s, load in zip(sessions_, ([1], [1, 1], [1, 2]), strict=False):
            runs.append(s.train(20, pool=p))
            next(runs[-1])  # lent: a second worker before sharing one
            assert sorted(w.jobs for w in p.busy_workers()) == load
        runs[0].close()  # its worker holds 0 or 1 runs now, the other 2 or 1: the next run
        runs.append(sessions_[3].train(20, pool=p))  # goes to the one with fewer
        next(runs[-1])
        assert sorted(w.jobs for w in p.busy_workers()) == [1, 2]
        for run in runs[1:]:
            list(run)
        assert [s.trainer.step for s in sessions_] == [10, 20, 20, 20]
        assert len(p.idle_workers()) == 2
    finally:
        p.close()


def test_one_runs_failure_leaves_the_other_runs_in_its_worker_going(shared):
    a = session()
    run_a = a.train(30, pool=shared)
    next(run_a)
    with pytest.raises(RuntimeError, match="may not name builtins.object"):
        shared.iterate(object(), returns=())  # a message the worker may not read
    with pytest.raises(AttributeError, match="no_such_method"):
        shared.iterate(session(), returns=(), method="no_such_method")
    diverging = session()
    diverging.trainer.data[5] = 1e30  # a far point: the loss overflows
    with pytest.raises(TrainingDiverged):
        list(diverging.train(50, pool=shared))
    assert [r.step for r in run_a] == [20, 30]
    assert len(shared.pids()) == 1


def test_a_run_dropped_without_close_frees_its_place(shared):
    """Even when it is collected on a thread that is inside an ask to the same worker (as the
    garbage collector may do): the close waits for that ask instead of deadlocking."""
    s = session()
    holder = [shared.train(s.trainer, 40)]
    next(holder[0])
    (worker,) = shared.busy_workers()

    def drop():
        with worker._lock:  # as if this thread were mid-ask to the same worker
            holder.clear()  # the last reference: collected here, on this thread

    th = threading.Thread(target=drop)
    th.start()
    th.join(timeout=5)
    if th.is_alive():  # deadlocked in its own close: let it go, then fail
        worker._lock.release()
        th.join(timeout=5)
        pytest.fail("a dropped run closed itself on the thread holding its worker's lock")
    deadline = time.monotonic() + 10
    while shared.busy_workers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not shared.busy_workers()


def test_a_run_whose_state_cannot_be_installed_still_frees_its_place(pool, monkeypatch):
    """The worker's place goes back to the pool even when taking its state back fails."""
    from diffusion_core.workflows.remote import RemoteRun

    def boom(self, back):
        raise AttributeError("cannot set that attribute")

    monkeypatch.setattr(RemoteRun, "_install", boom)
    run = pool.train(session().trainer, 5)
    next(run)
    with pytest.raises(AttributeError, match="cannot set"):
        run.close()
    assert not pool.busy_workers() and pool.idle_workers()


def test_a_killed_worker_stops_every_run_it_held_and_keeps_their_models():
    import os
    import signal

    p = WorkerPool(1, runs_per_worker=2)
    try:
        a, b = session(), session()
        list(a.train(10, pool=p))
        before = {k: v.clone() for k, v in a.trainer.model.state_dict().items()}
        run_a, run_b = a.train(40, pool=p), b.train(40, pool=p)
        next(run_a), next(run_b)
        assert (a.trainer.step, b.trainer.step) == (20, 10)  # mirrored while it runs
        (pid,) = p.pids()  # the worker lent to both runs
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        for s, run, step in ((a, run_a, 10), (b, run_b, 0)):
            with pytest.raises(WorkerLost, match="stopped unexpectedly"):
                next(run)
            assert s.trainer.step == step and len(s.losses) == step
        for k, v in a.trainer.model.state_dict().items():
            assert torch.equal(v, before[k])
        assert [r.step for r in a.train(10, pool=p)] == [20]  # a fresh worker goes on
        assert p.pids() != [pid]
        # a dead worker that still holds a run gets no new one: that goes to a fresh worker
        run_a = a.train(10, pool=p)
        next(run_a)
        os.kill(p.pids()[0], signal.SIGKILL)
        time.sleep(0.2)
        assert [r.step for r in b.train(10, pool=p)] == [10]
        with pytest.raises(WorkerLost):
            next(run_a)
    finally:
        p.close()


def test_pool_arguments_are_checked():
    with pytest.raises(ValueError, match="size ≥ 1"):
        WorkerPool(0)
    with pytest.raises(ValueError, match="nice 0…19"):
        WorkerPool(1, nice=-1)
    with pytest.raises(ValueError, match="runs_per_worker ≥ 1"):
        WorkerPool(1, runs_per_worker=0)


def test_workers_run_at_a_lower_cpu_priority_than_the_server():
    import os

    p = WorkerPool(1, nice=7)
    try:
        p.start()
        (pid,) = p.pids()
        p.idle_workers()[0].ask("ping")  # started: its priority is set before it answers
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + 7)
    finally:
        p.close()


def test_sampling_in_a_worker_equals_sampling_here(pool):
    from diffusion_core.sampling.config import SamplerSettings

    s = session()
    list(s.train(30))
    settings = SamplerSettings(sampler="ddim", steps=20, eta=0.0, spacing="trailing")
    local = wf.Toy2DSampling(s, settings, 300, seed=3, max_frames=8, x0_box=True)
    remote = wf.Toy2DSampling(s, settings, 300, seed=3, max_frames=8, x0_box=True)
    steps_local = [st.t for st in local]
    steps_remote = [st.t for st in pool.iterate(remote, returns=wf.Toy2DSampling.STATE)]
    assert steps_remote == steps_local and len(steps_local) == 20
    assert remote.done and torch.equal(remote.x, local.x)
    assert len(remote.frames) == len(local.frames) == 8
    assert all(torch.equal(a, b) for a, b in zip(remote.frames, local.frames, strict=True))
    assert remote.scored is not None  # scored in the worker, at the end of the chain
    a, b = local.result(), remote.result()
    assert a.quality == b.quality and a.copies == b.copies and a.frame_t == b.frame_t
    assert s.last_scores["network"].samples.equal(b.samples)  # the session's copy, not the worker's
    # what travels is the chain and what it reads, not the trainer (optimiser state, …)
    sent = len(pickle.dumps(wf.Toy2DSampling(s, settings, 300, seed=3)))
    assert sent < len(pickle.dumps(s.trainer.optimizer.state_dict())), sent
    assert sent < 0.5 * len(pickle.dumps(s)), (sent, len(pickle.dumps(s)))


def test_a_2d_chain_in_a_worker_sends_only_where_it_is(pool):
    from diffusion_core.sampling.config import SamplerSettings

    s = session()
    list(s.train(30))
    settings = SamplerSettings(sampler="ddpm", steps=40)
    local = wf.Toy2DSampling(s, settings, 500, seed=1, max_frames=6)
    remote = wf.Toy2DSampling(s, settings, 500, seed=1, max_frames=6)
    want = list(local)
    got = list(pool.iterate(remote, returns=wf.Toy2DSampling.STATE, method="steps"))
    assert [(g.index, g.num_steps, g.t, g.t_prev) for g in got] == [
        (w.index, w.num_steps, w.t, w.t_prev) for w in want]
    assert all(isinstance(g, wf.ChainStep) for g in got)
    assert len(pickle.dumps(got[0])) < 300  # a few numbers, not four [500, 2] clouds
    assert torch.equal(remote.x, local.x) and len(remote.frames) == len(local.frames) == 6
    assert remote.result().quality == local.result().quality


def test_a_sampling_run_stopped_in_a_worker_keeps_its_frames_so_far(pool):
    from diffusion_core.sampling.config import SamplerSettings

    s = session()
    run = wf.Toy2DSampling(s, SamplerSettings(sampler="ddpm", steps=s.T), 100, seed=0,
                           max_frames=5)
    remote = pool.iterate(run, returns=wf.Toy2DSampling.STATE)
    for _ in range(60):
        next(remote)
    remote.close()
    assert not run.done and run.last_t == s.T - 60
    with pytest.raises(RuntimeError, match="has not finished"):
        run.result()


def test_an_image_chain_in_a_worker_equals_the_chain_here(pool):
    from pathlib import Path

    import numpy as np

    from diffusion_core.checkpoints import load_checkpoint
    from diffusion_core.sampling.config import SamplerSettings
    from diffusion_core.workflows import image_sampling as ims

    ck = load_checkpoint(Path(__file__).resolve().parents[2] / "assets/models/digits")
    settings = SamplerSettings(sampler="ddim", steps=6, eta=0.0, spacing="trailing",
                               clip_x0=True)
    local = ims.SamplingRun.plan(ck, settings, 4, seed=1)
    remote = ims.SamplingRun.plan(ck, settings, 4, seed=1)
    steps = list(local.chain(ck))
    items = list(pool.iterate(remote, returns=ims.SamplingRun.STATE, method="pictures",
                              args=(ck,)))
    assert len(items) == 6 and items[-1].t_prev == -1
    # what travels: where the chain is, and the frames the view shows (every step of a
    # 6-step chain is among PICTURES), equal to the chain's own steps' frames
    for item, p in zip(items, steps, strict=True):
        assert (item.index, item.t, item.t_prev) == (p.step.index, p.step.t, p.step.t_prev)
        np.testing.assert_array_equal(item.x_t, ims.frame_grid(p.step.x_t, remote.ncols))
        np.testing.assert_array_equal(item.pred_x0,
                                      ims.frame_grid(p.step.pred_x0, remote.ncols))
    assert remote.done and remote.steps_done == 6
    assert torch.equal(remote.final, local.final)
    assert remote.ts == local.ts and len(remote.xt) == len(local.xt) > 1
    assert all(np.array_equal(a, b) for a, b in zip(remote.xt, local.xt, strict=True))


@travels
def _ema_sum(trainer, scale):  # a module-level function: it travels to the worker by name
    return scale * sum(float(p.double().sum()) for p in trainer.ema.parameters())


@travels
def _fails(trainer):
    raise KeyError("no such thing")


def test_call_computes_in_the_worker_on_its_live_trainer_without_advancing(pool):
    local, remote = session(), session()
    run_l, run_r = local.trainer.run(40), pool.train(remote.trainer, 40)
    for _ in range(2):
        next(run_l), next(run_r)
    clock = thread_clock()
    got = run_r.call(_ema_sum, 2.0)
    assert thread_clock() > clock  # the worker's CPU counts as this thread's
    assert got == _ema_sum(local.trainer, 2.0)  # the worker's EMA after 20 steps …
    assert got != _ema_sum(remote.trainer, 2.0)  # … not the caller's (still at step 0)
    assert next(run_r).step == next(run_l).step == 30  # the call did not advance the run
    with pytest.raises(KeyError):
        run_r.call(_fails)
    assert next(run_r).step == next(run_l).step == 40  # a failed call leaves the run going
    run_l.close()
    run_r.close()
    assert run_r.call(_ema_sum, 1.0) == _ema_sum(local.trainer, 1.0)  # ended: here
    same_state(local, remote)


def test_image_training_in_a_worker_equals_training_here_and_peeks_live(pool):
    from diffusion_core.workflows import image_train as iwf

    def image_session():
        data, desc, _ = iwf.load_images("digits8")
        cfg = replace(iwf.train_config("digits8", "quick", steps=30), report_every=10)
        s, _ = iwf.start_or_continue(None, data, desc, "pixel_mlp",
                                     ScheduleConfig(kind="cosine", T=100), cfg)
        return s

    local, remote = image_session(), image_session()
    run_l, run_r = local.train(), remote.train(pool=pool)
    next(run_l), next(run_r)
    a = remote.panel()  # drawn by the worker from its EMA after 10 steps
    b = local.panel()
    assert a.step == b.step == 10
    assert torch.equal(a.samples, b.samples) and torch.equal(a.pred_x0, b.pred_x0)
    remote._remote = None  # (as after the run) the caller's own weights, still at step 0
    own = remote.panel()
    remote._remote = run_r
    assert own.step == 10 and not torch.equal(own.samples, a.samples)
    list(run_l), list(run_r)
    assert remote.step == local.step == 30 and remote.losses == local.losses
    for x, y in zip(remote.model.state_dict().values(), local.model.state_dict().values(),
                    strict=True):
        assert torch.equal(x, y)
    assert torch.equal(remote.panel().samples, local.panel().samples)  # ended: its own weights


def test_a_lost_image_training_worker_keeps_the_model_as_it_was():
    from diffusion_core.workflows import image_train as iwf

    data, desc, _ = iwf.load_images("digits8")
    cfg = replace(iwf.train_config("digits8", "quick", steps=40), report_every=10)
    s, _ = iwf.start_or_continue(None, data, desc, "pixel_mlp",
                                 ScheduleConfig(kind="cosine", T=100), cfg)
    before = [v.clone() for v in s.model.state_dict().values()]
    p = WorkerPool(1)
    try:
        run = s.train(pool=p)
        next(run)
        p.pids() and __import__("os").kill(p.pids()[0], 9)
        with pytest.raises(WorkerLost):
            list(run)
        assert s.step == 0 and s.losses == [] and s.train_seconds == 0.0
        assert all(torch.equal(a, b) for a, b in zip(before, s.model.state_dict().values(),
                                                    strict=True))
    finally:
        p.close()


@travels
def _grow(trainer, mb):  # a module-level function: leaves ``mb`` MB in the worker's heap
    global _ballast
    _ballast = bytearray(mb * 1024 * 1024)
    _ballast[::4096] = b"x" * len(_ballast[::4096])  # touch every page: resident memory
    return len(_ballast)


def test_a_ready_worker_reports_its_fresh_size_and_jobs_leave_it_there():
    """A worker warms every kind of job's kernels before it answers (``warm_kernels``), then
    measures itself: after a 2D training in it, its heap trimmed, it holds about that again."""
    p = WorkerPool(1)
    try:
        p.start()
        (worker,) = p.idle_workers()
        fresh = worker.fresh_mb()  # waits until it is ready
        assert 100 < fresh < 1000 and abs(worker.rss_mb() - fresh) < 20, fresh
        local, remote = session(), session()
        list(local.train(30)), list(remote.train(30, pool=p))
        same_state(local, remote)
        time.sleep(0.5)  # (it trims just after answering the run's end)
        assert worker.rss_mb() - fresh < 40, (worker.rss_mb(), fresh)
        assert worker.fresh_mb() == fresh  # asked once
    finally:
        p.close()


def test_recycle_replaces_an_idle_worker_that_holds_memory_and_only_that():
    p = WorkerPool(1)
    try:
        s = session()
        run = p.train(s.trainer, 40)
        next(run)
        (pid,) = p.pids()
        run.call(_grow, 150)  # what a big job's caches leave behind, in the worker
        assert p.recycle(max_mb=0, idle_s=0) == 0  # lent: never replaced mid-run
        list(run)
        (worker,) = p.idle_workers()
        held, was = worker.rss_mb(), worker.fresh_mb()
        assert held - was > 140, (held, was)  # the 150 MB it holds above its fresh size
        assert p.recycle(max_mb=held - was + 20, idle_s=0) == 0  # below the bar: kept
        assert p.recycle(max_mb=0, idle_s=3600) == 0  # not idle long enough: kept
        assert p.pids() == [pid]
        assert p.recycle(max_mb=held - was - 20, idle_s=0) == 1
        (new_pid,) = p.pids()
        (new,) = p.idle_workers()
        fresh = new.rss_mb()
        assert new_pid != pid and fresh < held - 120, (fresh, held)
        assert abs(new.fresh_mb() - was) < 30, (new.fresh_mb(), was)  # what it was, fresh
        # the fresh worker trains exactly as the old one would have
        local, remote = session(), session()
        list(local.train(30)), list(remote.train(30, pool=p))
        same_state(local, remote)
    finally:
        p.close()


TENSORS = [torch.randn(32, 1, 7, 7), torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last),
           torch.randn(4, 6)[:, ::2], torch.randn(3, 4).t(), torch.tensor(3.0),
           torch.empty(0, 3), torch.randn(5).expand(3, 5), torch.randn(2, 2).bfloat16(),
           torch.ones(3, requires_grad=True), torch.randint(0, 5, (7,)), torch.zeros(2).bool()]


@pytest.mark.parametrize("t", TENSORS, ids=lambda t: f"{t.dtype}-{tuple(t.shape)}-{t.stride()}")
def test_a_tensor_travels_as_raw_bytes_with_its_layout(t):
    from diffusion_core.workflows import remote

    data = remote.dumps(t)
    assert b"_load_from_bytes" not in data and b"torch.serialization" not in data
    u = remote.loads(data)
    assert torch.equal(u, t) and u.dtype == t.dtype and u.requires_grad == t.requires_grad
    dense = t.permute(sorted(range(t.dim()), key=lambda d: -t.stride(d))).is_contiguous()
    if dense:  # the same strides, size-1 dimensions included: the same kernels run on it
        assert u.stride() == t.stride()
    p = torch.nn.Parameter(torch.randn(3, 2))
    q = remote.loads(remote.dumps(p))
    assert type(q) is torch.nn.Parameter and q.requires_grad and torch.equal(p, q)


class _Evil:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _unmarked(trainer):  # a module-level function of ours, not marked travels()
    return trainer


@pytest.mark.parametrize("fn", [eval, print, __import__("os").system, torch.load,
                                __import__("subprocess").Popen, _unmarked])
def test_a_message_naming_anything_else_is_refused(fn):
    from diffusion_core.workflows import remote

    with pytest.raises(pickle.UnpicklingError, match="may not name"):
        remote.loads(pickle.dumps(_Evil(fn, "x")))


def test_only_functions_marked_to_travel_run_in_a_worker(pool):
    def local_only(trainer):  # noqa: ARG001
        return 1

    run = pool.train(session().trainer, 20)
    next(run)
    with pytest.raises(TypeError, match="not marked travels"):
        run.call(local_only)
    with pytest.raises(TypeError, match="not marked travels"):
        run.call(print)
    run.close()
