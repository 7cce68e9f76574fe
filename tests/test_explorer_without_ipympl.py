"""Notebook 04 in a kernel where `import ipympl` fails: it runs, falls back to static figures, and the explorer
still answers its slider: drawn in the browser where anywidget imports, else with a new image; its output
carries a PNG for static views either way."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from bnlib.config import QUICK_ENV

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_running_statistics.ipynb"

DRIVE_THE_SLIDER = {
    "image": """\
from bnlib.widgets.backend import ipympl_active

from bnlib.widgets.displays import ImageDisplay

image = explorer.display.widget
before = bytes(image.value)
explorer.momentum.value = 0.001
assert explorer.last_error is None, explorer.last_error
assert not ipympl_active() and isinstance(explorer.display, ImageDisplay) and image in explorer.children
assert bytes(image.value)[:4] == b"\\x89PNG" and bytes(image.value) != before
print(backend, "|", explorer.readout.value)
""",
    "browser": """\
from bnlib.widgets.browser_display import BrowserDisplay

explorer.momentum.value = 0.001
assert explorer.last_error is None, explorer.last_error
assert isinstance(explorer.display, BrowserDisplay) and explorer.display.widget in explorer.children
assert "momentum 0.001" in explorer.readout.value
print(backend, "|", explorer.readout.value)
""",
}


def hide(folder, names):
    """A folder that, first on PYTHONPATH, makes `import <name>` raise ImportError (as where it is not installed)."""
    for name in names:
        package = folder / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f'raise ImportError("No module named {name!r} (hidden by the test)")\n')
    return folder


@pytest.mark.slow  # runs notebook 04
@pytest.mark.parametrize(("hidden", "explorer_kind"), [(("ipympl",), "browser"), (("ipympl", "anywidget"), "image")])
def test_notebook_04_runs_and_its_explorer_answers_without_ipympl(tmp_path, hidden, explorer_kind):
    shim = hide(tmp_path / "shim", hidden)
    env = {**os.environ, QUICK_ENV: "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(shim),
                                                                                          os.environ.get("PYTHONPATH")]))}
    env.pop("MPLBACKEND", None)  # the notebook chooses its backend itself
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(new_code_cell(DRIVE_THE_SLIDER[explorer_kind]))
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=env)  # raises CellExecutionError on any error, the slider's assertions included

    def text(cell):
        return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")

    [imports] = [cell for cell in notebook.cells if "= widgets.use_widget_backend()" in cell.source]
    assert "ipympl is not available" in text(imports)
    assert text(notebook.cells[-1]).startswith("inline | Eval-mode test accuracy with the weights kept at step")
    [explorer_cell] = [cell for cell in notebook.cells if cell.source.rstrip().endswith("\nexplorer")]
    [display] = [output for output in explorer_cell.outputs if output.output_type == "execute_result"]
    assert {"application/vnd.jupyter.widget-view+json", "image/png"} <= set(display.data)
