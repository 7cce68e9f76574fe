"""tools/export_figures.py writes each PNG output of a notebook to its own file, readable by everyone."""

import base64
import importlib.util
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "export_figures.py"
SPEC = importlib.util.spec_from_file_location("export_figures", SCRIPT)
export_figures = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(export_figures)


def test_every_png_output_becomes_a_file(tmp_path, private_umask):
    pngs = [b"\x89PNG first", b"\x89PNG second"]
    cell = new_code_cell("plot()", id="plots")
    cell.outputs = [new_output("display_data", data={"image/png": base64.b64encode(png).decode()}) for png in pngs]
    cell.outputs.append(new_output("stream", name="stdout", text="no image here"))
    nbformat.write(new_notebook(cells=[cell, new_code_cell("1 + 1", id="none")]), tmp_path / "01_demo.ipynb")
    written = export_figures.export_figures(tmp_path, tmp_path / "figures")
    assert [path.name for path in written] == ["01_demo--plots-0.png", "01_demo--plots-1.png"]
    assert [path.read_bytes() for path in written] == pngs
    assert [path.stat().st_mode & 0o777 for path in [tmp_path / "figures", *written]] == [0o755, 0o644, 0o644]
