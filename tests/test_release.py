"""`make release` (tools/make_release.py): a class repository that holds no answer, literally or renamed, and runs.

The leak test reads every solution region of the instructor notebooks (the lines between nbgrader's solution
markers that tools/make_student.py replaces by a stub), and looks for each of its statements in the release with
every name replaced by a placeholder, so `z`/`x` or `var`/`v` renamings still match. Statements below
MIN_NODES syntax nodes (`return out`, `dims = (0, 2, 3)`) say nothing about the answer and are not compared.
"""

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from bnlib.cache import code_fingerprint
from tests.support.execution import CHECK_CALL, assert_every_check_not_attempted, execute_in_quick_mode

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
SPEC = importlib.util.spec_from_file_location("make_release", REPO / "tools" / "make_release.py")
make_release = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(make_release)
make_student = make_release.make_student

MIN_NODES = 8  # statements, expressions, keywords and arguments in a statement's tree
# bnlib ships whole (notebook 05 and later call fold_batchnorm; the checks compute PyTorch's answer and the named
# mistakes from the formulas): its implementations and the checks' references may hold an answer's statement.
# Any other module, and every notebook, page and README, may not.
MAY_HOLD_ANSWERS = ("bnlib/stats/", "bnlib/exercises/")

pytestmark = pytest.mark.slow  # builds the release and runs its exercise notebooks in quick mode


class Placeholders(ast.NodeTransformer):
    """Every variable, argument and function name becomes `_` (attributes and constants stay: they are the API)."""

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id="_", ctx=node.ctx), node)

    def visit_arg(self, node):
        return ast.copy_location(ast.arg(arg="_"), node)

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        node.name = "_"
        return node


def normalized(node):
    return ast.dump(Placeholders().visit(ast.parse(ast.unparse(node))), annotate_fields=False)


def node_count(node):
    return sum(isinstance(child, ast.stmt | ast.expr | ast.keyword | ast.arg) for child in ast.walk(node))


def solution_regions(source):
    """The code of each solution region of a cell, dedented."""
    regions, lines, active = [], [], False
    for line in source.splitlines():
        if line.strip() == make_student.BEGIN:
            active, lines = True, []
        elif line.strip() == make_student.END:
            active = False
            regions.append(textwrap.dedent("\n".join(lines)))
        elif active:
            lines.append(line)
    return regions


def solution_statements(notebook_dir=NOTEBOOK_DIR):
    """{normalized statement: (notebook, its source)} for every statement of MIN_NODES or more in a solution region."""
    found = {}
    for path in sorted(notebook_dir.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for region in solution_regions(cell.source):
                for node in ast.walk(ast.parse(region)):
                    if isinstance(node, ast.stmt) and node_count(node) >= MIN_NODES:
                        found[normalized(node)] = (path.name, ast.unparse(node))
    return found


def markdown_code(text):
    """Code a page may hold: fenced blocks, inline code spans and each line on its own."""
    yield from re.findall(r"```[^\n]*\n(.*?)```", text, re.DOTALL)
    yield from re.findall(r"`([^`\n]+)`", text)
    yield from text.splitlines()


def code_pieces(path):
    if path.suffix == ".py":
        yield path.read_text()
    elif path.suffix == ".ipynb":
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":  # IPython's % and ! lines are not Python
                yield "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            else:
                yield from markdown_code(cell.source)
    else:
        yield from markdown_code(path.read_text())


def statements_in(root):
    """{normalized statement: [(relative path, its source)]} over the release's notebooks, pages and Python files."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".py", ".ipynb", ".md") and path.name != "Makefile":
            continue
        for piece in code_pieces(path):
            try:
                tree = ast.parse(textwrap.dedent(piece))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.stmt):
                    where = path.relative_to(root).as_posix()
                    found.setdefault(normalized(node), []).append((where, ast.unparse(node)))
    return found


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    previous = os.umask(0o077)  # a private umask: the release must still be readable by others
    try:
        root = tmp_path_factory.mktemp("release") / "class"
        make_release.make_release(root)
    finally:
        os.umask(previous)
    return root


def test_the_release_holds_what_a_student_needs_and_nothing_else(release):
    top = sorted(path.name for path in release.iterdir())
    assert top == [".gitignore", ".release", "Makefile", "README.md", "binder", "bnlib", "data", "docs",
                   "environment.yml", "notebooks", "pyproject.toml"]
    assert sorted(path.name for path in (release / "notebooks").iterdir()) == sorted(
        path.name for path in NOTEBOOK_DIR.glob("*.ipynb"))
    assert [path.name for path in (release / "data").iterdir()] == ["README.md"]
    assert [path.name for path in (release / "docs").iterdir()] == ["how-these-notebooks-run.md"]
    everything = [path.relative_to(release).as_posix() for path in release.rglob("*")]
    assert not (release / ".git").exists()  # no history from the instructor's repository
    for unwanted in ("__pycache__", ".pyc", "tests/", "build/", ".png", "placement-results", ".written.json"):
        assert not [path for path in everything if unwanted in path], unwanted


def test_files_are_readable_by_others(release):
    for path in [release, *release.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path


def test_bnlib_ships_byte_for_byte_and_a_warm_cache_answers(release):
    shipped = make_release.package_files(release / "bnlib")
    source = make_release.package_files(REPO / "bnlib")
    assert [path.relative_to(release) for path in shipped] == [path.relative_to(REPO) for path in source]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(shipped, source, strict=True))
    script = "import bnlib, bnlib.cache; print(bnlib.__file__); print(bnlib.cache.code_fingerprint())"
    env = os.environ | {"PYTHONPATH": str(release)}
    where, fingerprint = subprocess.run([sys.executable, "-c", script], cwd=release, env=env, check=True,
                                        capture_output=True, text=True).stdout.split()
    assert Path(where).is_relative_to(release)
    assert fingerprint == code_fingerprint()  # the key of every cached run: the instructor's cache answers


def test_links_of_the_pages_resolve_in_the_release(release):
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")
    pages = {page: page.read_text() for page in [*release.glob("*.md"), *release.glob("*/*.md")]}
    for notebook in release.glob("notebooks/*.ipynb"):
        cells = nbformat.read(notebook, as_version=4).cells
        pages[notebook] = "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
    for page, text in pages.items():
        for target in link.findall(text):
            if "://" not in target:
                assert (page.parent / target).resolve().is_file(), f"{page.name} links to {target}, not in the release"


class Renamed(ast.NodeTransformer):
    """A student's copy under other names: every variable and argument gets a prefix."""

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id=f"my_{node.id}", ctx=node.ctx), node)

    def visit_arg(self, node):
        return ast.copy_location(ast.arg(arg=f"my_{node.arg}"), node)


def test_the_detector_finds_a_renamed_solution(tmp_path):
    statements = solution_statements()
    assert statements, "no solution region with a statement to compare: the leak test would prove nothing"
    (tmp_path / "notes.md").write_text("".join(f"See:\n```python\n{code}\n```\n" for _, code in statements.values()))
    renamed = [ast.unparse(Renamed().visit(ast.parse(source))) for _, source in statements.values()]
    assert not set(renamed) & {source for _, source in statements.values()}
    (tmp_path / "copy.py").write_text("\n\n".join(f"def other(a, b):\n{textwrap.indent(code, '    ')}"
                                                  for code in renamed))
    found = statements_in(tmp_path)
    for key in statements:
        assert {path for path, _ in found.get(key, [])} == {"notes.md", "copy.py"}


def test_no_solution_appears_in_the_release_even_renamed(release):
    shipped = statements_in(release)
    leaks = [f"{notebook}: {source!r} -> {path}: {found!r}"
             for key, (notebook, source) in solution_statements().items()
             for path, found in shipped.get(key, []) if not path.startswith(MAY_HOLD_ANSWERS)]
    assert not leaks, "solution statements in the release:\n" + "\n".join(leaks)


def substantial(line):
    """A line that says something about an answer: MIN_NODES or more, or 30 characters of a continued statement."""
    if line.startswith("#") or line.endswith(":"):
        return False
    try:
        return node_count(ast.parse(line)) >= MIN_NODES
    except SyntaxError:  # part of a statement over several lines
        return len(line) >= 30


def test_no_solution_line_appears_literally(release):
    instructor = [nbformat.read(path, as_version=4) for path in sorted(NOTEBOOK_DIR.glob("*.ipynb"))]
    lines = {line.strip() for notebook in instructor for cell in notebook.cells
             for region in solution_regions(cell.source) for line in region.splitlines()}
    lines = {line for line in lines if substantial(line)}
    for path in release.rglob("*"):
        relative = path.relative_to(release).as_posix()
        if path.is_file() and not relative.startswith(MAY_HOLD_ANSWERS):
            text = path.read_text()
            assert not [line for line in lines if line in text], relative
    assert "SOLUTION" not in "".join(path.read_text() for path in release.glob("notebooks/*.ipynb"))


def test_the_student_makefile_runs_the_notebooks_in_quick_mode(release):
    plan = subprocess.run(["make", "-n", "lab", "test", "VENV=/venv"], cwd=release, check=True,
                          capture_output=True, text=True).stdout
    assert "pip install --quiet -e ." in plan and "/venv/bin/jupyter lab --ip=127.0.0.1" in plan
    assert "BNLIB_QUICK=1" in plan and "notebooks/02_batchnorm1d.ipynb" in plan and "--output-dir build/test" in plan


def test_make_test_in_the_release_runs_a_notebook(release, tmp_path):
    """The student `make test` for real, on notebook 01, with this session's Python (no new virtual environment)."""
    venv = Path(sys.executable).parent.parent
    release = Path(shutil.copytree(release, tmp_path / "class"))  # build/test/ stays out of the shared release
    env = os.environ | {"PYTHONPATH": str(release)}
    subprocess.run(["make", "test", f"VENV={venv}", "STAMP=", "NOTEBOOKS=notebooks/01_dropout_mlp.ipynb"],
                   cwd=release, env=env, check=True, capture_output=True, timeout=600)
    executed = nbformat.read(release / "build" / "test" / "01_dropout_mlp.ipynb", as_version=4)
    assert all(cell.execution_count for cell in executed.cells if cell.cell_type == "code" and cell.source.strip())
    unchanged = nbformat.read(release / "notebooks" / "01_dropout_mlp.ipynb", as_version=4)
    assert not [cell for cell in unchanged.cells if cell.get("outputs")]


def notebooks_with_checks():
    return [path.name for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")) if CHECK_CALL.search(path.read_text())]


@pytest.mark.parametrize("name", notebooks_with_checks())
def test_the_release_runs_alone_and_every_check_is_not_attempted(name, release, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(release))  # the kernel imports the release's bnlib, not this repository's
    notebook = nbformat.read(release / "notebooks" / name, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("import bnlib; print(bnlib.__file__)"))
    execute_in_quick_mode(notebook, release / "notebooks")
    assert Path(notebook.cells[-1].outputs[0]["text"].strip()).is_relative_to(release)
    assert_every_check_not_attempted(notebook, name)


def test_a_folder_that_the_release_did_not_write_is_never_replaced(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="did not write"):
        make_release.make_release(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep"
    with pytest.raises(ValueError, match="outside the repository"):
        make_release.make_release(REPO / "notebooks")
