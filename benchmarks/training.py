"""Organism training throughput against this machine's fp32 matmul ceiling, every seed in one run.

    python benchmarks/training.py [--seeds 0,1,2] [--steps 150] [--size default] [--repeats 3] [--json out.json]

A cached organism records the throughput of its training, but a training that shared the cores with others (CI
trains the three seeds side by side) records a shared machine. This reruns the base organism's own training
(`cla_lib.organism.base.train_base`, on its thread count) for `--steps` steps of each seed, alternating seeds and
ceiling measurements (`performance.matmul_ceiling` on the same threads) within every repeat, and reports the median
tokens/s and its fraction of the median ceiling. Every step of a training costs the same (fixed batch and sequence
shapes), so a prefix measures the whole. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from cla_lib.core import compute, performance  # noqa: E402
from cla_lib.organism.base import TRAINING_THREADS, build_model, config_for, train_base, training_inputs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--size", default="default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    arguments = parser.parse_args()
    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    configs = {seed: config_for(arguments.size, seed) for seed in seeds}
    inputs = {seed: training_inputs(config) for seed, config in configs.items()}  # tokenizers train once, untimed
    rates, ceilings = {seed: [] for seed in seeds}, []
    for _ in range(arguments.repeats):
        ceilings.append(performance.matmul_ceiling(threads=TRAINING_THREADS))
        for seed in seeds:
            _, tokenizer, stream = inputs[seed]
            model = build_model(configs[seed], tokenizer)  # the seed's own initialisation, afresh every repeat
            log = train_base(model, stream, configs[seed], steps=arguments.steps, progress=False)
            rates[seed].append(log.tokens_per_second)
    ceiling = statistics.median(ceilings)
    config = next(iter(configs.values()))
    flops = compute.training_flops_per_token(asdict(config))
    rows = [{"seed": seed, "tokens_per_second": statistics.median(values),
             "fraction_of_ceiling": flops * statistics.median(values) / 1e9 / ceiling} for seed, values in rates.items()]
    print(f"fp32 matmul ceiling on {TRAINING_THREADS} thread(s): {ceiling:.1f} GFLOP/s (median of {len(ceilings)}); "
          f"{flops:.3g} training FLOPs per token; {arguments.steps} steps per measurement")
    for row in rows:
        print(f"seed {row['seed']}: {row['tokens_per_second']:.0f} tokens/s = "
              f"{row['fraction_of_ceiling']:.2f} of the ceiling")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps({"ceiling_gflops": ceiling, "steps": arguments.steps,
                                                    "threads": TRAINING_THREADS, "seeds": rows}, indent=1))


if __name__ == "__main__":
    main()
