"""Tab 4 — sample images from a pretrained checkpoint and watch the reverse chain.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean image. The chain starts from x ~ N(0, I) at the first visited t and
ends at t = −1 (the sample).

The schedule is the checkpoint's own: a network only knows the noise levels ᾱ_t it was trained
on, so tab 1's schedule (``shared_schedule``) does not apply here and is ignored.

A view only: :mod:`.models` lists, loads and describes the checkpoints; :mod:`.handlers` holds
the event handlers (re-exported here); the run itself is
:mod:`diffusion_core.workflows.image_sampling`, which the sample CLI drives too. :mod:`.why`
adds two sections below: the network's x̂0 beside the ideal denoiser's, and the likelihood
bound in bits per dimension (:mod:`diffusion_core.workflows.image_why`). :mod:`.guide` adds
classifier-free guidance for class-conditional checkpoints: the class × scale grid and the
accuracy / spread curve against s (:mod:`diffusion_core.workflows.image_guidance`).

Guidance, one convention everywhere: ε̃ = ε_u + s·(ε_c − ε_u); s = 0 the unconditional model,
s = 1 the conditional one, s > 1 guides harder. For a class-conditional checkpoint the main
sampler shows two more controls, Class and Guidance s (hidden for unconditional ones).

Models a visitor trained or uploaded in the image-training tab join the model list for that
visitor's session only (:func:`.models.model_choices`), refreshed whenever this tab is opened.
"""

from __future__ import annotations

import functools

import gradio as gr

from diffusion_core.sampling.config import GUIDANCE_DEFAULT, GUIDANCE_MAX, SAMPLERS, SPACINGS
from pages import common, jobs, limits, links, sessions
from pages.widgets import inputs as ui

from . import guide, lab, why
from .handlers import (
    ANY,
    ANY_LABEL,
    DEFAULT_IMAGES,
    FRAME_LABEL,
    GUIDANCE_LABEL,
    MAX_IMAGES,
    REPLAY_LABEL,
    _cleanup,
    class_choices,
    files_so_far,
    model_changed,
    replay,
    replay_instant,
    rescan_models,
    run_finished,
    run_sampler,
    sampler_changed,
    show_frame,
)
from .models import (
    CARD,
    DEFAULT_SAMPLER,
    DEMO_KEY,
    DEMO_LABEL,
    DEMO_SCHEDULE,
    _models_root,
    list_models,
    load_model,
    model_choices,
)

__all__ = ["CARD", "DEMO_KEY", "DEMO_LABEL", "class_choices", "list_models", "load_model",
           "model_changed", "model_choices", "render", "rescan_models", "run_finished",
           "run_sampler", "sampler_changed", "session_rescan", "show_frame"]

# (label, name) from the sampler registry, the image preset's sampler first.
SAMPLER_CHOICES = [(s.label, s.name) for s in sorted(
    SAMPLERS.values(), key=lambda s: s.name != DEFAULT_SAMPLER.sampler)]
VARIANCE_CHOICES = [("β̃", "beta_tilde"), ("β", "beta")]
IMG_HEIGHT = 380


def session_rescan(current):
    """This tab opened: the model list with the session's own models (trained or uploaded in
    the image-training tab) first; keeps the current choice when it is still there."""
    choices = model_choices()
    keys = [k for _, k in choices]
    return gr.update(choices=choices, value=current if current in keys else keys[0])


def render(shared_schedule: gr.State) -> links.TabLinks:
    """Build the tab (inside the caller's ``gr.Tab``); returns its shareable controls
    (:mod:`pages.links`; the model is their key: choosing it resets the sampler's controls).

    ``shared_schedule`` is deliberately unused: a checkpoint only works with its own schedule.
    """
    del shared_schedule
    tab = gr.context.Context.block  # the caller's gr.Tab: opening it rescans the models
    choices = list_models(_models_root())
    key0 = choices[0][1]
    # Placeholders until the page loads: the load event (below) loads the model (torch) and
    # sets the card and the sampler controls from it, exactly as choosing it in the list does.
    kw0 = DEFAULT_SAMPLER.kwargs()
    T0 = DEMO_SCHEDULE.T
    lim = limits.ACTIVE
    # The session's kept frames and output files: freed this long after the last run, or when
    # the session is dropped (pages.sessions); _cleanup removes the files.
    run_state = gr.State(None, time_to_live=lim.state_ttl_s,
                         delete_callback=sessions.on_free("image run", _cleanup))

    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=330):
            model = ui.Dropdown(choices, value=key0, label="Pretrained model")
            info = gr.Markdown("", elem_classes=["dl-health"])
            with gr.Row(equal_height=True):
                sampler = ui.Radio(SAMPLER_CHOICES, value=kw0["sampler"], label="Sampler",
                                   scale=3, min_width=190)
                clip_x0 = ui.Checkbox(bool(kw0["clip_x0"]), label="clip x̂0", scale=2,
                                      min_width=100)
            with gr.Row():
                steps = ui.Number(kw0["steps"], label="Steps", precision=0, minimum=1,
                                  maximum=T0, min_width=80)
                eta = ui.Number(float(kw0["eta"]), label="η (DDIM)", minimum=0, maximum=1,
                                step=0.1, min_width=80,
                                interactive="eta" in SAMPLERS[kw0["sampler"]].options)
                variance = ui.Dropdown(VARIANCE_CHOICES, value=kw0["variance"],
                                       label="σ² DDPM", min_width=80,
                                       interactive="variance" in SAMPLERS[kw0["sampler"]].options)
            with gr.Row():
                spacing = ui.Dropdown(list(SPACINGS), value=kw0["spacing"],
                                      label="Spacing", min_width=110, scale=5)
                n_images = ui.Number(DEFAULT_IMAGES, label="Images", precision=0,
                                     minimum=1, maximum=MAX_IMAGES, min_width=70, scale=4)
                seed = ui.Number(0, label="Seed", precision=0, minimum=0,
                                 maximum=common.MAX_SEED, min_width=70, scale=4)
            # Classifier-free guidance: shown by model_changed for class-conditional models.
            with gr.Row():
                class_choice = ui.Dropdown([(ANY_LABEL, ANY)], value=ANY, label="Class",
                                           visible=False, min_width=120, scale=5)
                guidance = ui.Number(GUIDANCE_DEFAULT, label=GUIDANCE_LABEL, minimum=0,
                                     maximum=GUIDANCE_MAX, step=0.5, visible=False,
                                     min_width=90, scale=4)
            with gr.Row():
                run_btn = gr.Button("▶ Sample", variant="primary", min_width=80)
                stop_btn = gr.Button("■ Stop", variant="stop", min_width=80)

        with gr.Column(scale=5):
            with gr.Row(equal_height=True):
                kw = dict(format="png", height=IMG_HEIGHT, interactive=False,
                          buttons=["download", "fullscreen"], min_width=200,
                          elem_classes=["dl-pixel"])
                img_xt = gr.Image(None, label="xₜ — the chain now (last: the samples)", **kw)
                img_x0 = gr.Image(None, label="x̂₀ — predicted clean images",
                                  **kw)
            with gr.Row(equal_height=True):
                frame = ui.Slider(0, 1, value=0, step=1, interactive=False, scale=4,
                                  label=FRAME_LABEL)
                gif_btn = gr.DownloadButton("⬇ GIF", interactive=False, size="sm", scale=1,
                                            min_width=110)
                png_btn = gr.DownloadButton("⬇ PNG", interactive=False, size="sm", scale=1,
                                            min_width=110)
                replay_btn = gr.Button(REPLAY_LABEL, interactive=False, size="sm", scale=1,
                                       min_width=100)
            status = gr.Markdown(f"Press ▶ Sample to watch noise turn into images (up to "
                                 f"{MAX_IMAGES} at once; a run may take ≤ "
                                 f"{lim.sample_seconds:g} s on this server).",
                                 elem_classes=["dl-health"])
            with gr.Accordion("Model card", open=False):
                card = gr.Markdown("", latex_delimiters=common.LATEX)
            with gr.Accordion("How this works: DDPM eq. 11, DDIM eq. 12, x̂0 and η",
                              open=False):
                gr.Markdown(common.explanation("sampler"), latex_delimiters=common.LATEX)

    # What the network is trying to learn (the ideal denoiser) and the likelihood bound.
    why.render(model)
    # How many steps do I need? Samplers on the same noise, quality against NFE, live; and
    # DDIM inversion of two real digits with the path between them.
    with gr.Accordion("Sampler lab: how many steps do I need? Inversion and interpolation",
                      open=False):
        lab.render(model)
    # Classifier-free guidance: a class × scale grid from the same noise, accuracy and spread
    # against s.
    with gr.Accordion("Guidance: digit × scale grid", open=False) as guide_acc:
        guide.render(model, guide_acc)

    # --- events -------------------------------------------------------------------------------
    cheap = dict(concurrency_limit=8, show_progress="hidden")
    model_outputs = [info, card, steps, sampler, eta, spacing, variance, clip_x0, class_choice,
                     guidance]
    model.change(model_changed, model, model_outputs, api_name="sampler_model",
                 concurrency_id="sampler_model", **cheap)
    common.on_load(functools.partial(model_changed, key0), model_outputs,
                   concurrency_id="sampler_model", **cheap)
    # On every page load: models trained since the app started appear in the list.
    common.on_load(functools.partial(rescan_models, key0), [model], api_name="sampler_rescan",
                   concurrency_id="sampler_model", **cheap)
    if isinstance(tab, gr.Tab):  # the session's own models (image-training tab) join the list
        tab.select(session_rescan, model, model, api_name="sampler_session_models",
                   api_visibility="private", concurrency_id="sampler_model", **cheap)
    sampler.input(sampler_changed, [sampler, model], [steps, eta, variance],
                  api_name="sampler_kind", concurrency_id="sampler_model", **cheap)

    run_event = run_btn.click(
        run_sampler,
        # class and s come last: /sampler_run's older parameters keep their positions
        [model, sampler, variance, steps, eta, spacing, n_images, seed, clip_x0, run_state,
         class_choice, guidance],
        [img_xt, img_x0, status, run_state, frame, gif_btn, png_btn],
        api_name="sampler_run", concurrency_limit=lim.sample_slots,
        concurrency_id=jobs.SAMPLE_QUEUE, trigger_mode="once", show_progress="minimal",
    )
    # .then fires after success and after ■ Stop (not after a gr.Error).
    run_event.then(run_finished, [run_state, status], [frame, status, img_xt, img_x0],
                   api_name="sampler_run_finished", api_visibility="private",
                   concurrency_id="sampler_frame", **cheap)
    # Downloads after a stop too (the frames made so far), and ▶ Replay: played once by
    # itself after a run too fast to watch, and on every press.
    run_event.then(files_so_far, run_state, [gif_btn, png_btn, replay_btn],
                   api_name="sampler_files_finished", api_visibility="private",
                   concurrency_id="sampler_frame", **cheap)
    replay_outputs = [img_xt, img_x0, frame, status]
    auto_replay = run_event.then(replay_instant, run_state, replay_outputs,
                                 api_name="sampler_replay_finished", api_visibility="private",
                                 concurrency_id="sampler_frame", **cheap)
    replay_event = replay_btn.click(replay, run_state, replay_outputs, api_name="sampler_replay",
                                    api_visibility="private", concurrency_id="sampler_frame",
                                    trigger_mode="once", **cheap)
    stop_btn.click(None, None, None, cancels=[run_event], api_name="sampler_stop",
                   api_visibility="private", queue=False)
    stop_btn.click(None, None, None, cancels=[replay_event, auto_replay],
                   api_name="sampler_replay_stop", api_visibility="private", queue=False)
    run_btn.click(None, None, None, cancels=[replay_event, auto_replay],
                  api_name="sampler_replay_cancel", api_visibility="private", queue=False)
    frame.input(show_frame, [run_state, frame], [img_xt, img_x0, status],
                api_name="sampler_frame", concurrency_id="sampler_frame",
                trigger_mode="always_last", **cheap)

    def link_view(v, given):  # a link or a lesson: the model's card and settings, then the given
        out = dict(zip(model_outputs, model_changed(v["model"]), strict=True))
        out[model] = rescan_models(v["model"])
        last = out[steps]["maximum"]
        if "steps" in given and v["steps"] is not None and v["steps"] > last:
            gr.Warning(f"Steps = {v['steps']}: this model has {last} steps; using its default.")
            given = given - {"steps"}
        if "class" in given and v["class"] not in [c for _, c in out[class_choice]["choices"]]:
            gr.Warning(f"Class {v['class']!r} is not one of this model's classes.")
            given = given - {"class"}
        for name, comp in (("sampler", sampler), ("steps", steps), ("eta", eta),
                           ("spacing", spacing), ("variance", variance), ("clip_x0", clip_x0),
                           ("class", class_choice), ("guidance", guidance)):
            if name in given:
                out[comp] = links.with_value(out[comp], v[name])
        options = SAMPLERS[v["sampler"] if "sampler" in given else out[sampler]].options
        out[eta] = {**out[eta], "interactive": "eta" in options}
        out[variance] = {**out[variance], "interactive": "variance" in options}
        return out

    always = {name: links.control(name, comp, always=True) for name, comp in (
        ("sampler", sampler), ("steps", steps), ("eta", eta), ("spacing", spacing),
        ("variance", variance), ("clip_x0", clip_x0))}
    return links.TabLinks(
        links.controls(model=model, **always, images=n_images, seed=seed,
                       **{"class": links.control("class", class_choice,
                                                 check=links.token("Class"))},
                       guidance=guidance),
        view=links.View(link_view, outputs=(info, card)), key="model")
