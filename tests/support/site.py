"""The static site of notebooks 04 and 08 in quick mode, built once per test session (tests/test_site*.py)."""

import functools

from tests.support.tools import load_tool

SITE_NOTEBOOKS = ("04_running_statistics.ipynb", "08_why_batchnorm_helps.ipynb")  # the explorer; the drift player


@functools.cache
def quick_site(base):
    """(the site folder under `base`, {page: size in bytes}): `make site`'s build of SITE_NOTEBOOKS, quick mode."""
    out = base / "site"
    return out, load_tool("build_site").build_site(out, SITE_NOTEBOOKS, quick=True, timeout=900)
