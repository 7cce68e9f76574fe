"""Write the student release: a self-contained folder that an instructor can push as the class repository.

usage: python tools/make_release.py [DEST] [--repository URL]   (default build/release)

The folder holds the student notebooks (tools/make_student.py: solutions replaced by stubs, outputs cleared),
`bnlib` whole and byte for byte (so `bnlib.cache.code_fingerprint()` is the instructor's and a warm cache
answers), pyproject.toml, environment.yml, binder/ (for mybinder.org), a student Makefile (`make lab`,
`make test`), data/README.md, the docs pages that hold no result, and a README from tools/release_readme.md.
No instructor tests, no git history, no build output or cache. The notebooks' Colab set-up cell and pyproject's
[project.urls] name the class repository (--repository, or $CLASS_REPOSITORY; else this project's URL), which
Colab installs bnlib from. DEST is written afresh (an existing DEST is replaced only if a former release wrote
it); every file is 0644 and every folder 0755 whatever the umask.
"""

import argparse
import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bnlib.files import make_folder, write_atomic  # noqa: E402

_SPEC = importlib.util.spec_from_file_location("make_student", REPO / "tools" / "make_student.py")
make_student = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(make_student)
_SPEC = importlib.util.spec_from_file_location("stamp_colab", REPO / "tools" / "stamp_colab.py")
stamp_colab = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(stamp_colab)

MARK = ".release"  # written into DEST: the proof that a former release wrote a folder this tool may replace
# binder/: a Binder button on the class repository (repo2docker makes postBuild executable itself: every file
# of the release is 0644).
COPIED = ("environment.yml", "data/README.md", "binder/requirements.txt", "binder/runtime.txt", "binder/postBuild")
# Docs pages that hold no result and answer no question; figures, notebook 03's results, the instructor's
# pages (teaching.md: make warm, make student, the hand-out) and timings stay out.
DOCS = ("docs/how-these-notebooks-run.md",)
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".ruff_cache"}
MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\(([^)#\s]+)(#[^)\s]*)?\)")

STUDENT_MAKEFILE = """\
# `make lab` opens the notebooks; `make test` runs every notebook in quick mode. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# JupyterLab refuses to run as root without --allow-root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# The lecture's MLPs are too small to gain from several CPU threads. Override with `make ... OMP_NUM_THREADS=4`.
export OMP_NUM_THREADS ?= 1

.PHONY: venv lab test clean

$(STAMP): pyproject.toml
\ttest -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
\t$(BIN)/python -m pip install --quiet --upgrade pip
\t$(BIN)/python -m pip install --quiet -e .
\ttouch $@

venv: $(STAMP)

lab: $(STAMP)  ## JupyterLab on notebooks/, loopback only, token authentication on
\t$(BIN)/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=notebooks $(ALLOW_ROOT)

# Quick mode: a few epochs, so it says that every cell runs (your notebooks are not changed; the executed
# copies go to build/test/). A check of an exercise you have not written yet says "not attempted".
test: $(STAMP)  ## every notebook top to bottom in quick mode -> build/test/
\tmkdir -p build/test
\tBNLIB_QUICK=1 BNLIB_LIVE=0 MPLBACKEND=Agg $(BIN)/jupyter nbconvert --to notebook --execute \\
\t\t--ExecutePreprocessor.timeout=1200 --output-dir build/test $(NOTEBOOKS)

clean:
\trm -rf build
"""


def package_files(package):
    """Every file of the package folder but caches and editor checkpoints, sorted."""
    return sorted(path for path in package.rglob("*") if path.is_file()
                  and not SKIPPED_PARTS & set(path.relative_to(package).parts)
                  and path.suffix not in (".pyc", ".pyo") and not path.name.startswith("."))


def unlink_missing_pages(text, page, dest):
    """`text` of `page` (its path in the release) without its links to files that the release leaves out.

    A link that is a whole parenthesis ("(see [x](teaching.md))") or a whole "Details: [x](run-cache.md)." goes
    with its parenthesis or sentence; any other such link becomes its plain text.
    """
    def missing(match):
        target = match.group(2)
        return "://" not in target and not (dest / page).parent.joinpath(target).resolve().exists()

    def drop(match):
        return "" if missing(MARKDOWN_LINK.search(match.group(0))) else match.group(0)

    text = re.sub(r" \(" + MARKDOWN_LINK.pattern + r"\)", drop, text)
    text = re.sub(r" [A-Z][a-z]+: " + MARKDOWN_LINK.pattern + r"\.", drop, text)
    return MARKDOWN_LINK.sub(lambda match: match.group(1) if missing(match) else match.group(0), text)


def write(dest, relative, payload):
    make_folder((dest / relative).parent)
    write_atomic(dest / relative, payload)


def fresh_folder(dest):
    """An empty DEST: refuses to replace a folder with content that this tool did not write."""
    if dest.exists():
        if any(dest.iterdir()) and not (dest / MARK).is_file():
            raise FileExistsError(f"{dest} holds files that make release did not write; choose another DEST")
        shutil.rmtree(dest)
    make_folder(dest)


def make_release(dest, source=REPO, repository=None):
    """Write the release into `dest` (replacing a former release there); returns the sorted relative paths written.

    `repository`: the class repository's URL for the Colab set-up cell (None: the one in source's pyproject.toml).
    """
    dest, source = Path(dest).resolve(), Path(source).resolve()
    pyproject = (source / "pyproject.toml").read_text()
    repository = stamp_colab.check_url(repository or stamp_colab.repository_url(pyproject))
    if dest == source or source in dest.parents and dest.relative_to(source).parts[0] != "build":
        raise ValueError(f"DEST must lie outside the repository or under its build/, got {dest}")
    fresh_folder(dest)
    for path in sorted((source / "notebooks").glob("*.ipynb")):
        student = make_student.student_notebook(nbformat.read(path, as_version=4), path.name)
        stamp_colab.stamp(student, repository)
        write(dest, f"notebooks/{path.name}", nbformat.writes(student).encode() + b"\n")
    for path in package_files(source / "bnlib"):
        write(dest, path.relative_to(source).as_posix(), path.read_bytes())  # byte for byte: the cache key
    write(dest, "pyproject.toml", stamp_colab.with_repository(pyproject, repository).encode())
    for relative in COPIED:
        write(dest, relative, (source / relative).read_bytes())
    write(dest, "Makefile", STUDENT_MAKEFILE.encode())
    write(dest, ".gitignore", f".venv/\nbuild/\n__pycache__/\n*.egg-info/\n.ipynb_checkpoints/\n{MARK}\n".encode())
    write(dest, "README.md", (source / "tools" / "release_readme.md").read_bytes())
    for relative in DOCS:  # written after everything they may link to
        write(dest, relative, unlink_missing_pages((source / relative).read_text(), relative, dest).encode())
    write(dest, MARK, b"written by tools/make_release.py; `make release` replaces this folder\n")
    return sorted(path.relative_to(dest).as_posix() for path in dest.rglob("*") if path.is_file())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write the class repository: the student release.")
    parser.add_argument("dest", nargs="?", default="build/release", type=Path)
    parser.add_argument("--repository", default=os.environ.get("CLASS_REPOSITORY"),
                        help="the class repository's URL, which Colab installs bnlib from (default $CLASS_REPOSITORY)")
    arguments = parser.parse_args()
    written = make_release(arguments.dest, repository=arguments.repository)
    url = stamp_colab.repository_url((arguments.dest / "pyproject.toml").read_text())
    print(f"{arguments.dest}: {len(written)} files; push this folder as the class repository, {url}")
    if stamp_colab.PLACEHOLDER in url:
        print("note: that URL is a placeholder: pass --repository URL (or CLASS_REPOSITORY=URL) for Colab")
