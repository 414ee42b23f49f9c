"""What steering through nnsight costs, next to raw PyTorch hooks, and what batching buys.

    python benchmarks/steering.py [--model PATH] [--items 256] [--repeats 5] [--threads 1] [--json out.json]

Three ratios, each from the same items in the same process, the two sides alternating within every repeat so that a
noisy machine slows both alike; each the median of `--repeats` paired ratios, with their range (after one warm-up;
every timed run starts from a collected heap, `_common.timed`):

1. **steering**: `scoring.choice_logprobs(edits=..., shared_prompts=False)`, the library's nnsight path, over raw
   PyTorch forward hooks on the plain transformers model doing the same work (same tokenization, one sequence per
   choice, batches and log-probability gather). Goal: at most 1.10. (`benchmarks/floor.py` compares that path
   with the shared-prompt one.)
2. **extraction**: `last_token_activations` one pass per layer, over all layers from one pass (what it does).
3. **batching**: scoring one (prompt, choice) sequence per forward, over batches of 64 (the full-sequence path).

The model is the default organism if it is cached, else the tiny one (trained on first use, about a minute on CPU).
The numbers describe this machine and model only; `--json` writes them, with the setup, for the book's appendix.
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
from cla_lib.model import decoder_layers, n_layers  # noqa: E402
from cla_lib.scoring import choice_logprobs, encode_choice  # noqa: E402
from cla_lib.steering import extract_vectors, last_token_activations, steering_edits  # noqa: E402

GOAL = 1.10


def hooked_choice_logprobs(module, tokenizer, items, edits, batch_size: int = 64) -> list[list[float]]:
    """`choice_logprobs` without nnsight: the same sequences, order, batches and gather, with raw forward hooks."""
    by_layer: dict[int, torch.Tensor] = {}
    for layer, delta in edits:
        by_layer[layer] = by_layer[layer] + delta if layer in by_layer else delta

    def hook_for(delta):
        def hook(_, __, output):
            if isinstance(output, tuple):
                return (output[0] + delta.to(output[0].dtype), *output[1:])
            return output + delta.to(output.dtype)
        return hook

    handles = [decoder_layers(module)[layer].register_forward_hook(hook_for(delta)) for layer, delta in by_layer.items()]
    try:
        scores = [[0.0] * len(item.choices) for item in items]
        sequences = []
        for item_index, item in enumerate(items):
            for choice_index, choice in enumerate(item.choices):
                context, continuation = encode_choice(tokenizer, item.prompt, choice)
                if continuation:
                    sequences.append((item_index, choice_index, context + continuation, len(continuation)))
        sequences.sort(key=lambda sequence: -len(sequence[2]))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start:start + batch_size]
            width = max(len(tokens) for _, _, tokens, _ in batch) - 1
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
            targets = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (_, _, tokens, _) in enumerate(batch):
                input_ids[row, :len(tokens) - 1] = torch.tensor(tokens[:-1])
                targets[row, :len(tokens) - 1] = torch.tensor(tokens[1:])
                attention_mask[row, :len(tokens) - 1] = 1
            with torch.no_grad():
                logits = module(input_ids=input_ids, attention_mask=attention_mask).logits.float()
                token_logprobs = (logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1))
            token_logprobs = token_logprobs * attention_mask
            for row, (item_index, choice_index, tokens, length) in enumerate(batch):
                end = len(tokens) - 1
                scores[item_index][choice_index] = float(token_logprobs[row, end - length:end].sum())
        return scores
    finally:
        for handle in handles:
            handle.remove()


def compare(name: str, baseline, candidate, repeats: int, baseline_label: str, candidate_label: str,
            numerator: str) -> dict:
    """`alternating` runs of both sides after one warm-up of each; the ratio has `numerator`'s side on top."""
    baseline(), candidate()
    timing = alternating(baseline, candidate, repeats, on_top=numerator)
    return {"name": name, "baseline": baseline_label, "candidate": candidate_label,
            "ratio_is": (f"{candidate_label} / {baseline_label}" if numerator == "candidate"
                         else f"{baseline_label} / {candidate_label}"), **timing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=256, help="test items scored per run (default 256)")
    parser.add_argument("--unbatched-items", type=int, default=48,
                        help="items for the one-sequence-per-forward comparison, which is slow (default 48)")
    add_common_options(parser, repeats=5)
    arguments = parser.parse_args(argv)

    model, directory, label = setup(arguments)
    items = plane_items(directory, ["es", "zh", "ko", "id", "el", "fa"])
    evaluation = sorted((item for item in items if item.split == "test" and item.language != "en"),
                        key=lambda item: item.id)
    step = max(1, len(evaluation) // arguments.items)
    evaluation = evaluation[::step][:arguments.items]  # spread over languages and tasks
    vectors = extract_vectors(model, items, kinds=["en"], languages=["ko"], batch_size=arguments.batch_size,
                              progress=False)
    layers = n_layers(model)
    middle = layers // 2
    edits = steering_edits((vectors["en.ko"], middle, 4.0), (vectors["en.ko"], layers - 1, -2.0))
    sequences = sum(len(item.choices) for item in evaluation)
    print(f"model: {label} ({directory}); {layers} layers; {len(evaluation)} items, {sequences} sequences; "
          f"{arguments.threads} thread(s); {arguments.repeats} repeats", file=sys.stderr)

    # The two steering paths must compute the same thing before their speed means anything.
    nnsight_scores = choice_logprobs(model, evaluation, edits=edits, batch_size=arguments.batch_size, progress=False,
                                     shared_prompts=False)
    hooked_scores = hooked_choice_logprobs(model._module, model.tokenizer, evaluation, edits, arguments.batch_size)
    largest = max(abs(a - b) for row_a, row_b in zip(nnsight_scores, hooked_scores) for a, b in zip(row_a, row_b))
    if largest > 1e-3:
        raise SystemExit(f"the nnsight and hook paths disagree by {largest}: not the same work")

    prompts = list(dict.fromkeys(item.prompt for item in evaluation))
    unbatched = evaluation[:arguments.unbatched_items]
    results = [
        compare("steering", lambda: hooked_choice_logprobs(model._module, model.tokenizer, evaluation, edits,
                                                           arguments.batch_size),
                lambda: choice_logprobs(model, evaluation, edits=edits, batch_size=arguments.batch_size,
                                        progress=False, shared_prompts=False),
                arguments.repeats, "raw forward hooks", "nnsight steering", numerator="candidate"),
        compare("extraction", lambda: [last_token_activations(model, prompts, layers=[layer], progress=False,
                                                              batch_size=arguments.batch_size)
                                       for layer in range(layers)],
                lambda: last_token_activations(model, prompts, progress=False, batch_size=arguments.batch_size),
                arguments.repeats, "one pass per layer", "all layers in one pass", numerator="baseline"),
        compare("batching", lambda: choice_logprobs(model, unbatched, batch_size=1, progress=False,
                                                    shared_prompts=False),
                lambda: choice_logprobs(model, unbatched, batch_size=arguments.batch_size, progress=False,
                                        shared_prompts=False),
                arguments.repeats, "one sequence per forward", f"batches of {arguments.batch_size}",
                numerator="baseline"),
    ]

    print(f"\n{'comparison':12} {'baseline s':>11} {'candidate s':>12} {'ratio':>7} {'range':>11}  ratio is")
    for result in results:
        print(f"{result['name']:12} {result['baseline_seconds']:11.3f} {result['candidate_seconds']:12.3f} "
              f"{result['ratio']:7.2f} {result['ratio_low']:5.2f}-{result['ratio_high']:<5.2f}  {result['ratio_is']}")
    steering_ratio = results[0]["ratio"]
    print(f"\nnnsight steering overhead: {steering_ratio:.2f}x raw hooks (goal <= {GOAL:.2f}x: "
          f"{'met' if steering_ratio <= GOAL else 'not met'})")

    if arguments.json:
        record = {"model": label, "model_directory": directory, "layers": layers, "items": len(evaluation),
                  "sequences": sequences, "unbatched_items": len(unbatched), "prompts": len(prompts),
                  "batch_size": arguments.batch_size, "threads": arguments.threads, "repeats": arguments.repeats,
                  **machine(), "goal": GOAL, "results": results}
        Path(arguments.json).write_text(json.dumps(record, indent=1))
        print(f"wrote {arguments.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
