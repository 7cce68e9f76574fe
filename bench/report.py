"""The results as JSON and as a Markdown table, with each target and whether it was met."""

import json

from bnlib.config import BATCH_SIZE
from bnlib.files import make_folder, write_atomic

# (key, "≥" or "≤", limit): the targets, reported and never asserted.
MODEL_TARGETS = (("speedup_vs_classic", "≥", 8.0), ("overhead_vs_bare", "≤", 1.25))
TARGETS = (
    ("slider_ms_median", "≤", 50.0),
    ("slider_ms_p95", "≤", 100.0),
    ("slider_fallback_ms_median", "≤", 150.0),
    ("slider_fallback_ms_p95", None, None),
    ("slider_browser_ms_median", "≤", 100.0),
    ("slider_browser_ms_p95", "≤", 200.0),
    ("live_curves_overhead_pct", "≤", 5.0),
    ("warm_cell_s_per_notebook", "≤", 10.0),
    ("slowest_cell_warm_s", "≤", 5.0),
    ("floor_cell_s", "≤", 1.5),
    ("floor_wall_s", None, None),
    ("full_suite_warm_s", None, None),
    ("full_suite_s", "≤", 1200.0),
    ("quick_suite_s", None, None),
    ("quick_slowest_notebook_s", "≤", 30.0),
    ("peak_rss_mb", "≤", 1500.0),  # run with BNLIB_MEMORY_LIMIT_MB=1500, as in a class container
    ("quick_peak_rss_mb", None, None),
    ("load_test_slowest_wall_s", None, None),
    ("load_test_summed_peak_mb", None, None),
)
TRAINING_ROWS = (
    ("bnlib_epoch_s", "(a) bnlib epoch: TensorLoader + train_model, steps and accuracy passes (s)"),
    ("classic_epoch_s", "(b) classic epoch: torchvision MNIST + ToTensor + DataLoader, same work (s)"),
    ("speedup_vs_classic", "**speedup_vs_classic** (b / a)"),
    ("bnlib_steps_s", "(a) bnlib training steps only (s)"),
    ("bare_steps_s", "(c) bare compute: one resident batch, same number of steps (s)"),
    ("overhead_vs_bare", "**overhead_vs_bare** (a / c)"),
    ("loader_only_s", "TensorLoader alone: slicing one epoch of batches, no compute (s)"),
)


def meets(value, op, limit):
    """True or False when `value` meets `op limit`; None when there is no value or no target."""
    if value is None or op is None:
        return None
    if op not in ("≥", "≤"):
        raise ValueError(f"op must be '≥' or '≤', got {op!r}")
    return value >= limit if op == "≥" else value <= limit


def format_value(value):
    """A number for a table: 3 significant digits up to 1000, whole numbers above; '—' for a missing one."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def format_target(op, limit, met):
    if op is None:
        return ""
    verdict = {True: "met", False: "**missed**", None: "not measured"}[met]
    return f"{op} {format_value(limit)}: {verdict}"


def markdown_table(header, rows):
    """A GitHub Markdown table; the first column left-aligned, the others right-aligned; `|` in cells escaped."""
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row needs {len(header)} cells")

    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    rule = "| --- |" + " ---: |" * (len(header) - 1)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def _check(key, model, value, op, limit):
    return {"key": key, "model": model, "value": value, "op": op, "limit": limit, "met": meets(value, op, limit)}


def target_checks(results):
    """[{key, model, value, op, limit, met}] for every target, per model for the training ones."""
    checks = []
    for model, row in results.get("training", {}).items():
        for key, op, limit in MODEL_TARGETS:
            value = row.get(key)
            checks.append(_check(key, model, value, op, limit))
    for key, op, limit in TARGETS:
        value = results.get(key)
        checks.append(_check(key, None, value, op, limit))
    return checks


def training_table(training):
    """Rows of TRAINING_ROWS, a column per model, the ratios marked met or missed."""
    models, targets = list(training), {key: (op, limit) for key, op, limit in MODEL_TARGETS}
    rows = []
    for key, label in TRAINING_ROWS:
        op, limit = targets.get(key, (None, None))
        cells = []
        for model in models:
            value, met = training[model].get(key), meets(training[model].get(key), op, limit)
            text = format_value(value) if met is None else f"{value:.3f}"  # 7.996 must not read "8, missed"
            cells.append(text + {True: " (met)", False: " (**missed**)", None: ""}[met])
        rows.append([label, *cells, f"{op} {format_value(limit)}" if op else ""])
    return markdown_table([f"one epoch, batch {BATCH_SIZE}, SGD", *models, "target"], rows)


def other_table(results):
    labels = {
        "slider_ms_median": "momentum explorer: set slider + redraw, median (ms)",
        "slider_ms_p95": "momentum explorer: set slider + redraw, p95 (ms)",
        "slider_fallback_ms_median": "momentum explorer without ipympl (PNG image): set slider + redraw, median (ms)",
        "slider_fallback_ms_p95": "momentum explorer without ipympl (PNG image): set slider + redraw, p95 (ms)",
        "slider_browser_ms_median": "momentum slider in JupyterLab/Chromium: arrow key to new pixels, median (ms)",
        "slider_browser_ms_p95": "momentum slider in JupyterLab/Chromium: arrow key to new pixels, p95 (ms)",
        "live_curves_overhead_pct": "live learning curves: cost on a 50-epoch run (%)",
        "warm_cell_s_per_notebook": "full mode, warm cache: cell time per notebook, mean (s)",
        "slowest_cell_warm_s": "full mode, warm cache: slowest cell (s)",
        "floor_cell_s": "floor: a notebook that only imports bnlib and loads MNIST, cell time (s)",
        "floor_wall_s": "floor: the same notebook, wall time with nbconvert and kernel start (s)",
        "full_suite_warm_s": "notebook suite, full mode, warm cache, wall (s)",
        "full_suite_s": "notebook suite, full mode, empty cache (s)",
        "quick_suite_s": "notebook suite, quick mode, empty cache (s)",
        "quick_slowest_notebook_s": "quick mode: slowest notebook, wall (s)",
        "peak_rss_mb": "full mode, empty cache: peak memory of the largest notebook, all its processes summed (MB)",
        "quick_peak_rss_mb": "quick mode: peak memory of the largest notebook, all its processes summed (MB)",
        "load_test_slowest_wall_s": "load test: 8 kernels at once, notebook 04 quick, one shared cache: slowest (s)",
        "load_test_summed_peak_mb": "load test: the 8 kernels' peak memory, all their processes summed (MB)",
    }
    rows = []
    for key, op, limit in TARGETS:
        value = results.get(key)
        rows.append([f"{labels[key]} `{key}`", format_value(value), format_target(op, limit, meets(value, op, limit))])
    return markdown_table(["measure", "value", "target"], rows)


SUITE_COLUMNS = (
    ("suite_per_notebook_s", "quick_suite_s", "quick, wall (s)"),
    ("suite_per_notebook_s", "full_suite_s", "full, empty cache, wall (s)"),
    ("suite_per_notebook_s", "full_suite_warm_s", "full, warm cache, wall (s)"),
    ("suite_cell_s_per_notebook", "full_suite_warm_s", "full, warm cache, cells (s)"),
    ("peak_rss_mb_per_notebook", "quick_suite_s", "quick, peak memory (MB)"),
    ("peak_rss_mb_per_notebook", "full_suite_s", "full, empty cache, peak memory (MB)"),
)


def suite_table(results):
    """Per notebook: wall time of each suite, the warm full run's cell time and the peak memory of all the notebook's
    processes summed (quick, and full from an empty cache); None when no suite ran."""
    columns = [(label, results.get(group, {}).get(key)) for group, key, label in SUITE_COLUMNS]
    columns = [(label, values) for label, values in columns if values]
    if not columns:
        return None
    notebooks = sorted({name for _, values in columns for name in values})
    rows = [[name, *(format_value(values.get(name)) for _, values in columns)] for name in notebooks]
    table = markdown_table(["notebook", *(label for label, _ in columns)], rows)
    slowest = results.get("slowest_cell_warm")
    if slowest:
        table += (f"\n\nSlowest cell with a warm cache: {slowest['notebook']}, cell {slowest['cell']} "
                  f"(index in the notebook's cells), {slowest['seconds']:.2f} s.")  # fmt: skip
    return table


def render_markdown(results):
    """The whole report: machine, the training table, the slider and suite table, and any notes."""
    machine = results["machine"]
    omp = "".join(f", {name}={value}" for name, value in machine.get("omp_env", {}).items() if value)
    lines = [
        "# bnlib benchmark",
        "",
        f"Machine: {machine['cpu_count']} CPUs, torch {machine['torch']} ({machine['torch_threads']} threads{omp}), "
        f"device {machine['device']}. Data: {results['data']['source']}.",
        f"Command: `{results['command']}`.",
        "",
    ]
    if results.get("training"):
        repeats = next(iter(results["training"].values()))["repeats"]
        lines += [
            f"Training: medians of {repeats} interleaved repetitions; each ratio is the median of per-repetition "
            "ratios of two runs timed back to back.",
            "",
            training_table(results["training"]),
            "",
        ]
    lines += [other_table(results), ""]
    per_notebook = suite_table(results)
    if per_notebook:
        lines += [per_notebook, ""]
    lines += [f"- {note}" for note in results.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def write_results(results, folder):
    """Write results.json and results.md into `folder`; returns the two paths."""
    folder = make_folder(folder)
    json_path, markdown_path = folder / "results.json", folder / "results.md"
    write_atomic(json_path, (json.dumps(results, indent=2) + "\n").encode())
    write_atomic(markdown_path, render_markdown(results).encode())
    return json_path, markdown_path
