"""nbgrader, run for real on notebook 02: generate the student copy, autograde three submissions, write feedback.

A course folder in a temporary directory (source/, submitted/<student>/<assignment>/, a SQLite gradebook);
the submissions are the generated student copy (nothing written), a correct BatchNorm2d forward pass in a
style other than the notebook's, and one that normalizes with the unbiased variance.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from bnlib.config import QUICK_ENV

pytest.importorskip("nbgrader", reason="the instructor extra: pip install '.[instructor]' (Python >= 3.11)")
from nbgrader.api import Gradebook  # noqa: E402  (after the skip: nbgrader is an optional dependency)

pytestmark = pytest.mark.slow  # three quick-mode runs of notebook 02

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_batchnorm1d.ipynb"
ASSIGNMENT, EXERCISE = "ex02", "batchnorm2d_train"
CELL_TIMEOUT_S = 300  # the longest quick-mode cell of notebook 02 takes well under a minute

CORRECT = '''def batchnorm2d_train(x, gamma, beta, eps):
    channels = x.transpose(0, 1).reshape(x.shape[1], -1)  # (C, N*H*W)
    mean = channels.mean(dim=1)
    var = channels.var(dim=1, unbiased=False)
    scale = gamma / torch.sqrt(var + eps)
    return x * scale[:, None, None] + (beta - mean * scale)[:, None, None]
'''
UNBIASED = '''def batchnorm2d_train(x, gamma, beta, eps):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), keepdim=True)  # unbiased: divided by N*H*W - 1
    return gamma[:, None, None] * (x - mean) / torch.sqrt(var + eps) + beta[:, None, None]
'''


def nbgrader(course, *args):
    env = os.environ | {QUICK_ENV: "1", "MPLBACKEND": "Agg"}  # the kernels nbgrader starts inherit these
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=course, env=env,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def with_answer(notebook, source):
    """A copy of the generated notebook whose exercise cell (found by its grade_id) holds `source`."""
    notebook = nbformat.from_dict(notebook)
    (cell,) = [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == EXERCISE]
    cell.source = source
    return notebook


@pytest.fixture(scope="module", autouse=True)
def alembic_on_the_path():
    """nbgrader's Gradebook runs the `alembic` command, installed beside this interpreter (a venv's bin/)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        yield


@pytest.fixture(scope="module")
def course(tmp_path_factory, alembic_on_the_path):
    course = tmp_path_factory.mktemp("course")
    db = course / "gradebook.db"
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.db_url = {f'sqlite:///{db}'!r}\n"
        f"c.Execute.timeout = {CELL_TIMEOUT_S}\n")
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "source" / ASSIGNMENT / NOTEBOOK.name).write_bytes(NOTEBOOK.read_bytes())
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--create")
    student_copy = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK.name, as_version=4)
    submissions = {"blank": student_copy, "correct": with_answer(student_copy, CORRECT),
                   "unbiased": with_answer(student_copy, UNBIASED)}
    for student, notebook in submissions.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / NOTEBOOK.name)
    nbgrader(course, "autograde", ASSIGNMENT, "--create")
    nbgrader(course, "generate_feedback", ASSIGNMENT)
    return course


def score(course, student):
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        grade = gradebook.find_grade(f"{EXERCISE}_test", NOTEBOOK.stem, ASSIGNMENT, student)
        return grade.score, grade.max_score


def test_the_student_copy_hides_the_solution_and_the_tests(course):
    text = (course / "release" / ASSIGNMENT / NOTEBOOK.name).read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "batchnorm2d_train, strict=True" not in text  # the hidden test
    assert "raise NotImplementedError()" in text
    assert "dims = (0, 2, 3)" not in text  # a line of the notebook's solution


def test_the_correct_answer_gets_full_marks_and_the_others_none(course):
    full, maximum = score(course, "correct")
    assert maximum > 0 and full == maximum
    assert score(course, "unbiased") == (0, maximum)
    assert score(course, "blank") == (0, maximum)


def test_the_feedback_names_the_mistake(course):
    feedback = (course / "feedback" / "unbiased" / ASSIGNMENT / f"{NOTEBOOK.stem}.html").read_text()
    assert "likely mistake: the unbiased variance" in feedback
    blank = (course / "feedback" / "blank" / ASSIGNMENT / f"{NOTEBOOK.stem}.html").read_text()
    assert "not attempted: check_batchnorm2d_train" in blank
