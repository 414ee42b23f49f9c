"""Whether an organism's bytes depend on the thread count and on pinned CPU numerics, and what pinning costs.

    python benchmarks/numerics.py [--seed 0] [--steps 60] [--repeats 3] [--json out.json]

Trains the first `--steps` steps of the default base organism (`cla_lib.organism.base.train_base`) in a fresh
process per condition: 1 and 2 torch threads, each as torch dispatches by default and with the public recipe for
bit-identical float32 across Intel and AMD CPUs (`ATEN_CPU_CAPABILITY=avx2`, `ONEDNN_MAX_CPU_ISA=AVX2`,
`MKL_CBWR=COMPATIBLE`: they must be set before torch loads, hence the processes). Prints each condition's sha256 of
the trained weights and its seconds per step (median over `--repeats`, conditions alternating within each repeat),
and the pinned/default time ratio per thread count. Run it with nothing else on the machine for the timings; the
hashes do not depend on load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE"}
WORKER = """
import hashlib, json, sys, time
sys.path.insert(0, {root!r})
import torch
from cla_lib.organism.base import build_model, config_for, train_base, training_inputs
from cla_lib.core.performance import machine
config = config_for("default", {seed})
_, tokenizer, stream = training_inputs(config)
model = build_model(config, tokenizer)
torch.set_num_threads({threads})
import cla_lib.organism.base as base
base.TRAINING_THREADS = {threads}
started = time.perf_counter()
train_base(model, stream, config, steps={steps}, progress=False)
seconds = time.perf_counter() - started
digest = hashlib.sha256()
for name, tensor in sorted(model.state_dict().items()):
    digest.update(name.encode()); digest.update(tensor.detach().contiguous().numpy().tobytes())
print(json.dumps({{"sha256": digest.hexdigest(), "seconds_per_step": seconds / {steps},
                  "instruction_set": machine()["instruction_set"]}}))
"""


def run(threads: int, pinned: bool, seed: int, steps: int) -> dict:
    environment = {key: value for key, value in os.environ.items() if key not in PINS}
    environment.update(PINS if pinned else {})
    environment["OMP_NUM_THREADS"] = str(threads)
    code = WORKER.format(root=str(ROOT), seed=seed, threads=threads, steps=steps)
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--json", help="also write the results here")
    arguments = parser.parse_args()
    conditions = [(int(threads), pinned) for threads in arguments.threads.split(",") for pinned in (False, True)]
    runs = {condition: [] for condition in conditions}
    for _ in range(arguments.repeats):
        for condition in conditions:
            runs[condition].append(run(*condition, arguments.seed, arguments.steps))
    rows = []
    for (threads, pinned), results in runs.items():
        hashes = {result["sha256"] for result in results}
        rows.append({"threads": threads, "pinned": pinned, "instruction_set": results[0]["instruction_set"],
                     "sha256": results[0]["sha256"] if len(hashes) == 1 else f"varies: {sorted(hashes)}",
                     "seconds_per_step": statistics.median(result["seconds_per_step"] for result in results)})
    for row in rows:
        print(f"{row['threads']} thread(s), {'pinned ' if row['pinned'] else 'default'} ({row['instruction_set']}): "
              f"{row['seconds_per_step']:.3f} s/step, weights sha256 {row['sha256'][:16]}")
    by = {(row["threads"], row["pinned"]): row for row in rows}
    for threads in sorted({row["threads"] for row in rows}):
        print(f"{threads} thread(s): pinned / default time {by[threads, True]['seconds_per_step'] / by[threads, False]['seconds_per_step']:.2f}, "
              f"same bytes: {by[threads, True]['sha256'] == by[threads, False]['sha256']}")
    print(f"same bytes across thread counts: default {len({row['sha256'] for row in rows if not row['pinned']}) == 1}, "
          f"pinned {len({row['sha256'] for row in rows if row['pinned']}) == 1}")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps({"steps": arguments.steps, "seed": arguments.seed, "rows": rows},
                                                   indent=1))


if __name__ == "__main__":
    main()
