"""Rules that live in one place: each test scans every bnlib module and fails where a rule is written out again."""

import re
from pathlib import Path

import pytest

import bnlib

PACKAGE = Path(bnlib.__file__).resolve().parent
# The device rule (given, else CUDA, then MPS, then the CPU) lives in bnlib/runtime.py's resolve_device.
DEVICE_RULE = re.compile(r"torch\.cuda\.is_available|best_device\(\)|torch\.device\(device\) if device")
# The model's device (given, else where its first parameter lives) lives in bnlib/runtime.py's model_device.
MODEL_DEVICE = re.compile(r"next\(\w+\.parameters\(\)\)\.device")
# The lecture's training loader (shuffled by the seed, last partial batch dropped) lives in bnlib/data.py.
TRAINING_LOADER = re.compile(r"shuffle=True")


def modules(package=PACKAGE):
    return sorted(package.rglob("*.py"))


def written_outside(pattern, home, package=PACKAGE):
    """'path:line: text' of every line of a module of `package` other than `home` that matches `pattern`."""
    places = []
    for path in modules(package):
        name = path.relative_to(package).as_posix()
        if name == home:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                places.append(f"{name}:{number}: {line.strip()}")
    return places


def test_the_scan_sees_every_module():
    names = {path.relative_to(PACKAGE).as_posix() for path in modules()}
    assert {"runtime.py", "runs.py", "studies/sweeps.py", "stats/recorded_run.py"} <= names


@pytest.mark.parametrize(
    ("pattern", "home"),
    [(DEVICE_RULE, "runtime.py"), (MODEL_DEVICE, "runtime.py"), (TRAINING_LOADER, "data.py")],
    ids=[
        "device rule: bnlib.runtime.resolve_device",
        "model's device: bnlib.runtime.model_device",
        "training loader: bnlib.data.training_loader",
    ],
)
def test_a_rule_is_written_once(pattern, home):
    assert pattern.search((PACKAGE / home).read_text())  # the rule is where it belongs
    assert written_outside(pattern, home) == []


def test_the_scan_finds_a_copy(tmp_path):
    (tmp_path / "studies").mkdir()
    (tmp_path / "runtime.py").write_text("def resolve_device():\n    return torch.cuda.is_available()\n")
    copy = tmp_path / "studies" / "copy.py"
    copy.write_text("import torch\n\ndevice = torch.device(device) if device is not None else best_device()\n")
    assert written_outside(DEVICE_RULE, "runtime.py", tmp_path) == [
        "studies/copy.py:3: device = torch.device(device) if device is not None else best_device()"
    ]


def test_the_scan_finds_a_copy_of_the_models_device(tmp_path):
    (tmp_path / "stats").mkdir()
    (tmp_path / "stats" / "copy.py").write_text(
        "def run(model, device=None):\n    device = device or next(model.parameters()).device\n"
    )
    assert written_outside(MODEL_DEVICE, "runtime.py", tmp_path) == [
        "stats/copy.py:2: device = device or next(model.parameters()).device"
    ]
