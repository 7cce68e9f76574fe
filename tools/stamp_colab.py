"""Write the set-up cell, from one template, as the first code cell of every notebook (for Colab).

usage: python tools/stamp_colab.py [NOTEBOOK_DIR]   (default notebooks)

The cell installs bnlib with pip from the repository's URL where bnlib is not importable (Colab), then
`bnlib.hosting.prepare_host()` turns on Colab's widget manager and keeps the run cache and data in the working
folder. The URL lives in one place, pyproject.toml's `[project.urls] Repository`; run this tool after changing
it (tests/test_colab.py checks that every notebook agrees). tools/make_release.py stamps the class repository's URL.
"""

import re
import sys
from pathlib import Path

import nbformat

from bnlib.files import write_atomic

REPO = Path(__file__).resolve().parent.parent
CELL_ID = "colab-setup"
PLACEHOLDER = "CHANGE-ME"  # in the URL until the project has a public repository: the cell's pip install would fail
URL_LINE = re.compile(r'^(Repository = ")([^"]*)(")', re.MULTILINE)  # in pyproject.toml's [project.urls]
FIRST_LINE = "# Set-up for Colab: where bnlib is missing, pip installs it from the course repository."
TEMPLATE = FIRST_LINE + """
import importlib.util
import subprocess
import sys

REPOSITORY = "{repository}"
if importlib.util.find_spec("bnlib") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"bnlib @ git+{{REPOSITORY}}"], check=True)
from bnlib import hosting  # noqa: E402  (after the install above, where it was needed)

hosting.prepare_host()  # in Colab: its widget manager on, the run cache and data in the working folder"""


def repository_url(pyproject_text):
    """The URL in `[project.urls] Repository` of pyproject.toml's text."""
    urls = pyproject_text.split("\n[project.urls]\n", 1)[-1].split("\n[", 1)[0]
    match = URL_LINE.search(urls)
    if match is None:
        raise ValueError('pyproject.toml needs a line Repository = "https://..." under [project.urls]')
    return match.group(2)


def with_repository(pyproject_text, url):
    """pyproject.toml's text with `url` as `[project.urls] Repository` (the release's class repository)."""
    check_url(url)
    head, urls = pyproject_text.split("\n[project.urls]\n", 1)
    return head + "\n[project.urls]\n" + URL_LINE.sub(lambda match: match.group(1) + url + match.group(3), urls, 1)


def check_url(url):
    if not re.fullmatch(r"https://[^\s\"'{}]+", url):
        raise ValueError(f"repository must be an https:// URL that git can clone, got {url!r}")
    return url


def setup_source(url):
    """The set-up cell's source for the repository at `url`."""
    return TEMPLATE.format(repository=check_url(url))


def is_setup_cell(cell):
    return cell.cell_type == "code" and cell.source.startswith(FIRST_LINE)


def stamp(notebook, url):
    """`notebook` (changed in place) with the set-up cell for `url` as its first code cell, inserted or updated."""
    code = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    if code and is_setup_cell(notebook.cells[code[0]]):
        notebook.cells[code[0]].source = setup_source(url)
    else:
        cell = nbformat.v4.new_code_cell(setup_source(url), id=CELL_ID)
        notebook.cells.insert(code[0] if code else len(notebook.cells), cell)
    return notebook


def stamp_folder(folder, url):
    """Stamp every notebook of `folder`; returns the names of those whose file changed."""
    changed = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        before = path.read_text()
        after = nbformat.writes(stamp(nbformat.read(path, as_version=4), url)) + "\n"
        if after != before:
            write_atomic(path, after.encode())
            changed.append(path.name)
    return changed


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "notebooks")
    url = repository_url((REPO / "pyproject.toml").read_text())
    for name in stamp_folder(folder, url):
        print(f"{folder / name}: set-up cell written for {url}")
    if PLACEHOLDER in url:
        print(f"note: {url} is a placeholder; set [project.urls] Repository in pyproject.toml and run this again")
