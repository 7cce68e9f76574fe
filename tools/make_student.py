"""Write the student edition: every notebook with its solution regions replaced by a stub and its outputs cleared.

usage: python tools/make_student.py [SOURCE_DIR] [TARGET_DIR]   (defaults: notebooks build/student)

A solution region is the lines from `### BEGIN SOLUTION` to `### END SOLUTION` in a code cell that carries
nbgrader's solution metadata (as nbgrader's ClearSolutions requires); it becomes
`raise NotImplementedError("your code here")` at the same indentation. The lines from `### BEGIN HIDDEN TESTS` to
`### END HIDDEN TESTS` in a grade cell (nbgrader's autograded tests) are removed, markers included, as nbgrader's
ClearHiddenTests does: the student copy runs top to bottom and its checks read "not attempted". A student notebook
edited after this tool wrote it is left as it is: a manifest in TARGET_DIR keeps the hash of each file it wrote.
"""

import copy
import hashlib
import json
import sys
from pathlib import Path

import nbformat

from bnlib.files import make_folder, write_atomic

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("your code here")'
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MANIFEST = ".written.json"  # {notebook name: sha256 of the bytes this tool wrote}
CELL_METADATA_KEPT = ("nbgrader", "tags", "editable", "deletable", "jupyter", "slideshow")


def is_solution_cell(cell):
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def is_grade_cell(cell):
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def clear_hidden_tests(source):
    """(source without its hidden-test regions, markers included; the lines removed)."""
    kept, removed, hidden = [], [], False
    for line in source.splitlines():
        if line.strip() in (HIDDEN_BEGIN, HIDDEN_END):
            if hidden != (line.strip() == HIDDEN_END):
                raise ValueError(f"{line.strip()!r} out of order")
            hidden = not hidden
        elif hidden:
            removed.append(line)
        else:
            kept.append(line)
    if hidden:
        raise ValueError(f"a hidden-test region without {HIDDEN_END!r}")
    return "\n".join(kept), removed


def clear_solution_regions(source):
    """(source with each solution region replaced by the indented stub, the lines removed)."""
    kept, removed, indent = [], [], None
    for line in source.splitlines():
        if line.strip() == BEGIN:
            if indent is not None:
                raise ValueError(f"{BEGIN!r} inside a solution region")
            indent = line[: len(line) - len(line.lstrip())]
            kept.append(indent + STUB)
        elif line.strip() == END:
            if indent is None:
                raise ValueError(f"{END!r} without {BEGIN!r}")
            indent = None
        elif indent is not None:
            removed.append(line)
        else:
            kept.append(line)
    if indent is not None:
        raise ValueError(f"a solution region without {END!r}")
    return "\n".join(kept), removed


def strings_in(value):
    """Every string anywhere in a JSON-like value (sources, outputs, metadata)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def student_notebook(notebook, name="notebook"):
    """A copy of `notebook` without solutions, outputs or execution metadata; ValueError on a misplaced region."""
    student = copy.deepcopy(notebook)
    student.metadata.pop("widgets", None)  # saved widget state can hold what a solution computed
    removed = []
    for index, cell in enumerate(student.cells):
        if BEGIN in cell.source or END in cell.source:
            if cell.cell_type != "code" or not is_solution_cell(cell):
                raise ValueError(f"{name}, cell {index}: a solution region needs a code cell with nbgrader "
                                 'solution metadata ({"nbgrader": {"solution": true, ...}})')
            cell.source, lines = clear_solution_regions(cell.source)
            removed += lines
        if HIDDEN_BEGIN in cell.source or HIDDEN_END in cell.source:
            if cell.cell_type != "code" or not is_grade_cell(cell):
                raise ValueError(f"{name}, cell {index}: hidden tests need a code cell with nbgrader grade "
                                 'metadata ({"nbgrader": {"grade": true, ...}})')
            cell.source, lines = clear_hidden_tests(cell.source)
            removed += lines
        cell.metadata = {key: value for key, value in cell.metadata.items() if key in CELL_METADATA_KEPT}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # A safety net: a solution line that is not also a line of the lecture must appear nowhere (metadata included).
    lecture = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
    visible = {line.strip() for text in strings_in(student) for line in text.splitlines()}
    left = sorted(({line.strip() for line in removed} & visible) - lecture - {""})
    if left:
        raise ValueError(f"{name}: solution lines left in the student edition: {left}")
    return student


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def make_student_edition(source_dir, target_dir):
    """Write target_dir/<name>.ipynb for each notebook; returns {name: "written" or "kept: edited since written"}."""
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    make_folder(target_dir)
    manifest_path = target_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    report = {}
    for path in sorted(source_dir.glob("*.ipynb")):
        target = target_dir / path.name
        if target.exists() and manifest.get(path.name) != sha256(target.read_bytes()):
            report[path.name] = "kept: edited since make student wrote it (delete it to get a fresh copy)"
            continue
        student = student_notebook(nbformat.read(path, as_version=4), path.name)
        data = nbformat.writes(student).encode() + b"\n"
        write_atomic(target, data)
        manifest[path.name] = sha256(data)
        report[path.name] = "written"
    write_atomic(manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return report


if __name__ == "__main__":
    source, target = (sys.argv[1:3] + ["notebooks", "build/student"][len(sys.argv[1:3]):])[:2]
    for notebook, status in make_student_edition(source, target).items():
        print(f"{Path(target) / notebook}: {status}")
