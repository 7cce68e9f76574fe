"""The slider as the class sees it: notebook 04 in JupyterLab in Chromium, full mode (its 50-epoch recording),
one arrow-key step of the momentum slider at a time, timed in the page from the key press to new figure pixels.

Uses the browser test's server and page objects (tests/support/lab_server.py, tests/support/notebook_page.py).
Without Chromium or Playwright it measures nothing and says why.
"""

import os
import secrets
import sys
import tempfile
from pathlib import Path

import numpy as np

from bnlib.config import QUICK_ENV
from bnlib.widgets.live import LIVE_ENV

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = "04_running_statistics.ipynb"
VIEWPORT = {"width": 1280, "height": 900}


def time_slider_in_browser(steps=20, quick=False, run_timeout=1800, log=print):
    """{slider_browser_ms_median, slider_browser_ms_p95, slider_browser: {...}}, or {"notes": [why not]}."""
    sys.path.insert(0, str(REPO))
    try:
        from playwright.sync_api import sync_playwright

        from tests.support.lab_server import CHROMIUM_ARGS, find_chromium, lab_server
        from tests.support.notebook_page import MomentumExplorer, NotebookPage
    except ImportError as error:
        return {"notes": [f"slider_browser not measured: {error} (pip install -e '.[dev]')"]}
    finally:
        sys.path.remove(str(REPO))
    chromium = find_chromium()
    if chromium is None:
        return {"notes": ["slider_browser not measured: no Chromium (apt-get install -y chromium)"]}
    env = os.environ | {QUICK_ENV: "1" if quick else "0", LIVE_ENV: "0"}
    with tempfile.TemporaryDirectory() as workdir, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            with lab_server(REPO / "notebooks", workdir, env=env) as lab:
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(60_000)
                notebook = NotebookPage(page, NOTEBOOK)
                notebook.open(lab, workspace=f"bench-{secrets.token_hex(4)}")
                notebook.collapse_left_sidebar()
                log(f"  running {NOTEBOOK} in JupyterLab ({'quick' if quick else 'full'} mode) ...")
                notebook.run_all_cells()
                notebook.wait_for_run(run_timeout)
                explorer = MomentumExplorer(page)
                explorer.check_present()
                notebook.wait_for_idle()
                timings = explorer.time_keyboard_steps(notebook, count=steps)
                figure = explorer.figure.evaluate(  # e.g. "canvas in jupyter-matplotlib-canvas-div" for ipympl
                    "e => `${e.tagName.toLowerCase()}.${e.className} in ${e.parentElement.className}`")
        finally:
            browser.close()
    return {
        "slider_browser_ms_median": float(np.median(timings)),
        "slider_browser_ms_p95": float(np.percentile(timings, 95)),
        "slider_browser": {"notebook": NOTEBOOK, "mode": "quick" if quick else "full", "steps": len(timings),
                           "figure_element": figure, "browser": chromium, "ms": timings},
    }
