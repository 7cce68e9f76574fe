"""Colab: every notebook's first code cell is the set-up cell for the repository's one URL, and a notebook runs
with bnlib installed from a wheel (not this checkout) under a stand-in `google.colab`."""

import ast
import os
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from packaging.requirements import Requirement

from bnlib import hosting
from bnlib.cache import CACHE_DIR_ENV, resolve_cache_dir
from bnlib.data import DATA_DIR_ENV, data_dir
from tests.support.execution import execute_in_quick_mode
from tests.support.tools import copy_project, load_tool

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
stamp_colab = load_tool("stamp_colab")
URL = stamp_colab.repository_url((ROOT / "pyproject.toml").read_text())


def first_code_cell(notebook):
    return next(cell for cell in notebook.cells if cell.cell_type == "code")


def test_the_url_is_pyprojects_repository():
    tomllib = pytest.importorskip("tomllib")
    assert URL == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_starts_with_the_set_up_cell_for_that_url(path):
    cell = first_code_cell(nbformat.read(path, as_version=4))
    assert cell.source == stamp_colab.setup_source(URL), f"{path.name}: run python tools/stamp_colab.py"


def test_the_cell_pip_installs_this_project_from_the_url():
    """The install command as the cell builds it (the cell's own list expression, evaluated)."""
    tree = ast.parse(stamp_colab.setup_source(URL))
    (call,) = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and ast.unparse(node.func) ==
               "subprocess.run"]
    repository = next(node.value.value for node in tree.body
                      if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "REPOSITORY")
    command = eval(compile(ast.Expression(call.args[0]), "cell", "eval"), {"sys": sys, "REPOSITORY": repository})
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    requirement = Requirement(command[-1])
    assert (requirement.name, requirement.url) == ("bnlib", f"git+{URL}")


def test_stamping_inserts_the_cell_once_and_updates_it(tmp_path):
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), new_code_cell("import bnlib")])
    nbformat.write(notebook, tmp_path / "demo.ipynb")
    assert stamp_colab.stamp_folder(tmp_path, "https://example.org/a.git") == ["demo.ipynb"]
    assert stamp_colab.stamp_folder(tmp_path, "https://example.org/a.git") == []  # already stamped
    assert stamp_colab.stamp_folder(tmp_path, "https://example.org/b.git") == ["demo.ipynb"]
    cells = nbformat.read(tmp_path / "demo.ipynb", as_version=4).cells
    assert [cell.source for cell in cells] == ["# Title", stamp_colab.setup_source("https://example.org/b.git"),
                                               "import bnlib"]


@pytest.mark.parametrize("url", ["git@github.com:org/repo.git", "http://example.org/repo", "https://x/\"; rm"])
def test_a_url_that_is_not_https_is_refused(url):
    with pytest.raises(ValueError, match="repository must be an https:// URL"):
        stamp_colab.setup_source(url)


def test_release_writes_the_class_repository_everywhere(tmp_path):
    make_release = load_tool("make_release")
    class_url = "https://github.com/some-class/batchnorm-2027"
    make_release.make_release(tmp_path / "class", repository=class_url)
    assert stamp_colab.repository_url((tmp_path / "class" / "pyproject.toml").read_text()) == class_url
    for path in sorted((tmp_path / "class" / "notebooks").glob("*.ipynb")):
        assert first_code_cell(nbformat.read(path, as_version=4)).source == stamp_colab.setup_source(class_url)


def write_stub_colab(folder):
    """A `google.colab` package whose output.enable_custom_widget_manager() records each call in `calls`."""
    package = folder / "google" / "colab"
    package.mkdir(parents=True)
    (folder / "google" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "output.py").write_text("calls = []\n\n\ndef enable_custom_widget_manager():\n"
                                       "    calls.append('enable_custom_widget_manager')\n")
    return folder


def install_wheel(tmp_path):
    """bnlib built as a wheel and installed (without dependencies) into a folder of its own; returns that folder."""
    project = copy_project(tmp_path / "project")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir",
                    str(tmp_path / "dist"), str(project)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("bnlib-*.whl")
    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    return target


@pytest.mark.slow  # builds a wheel and runs notebook 01 in quick mode in a fresh kernel
def test_notebook_runs_from_a_wheel_in_colab(tmp_path, monkeypatch):
    site, stub = install_wheel(tmp_path), write_stub_colab(tmp_path / "stub")
    work = tmp_path / "content"  # Colab's working folder
    work.mkdir()
    (work / "data").symlink_to(data_dir())  # the MNIST that this session uses, found where Colab keeps it
    monkeypatch.setenv("PYTHONPATH", f"{site}{os.pathsep}{stub}")  # the checkout is not on the path
    monkeypatch.delenv(CACHE_DIR_ENV)  # set by tests/conftest.py; in Colab the set-up cell chooses
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    notebook = nbformat.read(ROOT / "notebooks" / "01_dropout_mlp.ipynb", as_version=4)
    report = ("import os, bnlib, google.colab.output\n"
              f"print(bnlib.__file__, google.colab.output.calls, os.environ[{CACHE_DIR_ENV!r}], "
              f"os.environ[{DATA_DIR_ENV!r}], sep='\\n')")
    notebook.cells.append(new_code_cell(report))
    execute_in_quick_mode(notebook, work)
    where, calls, cache, data = notebook.cells[-1].outputs[0]["text"].strip().split("\n")
    assert Path(where).is_relative_to(site) and not Path(where).is_relative_to(ROOT)
    assert calls == "['enable_custom_widget_manager']"
    assert Path(cache) == work / "build" / "cache" and any((work / "build" / "cache").iterdir())
    assert Path(data) == work / "data"


def test_outside_colab_prepare_host_changes_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", None)  # None in sys.modules: the import raises ImportError
    before = dict(os.environ)
    hosting.prepare_host()
    assert dict(os.environ) == before


def test_in_colab_prepare_host_turns_widgets_on_and_keeps_files_in_the_folder(monkeypatch, tmp_path):
    output = types.SimpleNamespace(calls=[])
    output.enable_custom_widget_manager = lambda: output.calls.append("enable_custom_widget_manager")
    monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(output=output))
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv(DATA_DIR_ENV, "/somewhere/mnist")  # chosen by the user: kept
    hosting.prepare_host(tmp_path)
    assert output.calls == ["enable_custom_widget_manager"]
    assert resolve_cache_dir() == tmp_path / "build" / "cache"
    assert data_dir() == Path("/somewhere/mnist")
