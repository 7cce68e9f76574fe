"""Where a notebook runs: in Google Colab, turn on the widget manager and keep the run cache and data in its folder.

Each notebook's first cell installs bnlib where it is missing (Colab) and then calls `prepare_host()`; on a
laptop, a hub or Binder the call changes nothing.
"""

import os
from pathlib import Path

from bnlib.cache import CACHE_DIR_ENV
from bnlib.data import DATA_DIR_ENV


def colab_output():
    """The `google.colab.output` module when this kernel runs in Colab, else None."""
    try:
        from google.colab import output
    except ImportError:
        return None
    return output


def prepare_host(folder=None):
    """In Colab: widgets from ipywidgets 8, ipympl and anywidget on, and the run cache and data under `folder`.

    `folder` defaults to the working folder (Colab's /content). A package installed by pip lies far from any
    checkout, so the defaults `build/cache` and `data/` beside it would land in site-packages; an explicit
    BNLIB_CACHE_DIR or BNLIB_DATA_DIR still wins. Outside Colab it changes nothing.
    """
    output = colab_output()
    if output is None:
        return
    output.enable_custom_widget_manager()  # Colab shows only its built-in widgets without it
    folder = Path.cwd() if folder is None else Path(folder)
    os.environ.setdefault(CACHE_DIR_ENV, str(folder / "build" / "cache"))
    os.environ.setdefault(DATA_DIR_ENV, str(folder / "data"))
