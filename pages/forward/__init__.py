"""Tab 2 · Forward noising: watch q(x_t | x0) destroy an image as t grows.

x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (DDPM eq. 4) with one fixed ε per session, so moving the t slider
walks along one trajectory. Optionally compares with running the chain step by step (eq. 2).

A view only: :mod:`diffusion_core.workflows.forward_demo` computes, :mod:`.handlers` validates
and keeps the session state, :mod:`.views` draws. Handlers are plain module-level functions
(tests call them directly, as ``pages.forward.<name>``): :func:`load_image`,
:func:`load_upload`, :func:`set_noise`, :func:`new_noise`, :func:`resolve_schedule`,
:func:`show_t` (the slider's server path), :func:`refresh_view`, :func:`compare_methods`
(generator). Moving t redraws in the browser first (:mod:`.fast`), then from the server.
"""

from __future__ import annotations

import gradio as gr

from diffusion_core.schedule.config import BUILTIN_KINDS, ScheduleConfig
from pages import common, limits, links, sessions
from pages.common import MAX_SEED
from pages.widgets import inputs as ui

from . import fast
from .handlers import (
    IMAGE_CHOICES,
    IMAGE_KEYS,
    builtin_image,
    compare_methods,
    load_image,
    load_upload,
    new_noise,
    refresh_view,
    resolve_schedule,
    schedule_state,
    set_noise,
    show_t,
    strip_frames,
)
from .views import HIST_BINS, HIST_RANGE, STRIP_FRAMES, STRIP_MAX

__all__ = [
    "HIST_BINS", "HIST_RANGE", "IMAGE_CHOICES", "IMAGE_KEYS", "MAX_SEED", "STRIP_FRAMES",
    "STRIP_MAX", "builtin_image", "compare_methods", "explanation_md", "load_image",
    "load_upload", "new_noise", "refresh_view", "render", "resolve_schedule", "schedule_state",
    "set_noise", "show_t", "strip_frames",
]

IMG_HEIGHT = 215


def explanation_md() -> str:
    """The "What am I looking at?" text (``pages/explanations/forward.md``)."""
    return common.explanation("forward") + "\n\n" + common.INDEX_CONVENTION_MD


def _initial_schedule(shared_schedule: gr.State) -> ScheduleConfig:
    try:
        return ScheduleConfig.from_dict(dict(shared_schedule.value))
    except (TypeError, ValueError):
        return ScheduleConfig(kind="cosine")


def render(shared_schedule: gr.State) -> links.TabLinks:
    """Build the tab inside the caller's ``gr.Tab``; reads ``shared_schedule`` (tab 1's).
    Returns its shareable controls (:mod:`pages.links`)."""
    cfg = _initial_schedule(shared_schedule)
    t0 = round(0.25 * (cfg.T - 1))
    # The image and schedule states are filled when a browser opens the page (first_view
    # below); their change events then draw the view, as for any later change.
    ttl = limits.ACTIVE.state_ttl_s
    image_state = gr.State(None, time_to_live=ttl,
                           delete_callback=sessions.on_free("image"))
    sched_state = gr.State(None, time_to_live=ttl,
                           delete_callback=sessions.on_free("schedule"))
    # mirror of the slider, written by show_t and resolve_schedule
    t_state = gr.State(t0, time_to_live=ttl)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=290):
            choice = ui.Dropdown(list(IMAGE_CHOICES), value="china", label="Image x₀")
            upload = gr.UploadButton("Upload your own image…", file_count="single",
                                     file_types=["image"], type="filepath", size="sm")
            gr.Markdown(f"Images up to {limits.ACTIVE.upload_mb:g} MB and "
                        f"{limits.ACTIVE.upload_megapixels:g} megapixels.",
                        elem_classes=["dl-limit"])
            note = gr.Markdown("")
            use_shared = ui.Checkbox(True, label="Use tab 1's primary schedule")
            with gr.Row():
                kind = ui.Dropdown(list(BUILTIN_KINDS), value=cfg.kind, label="schedule",
                                   interactive=False, min_width=110)
                T = ui.Number(cfg.T, label="T", precision=0, minimum=common.T_MIN,
                              maximum=common.T_MAX, interactive=False, min_width=80)
            with gr.Row():
                seed = ui.Number(0, label="noise seed", precision=0, minimum=0,
                                 maximum=MAX_SEED, min_width=90)
                new_btn = gr.Button("New noise ε", size="sm", min_width=90, scale=0)
            compare_on = ui.Checkbox(
                False, label="Compare eq. 2 (step by step) with eq. 4 (closed form)")
        with gr.Column(scale=3):
            gr.Markdown("Signal part + noise part = xₜ (DDPM eq. 4), both parts at their true "
                        "scale; grey is 0.", elem_classes=["dl-caption"])
            with gr.Row(equal_height=True):
                # One button: two cover the longest label on a phone (2 pictures a row).
                kw = dict(format="png", height=IMG_HEIGHT, interactive=False,
                          buttons=["fullscreen"], min_width=140)
                img_x0 = gr.Image(None, label="x₀", **kw)
                ids = fast.IMAGE_ELEM_IDS
                img_sig = gr.Image(None, label="√ᾱₜ·x₀", elem_id=ids["signal"], **kw)
                img_noise = gr.Image(None, label="√(1−ᾱₜ)·ε", elem_id=ids["noise"], **kw)
                img_xt = gr.Image(None, label="xₜ", elem_id=ids["x_t"], **kw)
            # Under the pictures it moves (on a phone too, where this column comes first).
            t = ui.Slider(0, cfg.T - 1, value=t0, step=1, label="t (0 … T−1)",
                          elem_id=fast.T_ELEM_ID)
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=300):
                    hist = gr.Plot(None, show_label=False, elem_id=fast.HIST_ELEM_ID)
                with gr.Column(scale=2, min_width=240):
                    numbers = gr.Markdown("")
            strip = gr.Image(None, label=f"xₜ at {STRIP_FRAMES} evenly spaced t", format="png",
                             height=150, interactive=False, buttons=["download", "fullscreen"])
            with gr.Column(visible=False) as compare_box:
                with gr.Row(equal_height=True):
                    img_iter = gr.Image(None, label="eq. 2: chain step by step (fresh noise "
                                        "every step)", **kw)
                    img_closed = gr.Image(None, label="eq. 4: closed form (the ε above)", **kw)
                compare_md = gr.Markdown()
            with gr.Accordion("What am I looking at? (equations)", open=False):
                gr.Markdown(explanation_md(), latex_delimiters=common.LATEX)
    # What the browser needs to redraw a new t itself (pages/forward/fast.py), sent only when
    # it changes; never shown.
    fast_image = gr.JSON(None, visible=False)
    fast_sched = gr.JSON(None, visible=False)

    setup = dict(concurrency_limit=4, concurrency_id="forward_setup", show_progress="hidden")

    def first_view():
        state, text = load_image(IMAGE_CHOICES[0][1], None, 0)
        return state, schedule_state(cfg), text

    common.on_load(first_view, [image_state, sched_state, note], **setup)
    choice.input(load_image, [choice, upload, seed], [image_state, note],
                 api_name="forward_image", **setup)
    # Decoding an upload is the one memory-hungry step of this tab: one at a time, server-wide.
    upload.upload(load_upload, [upload, seed], [choice, image_state, note],
                  api_name="forward_upload", concurrency_limit=1, concurrency_id="upload",
                  show_progress="hidden")
    seed.change(set_noise, [image_state, seed], image_state, api_name="forward_seed",
                trigger_mode="always_last", **setup)
    new_btn.click(new_noise, seed, seed, api_name="forward_new_noise", **setup)
    gr.on(
        triggers=[use_shared.change, kind.input, T.submit, T.blur, shared_schedule.change],
        fn=resolve_schedule,
        inputs=[use_shared, kind, T, shared_schedule, sched_state, t_state],
        outputs=[sched_state, t, kind, T, t_state],
        api_name="forward_schedule", **setup,
    )
    # The slider's browser-side fast path: x0, ε and the schedule's columns go to the page
    # once per change; each slider move then redraws the pictures and the histogram at once.
    gr.context.Context.root_block.load(None, js=fast.js())
    private = dict(api_visibility="private", show_progress="hidden", trigger_mode="always_last")
    image_state.change(fast.image_payload, image_state, fast_image, concurrency_limit=8,
                       concurrency_id="forward_fast", **private)
    sched_state.change(fast.schedule_payload, sched_state, fast_sched, concurrency_limit=8,
                       concurrency_id="forward_fast", **private)
    for comp, key in ((fast_image, "img"), (fast_sched, "sched")):
        comp.change(None, [comp], None, js=fast.STORE_JS % key, queue=False,
                    api_visibility="private")
    # … then the server: moving t only recomputes x_t (the cached schedule, no strip, no
    # chain) …
    t.change(show_t, [image_state, sched_state, t],
             [img_sig, img_noise, img_xt, hist, numbers, t_state],
             api_name="forward_frame", concurrency_limit=8, concurrency_id="forward_frame",
             trigger_mode="always_last", show_progress="hidden")
    # … while a new image, ε or schedule redraws the whole view. These events read t from the
    # server-side mirror t_state, never from the slider (see resolve_schedule).
    gr.on(
        triggers=[image_state.change, sched_state.change],
        fn=refresh_view,
        inputs=[image_state, sched_state, t_state],
        outputs=[img_x0, img_sig, img_noise, img_xt, hist, numbers, strip],
        api_name="forward_view", concurrency_limit=8, concurrency_id="forward_view",
        trigger_mode="always_last", show_progress="hidden",
    )
    compare_kw = dict(fn=compare_methods, outputs=[compare_box, img_iter, img_closed, compare_md],
                      concurrency_limit=2, concurrency_id="forward_compare",
                      trigger_mode="always_last", show_progress="minimal")
    gr.on(triggers=[compare_on.change, image_state.change, sched_state.change],
          inputs=[image_state, sched_state, t_state, compare_on], api_name="forward_compare",
          **compare_kw)
    t.release(inputs=[image_state, sched_state, t, compare_on],
              api_name="forward_compare_release", api_visibility="private", **compare_kw)

    def link_view(v, given, shared):  # a link or a lesson: image, schedule and t at once
        image, text = load_image(v["image"], None, v["seed"])
        sched, _, kind_update, T_update, _ = resolve_schedule(v["shared"], v["schedule"], v["T"],
                                                              shared)
        last = sched["config"]["T"] - 1
        t_new = v["t"] if "t" in given else round(0.25 * last)
        if t_new > last:
            gr.Warning(f"t = {t_new} is past this schedule's last step (T − 1 = {last}); "
                       f"showing t = {last}.")
            t_new = last
        return {image_state: image, note: text, sched_state: sched, kind: kind_update,
                T: T_update, t: gr.update(value=t_new, maximum=last), t_state: t_new}

    t_link = links.control("t", t, always=True, check=lambda v: common.number(
        "t", v, 0, common.T_MAX - 1, integer=True))
    return links.TabLinks(
        links.controls(image=choice, shared=use_shared, schedule=kind, T=T, t=t_link, seed=seed,
                       compare=compare_on),
        view=links.View(link_view, inputs=(shared_schedule,),
                        outputs=(image_state, note, sched_state, t_state)))
