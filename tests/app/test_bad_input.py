"""Fuzz every public endpoint of the running app with bad values and read what comes back.

What a script (or a tampered browser) can send: text, "", "nan", NaN, infinities, null, huge
numbers, booleans, lists and objects in number fields; unknown, huge and mistyped values in
choice fields. Each bad value must either be accepted with a sensible meaning (an empty Steps
box may mean the default) or be refused with a clear text message: not a bare "Error", short,
without Python internals, saying what is allowed (a number field names a bound, a choice field
an allowed choice), and echoing at most a short prefix of what the user sent.

Each case is one call that changes one parameter of a valid call (built from the parameter
defaults that ``view_api`` reports) to one bad value; the endpoints run in parallel, each in its
own session. All findings are collected and reported in one assertion.

Which cases (:func:`cases`): parameters of the same *kind* (component and value type) on one
endpoint go through the same checks, so instead of every parameter × every bad value, each
endpoint gets every bad value on every kind of parameter it has, and every parameter gets at
least one bad value (the values dealt round-robin over the parameters of a kind). The
parameters in :data:`EVERY_VALUE` (each once got a message that did not name its range) get
every bad value. ``FUZZ_EVERY_CASE=1`` runs the full product (about twice as many calls).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections import defaultdict
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError, ValidationError  # noqa: E402

# Follow-up events (run after another event in the browser) that must not be public.
INTERNAL_SUFFIXES = ("_finished", "_release", "_stop")
# Upload parameters keep their default here (uploads are tested elsewhere).
FILE_COMPONENTS = {"Uploadbutton", "File", "Image", "Video", "Audio"}

MAX_MESSAGE = 300  # characters a refusal may have
MAX_ECHO = 60  # characters of the user's own string a refusal may repeat
CASE_TIMEOUT_S = 15.0  # a case with no answer by then is a finding (and is cancelled)
GRACE_S = 0.5  # after a generator's first output: time for a late refusal to arrive
# A case answered "You are already …" (the previous case's job, cancelled, still closing) or
# lost by the client (see _run) is sent again, every 0.1 s, for up to this long.
BUSY_WAIT_S = 10.0
# The setup calls and the valid baseline call are not what is tested: on a loaded machine they
# wait for a free worker, so they get more time (a CI run once timed out a 2-step sampler_run).
SETUP_TIMEOUT_S = 90.0
WORKERS = 4

# (kind of bad value, value). JSON NaN / Infinity are not valid JSON, but Python's json (which the
# server parses with) reads them; httpx refuses to send them, see _allow_nan_in_requests.
BAD_NUMBERS = [
    ("text 'abc'", "abc"),
    ("empty text ''", ""),
    ("text 'nan'", "nan"),
    ("text '1e309'", "1e309"),
    ("JSON NaN", float("nan")),
    ("JSON Infinity", float("inf")),
    ("null", None),
    ("-1e12", -1e12),
    ("1e12", 1e12),
    ("true", True),
    ("list [1]", [1]),
    ("object {'a': 1}", {"a": 1}),
]
BAD_CHOICES = [
    ("unknown choice", "no-such-choice"),
    ("100 KB text", "x" * 100_000),
    ("null", None),
    ("number 5", 5),
    ("empty list", []),
]
BAD_MULTI_CHOICES = [
    ("null", None),
    ("bare text 'linear'", "linear"),
    ("unknown item ['nope']", ["nope"]),
    ("[null]", [None]),
]
BAD_BOOLS = [
    ("text 'abc'", "abc"),
    ("null", None),
    ("number 5", 5),
]
BAD_VALUES = {
    "Number": BAD_NUMBERS,
    "Slider": BAD_NUMBERS,
    "Dropdown": BAD_CHOICES,
    "Radio": BAD_CHOICES,
    "Checkboxgroup": BAD_MULTI_CHOICES,
    "Checkbox": BAD_BOOLS,
}

# (endpoint, parameter) pairs that get every bad value of their kind: each once answered a bad
# value without naming its range (commit 22fda34 gave their boxes bounds).
EVERY_VALUE = {("/schedules_plot", "beta_start"), ("/schedules_plot", "beta_end"),
               ("/schedules_plot", "cosine_s"), ("/toy_train", "lr")}
EVERY_CASE = os.environ.get("FUZZ_EVERY_CASE", "") not in ("", "0")

# Valid but cheap settings, so that a bad value the app accepts ends a long job quickly.
CHEAP = {
    "/toy_train": {"steps": 5},
    "/toy_sample": {"steps": 10, "n_samples": 100},
    "/sampler_run": {"steps": 2, "n_images": 1},
    "/toy_lab_compare": {"n_points": 100, "n_paths": 10, "steps1": 5, "steps2": 5, "steps3": 5,
                         "steps4": 5},
    "/toy_lab_sweep": {"n_points": 100, "counts": [2], "steps1": 5, "steps2": 5, "steps3": 5,
                       "steps4": 5},
    "/toy_lab_invert": {"n_points": 50, "counts": [2]},
    "/sampler_lab_sweep": {"n_images": 16, "counts": [2], "samplers": ["ddim_eta0"]},
    "/sampler_lab_invert": {"steps": 2, "frames": 3},
    "/imagetrain_train": {"steps": 5, "model_kind": "pixel_mlp"},
}
# Calls that put a session into the state an endpoint needs (an image loaded, a model trained).
PREPARE = {
    "/forward_": [("/forward_image", {}), ("/forward_schedule", {})],
    "/toy_sample": [("/toy_train", {"steps": 5})],
    "/toy_vector_field": [("/toy_train", {"steps": 5})],
    "/toy_lab": [("/toy_train", {"steps": 5})],
    "/sampler_frame": [("/sampler_run", {"steps": 2, "n_images": 1})],
}

# Signs of a Python error leaking into a message meant for the user.
INTERNALS = re.compile(r"Traceback|\b[A-Z]\w*(Error|Exception)\b|<class |NoneType|object at 0x")
# The gradio_client text for an error the server sent without a message: the UI shows "Error".
NO_TEXT = "has not enabled verbose error reporting"


@dataclass
class Outcome:
    endpoint: str
    param: str
    kind: str
    verdict: str  # "ok" or what is wrong
    message: str = ""


def _client(url):
    # ssl_verify=False: plain http on localhost anyway, and it spares gradio_client loading the CA
    # bundle for every request (that alone made the sweep 2.5 times slower).
    return gradio_client.Client(url, download_files=False, verbose=False, ssl_verify=False)


_threads = threading.local()
_opened: list = []  # every client _session made (closed by _close_sessions)
_opened_lock = threading.Lock()


def _session(url):
    """A client of ``url`` in a new session. One client per thread, its session renewed for
    each endpoint: a new client costs ~1 s (it downloads and parses the app's config). The
    client reads one event stream per session, so the old session's stream must have ended
    (the server ends it once the session's last job is over) before the session changes."""
    clients = _threads.__dict__.setdefault("clients", {})
    client = clients.get(url)
    if client is not None:
        deadline = time.monotonic() + CASE_TIMEOUT_S
        while client.stream_open and time.monotonic() < deadline:
            time.sleep(0.02)
        if not client.stream_open:
            client.reset_session()
            return client
    client = clients[url] = _client(url)
    with _opened_lock:
        _opened.append(client)
    return client


def _close_sessions() -> None:
    with _opened_lock:
        while _opened:
            with contextlib.suppress(Exception):
                _opened.pop().close()


def _short(text: str, n: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _public_endpoints(client) -> dict:
    return client.view_api(return_format="dict", print_info=False)["named_endpoints"]


def _param_name(param: dict) -> str:
    name, label = param["parameter_name"], param.get("label")
    return f"{name} ({label})" if label and label != name else name


def _file_value(param: dict, image):
    """``image``, or ``[image]`` for a parameter that takes several files."""
    several = str(param.get("python_type", {}).get("type", "")).startswith("list[")
    return [image] if several else image


def _kind(param: dict) -> str:
    """What decides which checks a parameter goes through: its component and its value type,
    e.g. "Number integer". A choice field's allowed values and a slider's range are left out:
    they differ per field, the check does not."""
    type_ = param.get("type") or {}
    items = type_.get("items") if isinstance(type_.get("items"), dict) else {}
    return " ".join(str(x) for x in (param["component"], type_.get("type"), items.get("type"))
                    if x)


def cases(name: str, endpoint: dict, every: bool = EVERY_CASE) -> list[tuple[dict, str, object]]:
    """The (parameter, kind of bad value, value) calls for ``endpoint``: every bad value on
    every kind of parameter, every parameter at least once, dealt round-robin (see the module
    docstring); all of them with ``every`` or for the parameters in :data:`EVERY_VALUE`."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in endpoint["parameters"]:
        if p["component"] in BAD_VALUES:
            groups[_kind(p)].append(p)
    out = []
    for params in groups.values():
        bad = BAD_VALUES[params[0]["component"]]
        full = [p for p in params if every or (name, p["parameter_name"]) in EVERY_VALUE]
        out += [(p, kind, value) for p in full for kind, value in bad]
        dealt = [p for p in params if p not in full]
        out += [(dealt[i % len(dealt)], *bad[i % len(bad)])
                for i in range(max(len(dealt), len(bad)) if dealt else 0)]
    return out


def _baseline(name: str, endpoint: dict, image) -> dict:
    """A valid call: every parameter at its default, ``image`` for files, cheap long jobs."""
    kwargs = {p["parameter_name"]: _file_value(p, image) if p["component"] in FILE_COMPONENTS
              else p.get("parameter_default") for p in endpoint["parameters"]}
    kwargs.update({k: v for k, v in CHEAP.get(name, {}).items() if k in kwargs})
    return kwargs


def _judge_error(exc: BaseException, param: dict, value) -> str:
    """'ok' if ``exc`` is a clear refusal of ``value`` for ``param``, else what is wrong."""
    if not isinstance(exc, AppError | ValidationError):
        return f"unexpected {type(exc).__name__}"
    message = _message(exc).strip()
    if NO_TEXT in message:
        return 'no text (the UI shows a bare "Error")'
    if not message or message.lower() in {"error", "error."}:
        return f"empty message {message!r}"
    if isinstance(value, str) and len(value) > MAX_ECHO and value[: MAX_ECHO + 1] in message:
        return f"echoes more than {MAX_ECHO} characters of the input"
    if len(message) > MAX_MESSAGE:
        return f"too long ({len(message)} characters)"
    if INTERNALS.search(message):
        return "Python internals in the message"
    if not _says_what_is_allowed(message, param, value):
        return "does not say what is allowed"
    return "ok"


def _says_what_is_allowed(message: str, param: dict, value) -> bool:
    """A rough check: a number field's refusal names a bound (a digit that is neither in the
    label nor the echoed input), a choice's names an allowed choice, a checkbox's true/false."""
    text = message.replace(str(param.get("label") or "\0"), " ")
    echoes = {str(value), repr(value)} | ({f"{value:g}"} if isinstance(value, float) else set())
    for echo in sorted(e for e in echoes if e):
        text = text.replace(echo, " ")
    kind = param["component"]
    if kind in ("Number", "Slider"):
        return bool(re.search(r"\d", text))
    if kind == "Checkbox":
        return bool(re.search(r"true|false|tick|check", text, re.IGNORECASE))
    type_ = param.get("type") or {}
    choices = type_.get("enum") or (type_.get("items") or {}).get("enum") or []
    return (not choices or any(str(c).lower() in text.lower() for c in choices)
            or bool(re.search(r"\b(tick|choose|pick|select)\b", text, re.IGNORECASE)))


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)


def _run(client, name: str, kwargs: dict, busy_until: float | None = None,
         setup: bool = False) -> tuple[str, BaseException | None]:
    """Call ``name``: ("ok" | "error" | what went wrong, the exception). A generator that
    streams an output and goes on running is accepted (and cancelled); a ``setup`` call (one
    that prepares the session, or the valid baseline) gets :data:`SETUP_TIMEOUT_S` to answer and
    is waited for to the end, so that the session is idle when the cases start."""
    timeout = SETUP_TIMEOUT_S if setup else CASE_TIMEOUT_S
    if busy_until is None:
        busy_until = time.monotonic() + (SETUP_TIMEOUT_S if setup else BUSY_WAIT_S)
    try:
        job = client.submit(api_name=name, **kwargs)
    except Exception as exc:  # refused by gradio_client itself, before sending
        return f"not sent: {type(exc).__name__}", exc
    deadline = time.monotonic() + timeout
    first_output_at = None
    while not job.done():
        now = time.monotonic()
        if first_output_at is None and job.outputs():
            first_output_at = now
        streamed_enough = (first_output_at is not None and not setup
                           and now - first_output_at > GRACE_S)
        if now > deadline or streamed_enough:
            with contextlib.suppress(Exception):  # a /cancel slow to answer on a loaded machine
                job.cancel()  # is not what this test looks for; the next case still runs
            if first_output_at is None:
                return f"no answer within {timeout:.0f} s", None
            return "ok", None
        time.sleep(0.02)
    exc = job.exception()
    # Not this case's answer: the previous case's job (cancelled above) still closing, or the
    # event lost by gradio_client (its reader of the session's event stream ended as the case
    # was sent: the job ends in a CancelledError that nobody asked for).
    lost = isinstance(exc, CancelledError) or (
        exc is not None and _message(exc).startswith("You are already"))
    if lost and time.monotonic() < busy_until:
        time.sleep(0.1)
        return _run(client, name, kwargs, busy_until, setup)
    return ("ok", None) if exc is None else ("error", exc)


def _sweep_endpoint(url: str, name: str, endpoint: dict, image) -> list[Outcome]:
    """Every case of ``endpoint`` in one new session (see :func:`_session`); the caller
    closes the clients with :func:`_close_sessions`."""
    client = _session(url)
    api = _public_endpoints(client)
    for prefix, steps in PREPARE.items():
        if name.startswith(prefix):
            for prep_name, overrides in steps:
                if prep_name in api and prep_name != name:
                    _run(client, prep_name,
                         {**_baseline(prep_name, api[prep_name], image), **overrides},
                         setup=True)
    base = _baseline(name, endpoint, image)
    verdict, exc = _run(client, name, base, setup=True)
    if verdict != "ok":
        return [Outcome(name, "(all defaults)", "baseline",
                        f"the valid baseline call failed: {verdict}",
                        _message(exc) if exc else "")]
    outcomes = []
    for p, kind, value in cases(name, endpoint):
        verdict, exc = _run(client, name, {**base, p["parameter_name"]: value})
        if verdict == "error":
            verdict = _judge_error(exc, p, value)
        outcomes.append(Outcome(name, _param_name(p), kind, verdict,
                                _message(exc) if exc else ""))
    return outcomes


@contextlib.contextmanager
def _allow_nan_in_requests():
    """Let httpx send NaN / Infinity in JSON bodies, as a script written in Python may.

    httpx encodes request bodies with ``allow_nan=False``; a browser sends ``null`` for NaN, but
    any other client can send the bare tokens, and the server's JSON parser reads them.
    """
    import httpx._content as content

    real = content.json_dumps
    content.json_dumps = lambda obj, **kw: real(obj, **{**kw, "allow_nan": True})
    try:
        yield
    finally:
        content.json_dumps = real


def _report(bad: list[Outcome]) -> str:
    groups = defaultdict(list)
    for o in bad:
        groups[(o.endpoint, o.param, o.verdict)].append(o)
    by_verdict = defaultdict(int)
    for o in bad:
        by_verdict[o.verdict] += 1
    lines = [f"{len(bad)} bad inputs got no clear message ("
             + "; ".join(f"{v}: {n}" for v, n in sorted(by_verdict.items())) + "):"]
    for (endpoint, param, verdict), cases in sorted(groups.items()):
        kinds = ", ".join(o.kind for o in cases)
        lines.append(f"  {endpoint} {param}: {verdict} <- {kinds}")
        shown = {_short(o.message) for o in cases if o.message and NO_TEXT not in o.message}
        lines.extend(f"      got: {m}" for m in sorted(shown)[:3])
    return "\n".join(lines)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A small valid PNG for upload parameters (sent as it is; uploads are fuzzed elsewhere)."""
    from PIL import Image

    path = tmp_path_factory.mktemp("upload") / "small.png"
    Image.new("RGB", (16, 16), (200, 80, 40)).save(path)
    return gradio_client.handle_file(str(path))


def test_every_bad_input_gets_a_clear_message(server, image):
    api = _public_endpoints(_client(server))
    targets = {name: ep for name, ep in api.items()
               if not name.endswith(INTERNAL_SUFFIXES)
               and any(p["component"] in BAD_VALUES for p in ep["parameters"])}
    assert targets, f"no endpoint to fuzz among {sorted(api)}"
    # The endpoints with the most cases first, so the slowest one does not start last.
    order = sorted(targets.items(), key=lambda item: -len(item[1]["parameters"]))
    try:
        with _allow_nan_in_requests(), ThreadPoolExecutor(WORKERS) as pool:
            results = pool.map(lambda item: _sweep_endpoint(server, *item, image), order)
            outcomes = [o for per_endpoint in results for o in per_endpoint]
    finally:
        _close_sessions()
    bad = [o for o in outcomes if o.verdict != "ok"]
    if bad:
        pytest.fail(_report(bad) + f"\n({len(outcomes)} cases on {len(targets)} endpoints)",
                    pytrace=False)


def test_the_cases_cover_every_bad_value_kind_and_parameter():
    def param(name, component, type_):
        return {"parameter_name": name, "component": component, "type": {"type": type_}}

    ints = [param(f"n{i}", "Number", "integer") for i in range(14)]  # more than bad numbers
    endpoint = {"parameters": [*ints, param("x", "Number", "number"),
                               param("a", "Checkbox", "boolean"),
                               param("b", "Checkbox", "boolean"),
                               param("img", "Image", "string")]}
    picked = cases("/e", endpoint, every=False)
    pairs = {(p["parameter_name"], kind) for p, kind, _ in picked}
    assert len(pairs) == len(picked)  # no case twice
    for params, bad in ((ints, BAD_NUMBERS), ([endpoint["parameters"][14]], BAD_NUMBERS),
                        (endpoint["parameters"][15:17], BAD_BOOLS)):
        names = {p["parameter_name"] for p in params}
        assert {k for n, k in pairs if n in names} == {k for k, _ in bad}  # every bad value
        assert {n for n, _ in pairs} >= names  # every parameter
    assert len(picked) == 14 + 12 + 3  # not 14 × 12 + 12 + 2 × 3
    assert len(cases("/e", endpoint, every=True)) == 15 * 12 + 2 * 3
    beta = {"parameters": [param("beta_start", "Number", "number"),
                           param("beta_end", "Number", "number")]}
    assert len(cases("/schedules_plot", beta, every=False)) == 2 * 12  # EVERY_VALUE


def test_internal_follow_up_endpoints_are_not_public(server):
    names = sorted(_public_endpoints(_client(server)))
    internal = [n for n in names if n.endswith(INTERNAL_SUFFIXES)]
    assert not internal, f"internal follow-up events listed by view_api: {internal}"


def test_the_nan_cases_send_bare_nan_tokens():
    import httpx._content as content

    with _allow_nan_in_requests():
        _, body = content.encode_json({"x": float("nan"), "y": float("inf")})
    assert b"".join(body) == b'{"x":NaN,"y":Infinity}'
