"""Measuring speed as ratios within one run, because these machines are noisy.

Training the organism is compute-bound on CPU, so its throughput is reported as a fraction of this machine's own
fp32 matrix-multiplication ceiling, measured in the same process. Scoring is reported against its floor: the
fewest matmul FLOPs that the log-probabilities need, counted from the model's config and the token counts
(`cla_lib.core.compute`).
"""

from __future__ import annotations

import os
import platform
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from cla_lib.core.compute import training_flops_per_token


@contextmanager
def torch_threads(threads: int | None):
    """Run inside this on `threads` torch threads (None: as it is), restoring the count afterwards."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# Variables that pin CPU numerics; recorded where set, as they change an organism's bytes.
NUMERICS_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")


def machine() -> dict:
    """What computed the numbers, beyond package versions: the CPU model, the instruction set torch dispatches to,
    its thread count and the versions of the math libraries it calls (MKL, oneDNN). The same configuration can
    train other bytes on another CPU, so an organism's record carries this too."""
    built = torch.__config__.show()

    def library(pattern: str) -> str:
        found = re.search(pattern, built)
        return found.group(1) if found else "not used"

    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
             if line.startswith("model name")]
    record = {"cpu": names[0] if names else (platform.processor() or platform.machine()),
              "instruction_set": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads(),
              "torch": torch.__version__, "mkl": library(r"Math Kernel Library Version ([\w.]+)"),
              "onednn": library(r"MKL-DNN v([\d.]+)")}
    pins = {name: os.environ[name] for name in NUMERICS_VARIABLES if os.environ.get(name)}
    if pins:
        record["numerics"] = pins
    return record


def matmul_ceiling(size: int = 2048, repeats: int = 8, threads: int | None = None) -> float:
    """This machine's fp32 matmul throughput (GFLOP/s) on square products, on `threads` torch threads (default:
    torch's current count). A training is compared with the ceiling of the threads it trained on: the organisms
    train on one thread each, and a two-thread ceiling would halve their fraction."""
    with torch_threads(threads):
        return _ceiling(size, repeats)


def _ceiling(size: int, repeats: int) -> float:
    left, right = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        left @ right
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        left @ right
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def training_efficiency(record: dict, ceiling: float) -> dict:
    """Throughput of a recorded training against the matmul ceiling."""
    flops = training_flops_per_token(record["config"]) * record["tokens_per_second"] / 1e9
    return {"tokens_per_second": record["tokens_per_second"], "training_gflops": flops,
            "ceiling_gflops": ceiling, "fraction_of_ceiling": flops / ceiling}


def training_summary(record: dict, efficiency: dict):
    """One recorded training as a page shows it (a pandas Series of display strings): its size, its tokens and time,
    and its throughput against the ceiling of `training_efficiency`."""
    import pandas as pd

    return pd.Series({
        "parameters": f"{record['parameters']:,}",
        "decoder layers": record["config"]["n_layers"],
        "hidden size": record["config"]["hidden_size"],
        "training tokens": f"{record['tokens']:,} ({record['epochs']:.1f} epochs of the world)",
        "training time (s)": f"{record['train_seconds']:.0f}",
        "throughput (tokens/s)": f"{efficiency['tokens_per_second']:.0f}",
        "training GFLOP/s": f"{efficiency['training_gflops']:.1f}",
        "matmul ceiling GFLOP/s": f"{efficiency['ceiling_gflops']:.1f}",
        "fraction of ceiling": f"{efficiency['fraction_of_ceiling']:.2f}",
        "final training loss": f"{record['final_loss']:.3f}",
    }, name="base organism")


def training_table(records: dict[Any, dict]):
    """Each recorded training (by seed) against the matmul ceiling of the threads it trained on, measured now."""
    import pandas as pd

    ceilings: dict[int, float] = {}
    rows = {}
    for seed, record in records.items():
        threads = record["torch_threads"]
        if threads not in ceilings:
            ceilings[threads] = matmul_ceiling(threads=threads)
        efficiency = training_efficiency(record, ceilings[threads])
        rows[seed] = {"training throughput (tokens/s)": round(efficiency["tokens_per_second"]),
                      "training GFLOP/s": round(efficiency["training_gflops"], 1),
                      "matmul ceiling GFLOP/s (now)": round(efficiency["ceiling_gflops"], 1),
                      "fraction of the ceiling": efficiency["fraction_of_ceiling"],
                      "torch threads when trained": threads, "training time (s)": round(record["train_seconds"])}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("seed")
