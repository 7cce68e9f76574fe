"""`make bench`: time training, the slider, the notebook suite and a class's load; write build/bench/results.{json,md}.

    python -m bench.run [--suite full|quick|none] [--repeats 5] [--out build/bench]

Progress goes to stderr, the final table to stdout. Targets are reported, never asserted.
"""

import argparse
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

from bench.report import render_markdown, target_checks, write_results
from bnlib.data import data_dir, load_mnist
from bnlib.runtime import resolve_device

OUTPUT_DIR = Path(__file__).resolve().parent.parent / "build" / "bench"


def log(message):
    print(message, file=sys.stderr, flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=("full", "quick", "none"), default="full",
                        help="notebook suites to time: full (quick and full mode), quick, or none")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions of the training timings")
    parser.add_argument("--slider-epochs", type=int, default=50, help="epochs of the recording the slider explores")
    parser.add_argument("--slider-updates", type=int, default=60, help="slider moves timed")
    parser.add_argument("--skip", choices=("training", "slider", "live", "browser", "load"), action="append",
                        default=[],
                        help="leave out a part (repeatable)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for the training and slider timings "
                        "(default: torch's own choice, what the notebooks get)")
    parser.add_argument("--out", type=Path, default=OUTPUT_DIR, help="folder for results.json and results.md")
    args = parser.parse_args(argv)
    if min(args.repeats, args.slider_epochs, args.slider_updates, args.threads or 1) < 1:
        parser.error("--repeats, --slider-epochs, --slider-updates and --threads must be positive")
    return args


def machine_info(device):
    import torchvision

    return {
        "cpu_count": os.cpu_count(),
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "torch_threads": torch.get_num_threads(),
        # OpenMP's settings decide how torch's threads wait; on a shared CPU that matters more than their number
        "omp_env": {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
        "device": str(device),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def describe_data(notes):
    """{"source", "full_mnist", "dir"}; a note when the classic pipeline cannot run."""
    from bench.training import classic_root

    root = classic_root()
    if root is None:
        notes.append(
            f"Full MNIST is not in {data_dir() / 'MNIST' / 'raw'}: the classic-pipeline comparison was SKIPPED "
            "(not faked), and bnlib's timings ran on the small fallback data set, not the 54,000-image split. "
            "Set BNLIB_DATA_DIR to a folder with MNIST/raw for real figures."
        )
        log("WARNING: " + notes[-1])
    return {"source": load_mnist().source, "full_mnist": root is not None, "dir": str(data_dir())}


def measure_training(args, device, results):
    from bench.training import summarize_models, time_models

    log(f"training: {args.repeats} interleaved repetitions per model ...")
    times = time_models(args.repeats, device, log=log)
    results["training"] = summarize_models(times)
    results["training_seconds"] = times
    for key in ("speedup_vs_classic", "overhead_vs_bare"):
        results[key] = {model: row.get(key) for model, row in results["training"].items()}


def measure_slider(args, device, results):
    from bench.slider import time_slider

    log(f"momentum explorer: recording {args.slider_epochs} epochs of the lecture's BN model ...")
    results.update(time_slider(args.slider_epochs, args.slider_updates, device, log=log))
    log(f"  slider: median {results['slider_ms_median']:.1f} ms, p95 {results['slider_ms_p95']:.1f} ms")


def measure_live_curves(device, results):
    from bench.live import time_live_curves

    log("live learning curves: the 50-epoch run with and without them, two pairs ...")
    results.update(time_live_curves(device=device, log=log))
    log(f"  live curves: {results['live_curves_overhead_pct']:.1f} % of the run")


def measure_slider_in_browser(results):
    from bench.slider_browser import time_slider_in_browser

    log("momentum slider in JupyterLab in Chromium (notebook 04, full mode) ...")
    measured = time_slider_in_browser(log=log)
    results["notes"] += measured.pop("notes", [])
    results.update(measured)
    if "slider_browser_ms_median" in measured:
        log(f"  in the browser: median {measured['slider_browser_ms_median']:.0f} ms, "
            f"p95 {measured['slider_browser_ms_p95']:.0f} ms")


def measure_suites(args, results):
    from bench.suite import time_suites

    results.update(time_suites(full=args.suite == "full", log=log, keep_dir=args.out / "notebooks"))
    if results.get("warm_cell_s_per_notebook") is not None:
        slowest = results["slowest_cell_warm"]
        log(f"  warm cache: {results['warm_cell_s_per_notebook']:.1f} s of cells per notebook (floor "
            f"{results['floor_cell_s']:.1f} s); slowest cell {slowest['notebook']} #{slowest['cell']}, "
            f"{slowest['seconds']:.1f} s")
    results["notes"] += [f"{error}: its time is not a valid measure" for error in results.get("suite_errors", [])]


def measure_load(results):
    from bench.load import run_load_test

    results.update(run_load_test(log=log))
    results["notes"].append(
        f"Load test: {results['load_test_kernels']} kernels at once ran {results['load_test_notebook']} in quick mode "
        f"against one read-only shared cache: slowest {results['load_test_slowest_wall_s']:.1f} s "
        f"(`load_test_slowest_wall_s`), {results['load_test_summed_peak_mb']:.0f} MB at the peak, all together "
        f"(`load_test_summed_peak_mb`); {len(results['load_test_problems'])} problems.")
    results["notes"] += [f"Load test: {problem}" for problem in results["load_test_problems"]]


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device()
    notes = []
    results = {
        "command": shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine_info(device),
        "data": describe_data(notes),
        "notes": notes,
    }
    steps = []
    if "training" not in args.skip:
        steps.append(lambda: measure_training(args, device, results))
    if "slider" not in args.skip:
        steps.append(lambda: measure_slider(args, device, results))
    if "live" not in args.skip:
        steps.append(lambda: measure_live_curves(device, results))
    if "browser" not in args.skip:
        steps.append(lambda: measure_slider_in_browser(results))
    if args.suite != "none":
        steps.append(lambda: measure_suites(args, results))
    if "load" not in args.skip:
        steps.append(lambda: measure_load(results))
    for step in steps:
        step()
        results["targets"] = target_checks(results)
        write_results(results, args.out)  # after every part, so a long run interrupted keeps what it measured
    if args.suite != "full":
        notes.append(f"Full notebook suite not measured (--suite {args.suite}); plain `make bench` measures it.")
    results["targets"] = target_checks(results)
    json_path, markdown_path = write_results(results, args.out)
    log(f"wrote {json_path} and {markdown_path}")
    print(render_markdown(results), end="")


if __name__ == "__main__":
    main()
