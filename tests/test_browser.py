"""The notebooks in a real JupyterLab in a real browser (Chromium driven by Playwright), as an instructor uses them.

For each notebook: open it in a fresh workspace, Run > Run All Cells, wait until every cell has run and the
kernel is idle, and fail on any error output, any widget that did not render, or any error a widget callback
logged. In the running-statistics notebook, also use the momentum explorer: time one arrow-key step of the
momentum slider at a time from the key press to new pixels in the figure (median and p95, printed), drag
its handle (the readout ends on the final value), type a new momentum into the slider's readout at an early
training step and check that the accuracy readout and the plot change, toggle cumulative averaging, and
step the play control. In a notebook with predict-then-reveal questions, answer the first one and check its
verdict; two generated notebooks check a question answered wrong and right, and live learning curves that
change while the kernel trains. The explorer notebook's HTML export (as `make run` makes it) must show a
picture of the explorer, not a widget placeholder.

Screenshots go to build/screenshots/: one per notebook, the explorer before and after the slider move, the
explorer in the HTML export, and one of the page when a notebook fails. Select with `pytest -m browser`;
the server runs in quick mode (BNLIB_QUICK=1) and passes BNLIB_DATA_DIR on. Without Chromium or Playwright
the test is skipped, with an install hint; in CI (CI=true) that is a failure instead.
"""

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests.support.lab_server import chromium_browser, lab_server

try:
    from playwright.sync_api import expect

    from tests.support.notebook_page import MomentumExplorer, NotebookPage, PredictQuestion, latency_summary
except ImportError:  # no Playwright: the browser fixture below skips with the install hint (fails in CI)
    MomentumExplorer = NotebookPage = PredictQuestion = latency_summary = expect = None

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(path.name for path in NOTEBOOK_DIR.glob("*.ipynb"))
SCREENSHOTS = REPO / "build" / "screenshots"
EXPLORER_NOTEBOOK = "04_running_statistics.ipynb"
RUN_TIMEOUT = float(os.environ.get("BNLIB_BROWSER_TIMEOUT", "900"))  # seconds per notebook for Run All
VIEWPORT = {"width": 1280, "height": 900}
KEY_STEPS = 20  # timed keyboard steps of the momentum slider
EARLY_STEP = 20  # the explorer's step for the slider move (capped at a quarter of the run): weights are kept there


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    """JupyterLab serving a temporary copy of notebooks/, in quick mode; stopped at the end, kernels included."""
    env = dict(os.environ, BNLIB_QUICK="1")  # BNLIB_DATA_DIR and the session's BNLIB_CACHE_DIR pass through
    with lab_server(NOTEBOOK_DIR, tmp_path_factory.mktemp("jupyterlab"), env=env) as server:
        yield server


@pytest.fixture
def page(browser, lab):
    """A fresh browser context per notebook; afterwards, the kernels are shut down."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.console_errors = []  # the browser console's errors, printed when the test fails
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    try:
        yield page
    finally:
        context.close()
        lab.shutdown_kernels()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_jupyterlab(name, page, lab):
    stem = Path(name).stem
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    failed_shot = SCREENSHOTS / f"{stem}-FAILED.png"
    failed_shot.unlink(missing_ok=True)
    started = time.monotonic()
    notebook = NotebookPage(page, name)
    try:
        notebook.open(lab, workspace=f"browser-test-{stem}-{secrets.token_hex(4)}")
        notebook.collapse_left_sidebar()
        notebook.run_all_cells()
        state = notebook.wait_for_run(RUN_TIMEOUT)
        assert state["kernelName"] == "python3", f"{name} runs on kernel {state['kernelName']}"
        notebook.wait_for_widgets()
        notebook.screenshot(SCREENSHOTS / f"{stem}.png")
        print(f"\n{name}: ran in JupyterLab in {time.monotonic() - started:.0f} s")

        if name == EXPLORER_NOTEBOOK:
            exercise_momentum_explorer(notebook, stem)
        questions = PredictQuestion.all_in(page)
        if questions:
            answer_a_prediction(questions[0], name)

        notebook.wait_for_widgets()  # again, after the interactions
        errors = notebook.log_console_errors()
        assert not errors, f"{name}: errors in widget callbacks (log console):\n" + "\n\n".join(errors)
    except BaseException:
        try:
            page.screenshot(path=str(failed_shot))
            console = "\n".join(getattr(page, "console_errors", [])[-10:])
            print(f"\n{name} failed: screenshot in {failed_shot}\nbrowser console errors:\n{console}")
            print(f"JupyterLab log (end):\n{lab.log_tail(2000)}")
        except Exception as error:  # the page may be gone; the original failure is what matters
            print(f"\n{name} failed; no screenshot: {error}")
        raise
    print(f"{name}: passed in {time.monotonic() - started:.0f} s")


def exercise_momentum_explorer(notebook, stem):
    """Use the momentum explorer as in the lecture; screenshots before and after the slider move."""
    explorer = MomentumExplorer(notebook.page)
    explorer.check_present()
    notebook.wait_for_idle()

    # An early training step, where the running statistics are young and momentum matters most.
    step = min(EARLY_STEP, max(1, explorer.step_max() // 4))
    if explorer.step_value() != step:
        figure = explorer.figure_fingerprint()
        explorer.set_step(step)
        expect(explorer.step_readout()).to_have_text(str(step), timeout=30_000)
        notebook.wait_for_idle()
        explorer.wait_for_figure_change(figure, "moving to an early step")

    # One keyboard step of the momentum slider at a time (handle focused, an arrow key): what the class waits for.
    timings = explorer.time_keyboard_steps(notebook, count=KEY_STEPS)
    latency = latency_summary(timings)
    print(f"momentum slider, one arrow-key step to new pixels in the figure: median {latency['median']:.0f} ms, "
          f"p95 {latency['p95']:.0f} ms over {latency['count']} steps")

    # Drag the handle: the values in between may be dropped, the last one never.
    before, figure = explorer.momentum_text(), explorer.figure_fingerprint()
    explorer.drag_momentum(0.3)
    expect(explorer.momentum_readout()).not_to_have_text(before)
    notebook.wait_for_idle()
    dragged = explorer.momentum_text()
    explorer.wait_for_figure_change(figure, "dragging the momentum slider")
    expect(explorer.accuracy).to_contain_text(f"momentum {dragged}:")  # the readout is for the final value
    print(f"momentum dragged from {before} to {dragged}")

    # Move the momentum slider as a user would: type into its readout (-> 0.001 or 0.1).
    momentum = explorer.momentum_text()
    target = "0.001" if float(momentum) > 0.002 else "0.1"
    accuracy, text, figure = explorer.accuracy_value(), explorer.accuracy_text(), explorer.figure_fingerprint()
    explorer.screenshot(SCREENSHOTS / f"{stem}-slider-before.png")
    explorer.type_momentum(target)
    expect(explorer.momentum_readout()).to_have_text(re.compile(re.escape(target)), timeout=30_000)
    explorer.wait_for_text_change(explorer.accuracy, text, "the accuracy readout")
    explorer.wait_for_figure_change(figure, f"typing momentum {target}")
    notebook.wait_for_idle()
    explorer.screenshot(SCREENSHOTS / f"{stem}-slider-after.png")
    new_accuracy = explorer.accuracy_value()
    print(f"step {step}, momentum {momentum} -> {target}: eval accuracy {accuracy} % -> {new_accuracy} %")
    assert new_accuracy != accuracy, f"at step {step}, momentum {momentum} and {target} give the same accuracy"

    # Cumulative averaging: the checkbox flips, the slider is disabled, and the readout and plot change.
    for switch_on in (True, False):
        text, figure = explorer.accuracy_text(), explorer.figure_fingerprint()
        explorer.toggle_cumulative()
        notebook.wait_for_idle()
        assert explorer.cumulative_on() == switch_on, "the cumulative-average checkbox did not flip"
        explorer.wait_for_text_change(explorer.accuracy, text, "the accuracy readout")
        explorer.wait_for_figure_change(figure, "switching cumulative averaging " + ("on" if switch_on else "off"))
        assert explorer.momentum_disabled() == switch_on, "the momentum slider's state does not follow the checkbox"
        if switch_on:
            explorer.screenshot(SCREENSHOTS / f"{stem}-cumulative.png")

    # The play control moves the training step, forward, and the explorer follows.
    steps = [explorer.step_value()]
    for _ in range(2):  # Play, pause; then Play again from where it paused: later steps
        figure = explorer.figure_fingerprint()
        explorer.step_with_play()
        notebook.wait_for_idle()
        explorer.wait_for_figure_change(figure, "stepping the play control")
        steps.append(explorer.step_value())
    assert steps[2] > steps[1], f"Play went from step {steps[1]} back to {steps[2]}"
    explorer.screenshot(SCREENSHOTS / f"{stem}-played.png")
    print(f"play control: step {steps[0]} -> {steps[1]} -> {steps[2]}")

    errors = explorer.printed_errors()
    assert not errors, "the explorer printed errors:\n" + "\n".join(errors)


def answer_a_prediction(question, name):
    """Commit to the first choice of a predict-then-reveal question and check the verdict it gives."""
    options = question.options()
    assert len(options) >= 2, f"{name}: a prediction question with choices {options}"
    chosen, feedback = question.answer(0)
    assert question.locked(), f"{name}: the choices can still change after Reveal"
    if feedback.startswith("Right."):
        assert question.verdict_class() == "right", feedback
    else:  # "Not quite. The answer is <another choice>."
        named = [option for option in options if f"The answer is {option}." in feedback]
        assert named and named[0] != chosen and question.verdict_class() == "wrong", (chosen, feedback)
    print(f"{name}: predicted {chosen!r}; {feedback[:120]}")


def export_html(name, folder):
    """The notebook executed and exported to HTML with the two nbconvert commands of `make run` (keep them in
    step with the Makefile), in quick mode."""
    env = dict(os.environ, BNLIB_QUICK="1", BNLIB_LIVE="0")
    nbconvert = [sys.executable, "-m", "nbconvert", "--output-dir", str(folder)]
    execute = ["--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=-1",
               "--ExecutePreprocessor.store_widget_state=False", str(NOTEBOOK_DIR / name)]
    for arguments in (execute, ["--to", "html", str(folder / name)]):
        result = subprocess.run([*nbconvert, *arguments], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert result.returncode == 0, f"nbconvert {arguments[:2]} failed:\n{result.stderr[-3000:]}"
    return folder / f"{Path(name).stem}.html"


def test_the_html_export_shows_a_picture_of_the_explorer(browser, tmp_path):
    """Where widgets do not run (make run's HTML), the explorer's output is its PNG, not a widget placeholder."""
    html = export_html(EXPLORER_NOTEBOOK, tmp_path)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(html.as_uri())
        cell = page.locator(".jp-CodeCell").filter(has_text="momentum_explorer(").last
        output = cell.locator(".jp-OutputArea-output").last
        picture = output.locator("img").first
        expect(picture).to_be_visible()
        width, height = picture.evaluate("image => [image.naturalWidth, image.naturalHeight]")
        assert width > 300 and height > 200, f"the explorer's picture is {width} x {height} px"
        shown = output.inner_text()
        for placeholder in ("Loading widget", "Error displaying widget", "could not be displayed"):
            assert placeholder not in shown, f"the HTML export shows {placeholder!r} for the explorer"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        output.screenshot(path=str(SCREENSHOTS / f"{Path(EXPLORER_NOTEBOOK).stem}-html-export.png"))
    finally:
        page.close()


def open_new_notebook(page, lab, name, cells):
    """A notebook of `cells` (code) written into the server's folder and opened; returns its NotebookPage."""
    content = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    content.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(content, Path(lab.root) / name)
    notebook = NotebookPage(page, name)
    notebook.open(lab, workspace=f"browser-test-{Path(name).stem}-{secrets.token_hex(4)}")
    return notebook


def test_predict_then_reveal_in_the_browser(page, lab):
    """Two questions answered as a student would: one wrong (the verdict names the answer), one right."""
    question = ("from bnlib.widgets.predict import PredictQuestion\n"
                "PredictQuestion('2 + 2?', ['3', '4'], '4', 'It is `4`.')")
    notebook = open_new_notebook(page, lab, "predict_check.ipynb", [question, question])
    notebook.run_all_cells()
    notebook.wait_for_run(120)
    notebook.wait_for_widgets()
    wrong, right = PredictQuestion.all_in(page)
    assert wrong.answer(0) == ("3", "Not quite. The answer is 4. It is 4.")
    assert right.answer(1) == ("4", "Right. It is 4.")
    assert wrong.locked() and right.locked()
    assert (wrong.verdict_class(), right.verdict_class()) == ("wrong", "right")


LIVE_CELLS = [
    "%matplotlib widget\nimport time, torch\nfrom bnlib.data import TensorLoader\n"
    "from bnlib.widgets.live import LiveCurves\n"
    "from bnlib.models import make_mlp\nfrom bnlib.train import train_model\n"
    "loader = TensorLoader(torch.randn(256, 20), torch.randint(0, 3, (256,)), 64)",
    "curves = LiveCurves('live check', interval=0)  # every epoch\n"
    "def slow(model, step):\n    time.sleep(0.1)  # about 0.4 s an epoch: time to watch\n"
    "history = train_model(make_mlp((8,), in_features=20, num_classes=3, bn='before'), 12, loader, loader,\n"
    "                      progress=False, device='cpu', on_batch=slow, on_epoch=curves)",
]


def test_live_curves_grow_while_the_kernel_trains(page, lab):
    """Under ipympl's backend, as in notebook 04, the live figure changes while the cell still runs, in one output."""
    notebook = open_new_notebook(page, lab, "live_curves_check.ipynb", LIVE_CELLS)
    notebook.run_all_cells()
    output = page.locator(".jp-CodeCell").nth(1).locator(".jp-OutputArea-output")
    picture = output.locator("img").first
    expect(picture).to_be_visible(timeout=60_000)
    first = picture.evaluate("element => window.bnlibTest.fingerprint(element)")
    # Each update renders a new <img>: look it up afresh every time.
    changed_while_busy = """first => {
        const picture = document.querySelectorAll('.jp-CodeCell')[1].querySelector('.jp-OutputArea-output img');
        const busy = (window.bnlibTest.state() || {}).kernel === 'busy';
        return busy && picture !== null && window.bnlibTest.fingerprint(picture) !== first;
    }"""
    page.wait_for_function(changed_while_busy, arg=first, timeout=30_000)
    notebook.wait_for_run(120)
    assert output.count() == 1, f"{output.count()} outputs, not one figure redrawn in place"


def test_the_explorer_notebook_is_among_them():
    """The interactive part above runs only for this notebook: a rename must not switch it off silently."""
    assert EXPLORER_NOTEBOOK in NOTEBOOKS, f"{EXPLORER_NOTEBOOK} not in notebooks/: update EXPLORER_NOTEBOOK"
