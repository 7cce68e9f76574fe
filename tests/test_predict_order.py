"""Predict, then reveal: nothing before a predict question gives its answer away.

Each notebook that asks a `PredictQuestion` (or a `range_question`) runs in quick mode; a last cell reads every
question back from the kernel: its revealed sentence, its text and the id of the widget the notebook displays.
The answer's numbers are the decimal numbers of the revealed sentence that the question itself does not state
(accuracies, differences, p-values: what the class is asked to predict); a number the class is given, such as
the accuracy the question starts from, belongs in the question's text. None of them may appear, at the precision
the reveal prints, in a markdown cell before the question, in an output of a code cell before it, or in the saved
state of a widget that such a cell displays.
"""

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from tests.support.execution import execute_in_quick_mode
from tools.make_student import strings_in

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
ASKING = [path for path in sorted(NOTEBOOK_DIR.glob("*.ipynb"))
          if re.search(r"\b(PredictQuestion|range_question)\(", path.read_text())]
WIDGET_VIEW, WIDGET_STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w])")
READ_QUESTIONS = """
import json as _json
from bnlib.widgets.predict import PredictQuestion as _PredictQuestion
print(_json.dumps([{"model_id": value.widget.model_id, "question": value.question.value, "reveal": value.reveal_text}
                   for value in list(globals().values()) if isinstance(value, _PredictQuestion)]))
"""

pytestmark = pytest.mark.slow  # a quick-mode run per notebook that asks a question


def answer_numbers(reveal, question):
    """The decimal numbers of the reveal that the question does not state, as printed ("87.3")."""
    stated = set(DECIMAL.findall(question))
    return sorted(set(DECIMAL.findall(reveal)) - stated)


def shows(text, number):
    """Whether `text` holds `number` at its printed precision (87.3 matches 87.3, 87.30 and 87.31, not 87.4)."""
    places = len(number.split(".")[1])
    return any(len(found.split(".")[1]) >= places and f"{float(found):.{places}f}" == number
               for found in DECIMAL.findall(text))




def output_texts(cell):
    """Every text a code cell's outputs show (images left out) and the widget model ids they display."""
    texts, models = [], []
    for output in cell.get("outputs", []):
        texts += [output.get("text", ""), output.get("evalue", ""), *output.get("traceback", [])]
        for kind, data in output.get("data", {}).items():
            if kind == WIDGET_VIEW:
                models.append(data["model_id"])
            elif not kind.startswith("image/"):
                texts += list(strings_in(data))
    return texts, models


def widget_texts(state, model_ids):
    """The strings of the saved state of these widget models and of every model they hold."""
    seen, texts, todo = set(), [], list(model_ids)
    while todo:
        model_id = todo.pop()
        if model_id in seen or model_id not in state:
            continue
        seen.add(model_id)
        for text in strings_in(state[model_id].get("state", {})):
            texts.append(text)
            todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", text)
    return texts


def test_some_notebooks_ask_a_question():
    assert len(ASKING) >= 2


def test_answer_numbers_are_the_decimals_the_question_does_not_state():
    reveal = "At step 20: 87.3 % with momentum 0.1, 85.2 % with momentum 0.001; they hold 98% of it."
    assert answer_numbers(reveal, "At step 20, momentum 0.001 or 0.1?") == ["85.2", "87.3"]
    assert shows("accuracy 87.31 %", "87.3") and shows("87.30", "87.3") and not shows("87.4 or 187.3", "87.3")
    assert not shows("8", "87.3") and not shows("87.36", "87.3")


@pytest.mark.parametrize("path", ASKING, ids=lambda path: path.stem)
def test_nothing_before_a_question_shows_its_answer(path):
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(new_code_cell(READ_QUESTIONS))
    execute_in_quick_mode(notebook, NOTEBOOK_DIR)
    questions = json.loads(notebook.cells.pop().outputs[-1]["text"])
    assert questions, f"{path.name}: no PredictQuestion left in the kernel"
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for question in questions:
        shown_at = [index for index, cell in enumerate(notebook.cells)
                    if question["model_id"] in output_texts(cell)[1]]
        assert shown_at, f"{path.name}: the question {question['question']!r} is never displayed"
        numbers = answer_numbers(question["reveal"], question["question"])
        assert numbers, f"{path.name}: the reveal {question['reveal']!r} states no number to check"
        for index, cell in enumerate(notebook.cells[: shown_at[0]]):
            if cell.cell_type == "markdown":
                texts = [cell.source]
            elif cell.cell_type == "code":
                texts, models = output_texts(cell)
                texts += widget_texts(state, models)
            else:
                continue
            leaked = [number for number in numbers if any(shows(text, number) for text in texts)]
            assert not leaked, (f"{path.name}, cell {index} (before the question in cell {shown_at[0]}) shows "
                                f"{leaked} of its answer: {question['reveal']!r}")
