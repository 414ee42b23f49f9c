"""What every benchmark here shares: its common options, the model it measures, and the machine it ran on."""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from cla_lib.plane.loading import load_model  # noqa: E402


def add_common_options(parser: argparse.ArgumentParser, *, repeats: int) -> None:
    parser.add_argument("--model", help="a model directory (default: the default organism if cached, else tiny)")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: steadier timings)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", help="also write the results here")


def default_model() -> tuple[str, str]:
    """(directory, label): the default organism if cached, else the tiny one (trained if needed)."""
    from cla_lib.organism import organism_path

    try:
        return str(organism_path("organism", size="default", train_if_missing=False)), "organism (default size)"
    except FileNotFoundError:
        return str(organism_path("organism", size="tiny", progress=False)), "organism (tiny size; default not cached)"


def setup(arguments: argparse.Namespace):
    """Set the thread count and load the model: (model, directory, label)."""
    torch.set_num_threads(arguments.threads)
    directory, label = (arguments.model, arguments.model) if arguments.model else default_model()
    return load_model(directory), directory, label


def timed(function) -> float:
    """Seconds of one call, started from a collected heap: each run pays for the collections its own garbage
    triggers, not for an earlier run's (a full collection once landed on every third nnsight run of
    `steering.py`, 1.67 s against about 1.43)."""
    gc.collect()
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def alternating(baseline, candidate, repeats: int, *, on_top: str = "baseline") -> dict:
    """Both sides timed `repeats` times, alternating within every repeat, so that a slow spell of a shared machine
    slows both sides of a pair alike: each side's runs and median, and the median and range of the pairs' ratios
    (`on_top`'s side, baseline or candidate, over the other)."""
    baseline_runs, candidate_runs = [], []
    for _ in range(repeats):
        baseline_runs.append(timed(baseline))
        candidate_runs.append(timed(candidate))
    pairs = zip(baseline_runs, candidate_runs) if on_top == "baseline" else zip(candidate_runs, baseline_runs)
    ratios = [top / bottom for top, bottom in pairs]
    return {"baseline_runs": baseline_runs, "candidate_runs": candidate_runs,
            "baseline_seconds": statistics.median(baseline_runs), "candidate_seconds": statistics.median(candidate_runs),
            "ratio": statistics.median(ratios), "ratio_low": min(ratios), "ratio_high": max(ratios)}


def machine() -> dict:
    return {"device": "cpu", "machine": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__}
