"""Tab 2 (forward noising): images vs the core's q_sample, fixed ε, uploads, eq. 2 vs eq. 4.

The server-side speed of moving t is measured by ``bench/ui_bench.py``, not here.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import base64  # noqa: E402
import math  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from diffusion_core import forward  # noqa: E402
from diffusion_core.images import to_uint8  # noqa: E402
from diffusion_core.schedule import NoiseSchedule, ScheduleConfig  # noqa: E402
from diffusion_core.workflows import forward_demo  # noqa: E402
from pages import forward as ft  # noqa: E402
from pages.forward import fast  # noqa: E402
from tests.helpers import load_event_for  # noqa: E402

COSINE = ScheduleConfig(kind="cosine", T=1000)


@pytest.fixture(scope="module")
def photo():
    state, _ = ft.load_image("china", None, 0)
    return state


@pytest.fixture(scope="module")
def sched():
    return ft.schedule_state(COSINE)


def expected_xt(state, t, config=COSINE):
    """x_t from the core's closed form with the session's ε."""
    return forward.q_sample(NoiseSchedule(config), state["x0"], t, state["eps"])[0]


def as_hwc(x):
    a = to_uint8(x)
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


# --- images and noise ------------------------------------------------------------------------


@pytest.mark.parametrize("key, shape", [("china", (3, 256, 256)), ("flower", (3, 256, 256)),
                                        ("digit", (1, 64, 64)), ("gradient", (3, 64, 64))])
def test_builtin_images(key, shape):
    state, note = ft.load_image(key, None, 7)
    assert tuple(state["x0"].shape) == (1, *shape) and state["x0"].dtype == torch.float32
    assert state["x0"].min() >= -1 and state["x0"].max() <= 1
    assert state["eps"].shape == state["x0"].shape and state["seed"] == 7
    # ε is reproducible from the seed and looks like N(0, 1).
    again, _ = ft.load_image(key, None, 7)
    assert torch.equal(state["eps"], again["eps"])
    assert abs(float(state["eps"].std()) - 1) < 0.05
    assert f"{shape[2]}×{shape[1]}" in note


def test_unknown_image_and_missing_upload():
    with pytest.raises(gr.Error, match="Unknown image"):
        ft.load_image("moon", None, 0)
    # Choosing "My upload" before any upload points at the button (one note, no warning).
    state, note = ft.load_image("upload", None, 0)
    assert state == gr.skip() and "Upload your own image" in note


def test_noise_stays_fixed_until_redrawn(photo, sched):
    a = ft.show_t(photo, sched, 300)
    b = ft.show_t(photo, sched, 300)
    np.testing.assert_array_equal(a[2], b[2])  # same t, same picture: no flicker
    redrawn = ft.set_noise(photo, 5)
    assert redrawn["seed"] == 5 and torch.equal(redrawn["x0"], photo["x0"])
    assert not torch.equal(redrawn["eps"], photo["eps"])
    c = ft.show_t(redrawn, sched, 300)
    assert not np.array_equal(a[2], c[2])
    assert ft.new_noise(5) == 6 and ft.new_noise(ft.MAX_SEED) == 0 and ft.new_noise(None) == 0
    with pytest.raises(gr.Error, match="seed"):
        ft.set_noise(photo, -1)
    with pytest.raises(gr.Error, match="No image"):
        ft.set_noise(None, 1)


# --- the fast path ---------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0, 250, 999])
def test_show_t_matches_core_closed_form(photo, sched, t):
    signal, noise, x_t_img, fig, md, t_mirror = ft.show_t(photo, sched, t)
    assert t_mirror == t and isinstance(t_mirror, int)
    x_t = expected_xt(photo, t)
    assert x_t_img.dtype == np.uint8 and x_t_img.shape == (256, 256, 3)
    assert np.abs(x_t_img.astype(int) - as_hwc(x_t).astype(int)).max() <= 1
    s = NoiseSchedule(COSINE)
    ab = s.alpha_bar(t)
    exp_sig = as_hwc(math.sqrt(ab) * photo["x0"][0])
    exp_noise = as_hwc(math.sqrt(1 - ab) * photo["eps"][0])
    assert np.abs(signal.astype(int) - exp_sig.astype(int)).max() <= 1
    assert np.abs(noise.astype(int) - exp_noise.astype(int)).max() <= 1
    # Numbers: ᾱ, SNR in dB, PSNR with peak-to-peak 2.
    snr = ab / (1 - ab)
    mse = float(((x_t - photo["x0"][0]) ** 2).mean())
    assert f"{ab:.4g}" in md and f"{10 * math.log10(snr):+.1f} dB" in md
    assert f"{10 * math.log10(4 / mse):.1f} dB" in md
    assert f"t = {t} (of 0…999)" in md
    # Histogram: a density (integrates to the share of pixels inside [−4, 4]) and N(0, 1).
    bars, curve = fig.data
    width = 2 * ft.HIST_RANGE / ft.HIST_BINS
    inside = float(((x_t >= -4) & (x_t <= 4)).float().mean())
    assert float(np.sum(bars.y) * width) == pytest.approx(inside, abs=1e-6)
    assert float(np.max(curve.y)) == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-6)
    assert fig.layout.xaxis.title.text == "pixel value of x_t"


def test_histogram_approaches_standard_normal_at_the_end(photo, sched):
    fig = ft.show_t(photo, sched, 999)[3]
    bars, _ = fig.data
    centers, density = np.asarray(bars.x), np.asarray(bars.y)
    pdf = np.exp(-0.5 * centers**2) / math.sqrt(2 * math.pi)
    assert np.abs(density - pdf).max() < 0.03  # x_{T−1} ≈ N(0, 1) for the cosine schedule
    fig0 = ft.show_t(photo, sched, 0)[3]
    assert np.abs(np.asarray(fig0.data[0].y) - pdf).max() > 0.1  # x_0 is not


def test_small_images_enlarged_nearest_neighbour(sched):
    state, _ = ft.load_image("digit", None, 1)
    x0_img = ft.refresh_view(state, sched, 10)[0]
    assert x0_img.shape == (256, 256)  # greyscale, 64 → 256 (×4)
    block = x0_img[:4, :4]
    assert (block == block[0, 0]).all()  # nearest neighbour: crisp 4×4 blocks
    np.testing.assert_array_equal(x0_img[::4, ::4], as_hwc(state["x0"][0]))


@pytest.mark.parametrize("t", [-1, 1000, 2.5, "x"])
def test_bad_t_raises(photo, sched, t):
    with pytest.raises(gr.Error, match="t must"):
        ft.show_t(photo, sched, t)


def test_show_t_across_the_whole_range(photo, sched):
    # What the slider sends while dragging (its speed: bench/ui_bench.py).
    for t in range(0, 1000, 50):
        assert ft.show_t(photo, sched, t)[5] == t


# --- strip and full refresh ------------------------------------------------------------------


def test_strip_frames_same_eps(photo, sched):
    strip, ts = ft.strip_frames(photo, sched)
    assert ts == [0, 143, 285, 428, 571, 714, 856, 999]
    # 8 frames of 128×128 (256 subsampled by 2) with 2-pixel padding.
    assert strip.shape == (128 + 4, 8 * (128 + 4), 3)
    first = strip[2:130, 2:130]
    exp = as_hwc(expected_xt(photo, 0)[:, ::2, ::2])
    assert np.abs(first.astype(int) - exp.astype(int)).max() <= 1
    last = strip[2:130, 7 * 132 + 2: 7 * 132 + 130]
    exp_last = as_hwc(expected_xt(photo, 999)[:, ::2, ::2])
    assert np.abs(last.astype(int) - exp_last.astype(int)).max() <= 1


def test_refresh_view_outputs(photo, sched):
    out = ft.refresh_view(photo, sched, 5000)  # t beyond T−1 is clamped, not an error
    assert len(out) == 7
    assert "t = 999" in out[5]
    assert out[6]["label"].startswith("xₜ at t = 0, 143") and out[6]["value"].ndim == 3


# --- the browser's fast path: what it is sent (its drawing: test_forward_fast_browser.py) ---


def _ints(b64, step, shape):
    q = np.frombuffer(base64.b64decode(b64), dtype="<i2")
    return (q.astype(np.float32) * np.float32(step)).reshape(shape)


def _floats(b64):
    return np.frombuffer(base64.b64decode(b64), dtype="<f4")


@pytest.mark.parametrize("key, t", [("china", 600), ("digit", 120)])
def test_fast_payloads_give_the_browser_the_servers_pixels(sched, key, t):
    state, _ = ft.load_image(key, None, 3)
    img = fast.image_payload(state)
    shape = list(state["x0"].shape[1:])
    assert img["shape"] == shape
    x0 = _ints(img["x0"], img["x0_step"], shape)
    eps = _ints(img["eps"], img["eps_step"], shape)
    assert np.abs(x0 - state["x0"][0].numpy()).max() <= fast.X0_STEP / 2
    assert np.abs(eps - state["eps"][0].numpy()).max() <= fast.EPS_STEP / 2
    col = fast.schedule_payload(sched)
    schedule = NoiseSchedule(COSINE)
    assert col["T"] == 1000
    assert np.array_equal(_floats(col["signal"]), schedule.sqrt_alphas_cumprod.numpy())
    assert np.array_equal(_floats(col["noise"]), schedule.sqrt_one_minus_alphas_cumprod.numpy())
    # the browser's arithmetic (float32 products and sum, DDPM eq. 4) on what it was sent
    a, b = _floats(col["signal"])[t], _floats(col["noise"])[t]
    x_t = a * x0 + b * eps
    got = ft.views.to_image(torch.from_numpy(x_t)).astype(int)
    want = ft.show_t(state, sched, t)[2].astype(int)
    assert got.shape == want.shape  # (the digit enlarged ×4 to 256 × 256)
    diff = np.abs(got - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.005
    h = forward_demo.histogram(torch.from_numpy(x_t), bins=ft.HIST_BINS,
                               value_range=ft.HIST_RANGE)
    h_server = forward_demo.histogram(expected_xt(state, t), bins=ft.HIST_BINS,
                                      value_range=ft.HIST_RANGE)
    assert np.abs(h.counts - h_server.counts).sum() <= 0.001 * x_t.size


def test_fast_payloads_none_without_data_and_small():
    assert fast.image_payload(None) is None and fast.image_payload({"x0": 1}) is None
    assert fast.schedule_payload(None) is None
    assert fast.schedule_payload({"config": {"kind": "nope", "T": 10}}) is None
    state, _ = ft.load_image("china", None, 0)
    p = fast.image_payload(state)
    assert len(p["x0"]) + len(p["eps"]) <= 1.05 * 2**20  # 256²·3 values, 2 bytes, base64
    js = fast.js()
    assert "__" + "HIST_BINS__" not in js and f"BINS = {ft.HIST_BINS}," in js


# --- schedule --------------------------------------------------------------------------------


def test_resolve_schedule_shared_and_override():
    shared = ScheduleConfig(kind="linear", T=500, beta_end=0.03).to_dict()
    current = ft.schedule_state(COSINE)
    state, t_upd, kind_upd, T_upd, t_mirror = ft.resolve_schedule(True, "cosine", 1000, shared,
                                                                   current, 800)
    assert state["config"] == shared
    np.testing.assert_allclose(
        state["alphas_cumprod"],
        NoiseSchedule(ScheduleConfig.from_dict(shared)).float64["alphas_cumprod"].numpy())
    # New T: the slider gets 0..T−1 and t (from the server-side mirror) is clamped into it.
    assert t_upd["maximum"] == 499 and t_upd["value"] == 499 and t_mirror == 499
    assert kind_upd["value"] == "linear" and kind_upd["interactive"] is False
    assert T_upd["value"] == 500
    # Override kind and T here; β_start/β_end etc. still come from tab 1.
    state2, t2, kind2, _, m2 = ft.resolve_schedule(False, "sigmoid", 200, shared, state, 120)
    assert state2["config"]["kind"] == "sigmoid" and state2["config"]["T"] == 200
    assert state2["config"]["beta_end"] == 0.03
    assert t2["maximum"] == 199 and t2["value"] == 120 and m2 == 120  # t kept when it fits
    assert kind2["interactive"] is True
    # Same T, other kind: new state, the slider (range and position) is left alone.
    state3, t3, _, _, m3 = ft.resolve_schedule(False, "linear", 200, shared, state2, 120)
    assert state3["config"]["kind"] == "linear" and t3 == gr.skip() and m3 == gr.skip()
    # Same schedule again: nothing to redraw.
    same = ft.resolve_schedule(False, "linear", 200, shared, state3, 120)
    assert same[0] == gr.skip() and same[1] == gr.skip()


def test_resolve_schedule_bad_input():
    shared = ScheduleConfig(kind="linear", T=1000, scale_to_T=True).to_dict()
    with pytest.raises(gr.Error, match="T"):
        ft.resolve_schedule(False, "linear", 99999, shared)
    with pytest.raises(gr.Error, match="scaling"):
        ft.resolve_schedule(False, "linear", 10, shared)  # β_end·1000/10 ≥ 1
    with pytest.raises(gr.Error, match="Unknown schedule"):
        ft.resolve_schedule(False, "banana", 100, shared)
    with pytest.raises(gr.Error, match="tab 1"):
        ft.resolve_schedule(True, "linear", 100, {"kind": "linear", "oops": 1})


def test_other_schedule_changes_the_frame(photo):
    s = ft.schedule_state(ScheduleConfig(kind="linear", T=50))
    img = ft.show_t(photo, s, 49)[2]
    exp = as_hwc(expected_xt(photo, 49, ScheduleConfig(kind="linear", T=50)))
    assert np.abs(img.astype(int) - exp.astype(int)).max() <= 1


# --- uploads ---------------------------------------------------------------------------------


def test_upload_rgba_png(tmp_path):
    a = np.zeros((40, 30, 4), np.uint8)
    a[..., 0] = 255
    a[:20, :, 3] = 255  # top half opaque red, bottom transparent → white
    p = tmp_path / "rgba.png"
    Image.fromarray(a, "RGBA").save(p)
    choice, state, note = ft.load_upload(str(p), 3)
    assert choice == "upload" and tuple(state["x0"].shape) == (1, 3, 40, 30)
    assert torch.allclose(state["x0"][0, :, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    assert torch.allclose(state["x0"][0, :, -1, 0], torch.ones(3))
    assert "transparent" in note


def test_upload_16bit_grey_and_large_jpeg(tmp_path):
    g = (np.linspace(0, 65535, 50 * 60).reshape(50, 60)).astype(np.uint16)
    p16 = tmp_path / "g16.png"
    Image.fromarray(g).save(p16)
    _, state, note = ft.load_upload(str(p16), 0)
    assert state["x0"].shape == (1, 3, 50, 60)  # greyscale read as RGB (three equal channels)
    assert float(state["x0"].min()) == pytest.approx(-1, abs=1e-4)
    assert float(state["x0"].max()) == pytest.approx(1, abs=1e-4)
    assert "16-bit" in note
    big = tmp_path / "big.jpg"
    Image.fromarray(np.full((600, 1000, 3), 128, np.uint8)).save(big)
    _, state, note = ft.load_upload(str(big), 0)
    assert tuple(state["x0"].shape) == (1, 3, 154, 256)  # longest side ≤ 256, aspect kept
    assert "downscaled from 1000×600" in note


def test_upload_refuses_non_images(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("not an image")
    with pytest.raises(gr.Error, match="“notes.txt” cannot be used as an image") as err:
        ft.load_upload(str(p), 0)
    assert str(tmp_path) not in str(err.value)  # no server paths in the message
    with pytest.raises(gr.Error, match="gone"):
        ft.load_upload(str(tmp_path / "missing.png"), 0)
    with pytest.raises(gr.Error, match="No file"):
        ft.load_upload(None, 0)


# --- eq. 2 vs eq. 4 --------------------------------------------------------------------------


def test_compare_off_hides_panel(photo, sched):
    out = list(ft.compare_methods(photo, sched, 10, False))
    assert len(out) == 1 and out[0][0]["visible"] is False


def test_compare_agrees_in_distribution_not_pixels():
    state, _ = ft.load_image("gradient", None, 2)  # 3×64×64: quick and big enough for stats
    s = ft.schedule_state(ScheduleConfig(kind="linear", T=200))
    outs = list(ft.compare_methods(state, s, 120, True))
    assert "⏳" in outs[0][3] and outs[0][0]["visible"] is True
    _, iter_img, closed_img, md = outs[-1]
    exp_closed = as_hwc(expected_xt(state, 120, ScheduleConfig(kind="linear", T=200)))
    assert closed_img.shape == (256, 256, 3)  # 64 px enlarged ×4 for display
    assert np.abs(closed_img[::4, ::4].astype(int) - exp_closed.astype(int)).max() <= 1
    assert not np.array_equal(iter_img, closed_img)  # different noise paths
    assert "121 steps" in md
    # The statistics themselves, on the same kind of draw.
    sch = NoiseSchedule(ScheduleConfig(kind="linear", T=200))
    x0 = state["x0"]
    x_iter = forward.q_sample_iterative(sch, x0, 120, generator=torch.Generator().manual_seed(1))
    st = forward_demo.compare_stats(x_iter[0], expected_xt(state, 120, sch.config), x0[0],
                                    sch.alpha_bar(120))
    target = math.sqrt(1 - sch.alpha_bar(120))
    assert st.theory.resid_std == pytest.approx(target)
    for name in ("iterative", "closed"):
        assert getattr(st, name).resid_std == pytest.approx(target, rel=0.03)
        assert abs(getattr(st, name).resid_mean) < 0.03
        assert getattr(st, name).mean == pytest.approx(st.theory.mean, abs=0.03)
    assert abs(st.noise_correlation) < 0.05  # independent draws
    assert st.rms_difference == pytest.approx(math.sqrt(2) * target, rel=0.05)


# --- the UI ----------------------------------------------------------------------------------


def _build_tab(shared_cfg=COSINE):
    with gr.Blocks() as demo:
        shared = gr.State(shared_cfg.to_dict())
        with gr.Tab("forward"):
            ft.render(shared)
    return demo, shared


def test_render_builds_with_initial_view_and_events():
    demo, shared = _build_tab(ScheduleConfig(kind="linear", T=400))
    deps = {fn.api_name: fn for fn in demo.fns.values()}
    assert {"forward_image", "forward_upload", "forward_seed", "forward_new_noise",
            "forward_schedule", "forward_view", "forward_frame", "forward_compare",
            "forward_compare_release"} <= set(deps)
    # Follow-up events read t from the server-side mirror, not the (possibly stale) slider.
    slider = next(b for b in demo.blocks.values() if isinstance(b, gr.Slider))
    assert slider not in deps["forward_view"].inputs
    assert slider not in deps["forward_compare"].inputs
    assert slider in deps["forward_compare_release"].inputs
    assert deps["forward_frame"].concurrency_limit == 8
    assert deps["forward_compare"].concurrency_limit == 2
    assert len({d.concurrency_id for d in deps.values()}) >= 4
    images = [b for b in demo.blocks.values() if isinstance(b, gr.Image)]
    assert all(im.format == "png" for im in images)  # lossless: noise must not be smeared
    assert all(im.value is None for im in images)  # nothing computed while building …
    assert slider.maximum == 399  # from the shared schedule (T = 400)
    # … the page load fills the image and schedule states; their change events draw the view.
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    first = load_event_for(demo, states[1])
    image_state, sched_state, note = first.fn()
    assert first.outputs[:2] == states[1:3]
    assert image_state["x0"].shape == (1, 3, 256, 256) and "China" in note
    assert sched_state["config"]["kind"] == "linear" and len(sched_state["alphas_cumprod"]) == 400
    view = ft.refresh_view(image_state, sched_state, 100)
    assert all(v is not None for v in view)
    triggers = {ev for dep in (deps["forward_view"],) for _, ev in dep.targets}
    assert triggers == {"change"}


def test_fast_path_wired_privately():
    demo, _ = _build_tab()
    fns = list(demo.fns.values())
    sends = [f for f in fns if f.fn in (fast.image_payload, fast.schedule_payload)]
    stores = [f for f in fns if f.fn is None and f.js in (fast.STORE_JS % "img",
                                                          fast.STORE_JS % "sched")]
    install = [f for f in fns if f.js == fast.js()]
    assert len(sends) == 2 and len(stores) == 2 and len(install) == 1
    assert all(f.api_visibility == "private" for f in sends + stores + install)
    assert [ev for f in sends for _, ev in f.targets] == ["change", "change"]
    assert [ev for _, ev in install[0].targets] == ["load"]


def test_whole_app_builds():
    import app

    demo = app.build_demo()
    assert "forward_frame" in {fn.api_name for fn in demo.fns.values()}


def test_through_gradio_client():
    from gradio_client import Client

    from tests.helpers import serving

    demo, _ = _build_tab()
    with serving(demo) as url:
        client = Client(url, download_files=False, verbose=False)
        # A browser fills the image and schedule states on page load; a client sets them itself.
        with pytest.raises(Exception, match="No image loaded yet"):
            client.predict(600, api_name="/forward_frame")
        client.predict("china", None, 0, api_name="/forward_image")
        client.predict(True, "cosine", 1000, api_name="/forward_schedule")
        sig, noise, xt, plot, md = client.predict(600, api_name="/forward_frame")  # t_state hidden
        assert str(xt["path"]).endswith(".png") and plot["type"] == "plotly"
        assert "t = 600" in md
        with pytest.raises(Exception, match=r"t \(0 … T−1\) must be a whole number \(got 2.5\)"):
            client.predict(2.5, api_name="/forward_frame")
        note = client.predict("digit", None, 0, api_name="/forward_image")  # state is hidden
        assert "64×64, greyscale" in note
