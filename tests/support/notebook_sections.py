"""The code cells of one section of a committed notebook, for tests that run a section's code in this process."""

from pathlib import Path

import nbformat

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent.parent / "notebooks"


def section_code(name, heading, next_heading):
    """The sources of the code cells of notebooks/`name` after the markdown cell whose first line is `heading`,
    up to the markdown cell whose first line starts with `next_heading`."""
    cells, inside = [], False
    for cell in nbformat.read(NOTEBOOK_DIR / name, as_version=4).cells:
        first_line = cell.source.split("\n", 1)[0]
        if cell.cell_type == "markdown" and (first_line == heading or first_line.startswith(next_heading)):
            inside = first_line == heading
        elif inside and cell.cell_type == "code":
            cells.append(cell.source)
    return cells
