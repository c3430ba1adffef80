"""Tab 3 — train a small MLP noise predictor on 2D toy points, live, then sample from it.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean data. The reverse chain starts from x ~ N(0, I) at t = T−1 and ends at
t = −1 (the sample).

A view only: the session, training, the vector field, sampling with its quality score and the
forward-diffusion frames are :mod:`diffusion_core.workflows.toy2d`. Everything a user trains
lives in their own ``gr.State`` (a ``Toy2DSession``); the handlers are plain module-level
functions in :mod:`pages.toy2d.handlers` (generators for anything long), re-exported here, so
tests can call them directly:

============================  =================================================================
handler                       what it does
============================  =================================================================
``data_plot``                 scatter of the chosen toy set (cheap; re-run on every data change)
``dataset_changed``           the same, plus the set's default noise
``train``                     generator: trains (or continues training) and streams the loss,
                              and every 2.5 s the field at t and 300 samples from the live
                              weights (beside the loss)
``train_finished``            after ▶ Train ends or is stopped: vector field, loss, stop text
``error_by_t``                after ▶ Train: mean ‖ε̂_θ − ε*‖² (network vs ideal denoiser) by t
``vector_field``              arrows of −ε̂_θ(x, t) (learned), −ε* (ideal) or both on a 21×21
                              grid over the noised cloud x_t (on every change of the t slider:
                              drag, arrow keys, Home/End, a typed value)
``field_table_view``          after ``train_finished``: the field again, carrying the learned
                              field at every t, from which the browser redraws the t slider's
                              field at once (``assets/toy2d_fast.js``) before the server's
                              ``vector_field`` answer follows
``field_animation``           "▶ Play over t": the field at 24 t from T−1 down to 0 as
                              client-side frames, played at once in the browser
``sample``                    generator: N(0, I) → reverse chain (network or ideal denoiser) →
                              animation + SW1 / NN ratio / copies of training points, with the
                              paths of the first N points drawn over the samples
``sample_finished``           after Sample ends or is stopped: the stop text
``samples_csv``               after Sample: the final points as ``<set>_samples_<sampler>_<n>``
                              ``.csv`` for the ⬇ button (one click)
``guide_view``                classifier-free guidance, live: ε_u, ε_c, ε̃ of one class at t
                              and 1,000 guided samples of every class at scale s (a model
                              trained with class labels; :mod:`pages.toy2d.guide`)
``tradeoff``                  generator: accuracy, spread and class SW1 against s
``bound``                     generator: the variational bound (L_t over t, L_0, L_T, total) of
                              the network and of the ideal denoiser
``bound_finished``            after the bound ends or is stopped: the stop text
``forward_animation``         animated x_t of the data set at ~30 evenly spaced t (same ε)
============================  =================================================================

Modules: ``inputs`` (limits, defaults, input checks), ``figures`` (Plotly figures),
``handlers`` (events), ``why`` (the ideal denoiser's error by t and the bound: events),
``guide`` (the Guidance sub-tab: classifier-free guidance on a model trained with class
labels), ``lab`` (the Sampler lab), ``draw`` (the *Draw your own* data set: a canvas whose
strokes become the training points; the handlers take its anchors as their last input,
``drawing``); the animations use :mod:`pages.widgets.animated`.
"""

from __future__ import annotations

import gradio as gr

from diffusion_core.data.toy2d_spec import TOY_SPECS
from diffusion_core.models.mlp_config import ACTIVATIONS, TIME_EMBEDDINGS
from diffusion_core.sampling.config import SAMPLERS
from diffusion_core.schedule.config import BUILTIN_KINDS
from pages import common, jobs, limits, links, sessions
from pages.toy2d import draw, guide, handlers, lab, why
from pages.toy2d.figures import (
    DROP_TABLE_JS,
    FIELD_FRAMES,
    FIELD_PLOT_ID,
    FIELD_T_ID,
    FORWARD_FRAMES,
    GRID,
    TAKE_TABLE_JS,
    bound_figure,
    error_by_t_figure,
    field_fast_js,
    live_placeholder,
)
from pages.toy2d.guide import guide_view, tradeoff
from pages.toy2d.handlers import (
    MAX_PATHS,
    X0_BOX_MD,
    data_plot,
    dataset_changed,
    field_animation,
    field_table_view,
    forward_animation,
    loss_figure,
    sample,
    sample_finished,
    samples_csv,
    shared_schedule_changed,
    train,
    train_finished,
    train_stopped,
    vector_field,
    vector_field_after_train,
)
from pages.toy2d.inputs import (
    BOUND_N_DEFAULT,
    BOUND_N_MAX,
    BOUND_N_MIN,
    BOUND_POINTS_CHOICES,
    DATA_CHOICES,
    DEFAULT_DATASET,
    DEFAULT_POINTS,
    DENOISER_CHOICES,
    FIELD_CHOICES,
    LR_MAX,
    LR_MIN,
    MAX_BATCH,
    MAX_DEPTH,
    MAX_NOISE,
    MAX_SAMPLES,
    MAX_SEED,
    PREDICTION_CHOICES,
    PRESET,
    SOURCE_PRESET,
    VARIANCE_CHOICES,
    WIDTHS,
    max_steps,
    source_choices,
)
from pages.toy2d.why import bound, bound_finished, error_by_t
from pages.widgets import inputs as ui
from pages.widgets.animated import ELEM_CLASS, register_frames

__all__ = [  # render, and the handlers (also reachable as pages.toy2d.handlers.NAME / .why.NAME)
    "bound", "bound_finished", "data_plot", "dataset_changed", "error_by_t",
    "field_animation", "field_table_view", "forward_animation", "guide", "guide_view",
    "handlers", "loss_figure",
    "render", "sample",
    "sample_finished", "samples_csv", "shared_schedule_changed", "tradeoff", "train",
    "train_finished",
    "train_stopped", "vector_field", "vector_field_after_train", "why",
]

PREDICTION_MD = (
    "**Prediction**: what the network outputs: ε (the noise, as in DDPM), $x_0$ (the clean "
    "point) or $v = \\sqrt{\\bar\\alpha_t}\\,\\varepsilon - \\sqrt{1-\\bar\\alpha_t}\\,x_0$. "
    "Given $x_t$ each gives the others, so sampling is unchanged; what changes is how the loss "
    "weights the steps: in ε units, the $x_0$ loss weights step t by "
    "$\\mathrm{SNR}_t^{-1} = (1-\\bar\\alpha_t)/\\bar\\alpha_t$ (little at low noise) and the "
    "v loss by $1 + \\mathrm{SNR}_t^{-1}$ (like ε at low noise, more at high noise). Change it "
    "and press ▶ Train: the loss chart keeps one line per prediction, in ε units."
)

FIELD_MD = (
    "Arrows: $-\\hat\\varepsilon$ on a {grid}×{grid} grid, the way a denoiser would push a "
    "point at step t. *Learned*: the network's $\\hat\\varepsilon_\\theta$ (dark). *Ideal*: "
    "the exact $\\varepsilon^* = \\mathbb E[\\varepsilon \\mid x_t]$ of the training points "
    "(vermillion), the best any network could do on them, which memorises them. Lengths are "
    "normalised (∝ |ε| up to its 90th percentile, drawn 0.9 cell long; *Both* scales the two "
    "together); colour and hover give |ε|. Blue: the data noised to $x_t$ with one fixed ε. "
    "Below: how far the network is from the ideal at each t."
)


# After "▶ Play over t" drew its frames: wait until the browser registered them (the poller of
# pages/widgets/animated.py), then play once from the first frame (t = T−1).
PLAY_FIELD_JS = """
async () => {
  for (let i = 0; i < 60; i++) {
    const gd = document.querySelector('#dl-toy-field .js-plotly-plot');
    const meta = gd && gd.layout && gd.layout.meta;
    const n = gd && gd._transitionData && (gd._transitionData._frames || []).length;
    if (n && meta && meta.dl_key && gd.__dlKey === meta.dl_key && gd.__dlPlayed !== meta.dl_key) {
      gd.__dlPlayed = meta.dl_key;
      window.Plotly.animate(gd, null, {frame: {duration: 220, redraw: false},
                                       transition: {duration: 0}, fromcurrent: true,
                                       mode: 'immediate'});
      return [];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return [];
}
"""


def explanation_md() -> str:
    """The long explanation (``pages/explanations/toy2d.md``; ``@P@`` is the preset's t power)."""
    return common.explanation("toy2d").replace("@P@", f"{PRESET.train.timestep_power:g}")


def render(shared_schedule: gr.State) -> links.TabLinks:
    """Build the tab's components and wire its events (called inside ``gr.Tab``); returns its
    shareable controls (:mod:`pages.links`)."""
    lim = limits.ACTIVE
    # The session's model: freed (with its optimiser and losses) this long after it last
    # changed, or when the session is dropped (pages.sessions).
    state = gr.State(None, time_to_live=lim.state_ttl_s,
                     delete_callback=sessions.on_free("2D model"))
    init_name, init_n, init_seed = DEFAULT_DATASET, DEFAULT_POINTS, 0
    init_noise = TOY_SPECS[DEFAULT_DATASET].default_noise
    p_train, p_model = PRESET.train, PRESET.model

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            with gr.Row():
                dataset = ui.Dropdown(list(DATA_CHOICES), value=init_name, label="Data set",
                                      scale=2, min_width=120)
                seed = ui.Number(value=0, label="Seed", precision=0, minimum=0,
                                 maximum=MAX_SEED, scale=1, min_width=70)
            drawing = draw.render(init_name)  # the "Draw your own" canvas (hidden until chosen)
            with gr.Row():
                n_points = ui.Slider(100, common.MAX_POINTS, value=init_n, step=100,
                                     label="Points", min_width=120)
                noise = ui.Slider(0.0, MAX_NOISE, value=init_noise, step=0.01,
                                  label="Noise (std)", min_width=120)
            source = ui.Dropdown(source_choices(shared_schedule.value), value=SOURCE_PRESET,
                                 label="Noise schedule")
            with gr.Row():
                lr = ui.Number(value=p_train.lr, label="lr", minimum=LR_MIN, maximum=LR_MAX,
                               min_width=70)
                batch_size = ui.Number(value=p_train.batch_size, label="Batch", precision=0,
                                       minimum=1, maximum=MAX_BATCH, min_width=60)
                steps = ui.Number(value=p_train.steps, label="Steps", precision=0,
                                  minimum=1, maximum=max_steps(), min_width=60)
            conditional = ui.Checkbox(False, label="Train with class labels (for guidance)")
            with gr.Row():
                train_btn = gr.Button("▶ Train", variant="primary", min_width=80)
                stop_btn = gr.Button("■ Stop", variant="stop", min_width=80)
            progress = gr.Markdown("Press ▶ Train; press it again to keep training the same "
                                   "model.", elem_classes=["dl-health"])
            gr.Markdown(f"One press trains {lim.training_budget().describe()} on this "
                        "server; ▶ Train again continues.", elem_classes=["dl-limit"])
            with gr.Accordion("Model and custom schedule", open=False):
                with gr.Row():
                    hidden = ui.Dropdown(list(WIDTHS), value=p_model.hidden, label="Width",
                                         min_width=80)
                    depth = ui.Slider(1, MAX_DEPTH, value=p_model.depth, step=1,
                                      label="Depth", min_width=100)
                with gr.Row():
                    time_embedding = ui.Dropdown(list(TIME_EMBEDDINGS),
                                                 value=p_model.time_embedding,
                                                 label="Time embedding", min_width=100)
                    activation = ui.Dropdown(list(ACTIVATIONS), value=p_model.activation,
                                             label="Activation", min_width=100)
                prediction = ui.Radio([*PREDICTION_CHOICES], value=p_train.prediction,
                                      label="Prediction")
                gr.Markdown(PREDICTION_MD, latex_delimiters=common.LATEX,
                            elem_classes=["dl-health"])
                with gr.Row():
                    kind = ui.Dropdown(list(BUILTIN_KINDS), value="cosine", label="Kind",
                                       min_width=100)
                    T = ui.Number(value=100, label="T (steps)", precision=0,
                                  minimum=common.T_MIN, maximum=common.T_MAX, min_width=80)
                gr.Markdown("Kind and T apply when the schedule is *Kind and T below*; "
                            "linear-type kinds use β = 1e-4 … 0.02 × 1000/T.",
                            elem_classes=["dl-health"])

        with gr.Column(scale=3):
            with gr.Tabs(overflow_behavior="wrap", elem_classes=["dl-subtabs"]):  # phone: scrolls
                with gr.Tab("Data & training"):
                    with gr.Row():
                        data_fig = gr.Plot(None, show_label=False, scale=2, min_width=320)
                        loss_fig = gr.Plot(loss_figure(None), show_label=False, scale=3,
                                           min_width=400)
                    # Live while ▶ Train runs (and after): the field at the t slider's t and a
                    # few fast samples from the weights as they are then.
                    with gr.Row():
                        live_field = gr.Plot(live_placeholder(
                            "Press ▶ Train: the vector field<br>appears here as it learns"),
                            show_label=False, min_width=300)
                        live_samples = gr.Plot(live_placeholder(
                            "… and samples from the model<br>as it is at that moment"),
                            show_label=False, min_width=300)
                with gr.Tab("Vector field"):
                    with gr.Row():
                        with gr.Column(scale=1, min_width=220):
                            t_slider = ui.Slider(0, PRESET.schedule.T - 1,
                                                 value=PRESET.schedule.T // 2, step=1,
                                                 label="t", elem_id=FIELD_T_ID)
                            field_show = ui.Radio([*FIELD_CHOICES], value="learned",
                                                  label="Show")
                            play_btn = gr.Button("▶ Play over t", size="sm")
                            gr.Markdown(f"Plays the field at {FIELD_FRAMES} steps from "
                                        "t = T−1 (pure noise) down to 0, the way sampling "
                                        "goes; pause or scrub below the plot.",
                                        elem_classes=["dl-health"])
                            gr.Markdown(FIELD_MD.format(grid=GRID),
                                        latex_delimiters=common.LATEX)
                        with gr.Column(scale=3):
                            field_fig = gr.Plot(show_label=False, elem_id=FIELD_PLOT_ID,
                                                elem_classes=[ELEM_CLASS])
                            error_fig = gr.Plot(error_by_t_figure(None), show_label=False)
                with gr.Tab("Sample"):
                    with gr.Row():
                        with gr.Column(scale=1, min_width=220):
                            denoiser = ui.Radio([*DENOISER_CHOICES], value="network",
                                                label="Denoiser")
                            sampler = ui.Radio([(s.label, s.name) for s in SAMPLERS.values()],
                                               value=PRESET.sampler.sampler, label="Sampler")
                            with gr.Row():
                                # maximum follows the model's T (set by ▶ Train)
                                sample_steps = ui.Number(value=PRESET.schedule.T,
                                                         label="Steps", precision=0,
                                                         minimum=1, maximum=PRESET.schedule.T,
                                                         min_width=70)
                                eta = ui.Number(value=0.0, label="η (DDIM)", minimum=0,
                                                maximum=1, step=0.1, min_width=70)
                            with gr.Row():
                                n_samples = ui.Number(value=1000, label="Samples", precision=0,
                                                      minimum=2, maximum=MAX_SAMPLES,
                                                      min_width=70)
                                sample_seed = ui.Number(value=0, label="Seed", precision=0,
                                                        minimum=0, maximum=MAX_SEED,
                                                        min_width=70)
                            trace_n = ui.Number(value=5, label="Trace paths of N points",
                                                precision=0, minimum=0, maximum=MAX_PATHS,
                                                info="the first N samples, every step")
                            clip_x0 = ui.Checkbox(False, label="clip x̂0 to [−1, 1]")
                            gr.Markdown(X0_BOX_MD, latex_delimiters=common.LATEX,
                                        elem_classes=["dl-health"])
                            gr.Markdown(f"A run may take ≤ {lim.sample_seconds:g} s on this "
                                        "server.", elem_classes=["dl-limit"])
                            with gr.Row():
                                sample_btn = gr.Button("Sample", variant="primary",
                                                       min_width=80)
                                sample_stop = gr.Button("■ Stop", variant="stop",
                                                        min_width=70)
                            # Filled after each run (samples_csv): one click downloads.
                            samples_btn = gr.DownloadButton("⬇ CSV (sample first)",
                                                            interactive=False, size="sm")
                        with gr.Column(scale=3):
                            sample_fig = gr.Plot(show_label=False, elem_classes=[ELEM_CLASS])
                            quality = gr.Markdown("Train a model, then sample.",
                                                  elem_classes=["dl-health"])
                with gr.Tab("Guidance") as guide_tab:
                    guide_controls = guide.render(state)
                with gr.Tab("Likelihood bound"):
                    with gr.Row():
                        with gr.Column(scale=1, min_width=220):
                            variance = ui.Radio([*VARIANCE_CHOICES], value="beta_tilde",
                                                label="Reverse variance σ_t²")
                            bound_points = ui.Radio([*BOUND_POINTS_CHOICES], value="train",
                                                    label="Score")
                            bound_n = ui.Number(value=BOUND_N_DEFAULT, label="Points scored",
                                                precision=0, minimum=BOUND_N_MIN,
                                                maximum=BOUND_N_MAX, min_width=70)
                            gr.Markdown(
                                "The bound on $-\\log p_\\theta(x_0)$ (DDPM eq. 5) of the "
                                "trained network and of the ideal denoiser, on the same "
                                "points and noise draws: every term, all T steps. "
                                f"A run may take ≤ {lim.sample_seconds:g} s on this server.",
                                latex_delimiters=common.LATEX, elem_classes=["dl-limit"])
                            with gr.Row():
                                bound_btn = gr.Button("Compute the bound", variant="primary",
                                                      min_width=80, scale=2)
                                bound_stop = gr.Button("■ Stop", variant="stop", min_width=70,
                                                       scale=1)
                        with gr.Column(scale=3):
                            bound_fig = gr.Plot(bound_figure(None), show_label=False)
                            bound_text = gr.Markdown(
                                "Train a model, then press *Compute the bound*.",
                                latex_delimiters=common.LATEX, elem_classes=["dl-health"])
                    with gr.Accordion("Why the bound: L_simple is the bound without its "
                                      "weights, and fixed variances keep it loose",
                                      open=False):
                        gr.Markdown(common.explanation("toy2d_why"),
                                    latex_delimiters=common.LATEX)
                with gr.Tab("Sampler lab"):
                    lab.render(state)
                with gr.Tab("Forward diffusion") as forward_tab:
                    with gr.Row():
                        with gr.Column(scale=1, min_width=220):
                            forward_btn = gr.Button("Show forward diffusion", variant="primary")
                            gr.Markdown(
                                "The data noised with the schedule chosen on the left: "
                                "$x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + "
                                "\\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon$ (eq. 4) at about "
                                f"{FORWARD_FRAMES} evenly spaced t, the same ε in every "
                                "frame. The model learns to undo this.",
                                latex_delimiters=common.LATEX)
                        forward_fig = gr.Plot(show_label=False, scale=3,
                                              elem_classes=[ELEM_CLASS])
            with gr.Accordion("How this works: DDPM Algorithms 1 and 2, the arrows, the scaling",
                              open=False):
                gr.Markdown(explanation_md(), latex_delimiters=common.LATEX)

    # --- events -------------------------------------------------------------------------------
    data_inputs = [dataset, n_points, noise, seed]
    common.on_load(lambda: data_plot(init_name, init_n, init_noise, init_seed),
                   [data_fig], concurrency_limit=8,
                   concurrency_id="toy_data", show_progress="hidden")
    schedule_inputs = [source, kind, T, shared_schedule]
    dataset.input(dataset_changed, [dataset, n_points, seed, drawing.anchors],
                  [data_fig, noise], api_name="toy_dataset", concurrency_limit=8,
                  concurrency_id="toy_data")
    gr.on([n_points.release, noise.release, seed.submit, seed.blur], data_plot,
          [*data_inputs, drawing.anchors], data_fig, api_name="toy_data_plot",
          concurrency_limit=8, concurrency_id="toy_data")
    draw.wire(drawing, dataset, n_points, noise, seed, data_fig)
    shared_schedule.change(shared_schedule_changed, [shared_schedule, source], source,
                           api_name="toy_shared_schedule", api_visibility="private",
                           concurrency_limit=8,
                           concurrency_id="toy_cheap")

    # ▶ Train first drops the browser's field table (assets/toy2d_fast.js) before the weights
    # move: registered before the train event, since the browser runs a click's events in
    # order and waits for a streaming one (training) to end before the next.
    train_btn.click(None, None, None, js=DROP_TABLE_JS, api_name="toy_field_table_drop",
                    api_visibility="private", queue=False)
    train_event = train_btn.click(
        train,
        [state, *data_inputs, *schedule_inputs, hidden, depth, time_embedding, activation, lr,
         batch_size, steps, prediction, conditional, drawing.anchors, t_slider],
        [state, loss_fig, progress, t_slider, sample_steps, live_field, live_samples],
        api_name="toy_train", concurrency_limit=lim.train_slots, concurrency_id=jobs.TRAIN_QUEUE,
        trigger_mode="once", show_progress="minimal",
    )
    # .then runs after success and after Stop (a cancel); it also clears Gradio's "Error"
    # badge on the cancelled event's outputs by writing all of them.
    finished = train_event.then(train_finished, [state, t_slider, progress, field_show],
                                [field_fig, loss_fig, progress, t_slider, sample_steps],
                                api_name="toy_train_finished", api_visibility="private",
                                concurrency_limit=8, concurrency_id="toy_field")
    # The t slider's fast path: the finished model's field at every t goes to the browser once
    # (after the field above is on screen).
    finished.then(field_table_view, [state, t_slider, field_show], field_fig,
                  api_name="toy_field_table", api_visibility="private", concurrency_limit=2,
                  concurrency_id="toy_field_table", show_progress="hidden")
    field_fig.change(None, field_fig, None, js=TAKE_TABLE_JS, api_name="toy_field_table_take",
                     api_visibility="private", queue=False)
    gr.context.Context.root_block.load(None, js=field_fast_js())  # installs the fast path
    train_event.then(error_by_t, state, error_fig, api_name="toy_error_by_t_finished",
                     api_visibility="private", concurrency_limit=8, concurrency_id="toy_field",
                     show_progress="hidden")
    stop_btn.click(None, None, None, cancels=[train_event], api_name="toy_train_stop",
                   api_visibility="private", queue=False)
    g = guide_controls
    guide_inputs = [state, g.klass, g.scale, g.t, g.denoiser]
    guide_outputs = [g.klass, g.t, g.figure, g.text]
    train_event.then(guide.after_train, guide_inputs, guide_outputs,
                     api_name="toy_guide_after_train", api_visibility="private",
                     concurrency_limit=8, concurrency_id="toy_guide", show_progress="hidden")
    guide_tab.select(guide.guide_refresh, guide_inputs, guide_outputs,
                     api_name="toy_guide_on_select", api_visibility="private",
                     concurrency_limit=8, concurrency_id="toy_guide", show_progress="hidden")

    # Live: every change a learner makes to t (drag, arrow keys, Home/End, a typed value)
    # redraws the field; always_last drops the stale ones in between.
    gr.on([t_slider.input, field_show.input], vector_field, [state, t_slider, field_show],
          field_fig,
          api_name="toy_vector_field", concurrency_limit=8, concurrency_id="toy_field",
          trigger_mode="always_last", show_progress="hidden")
    play_btn.click(field_animation, [state, field_show], field_fig,
                   api_name="toy_field_play", concurrency_limit=4, concurrency_id="toy_play",
                   show_progress="minimal").then(
        None, None, None, js=PLAY_FIELD_JS, api_name="toy_field_play_start",
        api_visibility="private", queue=False)

    sample_event = sample_btn.click(
        sample, [state, sampler, sample_steps, eta, n_samples, sample_seed, clip_x0, denoiser,
                 trace_n],
        [sample_fig, quality], api_name="toy_sample", concurrency_limit=lim.sample_slots,
        concurrency_id=jobs.SAMPLE_QUEUE, trigger_mode="once", show_progress="minimal",
    )
    sample_event.then(sample_finished, quality, [sample_fig, quality],
                      api_name="toy_sample_finished", api_visibility="private",
                      concurrency_limit=8, concurrency_id="toy_cheap")
    sample_event.then(samples_csv, [state, denoiser], samples_btn,
                      api_name="toy_samples_csv_finished", api_visibility="private",
                      concurrency_limit=8, concurrency_id="toy_cheap", show_progress="hidden")
    sample_stop.click(None, None, None, cancels=[sample_event], api_name="toy_sample_stop",
                      api_visibility="private", queue=False)
    bound_event = bound_btn.click(
        bound, [state, variance, bound_points, bound_n], [bound_fig, bound_text],
        api_name="toy_bound", concurrency_limit=lim.sample_slots,
        concurrency_id=jobs.SAMPLE_QUEUE, trigger_mode="once", show_progress="minimal",
    )
    bound_event.then(bound_finished, bound_text, [bound_fig, bound_text],
                     api_name="toy_bound_finished", api_visibility="private",
                     concurrency_limit=8, concurrency_id="toy_cheap")
    bound_stop.click(None, None, None, cancels=[bound_event], api_name="toy_bound_stop",
                     api_visibility="private", queue=False)
    forward_btn.click(forward_animation, [*data_inputs, *schedule_inputs, drawing.anchors],
                      forward_fig,
                      api_name="toy_forward", concurrency_limit=4, concurrency_id="toy_forward")
    forward_tab.select(forward_animation, [*data_inputs, *schedule_inputs, drawing.anchors],
                       forward_fig,
                       api_name="toy_forward_on_select", api_visibility="private",
                       concurrency_limit=4,
                       concurrency_id="toy_forward")
    # Browser-only: register animation frames with Plotly whenever an animated plot changes.
    register_frames(sample_fig, forward_fig, field_fig)

    def link_view(v, given):  # a link or a lesson: the data plot (a new set: its own noise)
        level = v["noise"] if "noise" in given else TOY_SPECS[v["dataset"]].default_noise
        return {noise: level, data_fig: data_plot(v["dataset"], v["points"], level, v["seed"])}

    return links.TabLinks(
        links.controls(
            dataset=draw.link_control(dataset), seed=seed, points=n_points, noise=links.control(
                "noise", noise, always=True), schedule=source, kind=kind, T=T, lr=lr,
            batch=batch_size, steps=steps, labels=conditional, width=hidden, depth=depth,
            embedding=time_embedding, activation=activation, prediction=prediction,
            show=field_show, denoiser=denoiser, sampler=sampler, eta=eta, samples=n_samples,
            sample_seed=sample_seed, clip_x0=clip_x0, paths=trace_n, variance=variance,
            bound_points=bound_points, bound_n=bound_n),
        view=links.View(link_view, outputs=(data_fig,)))
