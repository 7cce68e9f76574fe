"""Links from the notebooks' text to the repository's pages point at files and headings that exist."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
LINK = re.compile(r"\]\((\.\./[^)#\s]+\.md)(?:#([^)\s]+))?\)")


def heading_anchors(page):
    """GitHub's anchors for the headings of a Markdown page: lowercase, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_anchors_follow_githubs_rule(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## Notebook 03's workers\n\n## Float32 rounding, and checks\n")
    assert heading_anchors(page) == {"title", "notebook-03s-workers", "float32-rounding-and-checks"}


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("*.ipynb")), ids=lambda path: path.stem)
def test_links_to_pages_resolve(path):
    cells = nbformat.read(path, as_version=4).cells
    for target, anchor in LINK.findall("\n".join(cell.source for cell in cells if cell.cell_type == "markdown")):
        page = (NOTEBOOK_DIR / target).resolve()
        assert page.is_file(), f"{path.name} links to {target}, which does not exist"
        assert not anchor or anchor in heading_anchors(page), f"{path.name}: no heading #{anchor} in {target}"
