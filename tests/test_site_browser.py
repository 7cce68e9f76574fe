"""The static site in Chromium, opened from disk with every request but file:// blocked: the widgets work with no
kernel and no network.

Notebooks 04 and 08 are built in quick mode into a temporary folder (tests/support/site.py, shared with
tests/test_site.py). On 04's page an arrow key on the momentum slider changes the explorer's canvas and its accuracy
readout, and the cumulative-average checkbox changes the canvas; a predict question says "right" for the answer the
kernel computed and "wrong" for another choice; on 08's page an arrow key on the drift player's slider shows
another frame. Every test fails if the page tried the network, asked for a file the site lacks or raised a
JavaScript error. Select with `pytest -m browser`; without Chromium or Playwright it is skipped (a failure in CI).
"""

import json
import re

import pytest

from tests.support.lab_server import chromium_browser
from tests.support.site import quick_site

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1280, "height": 900}
STATE = re.compile(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return quick_site(tmp_path_factory.getbasetemp())[0]


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as browser:
        yield browser


@pytest.fixture
def offline(browser):
    """open(path) -> a page of the site, loaded with no network; afterwards, nothing online, missing or failing."""
    context = browser.new_context(viewport=VIEWPORT)
    online, missing, errors = [], [], []

    def only_files(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            online.append(route.request.url)
            route.abort()

    context.route("**/*", only_files)

    def open_page(path):
        page = context.new_page()
        page.set_default_timeout(90_000)  # a busy 2-core machine took 17 s to draw the widgets of a page
        page.on("requestfailed", lambda request: missing.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.as_uri())
        page.wait_for_selector(".widget-subarea")  # html-manager drew the widgets
        return page

    yield open_page
    context.close()
    assert online == [], f"the page tried the network: {online}"
    assert missing == [], f"the page asked for files the site lacks: {missing}"
    assert errors == [], f"JavaScript errors: {errors}"


def canvas_pixels(page, selector):
    page.wait_for_function(f"document.querySelector({selector!r}).width > 0")
    return page.evaluate(f"document.querySelector({selector!r}).toDataURL()")


def press_and_wait(page, handle_selector, key, watched):
    """Press `key` on a slider's handle; wait until the text of `watched` changes; returns (before, after)."""
    before = page.locator(watched).text_content()
    handle = page.locator(handle_selector)
    handle.focus()
    handle.press(key)
    page.wait_for_function("([selector, before]) => document.querySelector(selector).textContent !== before",
                           arg=[watched, before])
    return before, page.locator(watched).text_content()


def test_the_explorer_moves_offline(offline, site):
    page = offline(site / "04_running_statistics.html")
    canvas, readout = "canvas.bnlib-explorer-canvas", ".bnlib-explorer-readout"
    pixels = canvas_pixels(page, canvas)
    before, after = press_and_wait(page, ".bnlib-explorer-momentum .noUi-handle", "ArrowRight", readout)
    slider_value = float(page.locator(".bnlib-explorer-momentum .widget-readout").text_content())
    momenta = [float(re.search(r"momentum ([\d.]+)", text).group(1)) for text in (before, after)]
    assert momenta[0] == pytest.approx(0.1) and momenta[1] > 0.1
    assert momenta[1] == pytest.approx(slider_value, rel=1e-3)  # the readout follows the slider
    assert re.search(r"\d+\.\d+ %", after), after  # an accuracy, from the table embedded at build time
    moved = canvas_pixels(page, canvas)
    assert moved != pixels, "the running lines did not move"
    page.locator(".bnlib-explorer-cumulative input").check()
    page.wait_for_function(f"document.querySelector({canvas!r}).toDataURL() !== {moved!r}")
    assert page.locator("mjx-container").count() > 0, "MathJax did not typeset the page"


def question_answer(page_file):
    """The first predict question's choices and its answer, as the kernel embedded them in the page."""
    state = json.loads(STATE.search(page_file.read_text()).group(1))["state"]
    questions = [model["state"] for model in state.values() if "answer" in model["state"]]
    assert questions, "no predict question in the page"
    return questions[0]["choices"], questions[0]["answer"]


@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
def test_a_predict_question_reveals_offline(offline, site, right):
    page_file = site / "04_running_statistics.html"
    choices, answer = question_answer(page_file)
    choice = answer if right else next(choice for choice in choices if choice != answer)
    page = offline(page_file)
    question = page.locator(".bnlib-predict").first
    reveal = question.locator(".bnlib-predict-reveal")
    assert reveal.is_disabled()  # nothing chosen yet
    question.locator(".bnlib-predict-choices input[type=radio]").nth(choices.index(choice)).check()
    reveal.click()
    feedback = question.locator(".bnlib-predict-feedback")
    verdict = "bnlib-predict-right" if right else "bnlib-predict-wrong"
    assert verdict in feedback.get_attribute("class").split()
    assert reveal.is_disabled() and question.locator("input:enabled").count() == 0  # the prediction is locked


def test_the_drift_player_moves_offline(offline, site):
    page = offline(site / "08_why_batchnorm_helps.html")
    frame = "img.bnlib-frame"
    page.wait_for_function(f"document.querySelector({frame!r}) && document.querySelector({frame!r}).src")
    before_src, before_step = (page.locator(frame).get_attribute(name) for name in ("src", "data-step"))
    before, after = press_and_wait(page, ".bnlib-drift-step .noUi-handle", "ArrowRight",
                                   ".bnlib-drift-step .widget-readout")
    page.wait_for_function(f"document.querySelector({frame!r}).src !== {before_src!r}")
    shown = int(page.locator(frame).get_attribute("data-step"))  # the checkpoint whose picture is shown
    assert int(before) < int(after) and int(before_step) < shown <= int(after)
