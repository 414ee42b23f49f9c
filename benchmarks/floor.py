"""Scoring against its FLOP floor: the full-sequence path and the shared-prompt path, side by side in one run.

    python benchmarks/floor.py [--model PATH] [--items 512] [--sweep-language ko] [--sweep-items 24] [--repeats 3]
                               [--json out.json]

Two workloads on the same model, each scored both ways (`choice_logprobs(shared_prompts=False)` per pass, the
path every chapter used before, against `choice_logprobs_passes`, what they use now):

- **plane** (chapters 1 and 2): one pass over plane items of all six languages and the English ceiling;
- **sweep** (chapters 3 and 4): a vector added after every layer at each strength of chapter 3's `alphas`, plus
  the unsteered model, over one language's validation items.

For each: the floor (the fewest matmul FLOPs the log-probabilities need, `cla_lib.core.compute.floor_flops`, from
the model's config and the token counts), the matmul FLOPs each path ran (torch's FlopCounterMode, padding
included; also for shared prompts without shared lower layers, each pass on its own), and the wall time of each
(medians of `--repeats` alternating runs after the counted ones, which warm up both), with the median and range of
the repeats' paired ratios.
Before timing, the two paths must agree (max |difference| <= 1e-4 and the same answer on every item).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_common_options, alternating, machine, setup  # noqa: E402

from cla_lib.plane.evaluation import plane_items  # noqa: E402
from cla_lib.model import n_layers  # noqa: E402
from cla_lib.core.compute import counted_flops, floor_flops  # noqa: E402
from cla_lib.scoring import choice_logprobs, choice_logprobs_passes, encode_item, predictions  # noqa: E402

LANGUAGES = ["es", "zh", "ko", "id", "el", "fa"]
SWEEP_ALPHAS = (1.0, 2.0, 4.0)  # chapter 3's default `alphas`


def old_path(model, passes, batch_size):
    return [choice_logprobs(model, items, edits=edits, batch_size=batch_size, progress=False, shared_prompts=False)
            for items, edits in passes]


def new_path(model, passes, batch_size):
    return choice_logprobs_passes(model, passes, batch_size=batch_size)


def prompts_only_path(model, passes, batch_size):
    """Shared prompts, but every pass on its own: what the sweep costs without sharing the lower layers."""
    return [choice_logprobs(model, items, edits=edits, batch_size=batch_size, progress=False) for items, edits in passes]


def measure(name: str, chapters: str, model, passes, skips, batch_size: int, repeats: int) -> dict:
    old_scores, old_flops = counted_flops(lambda: old_path(model, passes, batch_size))
    new_scores, new_flops = counted_flops(lambda: new_path(model, passes, batch_size))
    largest = max(abs(a - b) for old, new in zip(old_scores, new_scores) for row_a, row_b in zip(old, new)
                  for a, b in zip(row_a, row_b))
    same = all(predictions(old) == predictions(new) for old, new in zip(old_scores, new_scores))
    if largest > 1e-4 or not same:
        raise SystemExit(f"{name}: the two paths disagree (max |difference| {largest}, same answers: {same})")
    items = passes[0][0]
    encoded = [encode_item(model.tokenizer, item) for item in items]
    floor = floor_flops(model.config, encoded, skips)
    # Without sharing the lower layers (each pass on its own): the FLOPs the suffix-only runs save on top.
    _, prompts_only_flops = counted_flops(lambda: prompts_only_path(model, passes, batch_size))
    # The counted runs above were the warm-up.
    timing = alternating(lambda: old_path(model, passes, batch_size), lambda: new_path(model, passes, batch_size),
                         repeats)
    return {"name": name, "chapters": chapters, "items": len(items), "passes": len(passes),
            "sequences": sum(len(item.choices) for item in items) * len(passes), "floor_flops": floor,
            "old_flops": old_flops, "new_flops": new_flops, "flops_ratio": old_flops / new_flops,
            "new_over_floor": new_flops / floor, "prompts_only_flops": prompts_only_flops,
            "prompts_only_over_new": prompts_only_flops / new_flops, "old_seconds": timing["baseline_seconds"],
            "new_seconds": timing["candidate_seconds"], "wall_ratio": timing["ratio"],
            "wall_ratio_low": timing["ratio_low"], "wall_ratio_high": timing["ratio_high"], "max_difference": largest,
            "old_runs": timing["baseline_runs"], "new_runs": timing["candidate_runs"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=512, help="plane items, spread over languages (default 512)")
    parser.add_argument("--sweep-language", default="ko", help="the sweep's language (default ko)")
    parser.add_argument("--sweep-items", type=int, default=24,
                        help="validation items of that language the sweep scores (default 24)")
    add_common_options(parser, repeats=3)
    arguments = parser.parse_args(argv)

    model, directory, label = setup(arguments)
    items = plane_items(directory, LANGUAGES, tokenizer=model.tokenizer)
    step = max(1, len(items) // arguments.items)
    plane = sorted(items, key=lambda item: item.id)[::step][: arguments.items]
    validation = [item for item in items if item.split == "validation" and item.language == arguments.sweep_language]
    validation = validation[:: max(1, len(validation) // arguments.sweep_items)][: arguments.sweep_items]
    layers = n_layers(model)
    direction = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    direction = 4.0 * direction / direction.norm()  # a stand-in vector: the work, not the effect, is measured
    sweep = [(validation, [])] + [(validation, [(layer, alpha * direction)]) for layer in range(layers)
                                  for alpha in SWEEP_ALPHAS]
    skips = [0] + [layer + 1 for layer in range(layers) for _ in SWEEP_ALPHAS]
    print(f"model: {label} ({directory}); {layers} layers; {arguments.threads} thread(s); {arguments.repeats} "
          "repeats", file=sys.stderr)
    results = [measure("plane", "01, 02", model, [(plane, [])], [0], arguments.batch_size, arguments.repeats),
               measure("sweep", "03, 04", model, sweep, skips, arguments.batch_size, arguments.repeats)]

    print(f"\n{'workload':9} {'floor GF':>9} {'old GF':>8} {'new GF':>8} {'FLOPs old/new':>14} {'new/floor':>10} "
          f"{'old s':>7} {'new s':>7} {'wall old/new':>13} {'prompts-only/new FLOPs':>23}")
    for result in results:
        print(f"{result['name']:9} {result['floor_flops'] / 1e9:9.2f} {result['old_flops'] / 1e9:8.2f} "
              f"{result['new_flops'] / 1e9:8.2f} {result['flops_ratio']:14.2f} {result['new_over_floor']:10.2f} "
              f"{result['old_seconds']:7.2f} {result['new_seconds']:7.2f} {result['wall_ratio']:13.2f} "
              f"{result['prompts_only_over_new']:23.2f}")
    if arguments.json:
        record = {"model": label, "model_directory": directory, "layers": layers, "batch_size": arguments.batch_size,
                  "threads": arguments.threads, "repeats": arguments.repeats, "sweep_language":
                  arguments.sweep_language, "sweep_alphas": list(SWEEP_ALPHAS), **machine(),
                  "results": results}
        Path(arguments.json).write_text(json.dumps(record, indent=1))
        print(f"wrote {arguments.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
