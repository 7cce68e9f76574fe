"""environment.yml (conda) and pyproject.toml (pip) ask for the same packages and versions."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # in the standard library from Python 3.11

ROOT = Path(__file__).resolve().parent.parent
CONDA_TO_PIP = {"pytorch": "torch"}  # names that differ between conda-forge and PyPI
NOT_PACKAGES = {"python", "pip"}  # the interpreter and the installer, not dependencies


def split_requirement(text):
    name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", text.strip()).groups()
    return name.lower(), spec.replace(" ", "")


def pip_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    requirements = project["dependencies"] + [requirement for extra in extras for requirement in extra]
    return dict(split_requirement(requirement) for requirement in requirements)


def conda_requirements():
    dependencies = (ROOT / "environment.yml").read_text().split("\ndependencies:\n", 1)[1]
    lines = re.findall(r"^  - ([^\s:][^\n]*)$", dependencies, flags=re.MULTILINE)
    pairs = (split_requirement(line) for line in lines)
    return {CONDA_TO_PIP.get(name, name): spec for name, spec in pairs if name not in NOT_PACKAGES}


def test_conda_and_pip_list_the_same_packages():
    assert conda_requirements() == pip_requirements()


def test_environment_installs_the_project_itself():
    assert re.search(r"^      - -e \.$", (ROOT / "environment.yml").read_text(), flags=re.MULTILINE)
