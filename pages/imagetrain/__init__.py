"""Tab 5 — train an image model live and watch digits emerge; take it home as a zip.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean image.

A view only: the data, the networks, training, the panel and checkpoints are
:mod:`diffusion_core.workflows.image_train`; the handlers are plain module-level functions in
:mod:`.handlers` (a generator for training), re-exported here, so tests call them directly.
Each visitor's model lives in their own ``gr.State`` (an ``ImageTrainSession``); when a run
ends or is stopped the model is published to the image sampler (tab 4) for that session only
(:data:`pages.sessions.SESSION_MODELS`), where every sampler feature works on it, and ⬇
Download gives it as one zip (safetensors + JSON config + model card). An uploaded zip joins
the same list.

Modules: ``inputs`` (choices, defaults, input checks), ``views`` (the loss figure, the panel's
rows), ``handlers`` (events).
"""

from __future__ import annotations

import gradio as gr

from pages import common, jobs, limits, links, sessions
from pages.imagetrain import views
from pages.imagetrain.handlers import (
    data_changed,
    recipe_changed,
    train,
    train_finished,
    upload_model,
)
from pages.imagetrain.inputs import (
    CHANNEL_CHOICES,
    DATA_CHOICES,
    DEFAULT_DATA,
    DEFAULT_MODEL,
    DEFAULT_RECIPE,
    DEFAULT_SCHEDULE,
    DEFAULT_T,
    MODEL_CHOICES,
    RECIPE_CHOICES,
    SCHEDULE_CHOICES,
    SIZE_CHOICES,
    T_MAX,
    T_MIN,
    UPLOAD,
    recipe_steps,
)
from pages.widgets import inputs as ui

__all__ = ["data_changed", "recipe_changed", "render", "train", "train_finished",
           "upload_model"]

INTRO_MD = (
    "Train a diffusion model on images **while you watch**: every few seconds the panel shows "
    "(a) training images noised to $x_t$ at a spread of $t$, (b) what the network makes of "
    "each, $\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\varepsilon)/\\sqrt{\\bar"
    "\\alpha_t}$, and (c) fresh samples from the same starting noise, so you watch digits "
    "emerge. When a run ends or you stop it, the model appears in **tab 4 (Image sampler)** "
    "for this browser session, and ⬇ Download keeps it.")


def render(shared_schedule: gr.State) -> links.TabLinks:
    """Build the tab (inside the caller's ``gr.Tab``); returns its shareable controls
    (:mod:`pages.links`).

    ``shared_schedule`` is deliberately unused: the schedule is chosen here, with the model.
    """
    del shared_schedule
    lim = limits.ACTIVE
    state = gr.State(None, time_to_live=lim.state_ttl_s,
                     delete_callback=sessions.on_free("image training"))
    gr.Markdown(INTRO_MD, latex_delimiters=common.LATEX)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            dataset = ui.Dropdown(list(DATA_CHOICES), value=DEFAULT_DATA, label="Data")
            with gr.Group(visible=DEFAULT_DATA == UPLOAD) as upload_box:
                files = gr.File(label="Your images: several files or one .zip",
                                file_count="multiple", file_types=["image", ".zip"],
                                height=120)
                with gr.Row():
                    size = ui.Radio(list(SIZE_CHOICES), value=16, label="Resized to",
                                    min_width=100)
                    channels = ui.Radio(list(CHANNEL_CHOICES), value=1, label="Channels",
                                        min_width=100)
            model_kind = ui.Radio(list(MODEL_CHOICES), value=DEFAULT_MODEL, label="Model",
                                  info="Data and Recipe set it (and the schedule) to the "
                                       "recipe's own")
            recipe = ui.Radio(list(RECIPE_CHOICES), value=DEFAULT_RECIPE, label="Recipe")
            with gr.Row():
                kind = ui.Dropdown(list(SCHEDULE_CHOICES), value=DEFAULT_SCHEDULE,
                                   label="Schedule", min_width=130)
                T = ui.Number(DEFAULT_T, label="T (noise levels)", precision=0, minimum=T_MIN,
                              maximum=T_MAX, min_width=110)
            steps = ui.Number(recipe_steps(DEFAULT_DATA, DEFAULT_RECIPE),
                              label="Steps (this press)", info="set to the recipe's own count",
                              precision=0, minimum=1, maximum=lim.train_steps)
            with gr.Row():
                train_btn = gr.Button("▶ Train", variant="primary", min_width=80)
                stop_btn = gr.Button("■ Stop", variant="stop", min_width=80)
            download = gr.DownloadButton("⬇ Download the model (.zip)", interactive=False,
                                         size="sm")
            with gr.Accordion("Bring a model back: upload its zip", open=False):
                model_zip = gr.File(label="Model zip (from ⬇ Download)", file_types=[".zip"],
                                    height=100)
                upload_status = gr.Markdown("")
        with gr.Column(scale=5):
            progress = gr.Markdown("Choose the data and a model, then press ▶ Train.",
                                   elem_classes=["dl-health"])
            panel = gr.HTML(views.panel_html(None), label="Panel")
            loss_plot = gr.Plot(views.loss_figure(None), label="Loss", show_label=False)
            with gr.Accordion("What am I looking at? The panel, blurry x̂₀ and EMA",
                              open=False):
                gr.Markdown(common.explanation("imagetrain"), latex_delimiters=common.LATEX)

    # --- events -------------------------------------------------------------------------------
    cheap = dict(concurrency_limit=8, show_progress="hidden")
    dataset.input(data_changed, [dataset, recipe], [upload_box, steps, model_kind, kind, T],
                  api_name="imagetrain_data", api_visibility="private",
                  concurrency_id="imagetrain_light", **cheap)
    recipe.input(recipe_changed, [dataset, recipe], [steps, model_kind, kind, T],
                 api_name="imagetrain_recipe",
                 api_visibility="private", concurrency_id="imagetrain_light", **cheap)
    train_event = train_btn.click(
        train, [state, dataset, files, size, channels, model_kind, recipe, kind, T, steps],
        [state, loss_plot, panel, progress], api_name="imagetrain_train",
        concurrency_limit=lim.train_slots, concurrency_id=jobs.TRAIN_QUEUE,
        trigger_mode="once", show_progress="minimal")
    # .then runs after success and after ■ Stop (a cancel), not after a gr.Error.
    train_event.then(train_finished, [state, progress],
                     [loss_plot, panel, progress, download],
                     api_name="imagetrain_finished", api_visibility="private",
                     concurrency_id="imagetrain_finished", concurrency_limit=2,
                     show_progress="hidden")
    stop_btn.click(None, None, None, cancels=[train_event], api_name="imagetrain_stop",
                   api_visibility="private", queue=False)
    model_zip.upload(upload_model, model_zip, upload_status, api_name="imagetrain_upload",
                     concurrency_id="imagetrain_light", **cheap)
    return links.TabLinks(links.controls(data=dataset, model=model_kind, recipe=recipe,
                                         schedule=kind, T=T, steps=steps))
