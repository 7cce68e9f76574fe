"""The scripts of tools/ as modules, for the tests that call their functions (tools/ is not a package)."""

import importlib.util
import shutil
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent.parent / "tools"


def load_tool(name):
    """tools/<name>.py, imported as the module `name`."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_project(dest):
    """What pip needs to build bnlib (pyproject.toml, README.md, bnlib/), copied to `dest`; returns `dest`.

    Building from a copy keeps the checkout free of the egg-info and build/ folders that a build writes.
    """
    root = TOOLS.parent
    shutil.copytree(root / "bnlib", dest / "bnlib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, dest / name)
    return dest
