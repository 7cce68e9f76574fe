"""Page objects for the browser test: a notebook open in JupyterLab, and the momentum explorer in it.

`NotebookPage` drives JupyterLab through its menus as a user would and reads its state from the
application model (`window.jupyterapp`: kernel status, error outputs, widget views), waiting with
Playwright's own `wait_for_function` / `expect`. `MomentumExplorer` finds the explorer by what a user
sees and measures, in the page, how long a keyboard step of the momentum slider takes to change the
figure's pixels.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# Helpers installed in every page (`page.add_init_script`) as `window.bnlibTest`, so the waits below are one-liners.
_PAGE_HELPERS_JS = """
window.bnlibTest = {
  // The notebook in the main area, read from the application model.
  state() {
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
  },
  // Polled until Run All has finished: the state once every code cell has run and the kernel has been idle for
  // `settle` ms; at once on an error output or a dead kernel; or, marked stuck, when the kernel has sat idle for
  // `stuck` ms with cells neither run nor queued (Run All stopped early). Null while running.
  memo: {},
  runFinished(settle, stuck) {
    const state = this.state();
    if (!state) return {gone: true};
    if (state.cells.some(cell => cell.errors.length) || ['dead', 'unknown'].includes(state.kernel)) return state;
    const idle = state.kernel === 'idle' && !state.cells.some(cell => cell.prompt.includes('*'));
    const unrun = state.cells.some(cell => cell.count === null);
    const now = performance.now(), memo = this.memo;
    memo.done = idle && !unrun ? (memo.done || now) : null;
    memo.stuck = idle && unrun ? (memo.stuck || now) : null;
    if (memo.done && now - memo.done >= settle) return state;
    if (memo.stuck && now - memo.stuck >= stuck) return Object.assign(state, {stuck: true});
    return null;
  },
  // Polled: true once the kernel has been idle for `settle` ms.
  idleFor(settle) {
    const state = this.state(), now = performance.now(), memo = this.memo;
    memo.idle = state && state.kernel === 'idle' ? (memo.idle || now) : null;
    return memo.idle !== null && now - memo.idle >= settle;
  },
  // What an element shows: a hash of a canvas's pixels, or of an image's source (a data URL for a PNG output).
  fingerprint(element) {
    let hash = 0;
    if (element.tagName !== 'CANVAS') {
      const source = element.currentSrc || element.src || element.textContent;
      for (let i = 0; i < source.length; i++) hash = (Math.imul(hash, 31) + source.charCodeAt(i)) | 0;
      return `${source.length}:${hash}`;
    }
    const pixels = element.getContext('2d').getImageData(0, 0, element.width, element.height).data;
    for (let i = 0; i < pixels.length; i += 4) {
      hash = (Math.imul(hash, 31) + pixels[i] + 7 * pixels[i + 1] + 13 * pixels[i + 2]) | 0;
    }
    return `${element.width}x${element.height}:${hash}`;
  },
  // Arms a measurement: the next key press (its event time) starts the clock, and the first animation frame
  // that finds the fingerprint of `element` changed stops it; the result lands in `latency` (ms; null: timed out).
  armLatency(element, timeoutMs) {
    const before = this.fingerprint(element);
    this.latency = undefined;
    let pressed = null;
    window.addEventListener('keydown', event => { pressed = event.timeStamp; }, {capture: true, once: true});
    const watch = () => {  // once per frame
      const now = performance.now();
      if (pressed !== null && now - pressed > timeoutMs) { this.latency = null; return; }
      if (pressed !== null && this.fingerprint(element) !== before) { this.latency = now - pressed; return; }
      requestAnimationFrame(watch);
    };
    requestAnimationFrame(watch);
  },
};
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
        problems.push(`code cell at index ${index}: traceback in an Output widget:\\n${text.slice(-1500)}`);
    });
  });
  return problems;
}
"""

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


class NotebookError(AssertionError):
    pass


def format_errors(state):
    lines = []
    for cell in state["cells"]:
        for error in cell["errors"]:
            lines.append(f"--- code cell at index {cell['index']}:\n{cell['source']}\n>>> {error['traceback']}")
    return "\n".join(lines)


class NotebookPage:
    """One notebook (`name`) open in JupyterLab in `page`."""

    def __init__(self, page, name):
        self.page, self.name = page, name
        page.add_init_script(_PAGE_HELPERS_JS)  # before open(): the helpers exist in the notebook's page

    def state(self):
        """{ready, kernel, kernelName, cells: [{index, count, prompt, errors, source}]} of the current notebook."""
        return self.page.evaluate("() => window.bnlibTest.state()")

    def open(self, server, workspace, timeout=120):
        """Open the notebook in a fresh workspace and wait until its kernel has started and is idle."""
        self.page.goto(server.notebook_url(self.name, workspace), wait_until="domcontentloaded", timeout=timeout * 1000)
        ready = "() => { const s = window.bnlibTest.state(); return s && s.ready && s.kernel === 'idle'; }"
        try:
            self.page.wait_for_function(ready, timeout=timeout * 1000, polling=500)
        except PlaywrightTimeout:
            state = self.state()
            status = state and state["kernel"]
            raise NotebookError(f"{self.name}: the kernel did not become idle in {timeout} s ({status})") from None
        expect(self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first).to_be_attached()

    def collapse_left_sidebar(self):
        self.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")

    def run_all_cells(self):
        """Run > Run All Cells, through the menu bar as a user would."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        menu = self.page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel", has_text="Run All Cells")
        menu.first.click()

    def wait_for_run(self, timeout, settle=1.5, stuck=20):
        """Wait until every code cell has run and the kernel is idle; NotebookError at the first error output,
        a dead kernel, or a kernel idle for `stuck` seconds with cells left unrun."""
        self.page.evaluate("() => { window.bnlibTest.memo = {}; }")
        try:
            handle = self.page.wait_for_function(
                "([settle, stuck]) => window.bnlibTest.runFinished(settle, stuck)",
                arg=[settle * 1000, stuck * 1000],
                timeout=timeout * 1000,
                polling=1000,
            )
        except PlaywrightTimeout:
            state = self.state() or {"kernel": None, "cells": []}
            pending = [cell["index"] for cell in state["cells"] if cell["count"] is None or "*" in cell["prompt"]]
            raise NotebookError(f"{self.name}: not finished after {timeout} s; kernel {state['kernel']}, "
                                f"pending {pending}") from None
        state = handle.json_value()
        if state.get("gone"):
            raise NotebookError(f"{self.name}: the notebook is no longer the current widget")
        if any(cell["errors"] for cell in state["cells"]):
            raise NotebookError(f"{self.name}: a cell raised an error\n{format_errors(state)}")
        if state["kernel"] in ("dead", "unknown"):
            raise NotebookError(f"{self.name}: the kernel is {state['kernel']}\n{state}")
        if state.get("stuck"):
            unrun = [cell["index"] for cell in state["cells"] if cell["count"] is None]
            raise NotebookError(f"{self.name}: the kernel is idle but code cells at {unrun} did not run")
        return state

    def wait_for_idle(self, timeout=120, settle=1.0):
        """Wait until the kernel has been idle for `settle` seconds (widget callbacks finished)."""
        self.page.evaluate("() => { window.bnlibTest.memo = {}; }")
        try:
            self.page.wait_for_function(
                "settle => window.bnlibTest.idleFor(settle)", arg=settle * 1000, timeout=timeout * 1000, polling=100
            )
        except PlaywrightTimeout:
            state = self.state()
            status = state and state["kernel"]
            raise NotebookError(f"{self.name}: the kernel is still {status} after {timeout} s") from None

    def widget_problems(self):
        return self.page.evaluate(_WIDGET_PROBLEMS_JS, WIDGET_MIME)

    def wait_for_widgets(self, timeout=60):
        """Wait until no widget output is still loading; NotebookError when a widget failed to render."""
        loaded = f"mime => !({_WIDGET_PROBLEMS_JS.strip()})(mime).some(p => p.includes('Loading widget'))"
        try:
            self.page.wait_for_function(loaded, arg=WIDGET_MIME, timeout=timeout * 1000, polling=500)
        except PlaywrightTimeout:
            pass  # reported below with the rest
        problems = self.widget_problems()
        if problems:
            raise NotebookError(f"{self.name}: widget problems:\n" + "\n".join(problems))

    def log_console_errors(self):
        """Error outputs in the notebook's log console (errors raised in widget callbacks); opens the log console."""
        return self.page.evaluate(_LOG_CONSOLE_ERRORS_JS)

    def screenshot(self, path, max_height=16000):
        """A screenshot of the whole notebook: scrolled to the top, with the viewport as tall as the notebook."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        viewport = self.page.viewport_size
        extent = self.page.evaluate(_NOTEBOOK_EXTENT_JS)
        height = int(min(max_height, max(viewport["height"], extent["content"] + extent["chrome"] + 30)))
        self.page.set_viewport_size({"width": viewport["width"], "height": height})
        self.page.wait_for_timeout(1500)  # layout and canvases settle at the new size
        self.page.evaluate(_NOTEBOOK_EXTENT_JS)  # scroll to the top again after the resize
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(path))
        self.page.set_viewport_size(viewport)
        self.page.wait_for_timeout(500)
        return path


class MomentumExplorer:
    """The momentum explorer in the page, found by what a user sees: the code cell whose output
    holds a slider labelled "momentum", an accuracy readout (a Label that mentions accuracy and ends in a
    percentage), the figure (a canvas or an image), a "cumulative" checkbox, a "step" slider and a Play control."""

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
        self.figure = self.cell.locator("canvas, .widget-image").first
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
            ("figure (a canvas or an image)", self.figure),
            ("cumulative-average checkbox", self.cumulative),
            ("step slider", self.step_slider),
            ("play control", self.play),
        ]:
            try:
                expect(locator, f"momentum explorer: no visible {what}").to_be_visible(timeout=timeout * 1000)
            except AssertionError as error:
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

    def figure_fingerprint(self):
        """A hash of the figure's pixels (a canvas) or its source (an image): it changes when the figure does."""
        return self.figure.evaluate("element => window.bnlibTest.fingerprint(element)")

    def wait_for_figure_change(self, before, what, timeout=60):
        """Wait until the figure no longer shows `before` (a figure_fingerprint)."""
        changed = "([element, before]) => window.bnlibTest.fingerprint(element) !== before"
        try:
            self.page.wait_for_function(changed, arg=[self.figure.element_handle(), before], timeout=timeout * 1000)
        except PlaywrightTimeout:
            raise AssertionError(f"the explorer's figure did not change in {timeout} s after {what}") from None

    def wait_for_text_change(self, locator, before, what, timeout=60):
        expect(locator, f"{what} still reads {before!r}").not_to_have_text(before, timeout=timeout * 1000)

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

    def momentum_readout(self):
        return self.slider.locator(".widget-readout")

    def momentum_text(self):
        return self.momentum_readout().inner_text().strip()

    def momentum_disabled(self):
        return self.momentum_readout().get_attribute("contenteditable") == "false"

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

    def step_readout(self):
        return self.step_slider.locator(".widget-readout")

    def step_value(self):
        return int(self.step_readout().inner_text().strip())

    def step_max(self):
        return int(float(self.step_slider.locator(".noUi-handle").get_attribute("aria-valuemax")))

    def set_step(self, step):
        self._type_into(self.step_slider, str(step))

    def drag_momentum(self, fraction, moves=12):
        """Drag the momentum handle with the mouse to `fraction` (0..1) of its track, in `moves` mouse moves."""
        handle = self.slider.locator(".noUi-handle").first.bounding_box()
        track = self.slider.locator(".noUi-target").first.bounding_box()
        y = handle["y"] + handle["height"] / 2
        self.page.mouse.move(handle["x"] + handle["width"] / 2, y)
        self.page.mouse.down()
        self.page.mouse.move(track["x"] + fraction * track["width"], y, steps=moves)
        self.page.mouse.up()
        self.rest_mouse()

    def step_with_play(self, timeout=60):
        """Press Play, wait until the step moves, press it again (pause): one step or a few of the play control."""
        before = self.step_readout().inner_text()
        button = self.play.locator("button").first  # play; while playing, the same button pauses
        button.click()
        expect(self.step_readout()).not_to_have_text(before, timeout=timeout * 1000)
        button.click()
        self.rest_mouse()

    def time_keyboard_steps(self, notebook, count=20, warm_up=2, key="ArrowRight", timeout=5.0):
        """Milliseconds from each key press on the focused momentum handle to the figure's pixels changing.

        `warm_up` steps first, not counted; after each step the kernel is let go idle, so steps do not overlap.
        A step whose figure did not change within `timeout` seconds raises AssertionError.
        """
        self.rest_mouse()
        handle, figure = self.slider.locator(".noUi-handle"), self.figure.element_handle()
        timings = []
        for index in range(warm_up + count):
            handle.focus()
            value = self.momentum_text()
            self.page.evaluate("([figure, ms]) => window.bnlibTest.armLatency(figure, ms)", [figure, timeout * 1000])
            self.page.keyboard.press(key)
            done = "() => window.bnlibTest.latency !== undefined"
            self.page.wait_for_function(done, timeout=(timeout + 5) * 1000)
            latency = self.page.evaluate("() => window.bnlibTest.latency")
            assert latency is not None, f"key step {index}: the figure did not change within {timeout} s"
            expect(self.momentum_readout()).not_to_have_text(value)
            notebook.wait_for_idle(settle=0.3)
            if index >= warm_up:
                timings.append(latency)
        return timings


def latency_summary(timings):
    """{median, p95, count} of latencies in ms (NumPy's linear percentile)."""
    return {"median": float(np.median(timings)), "p95": float(np.percentile(timings, 95)), "count": len(timings)}


class PredictQuestion:
    """A predict-then-reveal question (`bnlib.widgets.predict`) in the page, found by its CSS classes: radio choices,
    a Reveal button and a feedback line that starts with "Right." or "Not quite." once revealed."""

    def __init__(self, root):
        self.root = root
        self.choices = root.locator(".bnlib-predict-choices input[type=radio]")
        self.labels = root.locator(".bnlib-predict-choices .widget-radio-box label")
        self.reveal_button = root.locator(".bnlib-predict-reveal").first
        self.feedback = root.locator(".bnlib-predict-feedback").first

    @classmethod
    def all_in(cls, page):
        questions = page.locator(".bnlib-predict")
        return [cls(questions.nth(index)) for index in range(questions.count())]

    def options(self):
        return [text.strip() for text in self.labels.all_inner_texts()]

    def answer(self, index):
        """Pick choice `index`, press Reveal, wait for the verdict; returns (the chosen text, the feedback text)."""
        self.root.scroll_into_view_if_needed()
        chosen = self.options()[index]
        expect(self.reveal_button).to_be_disabled()  # nothing to reveal before a prediction
        self.choices.nth(index).check()
        expect(self.reveal_button).to_be_enabled()
        self.reveal_button.click()
        expect(self.feedback).to_have_text(re.compile(r"^\s*(Right\.|Not quite\.)"))
        return chosen, self.feedback.inner_text().strip()

    def locked(self):
        """True when every choice is disabled (the prediction cannot change after the reveal)."""
        return all(self.choices.nth(index).is_disabled() for index in range(self.choices.count()))

    def verdict_class(self):
        classes = self.feedback.get_attribute("class") or ""
        return "right" if "bnlib-predict-right" in classes else "wrong" if "bnlib-predict-wrong" in classes else None
