"""Measuring speed as ratios within one run, because these machines are noisy.

Training the organism is compute-bound on CPU, so its throughput is reported as a fraction of this machine's own
fp32 matrix-multiplication ceiling, measured in the same process.
"""

from __future__ import annotations

import time

import torch


def matmul_ceiling(size: int = 2048, repeats: int = 8) -> float:
    """This machine's fp32 matmul throughput (GFLOP/s) on square products, with torch's current thread count."""
    left, right = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        left @ right
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        left @ right
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def training_flops_per_token(config: dict) -> float:
    """Training FLOPs per token of a Llama-style organism: 6 x (matmul parameters incl. the output head) plus the
    attention scores and values (6 x layers x sequence x hidden), the usual estimate (Kaplan et al. 2020)."""
    hidden, layers, vocabulary = config["hidden_size"], config["n_layers"], config["vocab_size"]
    intermediate, sequence = config["intermediate_size"], config["sequence_length"]
    per_layer = 4 * hidden * hidden + 3 * hidden * intermediate
    return 6 * (layers * per_layer + vocabulary * hidden) + 6 * layers * sequence * hidden


def training_efficiency(record: dict, ceiling: float) -> dict:
    """Throughput of a recorded training against the matmul ceiling."""
    flops = training_flops_per_token(record["config"]) * record["tokens_per_second"] / 1e9
    return {"tokens_per_second": record["tokens_per_second"], "training_gflops": flops,
            "ceiling_gflops": ceiling, "fraction_of_ceiling": flops / ceiling}
