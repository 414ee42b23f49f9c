"""What rerunning the chapters costs: scored sequences, forwards, tokens and NDIF requests, before running."""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from cla_lib.comparison import parse_list
from cla_lib.evaluation import plane_items
from cla_lib.model.reference import ModelRef, known_reference
from cla_lib.organism.base import config_for
from cla_lib.organism.registry import organism_path
from cla_lib.organism.world import World
from cla_lib.steering.selection import SURGICAL_CANDIDATE_LAYERS


@dataclass(frozen=True)
class ChapterWork:
    """How much a chapter runs a real model, counted in passes over the plane's items of its language.

    `scoring_passes(context)` counts full scoring passes (every choice of every item, one sequence each; a pass over
    the validation split alone counts as the validation split's share of a pass); `reads(context)` counts reads of
    prompt sets as large as the extract split's prompts and their parallel prompts (one forward per prompt, every
    layer at once); `requests(context, batches)` counts the NDIF requests, given the batched forwards of one full
    scoring pass. The `context` holds the model's layers, the chapter's strengths, and the splits' shares.
    """

    scoring_passes: Callable[[dict], float]
    reads: Callable[[dict], float]
    requests: Callable[[dict, int], int]
    assumption: str




CHAPTER_WORK: dict[str, ChapterWork] = {
    "01": ChapterWork(
        lambda c: 1, lambda c: 0, lambda c, batches: 1,
        "one scoring pass over every item, its batches in one session (one NDIF request)"),
    "02": ChapterWork(
        lambda c: c["seeds"] * (1 + c["methods"]), lambda c: 0, lambda c, batches: 0,
        "one scoring pass per model: the base and each aligned model per seed; the aligned checkpoints are trained "
        "beforehand with `cla align` (not counted) and live on your disk, so this chapter does not run on NDIF"),
    "03": ChapterWork(
        lambda c: (c["validation"] * (3 * (1 + c["layers"] * c["strengths"]) + 1 + c["layers"])
                   + c["test"] * 6),
        lambda c: 1 + 3 * c["validation"] / max(c["extract"], 1e-9), lambda c, batches: 10,
        "EN, LOC and LOC (language) sweeps over every layer and strength plus an answer-language sweep on the "
        "validation split, six configurations on test, one extraction read and three validation reads; ten "
        "sessions, one NDIF request each"),
    "04": ChapterWork(
        lambda c: (c["validation"] * (2 * (1 + c["layers"] * c["strengths"])
                                      + (SURGICAL_CANDIDATE_LAYERS * c["strengths"]) ** 2) + c["test"] * 5),
        lambda c: 1, lambda c, batches: 6,
        f"EN and LOC sweeps over every layer and strength, a Surgical grid of {SURGICAL_CANDIDATE_LAYERS} layers x "
        "strengths per vector on validation, five configurations on test, one extraction read; six sessions, one "
        "NDIF request each"),
    "05": ChapterWork(lambda c: 0, lambda c: 0, lambda c, batches: 0,
                      "the worked example runs on a tiny model built in the chapter"),
}


UNKNOWN_CHAPTER = ChapterWork(lambda c: 1, lambda c: 0, lambda c, batches: batches,
                              "unknown chapter: assumed one scoring pass, traced batch by batch")


def _approximate_token_count(text: str) -> int:
    # Without the model's tokenizer: about 4 bytes of UTF-8 per token (a rough average over scripts; Chinese,
    # Korean and Persian run nearer 3, English nearer 4.5).
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


def token_counter(model: str | ModelRef) -> tuple[Callable[[str], int], str]:
    """A function counting the tokens of a text for `model` (its tokenizer when it is at hand), and what it is."""
    reference = known_reference(model)
    source = reference.source if reference is not None else str(model)
    if reference is not None and reference.is_organism:
        try:
            source = str(organism_path(reference, train_if_missing=False))
        except FileNotFoundError:
            source = None
    if source is not None:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=not Path(source).is_dir())
            return (lambda text: len(tokenizer(text)["input_ids"])), f"the tokenizer of {source}"
        except Exception:  # offline without a cached tokenizer: fall back to the stated approximation
            pass
    return _approximate_token_count, "an approximation of 4 UTF-8 bytes per token (the tokenizer is not at hand)"


def plane_workload(items, count_tokens: Callable[[str], int]) -> dict:
    """One scoring pass over `items` (harness style, one sequence per choice): sequences and tokens; and one read of
    the extract split's prompts and parallel prompts: prompts and tokens."""
    sequences = sum(len(item.choices) for item in items)
    tokens = sum(count_tokens(item.prompt + choice) for item in items for choice in item.choices)
    shares = {split: sum(len(item.choices) for item in items if item.split == split) / max(sequences, 1)
              for split in ("extract", "validation", "test")}
    extract = [item for item in items if item.split == "extract" and item.language != "en"]
    prompts = {prompt for item in extract
               for prompt in (item.prompt, item.meta.get("english_prompt"), item.meta.get("explicit_prompt")) if prompt}
    return {"items": len(items), "sequences": sequences, "tokens": tokens, "read_prompts": len(prompts),
            "read_tokens": sum(count_tokens(prompt) for prompt in prompts), **shares}


def estimate(model: str | ModelRef, language: str, chapter_paths: Sequence[Path], *, transfer_data: str | None = None,
             localization_data: str | None = None, batch_size: int = 64, n_layers: int | None = None,
             methods: int = 3, seeds: int = 1, organism_size: str | None = None):
    """What rerunning `chapter_paths` for `model` in `language` costs: a DataFrame, one row per chapter.

    Columns: chapter, scoring_passes, sequences (forwards of one sequence each), batches (forwards of up to
    `batch_size` sequences), tokens, remote_requests, assumption; `DataFrame.attrs` holds the item counts and how
    tokens were counted. Nothing runs the model; an organism that is not trained yet is not trained.
    """
    reference = known_reference(model, size=organism_size)
    count_tokens, counted_with = token_counter(reference or model)
    if reference is not None and reference.is_organism:
        config = config_for(reference.size, reference.seed)
        world = World(config.world)
        items = world.transfer_items("en") + world.items(language)
        layers = n_layers or config.n_layers
    else:
        try:
            items = plane_items(reference or model, [language], transfer_data=transfer_data,
                                localization_data=localization_data)
        except OSError:  # a chat-template preset whose tokenizer is not at hand: count the bare prompts
            items = plane_items("unformatted", [language], transfer_data=transfer_data,
                                localization_data=localization_data)
            counted_with += "; without the chat template's tokens"
        # Unknown depth: a typical 7-8B model, stated in the output as the layer count used.
        layers = n_layers or (reference.layers if reference is not None else None) or 32
    workload = plane_workload(items, count_tokens)
    return chapter_costs(workload, chapter_paths, layers=layers, batch_size=batch_size, methods=methods, seeds=seeds,
                         counted_with=counted_with)


def chapter_parameters(path: str | Path) -> dict[str, Any]:
    """The names and default values the chapter's `parameters` cell assigns (literals only; others as None)."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = [cell for cell in notebook["cells"] if "parameters" in cell.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ValueError(f"{path}: no cell tagged 'parameters', so papermill cannot rerun it")
    values = {}
    for node in ast.parse("".join(cells[0]["source"])).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    try:
                        values[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        values[target.id] = None
    return values


def steering_strengths(path: str | Path) -> int:
    """How many nonzero strengths a chapter sweeps: the entries of its `alphas` parameter's default (0 without one);
    strength 0, the unsteered model, is scored once per sweep."""
    alphas = chapter_parameters(path).get("alphas") if Path(path).exists() else None
    return len(parse_list(alphas)) if alphas else 0


def chapter_costs(workload: dict, chapter_paths: Sequence[str | Path], *, layers: int, batch_size: int = 64,
                  methods: int = 3, seeds: int = 1, strengths: int | None = None, counted_with: str = ""):
    """The cost table of `estimate` from a workload (`plane_workload`'s counts, or counts assumed for data that is
    not at hand: `items`, `sequences`, `tokens`, `read_prompts`, `read_tokens` and the splits' shares)."""
    import pandas as pd

    context = {"layers": layers, "methods": methods, "seeds": seeds, "strengths": strengths,
               "extract": workload["extract"], "validation": workload["validation"], "test": workload["test"]}
    pass_batches = math.ceil(workload["sequences"] / batch_size)
    rows = []
    for path in chapter_paths:
        number = Path(path).stem.split("_")[0]
        work = CHAPTER_WORK.get(number, UNKNOWN_CHAPTER)
        # The strengths a chapter sweeps are its own `alphas` parameter's, unless the caller says otherwise.
        context["strengths"] = strengths if strengths is not None else steering_strengths(path)
        passes, reads = work.scoring_passes(context), work.reads(context)
        sequences = passes * workload["sequences"] + reads * workload["read_prompts"]
        tokens = passes * workload["tokens"] + reads * workload["read_tokens"]
        batches = passes * pass_batches + reads * math.ceil(workload["read_prompts"] / batch_size)
        requests = work.requests(context, pass_batches)
        rows.append({"chapter": Path(path).stem, "scoring_passes": round(passes, 2), "sequences": int(sequences),
                     "batches": int(batches), "tokens": int(tokens), "remote_requests": int(requests),
                     "assumption": work.assumption})
    frame = pd.DataFrame(rows)
    frame.attrs.update({**workload, "tokens_counted_with": counted_with, "layers": layers, "batch_size": batch_size})
    return frame


def describe_cost(frame) -> str:
    """The estimate as the lines a rerun prints before it starts."""
    attrs = frame.attrs
    lines = [f"Estimated cost ({attrs['items']} items, {attrs['sequences']:,} scored sequences and "
             f"{attrs['tokens']:,} tokens per scoring pass; tokens counted with {attrs['tokens_counted_with']}; "
             f"{attrs['layers']} layers; batches of {attrs['batch_size']}):"]
    for row in frame.itertuples():
        lines.append(f"  {row.chapter}: {row.scoring_passes:g} scoring passes, {row.sequences:,} sequences in "
                     f"{row.batches:,} forwards, {row.tokens:,} tokens; on NDIF {row.remote_requests:,} requests "
                     f"({row.assumption})")
    total = frame[["sequences", "batches", "tokens", "remote_requests"]].sum()
    lines.append(f"  total: {int(total.sequences):,} sequences in {int(total.batches):,} forwards, "
                 f"{int(total.tokens):,} tokens, {int(total.remote_requests):,} NDIF requests if remote")
    return "\n".join(lines)
