"""Helpers for the browser test: a throwaway JupyterLab server and Playwright steps a user would take.

The server serves a temporary copy of the notebooks with authentication on (a random token that the
test passes in the URL), stores its settings, workspaces and runtime files in the same temporary folder
and is always stopped, kernels included. The page helpers drive JupyterLab through its menus and read
its state from the DOM and, for precise facts (kernel status, error outputs), from `window.jupyterapp`,
which the server exposes with `--LabApp.expose_app_in_browser=True`, as JupyterLab's own UI tests do.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
INSTALL_HINT = (
    "the browser test needs Chromium and Python Playwright: `apt-get install -y chromium` "
    "(or set BNLIB_CHROMIUM to a Chromium/Chrome executable) and `pip install -e '.[dev]'`"
)

# Settings the server starts with (its own user-settings folder, so a developer's settings don't apply):
# every cell attached to the DOM (so that all outputs render and can be checked and photographed),
# and no news or update toasts over the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def find_chromium():
    """The Chromium executable: `$BNLIB_CHROMIUM`, a usual system path, or one on PATH; None if there is none."""
    explicit = os.environ.get("BNLIB_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """A running JupyterLab: `url`, `token`, `root` (the served folder) and `log` (its output file)."""

    def __init__(self, url, token, root, log, process, runtime_dir):
        self.url, self.token, self.root, self.log = url, token, root, log
        self.process, self.runtime_dir = process, runtime_dir

    def api(self, method, path, timeout=10):
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def notebook_url(self, name, workspace):
        return f"{self.url}/lab/workspaces/{quote(workspace)}/tree/{quote(name)}?reset&token={self.token}"

    def shutdown_kernels(self):
        """Ends every session and kernel (best effort), so that the next notebook has the CPU to itself."""
        try:
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}")
            for kernel in self.api("GET", "/api/kernels"):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
        except (OSError, urllib.error.URLError, ValueError):
            pass

    def log_tail(self, chars=4000):
        try:
            return Path(self.log).read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _kernel_pids(runtime_dir):
    """Processes whose command line names a connection file in our runtime folder: our kernels (Linux)."""
    pids = []
    marker = str(runtime_dir).encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in pids if pid != os.getpid()]


def _stop(process, runtime_dir, grace=15):
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        except ProcessLookupError:
            pass
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(grace)
    # Kernels run in sessions of their own; any left over (a server killed hard) are ended by id.
    for pid in _kernel_pids(runtime_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def lab_server(notebook_dir, workdir, env=None, startup_timeout=180):
    """Start JupyterLab on a free loopback port serving a copy of `notebook_dir`; stop it on exit, whatever happens.

    `workdir` (an empty temporary folder) receives the copy (`workdir/notebooks`), the server's settings,
    workspaces, runtime files and its log (`workdir/jupyterlab.log`).
    """
    workdir = Path(workdir)
    root = workdir / "notebooks"
    shutil.copytree(notebook_dir, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    settings_dir, workspaces_dir = workdir / "lab-settings", workdir / "lab-workspaces"
    runtime_dir, config_dir = workdir / "runtime", workdir / "jupyter-config"
    for folder in (workspaces_dir, runtime_dir, config_dir):
        folder.mkdir()
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    port, token = free_port(), secrets.token_hex(24)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings_dir}",
        f"--LabApp.workspaces_dir={workspaces_dir}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    server_env = dict(os.environ if env is None else env)
    server_env.update(JUPYTER_RUNTIME_DIR=str(runtime_dir), JUPYTER_CONFIG_DIR=str(config_dir))
    server_env.pop("MPLBACKEND", None)  # the notebooks choose their own backend (%matplotlib widget)
    server_env.pop("JUPYTER_TOKEN", None)

    log_path = workdir / "jupyterlab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log_path, process, runtime_dir)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("GET", "/api/status", timeout=5)
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    message = f"JupyterLab did not start in {startup_timeout} s:\n{server.log_tail()}"
                    raise RuntimeError(message) from None
                time.sleep(0.5)
        yield server
    finally:
        server.shutdown_kernels()
        _stop(process, runtime_dir)


# --- in the page -------------------------------------------------------------------------------------

# The state of the notebook in the main area, read from the application model.
_NOTEBOOK_STATE_JS = """
() => {
  const app = window.jupyterapp;
  if (!app) return null;
  const panel = app.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session ? panel.sessionContext.session.kernel : null;
  const cells = [];
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    if (cell.model.sharedModel.getSource().trim() === '') return;  // Run All skips empty cells
    const prompt = cell.node.querySelector('.jp-InputArea-prompt');
    const errors = cell.model.outputs.toJSON().filter(o => o.output_type === 'error');
    cells.push({
      index,
      count: cell.model.executionCount,
      prompt: prompt ? prompt.textContent.trim() : '',
      errors: errors.map(e => ({ename: e.ename, evalue: e.evalue,
                                traceback: (e.traceback || []).join('\\n').replace(/\\x1b\\[[0-9;]*m/g, '')})),
      source: cell.model.sharedModel.getSource().slice(0, 300),
    });
  });
  return {
    ready: panel.context.isReady && panel.sessionContext.isReady,
    kernel: kernel ? kernel.status : null,
    kernelName: kernel ? kernel.name : null,
    cells,
  };
}
"""

# Widget outputs that did not render: ipywidgets' own failure texts ("Error displaying widget..."), its error
# view (a model or view class that failed to load), a view still "Loading widget...", or a widget output shown
# by another renderer (its text/plain fallback: the widget extension is missing). An empty output is fine:
# that is a widget closed by the code (a finished progress bar, for example).
_WIDGET_PROBLEMS_JS = """
(mime) => {
  const problems = [];
  const panel = window.jupyterapp.shell.currentWidget;
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    const outputs = cell.model.outputs.toJSON();
    const nodes = cell.node.querySelectorAll('.jp-OutputArea-child > .jp-OutputArea-output');
    outputs.forEach((output, k) => {
      const data = output.data || {};
      if (!data[mime]) return;
      const node = nodes[k];
      const text = node ? (node.textContent || '').trim() : '';
      const where = `code cell at index ${index}, output ${k}`;
      const shown = node ? node.getAttribute('data-mime-type') : null;
      if (!node) problems.push(`${where}: no output element`);
      else if (shown && shown !== mime)
        problems.push(`${where}: widget shown as ${shown} (is the widget extension installed?): ${text.slice(0, 150)}`);
      else if (node.querySelector('.jupyter-widgets-error-widget'))
        problems.push(`${where}: widget error view: ${text.slice(0, 300)}`);
      else if (/^(Error displaying widget|Loading widget\\.\\.\\.)/.test(text))
        problems.push(`${where}: ${text.slice(0, 200)}`);
    });
    // A traceback printed into an Output widget (code that catches errors in widget callbacks and prints them).
    cell.node.querySelectorAll('.widget-output').forEach(node => {
      const text = node.textContent || '';
      if (text.includes('Traceback (most recent call last)'))
        problems.push(`code cell at index ${index}: traceback in an Output widget:\n${text.slice(-1500)}`);
    });
  });
  return problems;
}
"""


class NotebookError(AssertionError):
    pass


def notebook_state(page):
    return page.evaluate(_NOTEBOOK_STATE_JS)


def format_errors(state):
    lines = []
    for cell in state["cells"]:
        for error in cell["errors"]:
            lines.append(f"--- code cell at index {cell['index']}:\n{cell['source']}\n>>> {error['traceback']}")
    return "\n".join(lines)


def open_notebook(page, server, name, workspace, timeout=120):
    """Open `name` in a fresh workspace and wait until its kernel has started and is idle."""
    page.goto(server.notebook_url(name, workspace), wait_until="domcontentloaded", timeout=timeout * 1000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=timeout * 1000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while True:
        state = notebook_state(page)
        if state and state["ready"] and state["kernel"] == "idle":
            return state
        if time.monotonic() > deadline:
            status = state and state["kernel"]
            raise NotebookError(f"{name}: the kernel did not become idle in {timeout} s (kernel: {status})")
        page.wait_for_timeout(500)


def collapse_left_sidebar(page):
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")


def run_all_cells(page):
    """Run > Run All Cells, through the menu bar as a user would."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def wait_for_run(page, name, timeout, settle=1.5, stuck=20):
    """Wait until every code cell has run and the kernel is idle; raise NotebookError at the first error output.

    Also fails when the kernel dies, or when it sits idle for `stuck` seconds with cells neither run nor queued
    (Run All stopped early without an error output).
    """
    deadline = time.monotonic() + timeout
    done_since = stuck_since = None
    while True:
        state = notebook_state(page)
        if state is None:
            raise NotebookError(f"{name}: the notebook is no longer the current widget")
        if any(cell["errors"] for cell in state["cells"]):
            raise NotebookError(f"{name}: a cell raised an error\n{format_errors(state)}")
        if state["kernel"] in ("dead", "unknown"):
            raise NotebookError(f"{name}: the kernel is {state['kernel']}\n{state}")
        idle = state["kernel"] == "idle" and not any("*" in cell["prompt"] for cell in state["cells"])
        unrun = [cell["index"] for cell in state["cells"] if cell["count"] is None]
        now = time.monotonic()
        done_since = (done_since or now) if idle and not unrun else None
        stuck_since = (stuck_since or now) if idle and unrun else None
        if done_since and now - done_since >= settle:
            return state
        if stuck_since and now - stuck_since >= stuck:
            raise NotebookError(f"{name}: the kernel is idle but code cells at {unrun} did not run")
        if now > deadline:
            pending = [cell["index"] for cell in state["cells"] if cell["count"] is None or "*" in cell["prompt"]]
            raise NotebookError(f"{name}: not finished after {timeout} s; kernel {state['kernel']}, pending {pending}")
        page.wait_for_timeout(1000)


def widget_problems(page):
    return page.evaluate(_WIDGET_PROBLEMS_JS, WIDGET_MIME)


def wait_for_widgets(page, name, timeout=60):
    """Wait until no widget output is still loading; raise NotebookError when a widget failed to render."""
    deadline = time.monotonic() + timeout
    while True:
        problems = widget_problems(page)
        loading = [p for p in problems if "Loading widget" in p]
        if problems and not loading or time.monotonic() > deadline and problems:
            raise NotebookError(f"{name}: widget problems:\n" + "\n".join(problems))
        if not problems:
            return
        page.wait_for_timeout(500)


_NOTEBOOK_EXTENT_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const scroller = panel.node.querySelector('.jp-WindowedPanel-outer') || panel.content.node;
  scroller.scrollTop = 0;
  const cells = panel.content.node.querySelectorAll('.jp-Cell');
  const box = scroller.getBoundingClientRect();
  const last = cells.length ? cells[cells.length - 1].getBoundingClientRect().bottom : box.bottom;
  return {content: last - box.top, chrome: window.innerHeight - box.height};
}
"""


def screenshot_notebook(page, path, max_height=16000):
    """A screenshot of the whole notebook: scrolled to the top, with the viewport as tall as the notebook."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size
    extent = page.evaluate(_NOTEBOOK_EXTENT_JS)
    height = int(min(max_height, max(viewport["height"], extent["content"] + extent["chrome"] + 30)))
    page.set_viewport_size({"width": viewport["width"], "height": height})
    page.wait_for_timeout(1500)  # layout and canvases settle at the new size
    page.evaluate(_NOTEBOOK_EXTENT_JS)  # scroll to the top again after the resize
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    page.set_viewport_size(viewport)
    page.wait_for_timeout(500)
    return path


# Errors raised in widget callbacks (an `observe` handler, a button click) do not appear in a cell: JupyterLab
# routes them to the log console. This opens the log console and returns the error outputs logged for the
# notebook in the main area.
_LOG_CONSOLE_ERRORS_JS = """
async () => {
  const app = window.jupyterapp;
  const notebook = app.shell.currentWidget;
  const source = notebook.context.path;
  await app.commands.execute('logconsole:open', {source});
  await new Promise(resolve => setTimeout(resolve, 500));
  for (const widget of app.shell.widgets('down')) {
    const registry = widget.content && widget.content.loggerRegistry;
    if (!registry) continue;
    return registry.getLoggers()
      .filter(logger => logger.source === source)
      .flatMap(logger => logger.outputAreaModel.toJSON())
      .filter(output => output.output_type === 'error')
      .map(e => (e.traceback || [e.ename + ': ' + e.evalue]).join('\\n').replace(/\\x1b\\[[0-9;]*m/g, ''));
  }
  return ['the log console did not open'];
}
"""


def log_console_errors(page):
    """Error outputs in the notebook's log console (errors raised in widget callbacks); opens the log console."""
    return page.evaluate(_LOG_CONSOLE_ERRORS_JS)


def wait_for_idle(page, name, timeout=120, settle=1.0):
    """Wait until the kernel has been idle for `settle` seconds (widget callbacks finished)."""
    deadline = time.monotonic() + timeout
    idle_since = None
    while True:
        state = notebook_state(page)
        now = time.monotonic()
        idle_since = (idle_since or now) if state and state["kernel"] == "idle" else None
        if idle_since and now - idle_since >= settle:
            return state
        if now > deadline:
            raise NotebookError(f"{name}: the kernel is still {state and state['kernel']} after {timeout} s")
        page.wait_for_timeout(250)


def wait_for_change(page, read, before, what, timeout=120):
    """Poll `read()` until it differs from `before`, then until it is stable; return the new value."""
    deadline = time.monotonic() + timeout
    value = read()
    while value == before:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not change in {timeout} s")
        page.wait_for_timeout(500)
        value = read()
    while True:  # a redraw can come in steps: wait until two readings agree
        page.wait_for_timeout(700)
        again = read()
        if again == value or time.monotonic() > deadline:
            return again
        value = again


class MomentumExplorer:
    """The momentum explorer (`bnlib.widgets`) in the page, found by what a user sees: the code cell whose output
    holds a slider labelled "momentum", an accuracy readout (a Label that mentions accuracy and ends in a
    percentage), an ipympl figure, a "cumulative" checkbox or toggle, a "step" slider and a Play control."""

    def __init__(self, page):
        self.page = page
        momentum_label = page.locator("label.widget-label", has_text=re.compile("momentum", re.I))
        momentum_slider = page.locator(".widget-slider").filter(has=momentum_label)
        self.cell = page.locator(".jp-CodeCell").filter(has=momentum_slider).last
        self.slider = self.cell.locator(".widget-slider").filter(has=momentum_label).first
        step_label = page.locator("label.widget-label", has_text=re.compile(r"^\s*(step|batch|iteration)", re.I))
        self.step_slider = self.cell.locator(".widget-slider").filter(has=step_label).first
        self.accuracy = (
            self.cell.locator("div.widget-label:not(.jupyter-matplotlib-header):not(.jupyter-matplotlib-footer)")
            .filter(has_text=re.compile("accuracy", re.I))
            .first
        )
        self.figure = self.cell.locator(".jupyter-matplotlib-canvas-div").first
        self.cumulative = (
            self.cell.locator(".widget-checkbox, .widget-toggle-button")
            .filter(has_text=re.compile("cumulative", re.I))
            .first
        )
        self.play = self.cell.locator(".widget-play").first
        self.output = self.cell.locator(".jp-Cell-outputWrapper").first

    def check_present(self, timeout=30):
        for what, locator in [
            ("momentum slider", self.slider),
            ("accuracy readout", self.accuracy),
            ("ipympl figure (is %matplotlib widget on?)", self.figure),
            ("cumulative-average checkbox", self.cumulative),
            ("step slider", self.step_slider),
            ("play control", self.play),
        ]:
            try:
                locator.wait_for(state="visible", timeout=timeout * 1000)
            except Exception as error:  # playwright's TimeoutError
                raise AssertionError(f"momentum explorer: no visible {what}") from error
        self.slider.scroll_into_view_if_needed()

    def rest_mouse(self):
        """Move the pointer off the figure (ipympl fades its toolbar in under the pointer)."""
        self.page.mouse.move(2, 2)

    def _type_into(self, slider, text):
        """Type into a slider's readout and press Enter, as a user would."""
        readout = slider.locator(".widget-readout")
        readout.click()
        self.page.keyboard.press("ControlOrMeta+A")
        self.page.keyboard.type(text)
        self.page.keyboard.press("Enter")
        readout.blur()
        self.rest_mouse()

    # --- what the explorer shows ---

    def accuracy_text(self):
        return self.accuracy.inner_text().strip()

    def accuracy_value(self):
        """The accuracy in the readout: its last percentage."""
        numbers = re.findall(r"(\d+(?:\.\d+)?)\s*%", self.accuracy_text())
        assert numbers, f"no percentage in the accuracy readout {self.accuracy_text()!r}"
        return float(numbers[-1])

    def figure_png(self):
        self.rest_mouse()
        return self.figure.screenshot(animations="disabled")

    def shown(self):
        """Readout text and figure pixels: what changes when a control does."""
        return self.accuracy_text(), self.figure_png()

    def printed_errors(self):
        """Tracebacks printed inside the explorer (it catches errors in its update and prints them to an Output)."""
        texts = self.cell.locator(".widget-output").all_inner_texts()
        return [text for text in texts if "Traceback" in text or "Error" in text]

    def screenshot(self, path):
        """A screenshot of the explorer's output; the viewport grows for the shot when the output is taller."""
        self.rest_mouse()
        viewport = self.page.viewport_size
        height = self.output.evaluate("node => node.getBoundingClientRect().height")
        if height + 200 > viewport["height"]:
            self.page.set_viewport_size({"width": viewport["width"], "height": int(height + 200)})
            self.page.wait_for_timeout(1000)
        try:
            self.output.evaluate("node => node.scrollIntoView({block: 'start'})")
            self.page.wait_for_timeout(300)
            return self.output.screenshot(path=str(path), animations="disabled")
        finally:
            if self.page.viewport_size != viewport:
                self.page.set_viewport_size(viewport)
                self.page.wait_for_timeout(500)

    # --- the controls ---

    def momentum_text(self):
        return self.slider.locator(".widget-readout").inner_text().strip()

    def momentum_disabled(self):
        return self.slider.locator(".widget-readout").get_attribute("contenteditable") == "false"

    def type_momentum(self, text):
        self._type_into(self.slider, text)

    def cumulative_on(self):
        box = self.cumulative.locator("input[type=checkbox]")
        if box.count():
            return box.is_checked()
        return "mod-active" in (self.cumulative.get_attribute("class") or "")

    def toggle_cumulative(self):
        box = self.cumulative.locator("input[type=checkbox]")
        (box if box.count() else self.cumulative).click()
        self.rest_mouse()

    def step_value(self):
        return int(self.step_slider.locator(".widget-readout").inner_text().strip())

    def step_max(self):
        return int(float(self.step_slider.locator(".noUi-handle").get_attribute("aria-valuemax")))

    def set_step(self, step):
        self._type_into(self.step_slider, str(step))

    def step_with_play(self, timeout=60):
        """Press Play, wait until the step moves, press it again (pause): one step or a few of the play control."""
        before = self.step_value()
        button = self.play.locator("button").first  # play; while playing, the same button pauses
        button.click()
        deadline = time.monotonic() + timeout
        while self.step_value() == before and time.monotonic() < deadline:
            self.page.wait_for_timeout(50)
        button.click()
        self.rest_mouse()
