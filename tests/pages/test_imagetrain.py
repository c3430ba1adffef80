"""Tab 5 (train images, ``pages/imagetrain``): handlers called directly — a panel before the
first step, ■ Stop keeps the model, bad input gets a message — and the trained or uploaded
model in tab 4's list for its own session only (also through a served app). The workflow
underneath is tested in ``tests/core/test_image_train.py``."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import base64  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import re  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from gradio.context import LocalContext  # noqa: E402

from diffusion_core.workflows import image_train as wf  # noqa: E402
from pages import imagetrain as tab  # noqa: E402
from pages import sampler, sessions  # noqa: E402
from pages.imagetrain import handlers, inputs  # noqa: E402
from pages.sampler import models, why  # noqa: E402
from tests.helpers import serving  # noqa: E402

# state, dataset, files, size, channels, model, recipe, schedule kind, T, steps
BASE = dict(dataset="digits8", files=None, size=16, channels=1, model_kind="pixel_mlp",
            recipe="quick", kind="cosine", T=200, steps=150)


def request(session: str):
    """What Gradio passes as ``gr.Request``: only ``session_hash`` is read."""
    return gr.Request(SimpleNamespace(headers={}, query_params={}, cookies={}, client=None,
                                      url="", session={}, state=None, path_params={}),
                      session_hash=session)


@contextlib.contextmanager
def serving_session(session: str):
    """Run the ``with`` block as Gradio runs an event of ``session`` (its request in
    ``LocalContext``), so tab 4's light handlers see that session."""
    token = LocalContext.request.set(request(session))
    try:
        yield
    finally:
        LocalContext.request.reset(token)


def run_train(state=None, session="alice", **overrides):
    return list(tab.train(state, **{**BASE, **overrides}, request=request(session)))


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    """Alice's pixel MLP after one ▶ Train (150 steps) and its follow-up (published), and a
    copy of its zip (Gradio serves a copy; the folder goes when the model is replaced)."""
    out = run_train()
    state, text = out[-1][0], out[-1][-1]
    finished = tab.train_finished(state, text, request=request("alice"))
    kept = tmp_path_factory.mktemp("zip") / Path(finished[3]["value"]).name
    kept.write_bytes(Path(finished[3]["value"]).read_bytes())
    yield state, out, finished, kept
    sessions.SESSION_MODELS.drop("alice")


def _trained_key(session: str) -> str:
    keys = [k for _, k in sessions.SESSION_MODELS.choices(session)
            if k.startswith(sessions.SESSION_KEY_PREFIX + handlers.TRAINED_NAME)]
    assert len(keys) == 1, keys
    return keys[0]


def test_the_choices_are_the_workflows():
    assert tuple(v for _, v in inputs.DATA_CHOICES) == wf.DATASETS
    assert tuple(v for _, v in inputs.MODEL_CHOICES) == wf.MODEL_KINDS
    assert tuple(v for _, v in inputs.RECIPE_CHOICES) == wf.RECIPES
    assert tuple(v for _, v in inputs.SIZE_CHOICES) == wf.UPLOAD_SIZES
    assert inputs.UPLOAD == wf.UPLOAD and set(inputs.MODEL_NAMES) == set(wf.MODEL_KINDS)


# --- training ---------------------------------------------------------------------------------


def _pictures(html: str) -> list[np.ndarray]:
    """The panel's PNG rows (data URIs in the HTML) as arrays."""
    from PIL import Image

    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(u)))) for u in uris]


def test_train_yields_a_panel_before_the_first_step_then_trains(alice):
    state, out, _, _ = alice
    first = out[0]
    assert first[0] is state and "Step 0 / 150" in first[-1] and "new model" in first[-1]
    html = first[2]
    rows = _pictures(html)
    assert len(rows) == 3
    for pic in rows:  # 8 images of 8×8 in a row, 1 px borders, at scale 1 (the browser zooms)
        assert pic.dtype == np.uint8 and pic.shape == (10, 80, 3)
    ts = ", ".join(map(str, wf.panel_timesteps(200, 8)))
    for caption in ("(a) training images noised", f"t = {ts} (", "(b) the network",
                    "(c) samples from the EMA weights: DDIM, 10 steps", "step 0)"):
        assert caption in html
    assert out[-1][-1].startswith("**Done: step 150 / 150") and state.step == 150
    assert "≤ 20,000 steps" in out[-1][-1]  # the server's budget is said
    assert "step 150)" in out[-1][2]  # the last output draws a fresh panel
    first_loss, last_loss = np.mean(state.losses[:15]), np.mean(state.losses[-15:])
    assert last_loss < 0.75 * first_loss


def test_stop_keeps_the_model_and_the_next_press_continues_it():
    gen = tab.train(None, **{**BASE, "steps": 5000}, request=request("bob"))
    state = next(gen)[0]
    while state.step < 20:
        next(gen)
    gen.close()  # what ■ Stop does: the generator is closed mid-run
    stopped_at = state.step
    assert 20 <= stopped_at < 5000 and len(state.losses) == stopped_at
    params = [p.detach().clone() for p in state.trainer.model.parameters()]
    out = tab.train_finished(state, "**Training: step 20 / 5,000", request=request("bob"))
    fig, html, text, button = out
    assert text.startswith(f"**Stopped** after {stopped_at:,} steps") and "tab 4" in text
    assert button["interactive"] and Path(button["value"]).suffix == ".zip"
    assert len(_pictures(html)) == 3 and f"step {stopped_at:,})" in html  # a fresh panel
    assert all(torch.equal(p, q) for p, q in
               zip(params, state.trainer.model.parameters(), strict=True))  # kept as it was
    again = list(tab.train(state, **{**BASE, "steps": 30}, request=request("bob")))
    assert again[0][0] is state and "Continuing the model from step" in again[0][-1]
    assert state.step == stopped_at + 30
    sessions.SESSION_MODELS.drop("bob")


def test_a_done_run_is_published_and_keeps_its_text(alice):
    state, out, finished, _ = alice
    assert finished[:2] == (gr.skip(),) * 2
    assert finished[2].startswith(out[-1][-1]) and "In tab 4 (Image sampler)" in finished[2]
    zipped = Path(finished[3]["value"])
    assert zipped.is_file() and "digits8" in zipped.name and "150-steps" in zipped.name
    with zipfile.ZipFile(zipped) as zf:
        assert sorted(zf.namelist()) == ["MODEL_CARD.md", "config.json", "model.safetensors"]


@pytest.mark.parametrize("override, message", [
    (dict(dataset="cifar10"), "Data: 'cifar10' is not one of the choices"),
    (dict(model_kind="vit"), "Model: 'vit' is not one of the choices"),
    (dict(recipe="slow"), "Recipe: 'slow' is not one of the choices"),
    (dict(kind="zigzag"), "Schedule: 'zigzag' is not one of"),
    (dict(T=10), "T (number of noise levels) must be a whole number from 50 to 2,000"),
    (dict(T="abc"), "must be a whole number from 50 to 2,000"),
    (dict(steps=10**9), "Steps must be a whole number from 1 to 20,000"),
    (dict(dataset="upload"), "upload several image files or one .zip of images first"),
    (dict(dataset="upload", files=["x.png"], size=24), "Image size: 24 is not one of"),
])
def test_bad_inputs_get_messages(override, message):
    with pytest.raises(gr.Error) as e:
        run_train(session="carol", **override)
    assert message in str(e.value)


def test_big_colour_uploads_train_with_a_smaller_batch_and_say_so(tmp_path):
    from PIL import Image

    for i, colour in enumerate(("red", "navy", "gold")):
        Image.new("RGB", (40 + i, 30), colour).save(tmp_path / f"{i}.png")
    files = [str(p) for p in sorted(tmp_path.iterdir())]
    gen = tab.train(None, **{**BASE, "dataset": "upload", "files": files, "size": 32,
                             "channels": 3, "model_kind": "unet_medium", "steps": 2},
                    request=request("grace"))
    state, _, html, text = next(gen)
    gen.close()
    assert "Loaded 3 images as 3×32×32 (colour)" in text
    assert f"batch {state.trainer.config.batch_size}, not the recipe's" in text
    assert state.trainer.config.batch_size < 128 and len(_pictures(html)) == 3


def test_files_that_are_not_images_get_the_loaders_message(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(gr.Error, match="notes.txt"):
        run_train(session="carol", dataset="upload", files=[str(tmp_path / "notes.txt")])


def test_the_upload_box_shows_for_own_images_only_and_steps_follow_the_recipe():
    box, steps, *_ = tab.data_changed("upload", "quick")
    assert box["visible"] is True and steps["value"] == wf.train_config("upload").steps
    box, steps, *_ = tab.data_changed("gradients", "quick")
    assert box["visible"] is False and steps["value"] == wf.train_config("gradients").steps
    for dataset in wf.DATASETS:
        for recipe in wf.RECIPES:
            assert tab.recipe_changed(dataset, recipe)[0]["value"] == wf.train_config(
                dataset, recipe).steps
    assert tab.recipe_changed("digits8", "default")[0]["value"] == 6000


def test_data_and_recipe_set_the_recipes_own_network_and_schedule():
    from diffusion_core import presets
    from diffusion_core.models.pixel_mlp_config import PixelMLPConfig

    model, kind, T = (u["value"] for u in tab.data_changed("gradients", "quick")[2:])
    want = presets.QUICK_GRADIENTS
    assert (model, kind, T) == ("pixel_mlp", want.schedule.kind, want.schedule.T)
    assert isinstance(want.model, PixelMLPConfig)
    # … and that network is the preset's own: what the train CLI trains
    cfg = wf.model_config(model, 3, 16, T, dataset="gradients", recipe="quick")
    assert (cfg.hidden, cfg.time_embedding) == (want.model.hidden, want.model.time_embedding)
    assert wf.model_config("pixel_mlp", 1, 8, T, dataset="digits8").hidden == \
        wf.PIXEL_MLP_HIDDEN  # elsewhere the tutorial's own MLP
    assert [u["value"] for u in tab.recipe_changed("digits8", "quick")[1:]] == [
        "unet_small", "cosine", 1000]
    assert [u["value"] for u in tab.recipe_changed("digits8", "default")[1:]][0] == "unet_medium"


# --- tab 4: the session's own models ----------------------------------------------------------


def test_the_model_is_in_tab_4s_list_for_its_session_only(alice):
    state, _, _, _ = alice
    key = _trained_key("alice")
    label, first = models.model_choices(session="alice")[0]
    assert first == key and label.startswith("★ your digits8 model") and "150 steps" in label
    assert all(k != key for _, k in models.model_choices(session="eve"))
    ck = models.load_model(key, session="alice")
    assert ck.model_config == state.model_config and ck.training["steps"] == 150
    with pytest.raises(gr.Error, match="belong to the browser session that made them"):
        models.load_model(key, session="eve")
    with serving_session("eve"), pytest.raises(gr.Error, match="not available"):
        models.load_model(key)  # the request's session decides
    with serving_session("alice"):
        assert models.load_model(key) is ck  # the shared, read-only cache
        update = sampler.session_rescan(None)
    assert update["value"] == key and update["choices"][0] == (label, key)


def test_every_sampler_feature_takes_it(alice):
    from pages.sampler import lab

    key = _trained_key("alice")
    with serving_session("alice"):
        summary, card = sampler.model_changed(key)[:2]
        assert "pixel MLP" in summary and "digits8" in card
        note, _, _, tiles, fig, numbers = why.why_model(key, "held_out", 3, 100, 0)[:6]
        assert "1,347" in note and "<img" in tiles and numbers  # beside the ideal denoiser
    strip, md = list(lab.interpolate_digits(key, "3", "8", 0, 10, 3, "leading",
                                            request=request("alice")))[-1]
    assert strip.dtype == np.uint8 and "blew up" not in md  # DDIM inversion of real digits
    out = list(sampler.run_sampler(key, "ddim", "beta_tilde", 10, 0.0, "trailing", 4, 0,
                                   request=request("alice")))
    assert out[-1][2].startswith("✓ Done: 4 images")
    assert out[-1][0].ndim == 3 and out[-1][0].dtype == np.uint8
    with pytest.raises(gr.Error, match="not available"):
        list(sampler.run_sampler(key, "ddim", "beta_tilde", 10, 0.0, "trailing", 4, 0,
                                 request=request("eve")))


def test_retraining_replaces_the_published_model_and_a_new_one_joins(alice):
    state, _, _, _ = alice
    old = _trained_key("alice")
    old_dir = sessions.SESSION_MODELS.get("alice", old).directory
    out = run_train(state, steps=20)
    tab.train_finished(out[-1][0], out[-1][-1], request=request("alice"))
    new = _trained_key("alice")  # still one for this model: the newer version
    assert new != old and not old_dir.exists()
    with serving_session("alice"):
        assert sampler.session_rescan(old)["value"] == new  # the list moves to the new one
    other = run_train(session="alice", model_kind="unet_small", steps=2)
    tab.train_finished(other[-1][0], other[-1][-1], request=request("alice"))
    labels = [label for label, _ in sessions.SESSION_MODELS.choices("alice")]
    assert len(labels) == 2 and "U-Net small" in labels[0] and "pixel MLP" in labels[1]


def test_an_uploaded_zip_joins_the_list_of_its_session(alice, tmp_path):
    text = tab.upload_model(str(alice[3]), request=request("dave"))
    assert text.startswith("✓ **") and "tab 4" in text
    [(label, key)] = sessions.SESSION_MODELS.choices("dave")
    assert label.startswith("★ uploaded") and key.startswith("session:upload-")
    assert models.load_model(key, session="dave").training["steps"] >= 150
    with pytest.raises(gr.Error):
        models.load_model(key, session="alice")
    assert sessions.SESSION_MODELS.drop("dave") == 1
    assert not models.model_choices(session="dave")[0][1].startswith("session:")


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("not a zip"), "is not a zip file"),
    (lambda p: _zip(p, {"model.pt": b"\x80\x04pickle"}), "pickle"),
    (lambda p: _zip(p, {"config.json": b"{}", "model.safetensors": b"12345678"}),
     "not a Diffusion Lab checkpoint config"),
])
def test_a_wrong_or_hostile_model_zip_gets_a_message(make, message, tmp_path):
    path = tmp_path / "model.zip"
    make(path)
    with pytest.raises(gr.Error) as e:
        tab.upload_model(str(path), request=request("mallory"))
    assert message in str(e.value)
    assert sessions.SESSION_MODELS.choices("mallory") == []
    assert tab.upload_model(None, request=request("mallory")).startswith("Upload a model zip")


def _zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_a_dropped_session_takes_its_models_and_folders_along():
    out = run_train(session="frank", steps=5)
    tab.train_finished(out[-1][0], out[-1][-1], request=request("frank"))
    directory = sessions.SESSION_MODELS.get("frank", _trained_key("frank")).directory
    assert directory.is_dir()
    assert sessions.SESSION_MODELS.drop("frank") == 1
    assert not directory.exists() and sessions.SESSION_MODELS.choices("frank") == []


# --- served: Gradio tells load_model whose request it is ----------------------------------------


def test_a_served_event_sees_its_own_session():
    """``models.current_session`` reads the request Gradio sets for every event call and every
    step of a generator (Gradio 6.31's ``LocalContext``): each client is its own session."""
    from gradio_client import Client

    def plain():
        return models.current_session() or ""

    def streamed():
        yield "start"
        yield models.current_session() or ""

    with gr.Blocks() as demo:
        out = gr.Textbox()
        gr.Button("plain").click(plain, None, out, api_name="plain")
        gr.Button("streamed").click(streamed, None, out, api_name="streamed")
    with serving(demo) as url:
        a, b = Client(url, download_files=False, verbose=False), \
            Client(url, download_files=False, verbose=False)
        assert a.predict(api_name="/plain") == a.session_hash
        assert b.predict(api_name="/plain") == b.session_hash != a.session_hash
        assert a.predict(api_name="/streamed") == a.session_hash


def _folder(name: str) -> Path:
    d = sessions.output_dir(sessions.SESSION_MODELS_KIND)
    (d / "config.json").write_text(name)
    return d


def test_the_janitor_drops_an_idle_sessions_models():
    import datetime
    import threading

    class Holder:  # what sessions.drop_idle_sessions uses of Gradio's StateHolder
        def __init__(self, last_used):
            self.time_last_used, self.lock = dict(last_used), threading.Lock()
            self.session_data = {s: {} for s in last_used}

        def delete_state(self, session):
            pass

    idle, busy = _folder("idle"), _folder("busy")
    sessions.SESSION_MODELS.put("idle-session", "m", idle, "idle's")
    sessions.SESSION_MODELS.put("busy-session", "m", busy, "busy's")
    old = datetime.datetime.now() - datetime.timedelta(hours=1)
    holder = Holder({"idle-session": old, "busy-session": datetime.datetime.now()})
    assert sessions.drop_idle_sessions(holder, 60) == 1
    assert not idle.exists() and sessions.SESSION_MODELS.choices("idle-session") == []
    assert sessions.SESSION_MODELS.choices("busy-session") == [("busy's", "session:m")]
    sessions.SESSION_MODELS.drop("busy-session")


def test_the_store_keeps_a_few_models_per_session_and_the_server_capacity(monkeypatch):
    from pages import limits

    store = sessions.SessionModels(per_session=2)
    dirs = [_folder(str(i)) for i in range(3)]
    for i, d in enumerate(dirs):
        store.put("s", f"m{i}", d, f"model {i}")
    assert [k for _, k in store.choices("s")] == ["session:m2", "session:m1"]  # newest first
    assert not dirs[0].exists() and dirs[1].exists()
    monkeypatch.setattr(limits, "ACTIVE", limits.Limits(max_sessions=2))
    others = [_folder(f"o{i}") for i in range(2)]
    store.put("t", "m", others[0], "t's")
    store.put("u", "m", others[1], "u's")  # a third session: the least recent one goes
    assert len(store) == 2 and store.choices("s") == [] and not dirs[2].exists()
    assert store.get("t", "session:m").directory == others[0]
    assert store.get("u", "session:m") is not None and store.get("t", "session:x") is None
    with pytest.raises(ValueError, match="needs the visitor's session"):
        store.put("", "m", others[0], "nobody's")
    store.drop("t"), store.drop("u")
