"""Predict, then reveal: the class commits to an answer before the notebook shows a result it computed.

The right answer and the revealed sentence are passed in by the notebook, computed from its own runs.
CSS classes for driving the widget in a browser: `bnlib-predict` (the whole question), `bnlib-predict-choices`
(radio buttons), `bnlib-predict-reveal` (the "Reveal" button), `bnlib-predict-feedback` (the feedback line,
which begins with "Right." or "Not quite."; also `bnlib-predict-right` / `bnlib-predict-wrong` once revealed).

Made for a static page (`BNLIB_STATIC=1`, no kernel behind it), the question shows a browser version instead
(`predict.js`, an anywidget with the same parts and classes) that holds the answer and both feedback texts: a
reader of the page's source can see them. The notebook's own source still holds no answer.
"""

import bisect
import html
import re

import ipywidgets as widgets

from bnlib.checks import check_choice
from bnlib.widgets.backend import browser_figures_enabled, static_page

PROMPT = "Commit to a prediction, then press Reveal."


def _inline_html(text):
    """Plain text as HTML, with `code` spans set in code type."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


class PredictQuestion:
    """A question with choices, a Reveal button and a feedback line; `widget` is what the notebook shows (on a
    static page, a `browser_question()`; the kernel's parts stay, for a kernel that drives them)."""

    def __init__(self, question, choices, answer, reveal):
        choices = tuple(str(choice) for choice in choices)
        if len(choices) < 2 or len(set(choices)) != len(choices):
            raise ValueError(f"choices must be at least two different answers, got {choices!r}")
        self.answer = check_choice("answer", str(answer), choices)
        self.reveal_text = reveal
        self.question = widgets.HTML(f"<b>Predict:</b> {_inline_html(question)}")
        self.choices = widgets.RadioButtons(options=choices, value=None, layout=widgets.Layout(width="auto"))
        self.reveal_button = widgets.Button(description="Reveal", disabled=True, tooltip=PROMPT)
        self.feedback = widgets.HTML(PROMPT)
        self.widget = widgets.VBox([self.question, self.choices, self.reveal_button, self.feedback])
        for part, name in ((self.widget, ""), (self.choices, "-choices"), (self.reveal_button, "-reveal"),
                           (self.feedback, "-feedback")):
            part.add_class(f"bnlib-predict{name}")
        self.choices.observe(self._on_choice, names="value")
        self.reveal_button.on_click(lambda button: self.reveal())
        if static_page() and browser_figures_enabled():  # a page without a kernel, and anywidget to show it
            self.widget = self.browser_question()

    def browser_question(self):
        """The question as a browser-side widget (predict.js), with the answer and both feedback texts in it."""
        from bnlib.widgets.browser_question import BrowserQuestion  # here: anywidget is needed by this one only

        return BrowserQuestion(question=self.question.value, choices=list(self.choices.options), answer=self.answer,
                               right=self.feedback_html(True), wrong=self.feedback_html(False), prompt=PROMPT)

    @property
    def revealed(self):
        return self.choices.disabled

    @property
    def correct(self):
        """Whether the committed prediction was right; None before the reveal."""
        return self.choices.value == self.answer if self.revealed else None

    def _on_choice(self, change):
        self.reveal_button.disabled = change["new"] is None or self.revealed

    def reveal(self):
        """Show the answer and the computed result; the prediction is then locked."""
        if self.choices.value is None:
            self.feedback.value = PROMPT
            return
        self.choices.disabled = self.reveal_button.disabled = True
        right = self.choices.value == self.answer
        self.feedback.value = self.feedback_html(right)
        self.feedback.add_class("bnlib-predict-right" if right else "bnlib-predict-wrong")

    def feedback_html(self, right):
        """The feedback line after a reveal, for a `right` or wrong prediction."""
        verdict = "<b>Right.</b>" if right else f"<b>Not quite.</b> The answer is <b>{html.escape(self.answer)}</b>."
        return f"{verdict} {_inline_html(self.reveal_text)}"

    def _repr_mimebundle_(self, **kwargs):
        """The widget view, and the question with its choices as HTML where widgets do not run (an HTML export)."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})  # an anywidget adds metadata
        choices = "".join(f"<li>{_inline_html(choice)}</li>" for choice in self.choices.options)
        data = {**data, "text/html": f"<div>{self.question.value}<ul>{choices}</ul><i>{PROMPT}</i></div>"}
        return (data, metadata) if isinstance(bundle, tuple) else data


def range_labels(edges, unit=""):
    """Labels of the ranges cut by increasing `edges`: "less than a", "a to b", ..., "more than z"."""
    edges = list(edges)
    pairs = list(zip(edges[:-1], edges[1:], strict=True))
    if not edges or any(low >= high for low, high in pairs):
        raise ValueError(f"edges must be increasing numbers, got {edges!r}")
    middle = [f"{low:g} to {high:g}{unit}" for low, high in pairs]
    return [f"less than {edges[0]:g}{unit}", *middle, f"more than {edges[-1]:g}{unit}"]


def range_question(question, value, edges, reveal, unit=""):
    """A PredictQuestion whose choices are the ranges between `edges` and whose answer holds `value`."""
    labels = range_labels(edges, unit)
    return PredictQuestion(question, labels, labels[bisect.bisect_right(list(edges), value)], reveal)
