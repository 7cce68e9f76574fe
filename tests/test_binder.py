"""binder/: what repo2docker (mybinder.org) reads to build the image, checked against its rules, and resolved by pip.

With a binder/ folder repo2docker reads its configuration files there only (root files such as environment.yml
are ignored), picks the first build pack whose files it finds, and runs binder/postBuild after the install
(repo2docker's docs, "Configuration Files"). No environment with torch is built here.
"""

import json
import os
import re
import subprocess
import sys
import urllib.request
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.support.tools import copy_project, load_tool

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
# Files of the build packs that repo2docker tries before its Python one (Docker, Julia, Nix, R, Pipfile) and of
# the conda one: any of them would change how the image is built.
OTHER_BUILD_PACKS = {"Dockerfile", "Project.toml", "REQUIRE", "default.nix", "install.R", "DESCRIPTION",
                     "Pipfile", "Pipfile.lock", "environment.yml"}
WIDGET_PACKAGES = ("ipywidgets", "ipympl", "anywidget", "jupyterlab")


def requirement_lines():
    lines = (line.split("#", 1)[0].strip() for line in (BINDER / "requirements.txt").read_text().splitlines())
    return [line for line in lines if line]


def project_dependencies():
    """{canonical name: SpecifierSet} of pyproject.toml's dependencies."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(text).name): Requirement(text).specifier for text in project["dependencies"]}


def test_binder_holds_the_python_build_pack_and_nothing_that_overrides_it():
    names = {path.name for path in BINDER.iterdir()}
    assert names == {"requirements.txt", "runtime.txt", "postBuild"}
    assert not names & OTHER_BUILD_PACKS


def test_runtime_asks_for_a_python_that_the_project_supports():
    tomllib = pytest.importorskip("tomllib")
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    (version,) = re.fullmatch(r"python-(3\.\d+)\n", (BINDER / "runtime.txt").read_text()).groups()
    assert f"{version}.0" in requires, f"runtime.txt asks for Python {version}; pyproject requires {requires}"


def test_requirements_install_the_project_itself_with_its_dependencies():
    """`-e .` is a local reference: repo2docker copies the repository first, then runs pip from its root."""
    lines = requirement_lines()
    assert "-e ." in lines
    options = [line for line in lines if line.startswith("--")]
    assert options == ["--extra-index-url https://download.pytorch.org/whl/cpu"]
    assert set(lines) == {"-e .", *options}  # the packages are pyproject.toml's: listed once, there


def test_post_build_is_an_executable_bash_script_that_stops_at_the_first_error():
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK) and script.stat().st_mode & 0o111 == 0o111
    lines = script.read_text().splitlines()
    assert lines[0] in ("#!/usr/bin/env bash", "#!/bin/bash")
    first_command = next(line for line in lines[1:] if line.strip() and not line.startswith("#"))
    assert re.fullmatch(r"set -[a-z]*e[a-z]*( pipefail| -o pipefail)?", first_command), first_command
    subprocess.run(["bash", "-n", str(script)], check=True)


LABEXTENSIONS = {"@jupyter-widgets/jupyterlab-manager": "v5.0.16 enabled OK (python, jupyterlab_widgets)",
                 "jupyter-matplotlib": "v0.12.0 enabled OK", "anywidget": "v0.11.0 enabled OK"}


def run_post_build(tmp_path, labextensions):
    """postBuild with `jupyter labextension list` printing {name: state}; (result, whether it reached `python`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    listing = "\n".join(f"        {name} {state}" for name, state in labextensions.items())
    (bin_dir / "jupyter").write_text(f"#!/bin/sh\ncat <<'EOF'\nJupyterLab v4.6.6\n{listing}\nEOF\n")
    (bin_dir / "python").write_text(f"#!/bin/sh\ntouch {bin_dir / 'python-ran'}\n")
    for name in ("jupyter", "python"):
        (bin_dir / name).chmod(0o755)
    result = subprocess.run([str(BINDER / "postBuild")], cwd=ROOT, capture_output=True, text=True,
                            env=os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    return result, (bin_dir / "python-ran").exists()


def test_post_build_goes_on_when_every_widget_front_end_is_enabled(tmp_path):
    result, reached_python = run_post_build(tmp_path, LABEXTENSIONS)
    assert result.returncode == 0 and reached_python, result.stderr


@pytest.mark.parametrize("missing", list(LABEXTENSIONS))
@pytest.mark.parametrize("how", ["absent", "disabled"])
def test_post_build_fails_the_build_when_a_widget_front_end_is_missing(tmp_path, missing, how):
    labextensions = dict(LABEXTENSIONS)
    if how == "absent":
        del labextensions[missing]
    else:
        labextensions[missing] = labextensions[missing].replace("enabled", "disabled")
    result, reached_python = run_post_build(tmp_path, labextensions)
    assert result.returncode == 1 and not reached_python  # set -e: the build stops there
    assert f"JupyterLab extension {missing} is missing or disabled" in result.stderr


@pytest.mark.slow  # JupyterLab's extension list and MNIST: about 8 s of CPU (a minute on a busy machine)
def test_post_build_passes_with_this_environment(tmp_path):
    """This environment has what the Binder image gets: the three front ends enabled, and MNIST loads."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run([str(BINDER / "postBuild")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "MNIST" in result.stdout


def reachable(url):
    try:
        urllib.request.urlopen(url, timeout=10).close()
    except OSError:
        return False
    return True


@pytest.mark.slow  # pip fetches the metadata of about 140 packages: about a minute and a half
def test_pip_resolves_the_requirements(tmp_path):
    """`pip install --dry-run` of binder/requirements.txt, as Binder runs it, for this Python (no install).

    A copy of the project keeps the checkout free of the egg-info that pip's build of `-e .` writes. pip's own
    configuration files are not read (Binder has none). PyTorch's CPU index, when this machine cannot reach it,
    is left out with a warning: torch then resolves from PyPI and its "+cpu" build is not checked.
    """
    if not reachable("https://pypi.org/simple/pip/"):
        if os.environ.get("CI") == "true":
            pytest.fail("pypi.org is not reachable: binder/requirements.txt cannot be resolved")
        pytest.skip("pypi.org is not reachable: binder/requirements.txt cannot be resolved offline")
    project = copy_project(tmp_path / "project")
    lines = requirement_lines()
    cpu_index = reachable("https://download.pytorch.org/whl/cpu/torch/")
    if not cpu_index:
        warnings.warn("download.pytorch.org is not reachable: resolved torch from PyPI only", stacklevel=1)
        lines = [line for line in lines if "download.pytorch.org" not in line]
    (tmp_path / "requirements.txt").write_text("\n".join(lines) + "\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_") or key == "PIP_CERT"}
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                    "--report", str(report), "-r", str(tmp_path / "requirements.txt")],
                   cwd=project, env=env | {"PIP_CONFIG_FILE": os.devnull}, check=True, timeout=900)
    installed = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                 for item in json.loads(report.read_text())["install"]}
    assert installed["bnlib"] == "0.1.0"
    for name, specifier in project_dependencies().items():
        assert specifier.contains(installed[name], prereleases=True), f"{name} {installed[name]} not {specifier}"
    assert set(WIDGET_PACKAGES) <= set(installed)
    if cpu_index:
        assert installed["torch"].endswith("+cpu")
        assert not [name for name in installed if name.startswith("nvidia-")]


def test_the_class_repository_gets_the_same_binder_files(tmp_path):
    """make release copies binder/ byte for byte: `-e .` there installs the release's own pyproject.toml."""
    load_tool("make_release").make_release(tmp_path / "class")
    for path in sorted(BINDER.iterdir()):
        assert (tmp_path / "class" / "binder" / path.name).read_bytes() == path.read_bytes(), path.name
