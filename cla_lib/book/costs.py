"""What rerunning the chapters costs: scored choices, forwards, tokens and NDIF requests, before running."""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from transformers import AutoTokenizer
import pandas as pd

from cla_lib.claims.comparison import parse_list
from cla_lib.plane.evaluation import plane_items
from cla_lib.model.reference import ModelRef, known_reference
from cla_lib.organism.base import config_for
from cla_lib.organism.registry import organism_path
from cla_lib.organism.world import World
from cla_lib.steering.selection import SURGICAL_CANDIDATE_LAYERS


@dataclass(frozen=True)
class ChapterWork:
    """How much a chapter runs a real model, counted in passes over the plane's items of its language.

    `scoring_passes(context)` counts passes that run every layer (a pass over the validation split alone counts as
    the validation split's share of a pass); `swept_passes(context)` counts a sweep's steered configurations, each
    of which reruns only the layers above its edit on top of the sweep's unsteered pass (`cla_lib.scoring.shared`):
    over a sweep of every layer, on average `suffix_share(layers)` of them. `reads(context)` counts reads of prompt
    sets as large as the extract split's prompts and their parallel prompts (one forward per prompt, every layer at
    once); `requests(context, batches)` counts the NDIF requests, given the forwards of one scoring pass. The
    `context` holds the model's layers, the layers its sweeps steer at (`swept_layers`: every `layer_stride`-th),
    the chapter's strengths, and the splits' shares.
    """

    scoring_passes: Callable[[dict], float]
    swept_passes: Callable[[dict], float]
    reads: Callable[[dict], float]
    requests: Callable[[dict, int], int]
    assumption: str


def suffix_share(layers: int) -> float:
    """The mean share of the decoder layers a steered configuration reruns when a sweep steers after each layer in
    turn: after layer L, layers L+1 .. layers-1, so (layers - 1) / (2 * layers) on average."""
    return (layers - 1) / (2 * layers)


# A negative control of chapter 03 is swept on its target task's items alone: about half the validation split.
CONTROL_SHARE = 0.5

CHAPTER_WORK: dict[str, ChapterWork] = {
    "01": ChapterWork(
        lambda c: 1, lambda c: 0, lambda c: 0, lambda c, batches: 1,
        "one scoring pass over every item, its batches in one session (one NDIF request)"),
    "02": ChapterWork(
        lambda c: c["seeds"] * (1 + c["methods"]), lambda c: 0, lambda c: 0, lambda c, batches: 0,
        "one scoring pass per model: the base and each aligned model per seed; the aligned checkpoints are trained "
        "beforehand with `cla align` (not counted) and live on your disk, so this chapter does not run on NDIF"),
    "03": ChapterWork(
        lambda c: c["validation"] * (4 + 3 * CONTROL_SHARE) + c["test"] * 9,
        lambda c: c["validation"] * ((3 + 3 * CONTROL_SHARE) * c["swept_layers"] * c["strengths"]
                                     + c["swept_layers"]),
        lambda c: 2 + CONTROL_SHARE + 3 * c["validation"] / max(c["extract"], 1e-9), lambda c, batches: 16,
        "EN, LOC and LOC (language) sweeps over every swept layer and strength plus an answer-language sweep on the "
        "validation split (each steered configuration rerunning only the layers above its edit), and the three "
        "negative controls swept on their target's half of it; nine configurations on test, one extraction read, "
        "its two halves read again for the vectors' reliability, the culture prompts read again for the shuffled "
        "control, and three validation reads; sixteen sessions, one NDIF request each"),
    "04": ChapterWork(
        lambda c: c["validation"] * 3 + c["test"] * 6,
        lambda c: c["validation"] * (2 * c["swept_layers"] * c["strengths"]
                                     + (SURGICAL_CANDIDATE_LAYERS * c["strengths"] + 1) ** 2 - 1),
        lambda c: 1, lambda c, batches: 6,
        f"EN and LOC sweeps over every swept layer and strength, a Surgical grid of {SURGICAL_CANDIDATE_LAYERS} layers x "
        "strengths per vector, each also off (strength 0), on validation (assumed spread over the depth like the sweeps), six configurations on "
        "test (the negative control among them), one extraction read; six sessions, one NDIF request each"),
    "05": ChapterWork(lambda c: 0, lambda c: 0, lambda c: 0, lambda c, batches: 0,
                      "the worked example runs on a tiny model built in the chapter"),
}


UNKNOWN_CHAPTER = ChapterWork(lambda c: 1, lambda c: 0, lambda c: 0, lambda c, batches: batches,
                              "unknown chapter: assumed one scoring pass, traced batch by batch")


def _approximate_token_count(text: str) -> int:
    # Without the model's tokenizer: about 4 bytes of UTF-8 per token (a rough average over scripts; Chinese,
    # Korean and Persian run nearer 3, English nearer 4.5).
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


def token_counter(reference: str | ModelRef) -> tuple[Callable[[str], int], str, Any]:
    """A function counting the tokens of a text for `reference`, what it is, and the tokenizer it uses (None: the
    tokenizer is not at hand, as a local directory or in the hub's cache, and the count is approximate)."""
    parsed = known_reference(reference)
    source = parsed.source if parsed is not None else str(reference)
    if parsed is not None and parsed.is_organism:
        try:
            source = str(organism_path(parsed, train_if_missing=False))
        except FileNotFoundError:
            source = None
    if source is not None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=not Path(source).is_dir())
            return (lambda text: len(tokenizer(text)["input_ids"])), f"the tokenizer of {source}", tokenizer
        except Exception:  # offline without a cached tokenizer: fall back to the stated approximation
            pass
    return (_approximate_token_count, "an approximation of 4 UTF-8 bytes per token (the tokenizer is not at hand)",
            None)


def plane_workload(items, count_tokens: Callable[[str], int], batch_size: int = 64) -> dict:
    """One scoring pass over `items` as `cla_lib.scoring` runs it, and one read of the extract split's prompts.

    Per pass: `sequences` (choices scored), `tokens` (every prompt once, and each choice's tokens after its first,
    which are scored on the prompt's cache), `head_positions` (where logits are computed: a prompt's last position
    and those choice tokens), `forwards` (prompt batches and chunks of multi-token choices, `batch_size` rows
    each) and `harness_tokens` (one prompt + choice sequence per choice, the harness's way, for comparison). Per
    read: `read_prompts` and `read_tokens`.
    """
    sequences = sum(len(item.choices) for item in items)
    tokens = extra = harness = 0
    scored = []  # (prompt tokens, multi-token choices) of each item with something to score
    for item in items:
        prompt = count_tokens(item.prompt)
        wholes = [count_tokens(item.prompt + choice) for choice in item.choices]
        lengths = [max(whole - prompt, 0) for whole in wholes]
        extra += sum(max(length - 1, 0) for length in lengths)
        if any(lengths):
            scored.append((prompt, sum(length > 1 for length in lengths)))
        tokens += prompt
        harness += sum(wholes)
    # The scorer's batches: longest prompts first, `batch_size` prompts, then their multi-token choices in chunks.
    scored.sort(key=lambda pair: -pair[0])
    forwards = sum(1 + math.ceil(sum(multi for _, multi in scored[start:start + batch_size]) / batch_size)
                   for start in range(0, len(scored), batch_size))
    shares = {split: sum(len(item.choices) for item in items if item.split == split) / max(sequences, 1)
              for split in ("extract", "validation", "test")}
    extract = [item for item in items if item.split == "extract" and item.language != "en"]
    prompts = {prompt for item in extract
               for prompt in (item.prompt, item.meta.get("english_prompt"), item.meta.get("explicit_prompt")) if prompt}
    return {"items": len(items), "sequences": sequences, "tokens": tokens + extra, "head_positions": len(items) + extra,
            "forwards": forwards, "harness_tokens": harness,
            "read_prompts": len(prompts), "read_tokens": sum(count_tokens(prompt) for prompt in prompts), **shares}


def estimate(reference: str | ModelRef, language: str, chapter_paths: Sequence[Path], *, transfer_data: str | None = None,
             localization_data: str | None = None, batch_size: int = 64, n_layers: int | None = None,
             methods: int = 3, seeds: int = 1, organism_size: str | None = None, parameters: dict | None = None):
    """What rerunning `chapter_paths` for `reference` in `language` costs: a DataFrame, one row per chapter.

    Columns as `chapter_costs` gives them (`parameters`: the chapters' parameters a rerun sets); `DataFrame.attrs` holds the item counts and how tokens were counted.
    Nothing runs the model; an organism that is not trained yet is not trained.
    """
    parsed = known_reference(reference, size=organism_size)
    count_tokens, counted_with, tokenizer = token_counter(parsed or reference)
    if parsed is not None and parsed.is_organism:
        config = config_for(parsed.size, parsed.seed)
        world = World(config.world)
        items = world.transfer_items("en") + world.items(language)
        layers = n_layers or config.n_layers
    else:
        templated = parsed is not None and parsed.preset is not None and parsed.preset.chat_template
        # The chat template needs the tokenizer; without it at hand the bare prompts are counted and the hub is not
        # asked, as `token_counter` does not ask it (offline without HF_HUB_OFFLINE=1, its retries took 46 s).
        items = plane_items(parsed or reference if tokenizer is not None or not templated else "unformatted",
                            [language], transfer_data=transfer_data, localization_data=localization_data,
                            tokenizer=tokenizer)
        if templated and tokenizer is None:
            counted_with += "; without the chat template's tokens"
        # Unknown depth: a typical 7-8B model, stated in the output as the layer count used.
        layers = n_layers or (parsed.layers if parsed is not None else None) or 32
    workload = plane_workload(items, count_tokens, batch_size)
    return chapter_costs(workload, chapter_paths, layers=layers, batch_size=batch_size, methods=methods, seeds=seeds,
                         counted_with=counted_with, parameters=parameters)


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


def steering_strengths(path: str | Path, parameters: dict | None = None) -> int:
    """How many nonzero strengths a chapter sweeps: the entries of its `alphas` parameter (as `parameters` set it,
    else its default; 0 without one); strength 0, the unsteered model, is scored once per sweep."""
    alphas = _parameter(path, "alphas", parameters)
    return len(parse_list(alphas)) if alphas else 0


def _parameter(path: str | Path, name: str, parameters: dict | None):
    """A chapter parameter's value in a rerun: as `parameters` set it, else the chapter's default (None: none)."""
    if parameters and name in parameters:
        return parameters[name]
    return chapter_parameters(path).get(name) if Path(path).exists() else None


def chapter_costs(workload: dict, chapter_paths: Sequence[str | Path], *, layers: int, batch_size: int = 64,
                  methods: int = 3, seeds: int = 1, strengths: int | None = None, counted_with: str = "",
                  parameters: dict | None = None):
    """The cost table of `estimate` from a workload (`plane_workload`'s counts, or counts assumed for data that is
    not at hand: `items`, `sequences`, `tokens`, `head_positions`, `forwards`, `read_prompts`, `read_tokens` and
    the splits' shares).

    Columns: chapter, scoring_passes (every layer), swept_passes (steered sweep configurations), sequences (choices
    scored), batches (forwards), tokens (token-layers in units of the whole depth: a swept pass counts its
    `suffix_share`), head_positions (tokens whose logits are computed), remote_requests, assumption.
    """
    context = {"layers": layers, "methods": methods, "seeds": seeds, "strengths": strengths,
               "extract": workload["extract"], "validation": workload["validation"], "test": workload["test"]}
    share = suffix_share(layers)
    rows = []
    for path in chapter_paths:
        number = Path(path).stem.split("_")[0]
        work = CHAPTER_WORK.get(number, UNKNOWN_CHAPTER)
        # The strengths a chapter sweeps are its own `alphas` parameter's, unless the caller says otherwise.
        context["strengths"] = strengths if strengths is not None else steering_strengths(path, parameters)
        context["swept_layers"] = math.ceil(layers / int(_parameter(path, "layer_stride", parameters) or 1))
        passes, swept, reads = work.scoring_passes(context), work.swept_passes(context), work.reads(context)
        sequences = (passes + swept) * workload["sequences"] + reads * workload["read_prompts"]
        tokens = (passes + swept * share) * workload["tokens"] + reads * workload["read_tokens"]
        heads = (passes + swept) * workload["head_positions"] + reads * workload["read_prompts"]
        batches = (passes + swept) * workload["forwards"] + reads * math.ceil(workload["read_prompts"] / batch_size)
        requests = work.requests(context, workload["forwards"])
        rows.append({"chapter": Path(path).stem, "scoring_passes": round(passes, 2), "swept_passes": round(swept, 2),
                     "sequences": round(sequences), "batches": round(batches), "tokens": round(tokens),
                     "head_positions": round(heads), "remote_requests": int(requests), "assumption": work.assumption})
    frame = pd.DataFrame(rows)
    frame.attrs.update({**workload, "tokens_counted_with": counted_with, "layers": layers, "batch_size": batch_size,
                        "suffix_share": share})
    return frame


def describe_cost(frame) -> str:
    """The estimate as the lines a rerun prints before it starts."""
    attrs = frame.attrs
    lines = [f"Estimated cost ({attrs['items']} items, {attrs['sequences']:,} scored choices and "
             f"{attrs['tokens']:,} tokens per scoring pass, each prompt once; tokens counted with "
             f"{attrs['tokens_counted_with']}; {attrs['layers']} layers; batches of {attrs['batch_size']}):"]
    for row in frame.itertuples():
        lines.append(f"  {row.chapter}: {row.scoring_passes:g} scoring passes and {row.swept_passes:g} swept "
                     f"configurations, {row.sequences:,} choices in {row.batches:,} forwards, {row.tokens:,} tokens; "
                     f"on NDIF {row.remote_requests:,} requests ({row.assumption})")
    total = frame[["sequences", "batches", "tokens", "remote_requests"]].sum()
    lines.append(f"  total: {int(total.sequences):,} sequences in {int(total.batches):,} forwards, "
                 f"{int(total.tokens):,} tokens, {int(total.remote_requests):,} NDIF requests if remote")
    return "\n".join(lines)


def assumed_workload(*, languages: int, transfer_items: int, transfer_choices: int, transfer_length: int,
                     transfer_choice_tokens: int, localization_items: int, localization_choices: int,
                     localization_length: int, localization_choice_tokens: int, batch_size: int = 64) -> dict:
    """`plane_workload`'s counts for data that is not at hand, from assumed item counts and mean lengths.

    Transfer items are counted for each language and the English ceiling, localization items for each language;
    a length is that of a whole (prompt + choice) sequence, so a prompt is `length - choice_tokens` long. 20% of the
    items are in the extract split, 20% in validation, 60% in test (`cla_lib.data`).
    """
    axes = [(transfer_items * (languages + 1), transfer_choices, transfer_length, transfer_choice_tokens),
            (localization_items * languages, localization_choices, localization_length, localization_choice_tokens)]
    items = sum(count for count, *_ in axes)
    extra = sum(count * choices * max(choice_tokens - 1, 0) for count, choices, _, choice_tokens in axes)
    multi = sum(count * choices * (choice_tokens > 1) for count, choices, _, choice_tokens in axes)
    read_prompts = int(0.2 * (transfer_items * 2 + localization_items * 3) * languages)
    return {"items": items, "sequences": sum(count * choices for count, choices, *_ in axes),
            "tokens": sum(count * (length - choice_tokens) for count, _, length, choice_tokens in axes) + extra,
            "head_positions": items + extra,
            "forwards": math.ceil(items / batch_size) + math.ceil(multi / batch_size),
            "harness_tokens": sum(count * choices * length for count, choices, length, _ in axes),
            "read_prompts": read_prompts, "read_tokens": int(read_prompts * (transfer_length + localization_length) / 2),
            "extract": 0.2, "validation": 0.2, "test": 0.6}
