"""Tab 4's "why" sections (pages/sampler/why.py): the ideal denoiser beside the network and
the likelihood bound, driven through their handlers.

The computing is ``diffusion_core.workflows.image_why`` (tests/core/workflows/
test_image_why.py); these check that what the tab shows is what the core computed, that it
says why a model has no view, and that bad input gets a message.
"""

from __future__ import annotations

import base64
import io
import math
import os
import re

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from diffusion_core.checkpoints import save_checkpoint  # noqa: E402
from diffusion_core.evaluation.vlb import vlb_terms  # noqa: E402
from diffusion_core.images import to_uint8  # noqa: E402
from diffusion_core.models import UNetConfig, build_model  # noqa: E402
from diffusion_core.oracles import IdealDenoiser  # noqa: E402
from diffusion_core.schedule import ScheduleConfig  # noqa: E402
from diffusion_core.workflows import image_why  # noqa: E402
from pages import limits  # noqa: E402
from pages.sampler import models as shelf  # noqa: E402
from pages.sampler import why  # noqa: E402

TINY = UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2), groups=4, attn_heads=1,
                  attn_dim_head=8, use_linear_attention=False, use_mid_attention=False)
T = 20
DIGITS8 = {"name": "digits8", "kind": "image", "n": 1347, "shape": [1, 8, 8]}
VIEW_OUT = ("tiles", "curves", "numbers")
MODEL_OUT = ("note", "t", "index", "tiles", "curves", "numbers", "button", "status", "result",
             "plot")
BOUND_OUT = ("status", "result", "plot")


@pytest.fixture()
def models_dir(tmp_path, monkeypatch):
    """'digits' (tiny U-Net, T = 20, recorded as trained on digits8) and 'other' (trained on
    data the app does not have); the tab looks only there."""
    torch.manual_seed(0)
    schedule = ScheduleConfig(kind="cosine", T=T)
    save_checkpoint(tmp_path / "digits", build_model(TINY), TINY, schedule, dataset=DIGITS8,
                    training={"final_loss": 0.5})
    save_checkpoint(tmp_path / "other", build_model(TINY), TINY, schedule,
                    dataset={"name": "folder", "kind": "image", "n": 30})
    monkeypatch.setattr(shelf, "ASSETS_MODELS", tmp_path)
    with why._bound_lock:
        why._bound_cache.clear()
    return tmp_path


def _view(**kw):
    args = dict(key="digits", source="held_out", index=3, t=12, seed=0) | kw
    return dict(zip(VIEW_OUT, why.why_view(*args.values()), strict=True))


def _images(tiles_html: str) -> list[np.ndarray]:
    """The pictures of the tiles' data URIs, in page order (uint8 [H, W] grey)."""
    out = []
    for b64 in re.findall(r'src="data:image/png;base64,([^"]+)"', tiles_html):
        out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(b64)))))
    return out


def _record(source="held_out", index=3, t=12, seed=0):
    ck = shelf.load_model("digits")
    return ck, image_why.IdealView(ck, image_why.training_data(ck)).at(source, index, t, seed)


# --- the ideal denoiser beside the network ------------------------------------------------------


def test_shown_ideal_x0_is_the_ideal_denoisers(models_dir):
    out = _view()
    ck, r = _record()
    pics = _images(out["tiles"])
    assert len(pics) == 4 + why.TOP_K
    # x0, x_t, U-Net x̂0, ideal x̂0 — each exactly the record's picture
    for pic, x in zip(pics[:4], (r.x0, r.x_t, r.net_x0, r.ideal_x0), strict=True):
        np.testing.assert_array_equal(pic, to_uint8(x)[0])
    # … and the ideal x̂0 is IdealDenoiser.pred_x0 of the training digits on that x_t
    data = image_why.training_data(ck)
    ideal = IdealDenoiser(data.train.images, ck.schedule).pred_x0(r.x_t[None], 12)[0]
    np.testing.assert_array_equal(pics[3], to_uint8(ideal)[0])
    # the top-k tiles are the training digits with the largest weights, weights as captioned
    for pic, i in zip(pics[4:], r.top_index, strict=True):
        np.testing.assert_array_equal(pic, to_uint8(data.train.images[i])[0])
    weights = [float(w) for w in re.findall(r"w = ([0-9.]+)<br>", out["tiles"])]
    assert weights == [round(w, 3) for w in r.top_weight]
    assert sum(r.top_weight) <= 1 + 1e-6
    share = float(re.search(r"together <b>([0-9.]+) %</b>", out["tiles"]).group(1))
    assert share == pytest.approx(100 * r.share, abs=0.005)
    assert f"≈ **{r.effective_n:.1f}** training digits" in out["numbers"]
    assert f"t = 12 of 0…{T - 1}" in out["numbers"]


def test_curves_mark_t_and_are_cached(models_dir):
    fig = _view(t=7)["curves"]
    names = [tr.name for tr in fig.data]
    assert names == ["1/Σwᵢ² (ideal)", "U-Net's x̂₀", "ideal x̂₀", "U-Net vs ideal"]
    assert [s.x0 for s in fig.layout.shapes] == [7, 7]
    assert list(fig.data[0].x) == list(range(T))  # T = 20 < 60 points: every t
    ck = shelf.load_model("digits")
    files = why._files_key(ck)
    assert why._curves(files, "held_out", 3, 0) is why._curves(files, "held_out", 3, 0)
    fig2 = _view(t=15)["curves"]
    assert [s.x0 for s in fig2.layout.shapes] == [15, 15]
    assert list(fig2.data[1].y) == list(fig.data[1].y)  # same image and ε: same curves


def test_t0_snaps_to_the_nearest_training_digit(models_dir):
    out = _view(t=0, index=10)
    _, r = _record(index=10, t=0)
    assert r.top_weight[0] > 0.999
    assert "**Memorising**" in out["numbers"] and f"#{r.top_index[0]}" in out["numbers"]
    out = _view(t=0, source="train", index=25)
    assert "the training digit itself (#25)" in out["numbers"]


def test_model_change_sets_ranges_and_draws(models_dir):
    out = dict(zip(MODEL_OUT, why.why_model("digits", "held_out", 3, 300, 0), strict=True))
    assert "1,347" in out["note"] and "test split" in out["note"]
    assert out["t"]["maximum"] == T - 1 and out["t"]["value"] == T - 1  # clamped to the model
    assert "held-out 0…449" in out["index"]["label"]
    assert out["tiles"] and out["curves"] is not None and out["button"]["interactive"]
    assert out["status"] == why.BOUND_IDLE and out["plot"] is None
    out = dict(zip(MODEL_OUT, why.why_model("digits", "held_out", 999, 5, 0), strict=True))
    assert out["index"]["value"] == 0 and out["tiles"]  # an image number beyond 449: back to 0


@pytest.mark.parametrize("key, words", [("other", "'folder'"),
                                        (shelf.DEMO_KEY, "untrained demo")])
def test_says_why_it_is_missing(models_dir, key, words):
    out = dict(zip(MODEL_OUT, why.why_model(key, "held_out", 0, 300, 0), strict=True))
    assert "Not shown for this model" in out["note"] and words in out["note"]
    assert out["tiles"] == "" and out["curves"] is None
    assert out["button"]["interactive"] is False
    with pytest.raises(gr.Error, match="Not available for this model"):
        why.why_view(key, "held_out", 0, 5, 0)
    with pytest.raises(gr.Error, match=words):
        list(why.run_bound(key, "beta_tilde", 0, True))


@pytest.mark.parametrize("kw, words", [
    (dict(source="test"), "held_out or train"),
    (dict(source=None), "held_out or train"),
    (dict(index=450), "from 0 to 449"),
    (dict(index=-1), "from 0 to 449"),
    (dict(index=1.5), "whole number"),
    (dict(index="abc"), "from 0 to 449"),
    (dict(t=T), f"from 0 to {T - 1}"),
    (dict(t=float("nan")), f"from 0 to {T - 1}"),
    (dict(t=True), f"from 0 to {T - 1}"),
    (dict(seed=-5), "Seed"),
    (dict(seed=[1]), "Seed"),
    (dict(key="../../etc"), "Unknown model"),
])
def test_bad_view_input_is_refused_with_text(models_dir, kw, words):
    with pytest.raises(gr.Error, match=re.escape(words)):
        _view(**kw)


def test_empty_boxes_mean_defaults(models_dir):
    out = _view(index=None, seed="")
    assert "held-out digit #0" in out["tiles"]


# --- the likelihood bound -----------------------------------------------------------------------


def _bound(key="digits", variance="beta_tilde", seed=0, with_train=True):
    outs = list(why.run_bound(key, variance, seed, with_train))
    return outs, dict(zip(BOUND_OUT, outs[-1], strict=True))


def test_bound_shows_vlb_terms_numbers(models_dir):
    outs, last = _bound(seed=2)
    assert last["status"].startswith("✓ Done")
    ck = shelf.load_model("digits")
    data = image_why.training_data(ck)
    shown = {}
    for src in ("held_out", "train"):  # recompute: vlb_terms batch by batch, combined
        x0 = image_why.bound_images(data, src)
        per = image_why.images_per_call(64)
        parts = [vlb_terms(ck.model, ck.schedule, x0[s:s + per], decoder="discrete",
                           timesteps=8, generator=image_why.batch_generator(2, src, b))
                 for b, s in enumerate(range(0, len(x0), per))]
        shown[src] = image_why.summarise(image_why.combine(parts), ck.schedule)
    held, train = shown["held_out"], shown["train"]
    assert held.n == 450 and train.n == 450
    table = last["result"]
    row = f"| bound, bits/dim ± s.e. | **{held.bits_per_dim:.3f} ± {held.stderr_bits:.3f}** | " \
          f"**{train.bits_per_dim:.3f} ± {train.stderr_bits:.3f}** |"
    assert row in table
    assert f"| L₀ decoder (t = 0) | {held.decoder_bits:.3f} | {train.decoder_bits:.3f} |" in table
    assert f"| Σ Lₜ, t = 1…{T - 1} | {held.steps_bits:.3f} | {train.steps_bits:.3f} |" in table
    gap = held.bits_per_dim - train.bits_per_dim
    assert f"Held-out − training = {gap:+.3f}" in table
    assert "Unbiased estimate" in table and "0.5000" in table  # the recorded training loss
    fig = last["plot"]
    bars = {tr.name: list(tr.y) for tr in fig.data if tr.type == "bar"}
    assert bars["L₀ decoder"] == [round(held.decoder_bits, 5), round(train.decoder_bits, 5)]
    total = next(tr for tr in fig.data if tr.name == "total ± s.e.")
    assert list(total.y) == [held.bits_per_dim, train.bits_per_dim]
    assert list(total.error_y.array) == [held.stderr_bits, train.stderr_bits]
    lines = [tr for tr in fig.data if tr.name == "held-out"]
    assert list(lines[0].y) == [max(st.per_step_bits, 1e-12) for st in held.strata]
    assert list(lines[1].y) == [st.eps_mse for st in held.strata]


def test_bound_is_cached_per_model_files_and_settings(models_dir):
    _, first = _bound(with_train=False)
    ck = shelf.load_model("digits")
    key = (why._files_key(ck), image_why.BoundSettings(with_train=False))
    cached = why.cached_bound(key)
    assert cached is not None and cached.done
    assert why.cached_bound(key) is cached  # the same object every time
    outs, again = _bound(with_train=False)
    assert len(outs) == 1 and "cache" in again["status"] and again["result"] == first["result"]
    assert why.store_bound(key, cached) is cached
    assert why.cached_bound((why._files_key(ck), image_why.BoundSettings(seed=1))) is None
    # another seed is another estimate (not served from the cache)
    _, other = _bound(with_train=False, seed=1)
    assert other["status"].startswith("✓ Done") and other["result"] != first["result"]


def test_stopped_bound_keeps_the_estimate_so_far(models_dir):
    gen = why.run_bound("digits", "beta_tilde", 0, True)
    first = next(gen)
    assert first[0].startswith("⏳")
    gen.close()  # ■ Stop
    ck = shelf.load_model("digits")
    assert why.cached_bound((why._files_key(ck), image_why.BoundSettings())) is None
    assert why.bound_finished("⏳ Computing on held-out images: 32 / 450").startswith("■ Stopped")
    assert isinstance(why.bound_finished("✓ Done in 1 s."), type(gr.skip()))


def test_bound_stops_at_the_time_budget(models_dir, monkeypatch):
    monkeypatch.setattr(limits, "ACTIVE", limits.Limits(sample_seconds=1e-6))
    _, last = _bound()
    assert last["status"].startswith("■ Stopped at the 1e-06 s limit")
    assert "32 of 450" in last["result"]  # the first batch's estimate is shown
    assert "bound, bits/dim" in last["result"] and last["plot"] is not None


@pytest.mark.parametrize("args, words", [
    (("digits", "sigma", 0, True), "beta_tilde"),
    (("digits", None, 0, True), "beta_tilde"),
    (("digits", "beta", -1, True), "Seed"),
    (("digits", "beta", "x", True), "Seed"),
    (("digits", "beta", 0, "yes"), "true or false"),
    (("nope", "beta", 0, True), "Unknown model"),
])
def test_bad_bound_input_is_refused_with_text(models_dir, args, words):
    with pytest.raises(gr.Error, match=words):
        list(why.run_bound(*args))


def test_bound_with_beta_variance_is_another_bound(models_dir):
    """σ² = β pays a variance mismatch but forgives mean errors more: a different number
    (which one is smaller depends on the model's errors), labelled as such."""
    _, a = _bound(variance="beta_tilde", with_train=False)
    _, b = _bound(variance="beta", with_train=False)
    bits = [float(re.search(r"\*\*([0-9.]+) ±", x["result"]).group(1)) for x in (a, b)]
    assert bits[0] != bits[1]
    assert "σₜ² = βₜ" in b["result"] and "σₜ² = β̃ₜ" in a["result"]


# --- the Blocks ---------------------------------------------------------------------------------


def test_render_wires_public_and_private_endpoints(models_dir):
    from pages import sampler

    with gr.Blocks() as demo:
        sampler.render(gr.State(None))
    named = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    assert "sampler_why" in named and "sampler_bound" in named
    for name in ("sampler_why", "sampler_bound"):
        assert named[name].api_visibility == "public"
    for name in ("sampler_why_model", "sampler_why_open", "sampler_bound_finished",
                 "sampler_bound_stop"):
        assert named[name].api_visibility == "private"
    bound = named["sampler_bound"]
    assert bound.concurrency_id == "sample" and bound.concurrency_limit == \
        limits.ACTIVE.sample_slots
    assert math.isfinite(len(why._explanation(0))) and "<!-- bound -->" not in why._explanation(1)
