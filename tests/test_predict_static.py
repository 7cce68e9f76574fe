"""A predict question made for a static page (BNLIB_STATIC=1): the browser version, clicked in Chromium."""

import pytest

from bnlib.widgets.backend import STATIC_ENV
from bnlib.widgets.browser_question import BrowserQuestion
from bnlib.widgets.predict import PROMPT, range_question
from tests.support.widget_page import widget_page
from tests.test_predict import make_question


@pytest.fixture
def static_page(monkeypatch):
    monkeypatch.setenv(STATIC_ENV, "1")


def kernel_feedback(choice, answer="momentum 0.1"):
    """What the kernel's widget shows after revealing `choice`."""
    question = make_question(answer)
    question.choices.value = choice
    question.reveal()
    return question.feedback.value


@pytest.mark.usefixtures("static_page")
def test_the_browser_version_carries_what_the_kernel_would_reveal():
    question = make_question()
    shown = question.widget
    data, _ = question._repr_mimebundle_()
    assert isinstance(shown, BrowserQuestion)
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == shown.model_id
    assert "<li>momentum 0.001</li>" in data["text/html"]  # where widgets do not run: the question, no answer
    assert shown.choices == ["momentum 0.001", "momentum 0.1"] and shown.answer == "momentum 0.1"
    assert shown.right == kernel_feedback("momentum 0.1") and shown.wrong == kernel_feedback("momentum 0.001")
    assert shown.question == question.question.value and shown.prompt == PROMPT


def test_a_live_kernel_shows_the_kernels_widget(monkeypatch):
    monkeypatch.delenv(STATIC_ENV, raising=False)
    question = make_question()
    assert question.widget.children == (question.question, question.choices, question.reveal_button,
                                         question.feedback)


@pytest.mark.usefixtures("static_page")
@pytest.mark.parametrize(("choice", "verdict", "css"), [("momentum 0.1", "Right.", "bnlib-predict-right"),
                                                        ("momentum 0.001", "Not quite.", "bnlib-predict-wrong")])
def test_choosing_and_revealing_in_the_browser(choice, verdict, css):
    shown = make_question().widget
    with widget_page(shown) as page:
        assert page.text(".bnlib-predict-feedback") == PROMPT
        assert page.evaluate("document.querySelector('.bnlib-predict-reveal').disabled")  # no prediction yet
        page.click(f".bnlib-predict-choices input[value='{choice}']")
        page.click(".bnlib-predict-reveal")
        feedback = page.evaluate("document.querySelector('.bnlib-predict-feedback').innerHTML")
        assert feedback == (shown.right if verdict == "Right." else shown.wrong)
        assert page.text(".bnlib-predict-feedback").startswith(verdict)
        assert page.evaluate(f"document.querySelector('.bnlib-predict-feedback').classList.contains('{css}')")
        locked = "[...document.querySelectorAll('.bnlib-predict-choices input, .bnlib-predict-reveal')]"
        assert page.evaluate(f"{locked}.every((element) => element.disabled)")  # the prediction is locked


@pytest.mark.usefixtures("static_page")
def test_a_range_question_in_the_browser_names_its_range():
    question = range_question("How many points?", 3.2, [0.5, 2, 5], "A cost of 3.20 points.", unit=" points")
    with widget_page(question.widget) as page:
        page.click(".bnlib-predict-choices input[value='2 to 5 points']")
        page.click(".bnlib-predict-reveal")
        assert page.text(".bnlib-predict-feedback") == "Right. A cost of 3.20 points."
