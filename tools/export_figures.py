"""Write each PNG figure of the executed notebooks to <figure dir>/<notebook>--<cell id>-<n>.png."""

import base64
import sys
from pathlib import Path

import nbformat

from bnlib.files import make_folder, write_atomic


def export_figures(notebook_dir, figure_dir):
    """Save each image/png output as its own file; returns the paths written."""
    make_folder(figure_dir)
    written = []
    for path in sorted(notebook_dir.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            images = [out["data"]["image/png"] for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
            for number, image in enumerate(images):
                target = figure_dir / f"{path.stem}--{cell.id}-{number}.png"
                write_atomic(target, base64.b64decode(image))
                written.append(target)
    return written


if __name__ == "__main__":
    notebook_dir, figure_dir = (Path(arg) for arg in sys.argv[1:3])
    for path in export_figures(notebook_dir, figure_dir):
        print(path)
