"""`make student` (tools/make_student.py): solutions out, outputs cleared, edited copies kept; the student
edition runs top to bottom in quick mode and each exercise check says "not attempted"."""

import ast
import importlib.util
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tests.support.execution import assert_every_check_not_attempted, execute_in_quick_mode

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
SCRIPT = REPO / "tools" / "make_student.py"
SPEC = importlib.util.spec_from_file_location("make_student", SCRIPT)
make_student = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(make_student)

SOLUTION_METADATA = {"nbgrader": {"solution": True, "grade": False, "locked": False, "grade_id": "forward",
                                  "schema_version": 3}}

pytestmark = pytest.mark.slow  # runs the student edition of every notebook with exercises


def solution_lines(notebook):
    """The lines between the solution markers, stripped, that are not also lines of the rest of the notebook."""
    inside, outside, active = set(), set(), False
    for cell in notebook.cells:
        for line in cell.source.splitlines():
            marker = line.strip() in (make_student.BEGIN, make_student.END)
            active = (line.strip() == make_student.BEGIN) if marker else active
            (inside if active and not marker else outside).add(line.strip())
    return inside - outside - {""}


def all_strings(path):
    return list(make_student.strings_in(json.loads(path.read_text())))


def demo_notebook():
    solution = new_code_cell(
        'def forward(z):\n    """Normalize z."""\n    ### BEGIN SOLUTION\n    centered = z - z.mean(0)\n'
        "    return centered / centered.std(0)\n    ### END SOLUTION\n\nprint(forward)",
        metadata=dict(SOLUTION_METADATA, execution={"iopub.status.busy": "2026"}), execution_count=3)
    solution.outputs = [new_output("stream", name="stdout", text="centered = z - z.mean(0)\n")]
    notebook = new_notebook(cells=[new_markdown_cell("# Demo"), solution, new_code_cell("check(forward)")])
    notebook.metadata["widgets"] = {"state": {"text": "return centered / centered.std(0)"}}
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def test_solution_regions_become_an_indented_stub(tmp_path, private_umask):
    (tmp_path / "in").mkdir()
    nbformat.write(demo_notebook(), tmp_path / "in" / "01_demo.ipynb")
    report = make_student.make_student_edition(tmp_path / "in", tmp_path / "out" / "student")
    assert report == {"01_demo.ipynb": "written"}
    path = tmp_path / "out" / "student" / "01_demo.ipynb"
    assert path.stat().st_mode & 0o777 == 0o644  # a class reads what the instructor wrote, whatever the umask
    assert [folder.stat().st_mode & 0o777 for folder in (path.parent.parent, path.parent)] == [0o755, 0o755]
    student = nbformat.read(path, as_version=4)
    nbformat.validate(student)
    cell = student.cells[1]
    assert cell.source == ('def forward(z):\n    """Normalize z."""\n    raise NotImplementedError("your code here")\n'
                           "\nprint(forward)")
    ast.parse(cell.source)
    assert cell.outputs == [] and cell.execution_count is None
    assert cell.metadata == SOLUTION_METADATA  # nbgrader can still grade the student edition
    text = "\n".join(all_strings(path))
    for line in ("centered = z - z.mean(0)", "return centered / centered.std(0)", "SOLUTION"):
        assert line not in text


def test_a_region_outside_a_solution_cell_is_an_error(tmp_path):
    notebook = demo_notebook()
    notebook.cells[1].metadata = {}
    with pytest.raises(ValueError, match="cell 1: a solution region needs a code cell with nbgrader"):
        make_student.student_notebook(notebook)
    with pytest.raises(ValueError, match="without"):
        make_student.clear_solution_regions("### BEGIN SOLUTION\nx = 1")


def test_hidden_tests_are_removed_from_grade_cells():
    grade = {"nbgrader": {"grade": True, "grade_id": "forward_test", "locked": True, "points": 1,
                          "schema_version": 3, "solution": False}}
    source = ("# grader\n### BEGIN HIDDEN TESTS\nassert check(forward, strict=True)\n### END HIDDEN TESTS\n"
              "print('visible')")
    notebook = demo_notebook()
    notebook.cells.append(new_code_cell(source, metadata=grade))
    student = make_student.student_notebook(notebook)
    assert student.cells[-1].source == "# grader\nprint('visible')"
    assert "strict=True" not in json.dumps(student)
    notebook.cells[-1].metadata = {}
    with pytest.raises(ValueError, match="hidden tests need a code cell with nbgrader grade metadata"):
        make_student.student_notebook(notebook)
    with pytest.raises(ValueError, match="without"):
        make_student.clear_hidden_tests("### BEGIN HIDDEN TESTS\nassert x")


def test_an_edited_student_notebook_is_kept(tmp_path):
    source, target = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        nbformat.write(demo_notebook(), source / name)
    make_student.make_student_edition(source, target)
    edited = target / "01_a.ipynb"
    notebook = nbformat.read(edited, as_version=4)
    notebook.cells[1].source = notebook.cells[1].source.replace('raise NotImplementedError("your code here")',
                                                                "return z  # my attempt")
    nbformat.write(notebook, edited)
    mine = edited.read_bytes()

    changed = demo_notebook()
    changed.cells[0].source = "# Demo, second version"
    for name in ("01_a.ipynb", "02_b.ipynb"):
        nbformat.write(changed, source / name)
    report = make_student.make_student_edition(source, target)
    assert report["01_a.ipynb"].startswith("kept: edited since make student wrote it")
    assert report["02_b.ipynb"] == "written"
    assert edited.read_bytes() == mine
    assert nbformat.read(target / "02_b.ipynb", as_version=4).cells[0].source == "# Demo, second version"


@pytest.fixture(scope="module")
def student_edition(tmp_path_factory):
    target = tmp_path_factory.mktemp("student")
    report = make_student.make_student_edition(NOTEBOOK_DIR, target)
    assert set(report.values()) == {"written"}
    return target


def notebooks_with_exercises():
    return [path for path in sorted(NOTEBOOK_DIR.glob("*.ipynb"))
            if make_student.BEGIN in path.read_text()]


def test_the_course_notebooks_have_exercises():
    assert len(notebooks_with_exercises()) >= 3


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("*.ipynb")), ids=lambda path: path.stem)
def test_no_solution_line_is_left(path, student_edition):
    instructor = nbformat.read(path, as_version=4)
    written = student_edition / path.name
    student = nbformat.read(written, as_version=4)
    assert len(student.cells) == len(instructor.cells)
    text = {line.strip() for string in all_strings(written) for line in string.splitlines()}
    assert not solution_lines(instructor) & text
    assert "BEGIN SOLUTION" not in written.read_text() and "END SOLUTION" not in written.read_text()
    for before, after in zip(instructor.cells, student.cells, strict=True):
        if make_student.BEGIN in before.source:
            assert make_student.is_solution_cell(before), "a solution cell without nbgrader metadata"
            assert make_student.STUB in after.source
        if after.cell_type == "code":
            assert after.outputs == [] and after.execution_count is None


@pytest.mark.parametrize("path", notebooks_with_exercises(), ids=lambda path: path.stem)
def test_the_student_edition_runs_and_every_check_is_not_attempted(path, student_edition):
    notebook = execute_in_quick_mode(nbformat.read(student_edition / path.name, as_version=4), NOTEBOOK_DIR)
    assert_every_check_not_attempted(notebook, path.name)
