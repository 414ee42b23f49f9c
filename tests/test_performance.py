"""Tests for cla_lib.performance: the FLOP count of training and this machine's matmul ceiling."""

from __future__ import annotations

import math
import time

from cla_lib.performance import matmul_ceiling, training_efficiency, training_flops_per_token

# Hidden 4, 2 layers, intermediate 8, vocabulary 10, sequence 3: small enough to count by hand.
CONFIG = {"hidden_size": 4, "n_layers": 2, "vocab_size": 10, "intermediate_size": 8, "sequence_length": 3}


def test_training_flops_per_token_counted_by_hand():
    attention = 4 * 4 * 4  # q, k, v, o projections: 4 matrices of 4 x 4
    mlp = 3 * 4 * 8  # gate, up, down: 3 matrices of 4 x 8
    head = 10 * 4
    matmul_parameters = 2 * (attention + mlp) + head  # 2 * (64 + 96) + 40 = 360
    attention_scores = 6 * 2 * 3 * 4  # 6 x layers x sequence x hidden = 144
    assert training_flops_per_token(CONFIG) == 6 * matmul_parameters + attention_scores == 2304


def test_training_efficiency_is_throughput_times_flops_over_the_ceiling():
    record = {"config": CONFIG, "tokens_per_second": 1e6}
    efficiency = training_efficiency(record, ceiling=10.0)
    assert math.isclose(efficiency["training_gflops"], 2304 * 1e6 / 1e9)
    assert math.isclose(efficiency["fraction_of_ceiling"], 2304 * 1e6 / 1e9 / 10.0)
    assert efficiency["ceiling_gflops"] == 10.0 and efficiency["tokens_per_second"] == 1e6


def test_matmul_ceiling_is_a_positive_rate_measured_quickly():
    started = time.perf_counter()
    ceiling = matmul_ceiling(size=256, repeats=3)
    assert time.perf_counter() - started < 5
    assert math.isfinite(ceiling) and 0.01 < ceiling < 1e5  # GFLOP/s: above a crawl, below any CPU's peak
