"""bench: the statistics, pairing, schedule and report logic behind `make bench` (no timings asserted)."""

import json
import sys

import numpy as np
import pytest

from bench.measure import paired_ratio, rotated
from bench.report import format_value, markdown_table, meets, render_markdown, target_checks, write_results
from bench.slider import slider_values
from bench.suite import run_measured
from bench.training import PAIRS, STEP_PAIRS_PER_REPEAT, schedule, summarize_models


def test_paired_ratio_is_the_median_of_per_pair_ratios():
    # A load spike in repetition 2 slows both runs of the pair: the pair's ratio stays 10.
    classic, bnlib = [10.0, 100.0, 12.0], [1.0, 10.0, 1.0]
    assert paired_ratio(classic, bnlib) == 10.0
    assert np.median(classic) / np.median(bnlib) == 12.0  # the ratio of medians would mix repetitions
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])


def test_rotated():
    assert rotated(["a", "b", "c"], 1) == ["b", "c", "a"]
    assert rotated(["a", "b"], 3) == ["b", "a"]


def test_schedule_keeps_pairs_adjacent_and_flips_their_order():
    available = {key for pair in PAIRS for key in pair} | {"loader_only_s"}
    first, second = schedule(0, available), schedule(1, available)
    assert first[:2] == ["bnlib_epoch_s", "classic_epoch_s"] and second[:2] == ["classic_epoch_s", "bnlib_epoch_s"]
    steps = first[2:-1]
    assert len(steps) == 2 * STEP_PAIRS_PER_REPEAT
    assert all(set(steps[i : i + 2]) == {"bnlib_steps_s", "bare_steps_s"} for i in range(0, len(steps), 2))
    assert steps[0] != steps[2]  # consecutive pairs alternate AB, BA
    assert first[-1] == "loader_only_s"


def test_schedule_without_classic_runs_its_partner_alone():
    order = schedule(1, {"bnlib_epoch_s", "bnlib_steps_s", "bare_steps_s", "loader_only_s"})
    assert "classic_epoch_s" not in order and order.count("bnlib_epoch_s") == 1
    assert order.count("bare_steps_s") == STEP_PAIRS_PER_REPEAT


def test_summarize_models_ratios():
    times = {
        "m": {
            "bnlib_epoch_s": [1.0, 2.0, 1.0],
            "classic_epoch_s": [9.0, 20.0, 12.0],
            "bnlib_steps_s": [1.2, 1.1, 3.0],
            "bare_steps_s": [1.0, 1.0, 2.0],
        }
    }
    row = summarize_models(times)["m"]
    assert row["speedup_vs_classic"] == pytest.approx(10.0)  # ratios 9, 10, 12
    assert row["overhead_vs_bare"] == pytest.approx(1.2)  # ratios 1.2, 1.1, 1.5
    assert row["bnlib_epoch_s"] == 1.0 and row["repeats"] == 3
    assert "speedup_vs_classic" not in summarize_models({"m": {k: v for k, v in times["m"].items()
                                                                if k != "classic_epoch_s"}})["m"]


def test_slider_values_sweep_the_log_grid_up_and_down():
    values = slider_values(20)
    assert len(values) == 20
    assert values[0] == pytest.approx(0.001) and max(values) == pytest.approx(1.0)
    assert all(a != b for a, b in zip(values, values[1:], strict=False))  # every move is a real change
    exponents = np.log10(values)
    assert np.allclose(exponents, np.round(exponents, 2))  # on the FloatLogSlider's 0.01 exponent grid
    assert 0.0009 < min(values) and max(values) <= 1.0


@pytest.mark.parametrize(
    "value, op, limit, expected",
    [(8.0, "≥", 8.0, True), (7.9, "≥", 8.0, False), (1.25, "≤", 1.25, True), (1.3, "≤", 1.25, False),
     (None, "≤", 1.0, None), (3.0, None, None, None)],
)  # fmt: skip
def test_meets(value, op, limit, expected):
    assert meets(value, op, limit) is expected


def test_format_value():
    assert format_value(None) == "—"
    assert format_value(0.012345) == "0.0123"
    assert format_value(12.345) == "12.3"
    assert format_value(1234.5) == "1,234"


def test_markdown_table():
    table = markdown_table(["a", "b"], [["x|y", 1], ["z", 2.5]])
    assert table.splitlines() == ["| a | b |", "| --- | ---: |", "| x\\|y | 1 |", "| z | 2.5 |"]
    with pytest.raises(ValueError):
        markdown_table(["a", "b"], [["only one"]])


def fake_results():
    return {
        "command": "python -m bench.run --suite quick",
        "machine": {"cpu_count": 2, "torch": "2.x", "torch_threads": 2, "device": "cpu"},
        "data": {"source": "MNIST"},
        "training": {
            "lecture": {"bnlib_epoch_s": 0.5, "classic_epoch_s": 6.0, "speedup_vs_classic": 12.0,
                        "bnlib_steps_s": 0.4, "bare_steps_s": 0.3, "overhead_vs_bare": 1.33, "repeats": 5},
        },  # fmt: skip
        "slider_ms_median": 40.0,
        "slider_ms_p95": 120.0,
        "quick_suite_s": 90.0,
        "notes": ["Full notebook suite not measured."],
    }


def test_target_checks():
    checks = {(check["key"], check["model"]): check["met"] for check in target_checks(fake_results())}
    assert checks[("speedup_vs_classic", "lecture")] is True
    assert checks[("overhead_vs_bare", "lecture")] is False
    assert checks[("slider_ms_median", None)] is True and checks[("slider_ms_p95", None)] is False
    assert checks[("full_suite_s", None)] is None  # not measured: neither met nor missed


def test_report_files(tmp_path):
    results = fake_results()
    json_path, markdown_path = write_results(results, tmp_path / "bench")
    assert json.loads(json_path.read_text()) == results
    text = markdown_path.read_text()
    assert text == render_markdown(results)
    assert "| **speedup_vs_classic** (b / a) | 12.000 (met) | ≥ 8 |" in text
    assert "| **overhead_vs_bare** (a / c) | 1.330 (**missed**) | ≤ 1.25 |" in text
    assert "`full_suite_s` | — | ≤ 1,200: not measured |" in text
    assert "- Full notebook suite not measured." in text


def test_run_measured_does_not_count_the_callers_memory():
    # Only the command's process tree is measured, not the bench that starts it.
    ballast = bytearray(400 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page: 400 MB resident in this process
    _, peak_mb, code = run_measured([sys.executable, "-c", "pass"], env=None)
    assert code == 0 and peak_mb < 200
    del ballast


def test_run_measured_reports_a_grandchild_peak(tmp_path):
    # The peak must include a process the child starts, as nbconvert starts the kernel; it holds its memory for
    # a second, longer than the sampling interval.
    grandchild = "import time\nb = bytearray(200 * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1\ntime.sleep(1)"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}], check=True)"
    seconds, peak_mb, code = run_measured([sys.executable, "-c", child], env=None)
    assert code == 0 and seconds > 0
    assert peak_mb > 200
    _, _, failed = run_measured([sys.executable, "-c", "raise SystemExit(3)"], env=None)
    assert failed == 3
