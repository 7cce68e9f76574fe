"""environment.yml (conda) and pyproject.toml (pip) ask for the same packages and versions."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # in the standard library from Python 3.11

ROOT = Path(__file__).resolve().parent.parent
CONDA_TO_PIP = {"pytorch": "torch"}  # names that differ between conda-forge and PyPI
NOT_PACKAGES = {"python", "pip"}  # the interpreter and the installer, not dependencies


def split_requirement(text):
    """(name, version spec); an environment marker (`; python_version >= '3.11'`) is left off: conda has none."""
    name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*([^;]*)", text.split(";")[0].strip()).groups()
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


def test_the_instructor_extra_holds_nbgrader_for_the_pythons_it_supports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (requirement,) = project["optional-dependencies"]["instructor"]
    assert split_requirement(requirement)[0] == "nbgrader"
    assert requirement.split(";")[1].strip() == "python_version >= '3.11'"  # nbgrader 0.9 requires Python 3.11
