"""A predict-then-reveal question that works in the browser alone (`predict.js`), for a page without a kernel.

It carries the answer and both feedback texts, so whoever reads the page's source can see them; the class
hand-out (the student release) is the notebook, whose source computes them at run time and holds none.
"""

from pathlib import Path

import anywidget
import traitlets


class BrowserQuestion(anywidget.AnyWidget):
    """`question` (HTML), `choices`, the `answer` (one of them), the feedback HTML when the prediction is `right`
    or `wrong`, and the `prompt` shown before the reveal."""

    _esm = Path(__file__).with_name("predict.js")
    question = traitlets.Unicode().tag(sync=True)
    choices = traitlets.List(traitlets.Unicode()).tag(sync=True)
    answer = traitlets.Unicode().tag(sync=True)
    right = traitlets.Unicode().tag(sync=True)
    wrong = traitlets.Unicode().tag(sync=True)
    prompt = traitlets.Unicode().tag(sync=True)
