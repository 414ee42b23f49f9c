"""The appendix's measurements: the repository's benchmark scripts, run in a fresh process, and their JSON as tables.

A benchmark runs in its own process so that its timings see a clean interpreter, not the chapter's kernel with
models already loaded; the appendix then shows and glues what these functions read back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def run(script: str, arguments: Sequence[str]) -> dict:
    """Run ``benchmarks/<script>`` with `arguments` and ``--json`` into a temporary file, from the repository root
    (a chapter runs in ``book/``); its JSON. A failing benchmark raises `subprocess.CalledProcessError`."""
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / f"{Path(script).stem}.json"
        subprocess.run([sys.executable, f"benchmarks/{script}", *arguments, "--json", str(output)], check=True,
                       capture_output=True, text=True,
                       cwd=Path.cwd().parent if Path.cwd().name == "book" else Path.cwd())
        return json.loads(output.read_text())


def comparisons(benchmark: dict) -> pd.DataFrame:
    """`benchmarks/steering.py`'s comparisons, one row per name (steering, extraction, batching)."""
    return pd.DataFrame(benchmark["results"]).set_index("name")


def comparison_numbers(results: pd.DataFrame, benchmark: dict) -> dict:
    """What the appendix's prose reads of the comparisons, by glue name: each ratio, the steering ratio's range over
    repeats, the run's size, and whether steering through nnsight met its goal."""
    numbers = {f"{key}_ratio": float(results.loc[key, "ratio"]) for key in ("steering", "extraction", "batching")}
    numbers.update(steering_ratio_low=float(results.loc["steering", "ratio_low"]),
                   steering_ratio_high=float(results.loc["steering", "ratio_high"]),
                   benchmark_repeats=benchmark["repeats"], benchmark_items=benchmark["items"],
                   benchmark_sequences=benchmark["sequences"],
                   steering_goal="met" if results.loc["steering", "ratio"] <= benchmark["goal"] else "not met")
    return numbers


def workloads(floor: dict) -> pd.DataFrame:
    """`benchmarks/floor.py`'s workloads, one row per name (plane, sweep), with every FLOP count also in GFLOP."""
    table = pd.DataFrame(floor["results"]).set_index("name")
    for column in ("floor_flops", "old_flops", "new_flops", "prompts_only_flops"):
        table[column.replace("flops", "GFLOP")] = table[column] / 1e9
    return table


def workload_numbers(table: pd.DataFrame) -> dict:
    """What the appendix's prose reads of the floor benchmark, by glue name: per workload, its ratios against the
    old path and the floor; the plane's items and the sweep's passes."""
    numbers = {f"{name}_{key}": float(table.loc[name, key]) for name in table.index
               for key in ("flops_ratio", "wall_ratio", "new_over_floor", "prompts_only_over_new")}
    numbers.update(floor_plane_items=int(table.loc["plane", "items"]),
                   floor_sweep_passes=int(table.loc["sweep", "passes"]))
    return numbers
