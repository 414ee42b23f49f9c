"""Tests for cla_lib.core.performance: the FLOP count of training and this machine's matmul ceiling."""

from __future__ import annotations

import math
import time

import pytest

from cla_lib.core.compute import training_flops_per_token
from cla_lib.core.performance import matmul_ceiling, training_efficiency

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


def test_the_training_table_sets_each_seed_against_the_ceiling_of_its_own_threads(monkeypatch):
    from cla_lib.core import performance

    asked = []
    monkeypatch.setattr(performance, "matmul_ceiling", lambda threads: asked.append(threads) or 10.0 * threads)
    records = {seed: {"config": CONFIG, "tokens_per_second": 1e6 * (seed + 1), "torch_threads": threads,
                      "train_seconds": 12.4} for seed, threads in ((0, 1), (1, 1), (2, 2))}
    table = performance.training_table(records)
    assert sorted(asked) == [1, 2]  # one ceiling per thread count
    assert list(table.index) == [0, 1, 2] and table.index.name == "seed"
    assert math.isclose(table.loc[1, "fraction of the ceiling"], 2304 * 2e6 / 1e9 / 10.0)
    assert math.isclose(table.loc[2, "fraction of the ceiling"], 2304 * 3e6 / 1e9 / 20.0)
    assert table.loc[2, "training time (s)"] == 12 and table.loc[2, "torch threads when trained"] == 2


def test_matmul_ceiling_is_a_positive_rate_measured_quickly():
    started = time.perf_counter()
    ceiling = matmul_ceiling(size=256, repeats=3)
    assert time.perf_counter() - started < 5
    assert math.isfinite(ceiling) and 0.01 < ceiling < 1e5  # GFLOP/s: above a crawl, below any CPU's peak



def test_matmul_ceiling_runs_on_the_threads_asked_for_and_restores_the_count():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = matmul_ceiling(size=256, repeats=3, threads=1)
        assert math.isfinite(one) and one > 0.01
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# -- scoring against its floor ------------------------------------------------------------------------------------


def test_linear_flops_per_token_counted_by_hand():
    from types import SimpleNamespace

    from cla_lib.core.compute import linear_flops_per_token

    # Hidden 8, 2 query heads of 4, 1 key/value head of 4, intermediate 16, vocabulary 10, 3 layers.
    config = SimpleNamespace(hidden_size=8, intermediate_size=16, num_attention_heads=2, num_key_value_heads=1,
                             head_dim=4, vocab_size=10, num_hidden_layers=3)
    per_layer = 2 * (8 * 8 + 2 * 8 * 4 + 8 * 8) + 2 * 3 * 8 * 16  # q, k + v, o; gate, up, down
    assert linear_flops_per_token(config) == (3 * per_layer, 2 * 8 * 10)
    assert linear_flops_per_token(config, layers=1) == (per_layer, 160)


def test_the_floor_is_what_the_full_path_counts_without_padding_and_what_shared_prompts_approach(tiny_llama_dir):
    from cla_lib.plane.loading import load_model
    from cla_lib.core.compute import counted_flops, floor_flops, linear_flops_per_token
    from cla_lib.scoring import EncodedItem, choice_logprobs, encode_item
    from test_scoring import ITEMS

    model = load_model(str(tiny_llama_dir))
    encoded = [encode_item(model.tokenizer, item) for item in ITEMS]
    # One sequence per forward: no padding, so torch's count is the config count of every (prompt + choice) token.
    _, full = counted_flops(lambda: choice_logprobs(model, ITEMS, batch_size=1, shared_prompts=False))
    layers, head = linear_flops_per_token(model.config)
    sequences = [len(item.context) + len(c) - 1 for item in encoded for c in item.continuations if c]
    assert full == sum(sequences) * (layers + head)
    # Batched, both paths pad; the shared one still runs less, and never less than the floor.
    _, full_batched = counted_flops(lambda: choice_logprobs(model, ITEMS, shared_prompts=False))
    _, shared = counted_flops(lambda: choice_logprobs(model, ITEMS))
    floor = floor_flops(model.config, encoded)
    assert floor < full and floor <= shared < full_batched
    # A run that skips the lower layer redoes the same tokens through the other one only.
    single = [EncodedItem((1, 2, 3), ((4,), (5, 6)))]
    one_layer, _ = linear_flops_per_token(model.config, layers=1)
    assert floor_flops(model.config, single, skips=(0, 1)) - floor_flops(model.config, single) == 4 * one_layer + 2 * head


def test_the_floor_benchmark_reports_both_paths_and_their_ratios(tiny_organism_dir, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    output = tmp_path / "floor.json"
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, str(root / "benchmarks" / "floor.py"), "--model", str(tiny_organism_dir),
                    "--items", "40", "--sweep-items", "6", "--repeats", "1", "--json", str(output)], check=True,
                   capture_output=True, text=True, timeout=600)
    record = json.loads(output.read_text())
    plane, sweep = record["results"]
    assert (plane["name"], sweep["name"]) == ("plane", "sweep")
    for result in (plane, sweep):
        assert result["floor_flops"] <= result["new_flops"] < result["old_flops"]
        assert result["flops_ratio"] > 2 and result["max_difference"] <= 1e-4
    assert sweep["prompts_only_over_new"] > 1.2  # skipping the lower layers saves on top of shared prompts


def test_the_training_benchmark_measures_every_seed_against_the_ceiling(tmp_path, monkeypatch):
    import json
    import subprocess
    import sys
    from pathlib import Path

    output = tmp_path / "training.json"
    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("CLA_CACHE", str(tmp_path / "cache"))
    subprocess.run([sys.executable, str(root / "benchmarks" / "training.py"), "--size", "tiny", "--seeds", "0,1",
                    "--steps", "4", "--repeats", "1", "--json", str(output)], check=True, capture_output=True,
                   text=True, timeout=600)
    record = json.loads(output.read_text())
    assert [row["seed"] for row in record["seeds"]] == [0, 1] and record["steps"] == 4
    assert record["ceiling_gflops"] > 0
    assert all(0 < row["fraction_of_ceiling"] < 1.5 and row["tokens_per_second"] > 0 for row in record["seeds"])
    assert not (tmp_path / "cache").exists()  # measures, never writes an organism


def test_benchmark_timing_pairs_alternating_runs_and_reports_their_range(monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import _common

    # Each run reads the clock twice: baseline runs of 2, 3, 2 s alternate with candidate runs of 1, 1, 2 s.
    clock = iter([0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 2])
    monkeypatch.setattr(_common.time, "perf_counter", lambda: next(clock))
    calls = []
    timing = _common.alternating(lambda: calls.append("b"), lambda: calls.append("c"), 3)
    assert calls == ["b", "c"] * 3
    assert (timing["baseline_runs"], timing["candidate_runs"]) == ([2, 3, 2], [1, 1, 2])
    assert (timing["baseline_seconds"], timing["candidate_seconds"]) == (2, 1)
    # The median of the paired ratios (2, 3, 1), not the ratio of the medians; and their range.
    assert (timing["ratio"], timing["ratio_low"], timing["ratio_high"]) == (2, 1, 3)
    clock = iter([0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 2])
    flipped = _common.alternating(lambda: None, lambda: None, 3, on_top="candidate")
    assert (flipped["ratio"], flipped["ratio_low"], flipped["ratio_high"]) == (0.5, 1 / 3, 1)


def test_the_chapter_benchmark_sets_parameters_as_papermill_does_and_refuses_unknown_ones(capsys):
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "benchmarks"))
    import chapters

    values = dict(map(chapters.parameter, ["seeds=0,1", "batch_size=32", "organism_size=tiny", "transfer_data=None"]))
    assert values == {"seeds": "0,1", "batch_size": 32, "organism_size": "tiny", "transfer_data": None}  # as cla rerun
    script = chapters.chapter_script(root / "book" / "03_layer_dissociation.ipynb", values)
    parameters_cell, rest = script.split("\n\nseeds = ", 1)
    assert 'seeds = "0,1,2"' in parameters_cell  # the defaults first, the values after them, as papermill does
    assert rest.startswith("'0,1'\n\nbatch_size = 32\n\norganism_size = 'tiny'\n\ntransfer_data = None\n\n")
    for arguments, error in ((["--chapters", "01", "-p", "colour=red"], "01_organism_plane has no parameter colour"),
                             (["--chapters", "09"], "no chapter '09'")):
        with pytest.raises(SystemExit) as refused:
            chapters.main(arguments)
        assert refused.value.code == 2 and error in capsys.readouterr().err


def test_the_chapter_benchmark_runs_a_chapter_and_counts_its_flops(tmp_path):
    """On a chapter of known FLOPs (a few matrix products), in its own book folder: the count is exact."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import nbformat

    book = tmp_path / "book"
    book.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("n = 8\nproducts = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import torch\nfor _ in range(products):\n    torch.ones(n, n) @ torch.ones(n, n)"),
        nbformat.v4.new_code_cell("import json\nopen('ran.json', 'w').write(json.dumps({'n': n, 'products': products}))"),
    ])
    nbformat.write(notebook, book / "01_products.ipynb")
    output = tmp_path / "chapters.json"
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, str(root / "benchmarks" / "chapters.py"), "--book", str(book), "--chapters", "01",
                    "--threads", "1", "-p", "n=64", "-p", "products=3", "--json", str(output)],
                   check=True, capture_output=True, text=True, timeout=600)
    (row,) = json.loads(output.read_text())["chapters"]
    assert row["chapter"] == "01_products" and row["gflop"] == 3 * 2 * 64 ** 3 / 1e9 and row["seconds"] > 0
    assert row["floor_seconds"] == row["gflop"] / row["ceiling_gflops"]
    assert row["floor_seconds"] < row["seconds"]  # nothing runs faster than the ceiling
    assert json.loads((book / "ran.json").read_text()) == {"n": 64, "products": 3}  # run from its folder, set as -p
