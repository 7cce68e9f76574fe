"""The predict-then-reveal widget, driven as a student would: choose, press Reveal, read the feedback."""

import ipywidgets as widgets
import pytest

from bnlib.widgets.predict import PROMPT, PredictQuestion, range_labels, range_question


def make_question(answer="momentum 0.1"):
    return PredictQuestion("At step 20, which momentum gives the higher eval accuracy?",
                           ["momentum 0.001", "momentum 0.1"], answer, "0.1: 91.3 %, 0.001: 42.0 %")


def test_reveal_waits_for_a_prediction():
    question = make_question()
    assert question.reveal_button.disabled and question.feedback.value == PROMPT
    question.reveal()  # no choice yet: nothing is revealed
    assert not question.revealed and question.correct is None and question.feedback.value == PROMPT
    question.choices.value = "momentum 0.001"
    assert not question.reveal_button.disabled


def test_a_right_prediction():
    question = make_question()
    question.choices.value = "momentum 0.1"
    question.reveal_button.click()
    assert question.revealed and question.correct is True
    assert question.feedback.value.startswith("<b>Right.</b>") and "91.3 %" in question.feedback.value
    assert "bnlib-predict-right" in question.feedback._dom_classes
    assert question.choices.disabled and question.reveal_button.disabled  # the prediction is locked


def test_a_wrong_prediction_shows_the_answer_and_the_number():
    question = make_question()
    question.choices.value = "momentum 0.001"
    question.reveal_button.click()
    assert question.correct is False
    assert "Not quite." in question.feedback.value and "<b>momentum 0.1</b>" in question.feedback.value
    assert "42.0 %" in question.feedback.value and "bnlib-predict-wrong" in question.feedback._dom_classes


def test_the_widget_is_one_box_with_stable_classes_for_the_browser_test():
    question = make_question()
    assert isinstance(question.widget, widgets.VBox)
    assert "bnlib-predict" in question.widget._dom_classes
    assert "bnlib-predict-choices" in question.choices._dom_classes
    assert "bnlib-predict-reveal" in question.reveal_button._dom_classes
    assert question.reveal_button.description == "Reveal"
    assert "application/vnd.jupyter.widget-view+json" in question._repr_mimebundle_()


def test_question_text_is_escaped_with_code_spans():
    question = PredictQuestion("Is `model.eval()` < 1?", ["yes", "no"], "no", "it is `2`")
    assert "<code>model.eval()</code> &lt; 1?" in question.question.value


@pytest.mark.parametrize(("choices", "answer", "message"), [
    (["a", "b"], "c", "answer must be one of"),
    (["a"], "a", "choices must be at least two"),
    (["a", "a"], "a", "choices must be at least two"),
])
def test_bad_arguments(choices, answer, message):
    with pytest.raises(ValueError, match=message):
        PredictQuestion("?", choices, answer, "")


def test_range_question_picks_the_range_holding_the_value():
    assert range_labels([1, 5, 20], " points") == [
        "less than 1 points", "1 to 5 points", "5 to 20 points", "more than 20 points"]
    for value, expected in [(0.3, 0), (1, 1), (4.9, 1), (12, 2), (35, 3)]:
        question = range_question("How much?", value, [1, 5, 20], "measured", unit=" points")
        assert question.answer == question.choices.options[expected]
    with pytest.raises(ValueError, match="edges must be increasing"):
        range_labels([5, 1])


def test_static_view_shows_the_question_and_choices_but_not_the_answer():
    question = PredictQuestion("Which `momentum`?", ["0.001", "0.1"], "0.1", "0.1 gives 84 %.")
    bundle = question._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    static = bundle["text/html"]
    assert "<code>momentum</code>" in static and "<li>0.001</li>" in static and "<li>0.1</li>" in static
    assert "84 %" not in static
