"""A design run of the base organism: train one variant of the default configuration and measure what it knows.

    python benchmarks/organism_design.py [--seed 0] [--set steps=4800 --set world.profile_repeats=8 ...] [--json F]

The organism's world, model and budget are chosen on the testbed's knowledge and headroom rows
(`cla_lib.organism.knowledge`), never on a verdict. Each design run recorded in `cla_lib.organism.base` and
`cla_lib.organism.world` names the command that reproduces it: this script, with its `--set` overrides of
`OrganismConfig` (``world.<field>`` for `WorldConfig`). It trains into a temporary cache, so nothing the book reads
changes, and prints the measurements, the rules they pass and the training's time.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def _override(config, assignments: list[str]):
    from cla_lib.organism.world import WorldConfig

    world = {}
    top = {}
    for assignment in assignments:
        name, _, text = assignment.partition("=")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        if name.startswith("world."):
            world[name.removeprefix("world.")] = value
        else:
            top[name] = value
    unknown = sorted({f"world.{name}" for name in set(world) - {field.name for field in fields(WorldConfig)}}
                     | (set(top) - {field.name for field in fields(config)}))
    if unknown:
        raise SystemExit(f"error: unknown setting(s) {', '.join(unknown)}")
    return replace(config, world=replace(config.world, **world), **top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", help="also write the results here")
    arguments = parser.parse_args()

    import os

    import torch

    os.environ["CLA_CACHE"] = tempfile.mkdtemp(prefix="organism-design-")
    from cla_lib.plane.loading import load_model
    from cla_lib.organism.base import base_organism, config_for, training_record, world_of
    from cla_lib.organism.knowledge import knowledge, rule_rows

    config = _override(config_for("default", arguments.seed), arguments.set)
    started = time.perf_counter()
    path = base_organism(config, progress=False)
    seconds = time.perf_counter() - started
    torch.set_num_threads(1)
    measured = knowledge(load_model(str(path)), world_of(path))
    record = training_record(path)
    result = {"settings": arguments.set, "seed": arguments.seed, "seconds": round(seconds),
              "tokens": record["tokens"], "epochs": round(record["epochs"], 1),
              "final_loss": round(record["final_loss"], 3), **{key: round(value, 3) for key, value in measured.items()},
              "rules": {row["property"]: row["holds"] for row in rule_rows(measured)}}
    print(json.dumps(result, indent=1, ensure_ascii=False))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
