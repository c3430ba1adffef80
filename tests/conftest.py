"""Test-wide settings: no calls home, one torch thread and one BLAS thread (small models; no
oversubscription)."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="diffusion-lab-tests-"))
if os.environ.get("PYTEST_XDIST_WORKER"):  # two test processes at once (scripts/test.sh)
    # Each its own folder: the app's start-up and sweeps empty theirs.
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(
        prefix=f"diffusion-lab-tests-{os.environ['PYTEST_XDIST_WORKER']}-")
    # The app's worker processes at the test process's own priority: at the app's default
    # (nice 10, ≈ 1/9 of a core beside busy work) the other test process would starve them.
    os.environ.setdefault("DIFFUSION_LAB_WORKER_NICE", "0")
# numpy's and scipy's OpenBLAS (scikit-learn's MLP fits, Fréchet distances) on one thread too:
# with two threads on a 2-core machine where anything else runs (the suite's own server,
# Chromium), OpenBLAS's spinning threads made the shape classifier's fit ~10× slower (7 s alone,
# 65-80 s beside other work). The variable covers copies loaded later (scipy's); threadpoolctl
# the one torch has already loaded (numpy's).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402  (scikit-learn's own dependency)

torch.set_num_threads(1)
threadpool_limits(int(os.environ["OPENBLAS_NUM_THREADS"]), user_api="blas")


import pytest  # noqa: E402

from tests.helpers import free_port  # noqa: E402


@pytest.fixture(scope="session")
def server():
    """The whole app, launched once on a free localhost port; yields its URL."""
    import app

    app.configure_threads()
    demo = app.build_demo()
    port = free_port()
    janitor = app.serve(demo, server_name="127.0.0.1", server_port=port, quiet=True)
    app.warm_up()  # as python app.py does
    yield f"http://127.0.0.1:{port}/"
    janitor.stop()
    demo.close()
    from pages import jobs

    pool = jobs.set_pool(None)
    if pool is not None:
        pool.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by playwright, one per test module (a module's own
    ``sync_playwright`` must end before the next one starts); skips when either is missing."""
    from tests.helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()

