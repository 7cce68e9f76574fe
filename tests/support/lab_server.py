"""The browser test's JupyterLab: a throwaway server on a loopback port, and where to find Chromium.

The server serves a temporary copy of the notebooks with authentication on (a random token that the
test passes in the URL), stores its settings, workspaces and runtime files in the same temporary folder
and is always stopped, kernels included. It exposes `window.jupyterapp`
(`--LabApp.expose_app_in_browser=True`, as JupyterLab's own UI tests do) for the page object.
"""

from __future__ import annotations

import json
import os
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

import pytest

CHROMIUM_ENV = "BNLIB_CHROMIUM"  # a Chromium/Chrome executable to use instead of the usual paths
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
    f"(or set {CHROMIUM_ENV} to a Chromium/Chrome executable) and `pip install -e '.[dev]'`"
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

def find_chromium():
    """The Chromium executable: `$BNLIB_CHROMIUM`, a usual system path, or one on PATH; None if there is none."""
    explicit = os.environ.get(CHROMIUM_ENV)
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


def browser_unavailable(reason):
    """Skip with the install hint; in CI (CI=true) fail instead, since CI must run the browser tests."""
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI must run the browser tests): {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"{reason}: {INSTALL_HINT}")


@contextmanager
def chromium_browser():
    """A Playwright Chromium browser, closed afterwards; skipped (in CI failed) without Chromium or Playwright."""
    chromium = find_chromium()
    if chromium is None:
        browser_unavailable("Chromium not found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_unavailable("Python Playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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
    server_env.pop("MPLBACKEND", None)  # the notebooks choose their own backend (use_widget_backend)
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
