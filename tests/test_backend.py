"""use_widget_backend: ipympl where it imports, inline (with one line saying why) where it does not or is refused."""

import sys

import matplotlib
import nbformat
import pytest
from nbclient import NotebookClient

from bnlib.widgets import backend
from bnlib.widgets.backend import BACKEND_ENV, browser_figures_enabled, use_widget_backend


def is_widget(name):
    """matplotlib names ipympl's backend "widget" or by its module, depending on how it was selected."""
    return name.lower() in {"widget", "ipympl", backend.WIDGET_BACKEND}


def is_inline(name):
    return name.lower() in {"inline", backend.INLINE_BACKEND}


@pytest.fixture(autouse=True)
def restore_backend(monkeypatch):
    """Each test starts without the override and leaves matplotlib on the backend it found."""
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    before = matplotlib.get_backend()
    yield
    matplotlib.use(before)


def test_widget_backend_where_ipympl_imports(capsys):
    assert use_widget_backend() == "widget"
    assert is_widget(matplotlib.get_backend())
    assert capsys.readouterr().out == ""  # nothing to say when the live canvas is on


def test_inline_with_one_line_when_ipympl_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipympl", None)  # `import ipympl` now raises ImportError
    assert use_widget_backend() == "inline"
    assert is_inline(matplotlib.get_backend())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "ipympl is not available" in lines[0], lines


def test_the_override_forces_inline_although_ipympl_imports(monkeypatch, capsys):
    monkeypatch.setenv(BACKEND_ENV, "inline")
    assert use_widget_backend() == "inline"
    assert is_inline(matplotlib.get_backend())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and f"{BACKEND_ENV}=inline" in lines[0], lines


def test_quiet_fallback(monkeypatch, capsys):
    monkeypatch.setenv(BACKEND_ENV, " Inline ")  # read as every BNLIB_ switch is (bnlib.config.env_value)
    assert use_widget_backend(verbose=False) == "inline"
    assert capsys.readouterr().out == ""


def test_inside_ipython_it_runs_the_matplotlib_magic(monkeypatch):
    calls = []

    class Shell:
        def run_line_magic(self, name, argument):
            calls.append((name, argument))

    monkeypatch.setattr(backend, "_ipython_shell", Shell)
    use_widget_backend()
    monkeypatch.setitem(sys.modules, "ipympl", None)
    use_widget_backend(verbose=False)
    assert calls == [("matplotlib", "widget"), ("matplotlib", "inline")]


@pytest.mark.slow  # a notebook kernel
def test_in_a_notebook_kernel():
    """The magic route end to end in a real IPython kernel: ipympl's backend, then inline with ipympl hidden."""
    cells = [
        "import sys, matplotlib\nfrom bnlib.widgets.backend import use_widget_backend",
        "print(use_widget_backend(), matplotlib.get_backend())",
        "sys.modules['ipympl'] = None  # as where ipympl is not installed\n"
        "print(use_widget_backend(verbose=False), matplotlib.get_backend())",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    printed = [cell.outputs[0]["text"].split() for cell in notebook.cells[1:]]
    (widget, widget_backend), (inline, inline_backend) = printed
    assert (widget, inline) == ("widget", "inline")
    assert is_widget(widget_backend) and is_inline(inline_backend), (widget_backend, inline_backend)


def test_browser_figures_where_anywidget_imports_and_not_forced_inline(monkeypatch):
    assert browser_figures_enabled()
    monkeypatch.setenv(BACKEND_ENV, "inline")
    assert not browser_figures_enabled()
    monkeypatch.delenv(BACKEND_ENV)
    monkeypatch.setitem(sys.modules, "anywidget", None)  # `import anywidget` now raises ImportError
    assert not browser_figures_enabled()
