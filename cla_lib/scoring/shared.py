"""Scoring at the FLOP floor: each prompt once, its choices from its key/value cache, a sweep's lower layers once.

Three savings over one (prompt + choice) sequence per row (`cla_lib.scoring.full`), each exact:

1. **Shared prompts.** A batch of prompts runs once, keeping its key/value cache; every choice then runs only its
   own tokens against that cache, through transformers' own mask builders and caches, unchanged.
2. **Single-token choices in one pass.** Choices of one token (Global-MMLU's " A" ... " D") need no second forward
   at all; only the prompt's last position's logits are computed (`logits_to_keep`).
3. **Suffix-only sweeps.** An edit after layer L leaves layers 0..L unsteered, so a sweep runs them once per batch
   and a steered run skips them (nnsight's `skip`); the price is memory.

Prompts of different lengths share a batch, left-padded with explicit positions. Design notes: docs/design-notes.md.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import nnsight
import torch

from tqdm import tqdm  # not tqdm.auto: it warns "IProgress not found" in kernels without ipywidgets

from cla_lib.core.batching import combine_edits, pad, pad_id
from cla_lib.core.items import Item
from cla_lib.model.layers import apply_edits, decoder_layers, residual
from cla_lib.scoring.encoding import EncodedItem, encode_item

Edits = list[tuple[int, torch.Tensor]]


@dataclass
class CandidateChunk:
    """Up to `batch_size` choices of a prompt batch that are longer than one token, run on the prompts' cache."""

    cells: list[tuple[int, int, int]]  # (prompt row, item index, choice index) per candidate row
    sources: torch.Tensor  # the prompt row of each candidate row (which cache rows it reads)
    input_ids: torch.Tensor  # the choice's tokens but its last, right-padded
    attention_mask: torch.Tensor  # the prompt's mask, then the choice's
    position_ids: torch.Tensor  # each row continues its own prompt's length
    targets: torch.Tensor  # the choice's tokens but its first (predicted at the positions above)


@dataclass
class PromptBatch:
    """Prompts that run together, and what their choices need."""

    items: list[int]  # item index per prompt row
    input_ids: torch.Tensor  # left-padded: every prompt ends in the last column
    attention_mask: torch.Tensor
    position_ids: torch.Tensor  # each token at its unpadded position
    first_tokens: torch.Tensor  # [rows, choices]: each choice's first token (0 where it has none)
    chunks: list[CandidateChunk] = field(default_factory=list)

    @property
    def forwards(self) -> int:
        return 1 + len(self.chunks)


def plan_batches(encoded: Sequence[EncodedItem], batch_size: int, *, pad_token_id: int) -> list[PromptBatch]:
    """The prompt batches (longest prompts first) and candidate chunks that score `encoded`.

    Items with no choice to score are left out (their scores are 0). `batch_size` bounds the rows of every forward:
    prompts per prompt batch, candidates per chunk.
    """
    # No multi-line lambda here: nnsight ships this module's source to remote sessions, line by line.
    negative_length = [-len(item.context) for item in encoded]
    scored = [index for index, item in enumerate(encoded) if any(item.continuations)]
    order = sorted(scored, key=negative_length.__getitem__)
    groups = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [_prompt_batch([encoded[index] for index in group], group, batch_size, pad_token_id) for group in groups]


def _prompt_batch(encoded: list[EncodedItem], indices: list[int], batch_size: int, pad_token_id: int) -> PromptBatch:
    inputs = pad([item.context for item in encoded], pad_token_id, side="left")
    width = max(len(item.continuations) for item in encoded)
    first = torch.zeros((len(encoded), width), dtype=torch.long)
    cells = []
    for row, (item, index) in enumerate(zip(encoded, indices)):
        for choice, continuation in enumerate(item.continuations):
            if continuation:
                first[row, choice] = continuation[0]
            if len(continuation) > 1:
                cells.append((row, index, choice))
    batch = PromptBatch(indices, inputs["input_ids"], inputs["attention_mask"], inputs["position_ids"], first)
    by_index = dict(zip(indices, encoded))
    # Longest choices first, so that a chunk holds choices of similar lengths and pads little.
    negative_length = [-len(by_index[index].continuations[choice]) for _, index, choice in cells]
    cells = [cells[position] for position in sorted(range(len(cells)), key=negative_length.__getitem__)]
    for start in range(0, len(cells), batch_size):
        chunk = cells[start : start + batch_size]
        continuations = [by_index[index].continuations[choice] for _, index, choice in chunk]
        sources = torch.tensor([row for row, _, _ in chunk])
        choice_inputs = pad([continuation[:-1] for continuation in continuations], pad_token_id)
        lengths = torch.tensor([len(by_index[index].context) for _, index, _ in chunk]).unsqueeze(-1)
        steps = torch.arange(choice_inputs["input_ids"].shape[1]).unsqueeze(0)
        batch.chunks.append(CandidateChunk(
            chunk, sources, choice_inputs["input_ids"],
            torch.cat([batch.attention_mask[sources], choice_inputs["attention_mask"]], dim=1),
            lengths + steps, pad([continuation[1:] for continuation in continuations], 0)["input_ids"]))
    return batch


@dataclass
class _Run:
    """What one configuration's forwards over a prompt batch leave: log-probabilities, cache, kept layer outputs."""

    first: torch.Tensor  # [rows, choices]
    rest: list[torch.Tensor]  # per chunk, [rows, steps] (0 past a row's end)
    cache: object
    prompt_hidden: list[torch.Tensor]
    chunk_hidden: list[list[torch.Tensor]]


def _run(lm, batch: PromptBatch, edits: Edits, *, below: _Run | None = None, skipped: int = 0,
         keep: int = 0) -> _Run:
    """One configuration over a batch: the prompt forward, then each candidate chunk on its cache.

    With `below` (the unsteered run of the same batch), layers 0..skipped-1 do not run: their outputs are `below`'s
    (plus the edits after the last of them) and so are their cache rows. `keep` saves the outputs of layers
    0..keep-1 for later runs to skip.
    """
    layers = decoder_layers(lm)
    upper = [(layer, delta) for layer, delta in edits if layer >= skipped]
    with torch.no_grad():
        replacements = _replacements(below.prompt_hidden if skipped else [], edits, skipped)
        with lm.trace(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                         position_ids=batch.position_ids, logits_to_keep=1):
            for layer, replacement in enumerate(replacements):
                layers[layer].skip(replacement)
            apply_edits(lm, upper)
            prompt_hidden = nnsight.save([residual(lm, layer) for layer in range(keep)])
            # model.output.logits, not lm_head's output: Gemma 2/3 soft-cap the logits after the head.
            last = lm.output.logits[:, -1].float()
            first = (last.gather(-1, batch.first_tokens.to(last.device)) - last.logsumexp(-1, keepdim=True)).save()
            cache = lm.output.cache.save()
    rest, chunk_hidden = [], []
    for number, chunk in enumerate(batch.chunks):
        chunk_cache = _select_rows(below.cache if skipped else cache, cache, skipped, chunk.sources)
        with torch.no_grad():
            replacements = _replacements(below.chunk_hidden[number] if skipped else [], edits, skipped)
            with lm.trace(input_ids=chunk.input_ids, attention_mask=chunk.attention_mask,
                             position_ids=chunk.position_ids, cache=chunk_cache):
                for layer, replacement in enumerate(replacements):
                    layers[layer].skip(replacement)
                apply_edits(lm, upper)
                hidden = nnsight.save([residual(lm, layer) for layer in range(keep)])
                logits = lm.output.logits.float()
                targets = chunk.targets.to(logits.device).unsqueeze(-1)
                token_logprobs = (logits.gather(-1, targets).squeeze(-1) - logits.logsumexp(-1)).save()
        rest.append(token_logprobs.cpu() * _real(chunk))
        chunk_hidden.append(hidden)
    return _Run(first.cpu(), rest, cache, prompt_hidden, chunk_hidden)


def _replacements(hidden: Sequence[torch.Tensor], edits: Edits, skipped: int) -> list[torch.Tensor]:
    """The outputs that skipped layers 0..skipped-1 return: the unsteered ones, plus the edits made after them."""
    replacements = list(hidden[:skipped])
    for layer, delta in edits:
        if layer < skipped:
            replacements[layer] = replacements[layer] + delta.to(replacements[layer].device,
                                                                 replacements[layer].dtype)
    return replacements


def _real(chunk: CandidateChunk) -> torch.Tensor:
    """Which steps of a chunk are real tokens of a choice (the choice's part of the attention mask)."""
    return chunk.attention_mask[:, -chunk.input_ids.shape[1]:].bool()


def _select_rows(lower, upper, skipped: int, rows: torch.Tensor):
    """A cache for a candidate chunk: layers below `skipped` from `lower`, the rest from `upper`, rows repeated.

    Layers are shallow-copied and re-indexed, so the prompt caches stay as they were for the next chunk.
    """
    cache = copy.copy(upper)
    cache.layers = []
    for index, layer in enumerate(upper.layers):
        selected = copy.copy(lower.layers[index] if index < skipped else layer)
        selected.batch_select_indices(rows.to(selected.keys.device))
        cache.layers.append(selected)
    return cache


def _fill(scores: list[list[float]], batch: PromptBatch, run: _Run, encoded: Sequence[EncodedItem]) -> None:
    # One conversion per tensor, not per element: each row's sum and each float32 -> float are the same numbers.
    first = run.first.tolist()
    for row, index in enumerate(batch.items):
        for choice, continuation in enumerate(encoded[index].continuations):
            if continuation:
                scores[index][choice] = first[row][choice]
    for chunk, rest in zip(batch.chunks, run.rest):
        for (_, index, choice), total in zip(chunk.cells, rest.sum(dim=1).tolist()):
            scores[index][choice] += total


def _groups(lm, passes: Sequence[tuple[Sequence[Item], Sequence]], batch_size: int,
            encodings: dict | None = None) -> list[tuple[list[int], list[EncodedItem], list[PromptBatch]]]:
    """The passes over the same items (the same `Item` objects in the same order), grouped: (pass numbers, the
    items encoded, their batches). Both `score_passes` and `forwards_of` plan through here.

    `encodings` ((prompt, choices) -> `EncodedItem` for this model's tokenizer) is filled and reused: a layer study
    scores the same items in several calls, and tokenizing them again cost about 8% of its time.
    """
    tokenizer = lm.tokenizer
    encodings = {} if encodings is None else encodings
    groups: dict[tuple[int, ...], list[int]] = {}
    for number, (items, _) in enumerate(passes):
        groups.setdefault(tuple(id(item) for item in items), []).append(number)
    planned = []
    for numbers in groups.values():
        encoded = []
        for item in passes[numbers[0]][0]:
            key = (item.prompt, item.choices)
            if key not in encodings:
                encodings[key] = encode_item(tokenizer, item)
            encoded.append(encodings[key])
        planned.append((numbers, encoded, plan_batches(encoded, batch_size, pad_token_id=pad_id(tokenizer))))
    return planned


def _shares_a_base(edits: Sequence) -> bool:
    """Whether a group's passes share one unsteered run: several passes, or an unsteered one among them."""
    return len(edits) > 1 or not all(edits)


def score_passes(lm, passes: Sequence[tuple[Sequence[Item], Sequence[tuple[int, torch.Tensor]]]], *,
                 batch_size: int = 64, progress: bool = False, encodings: dict | None = None
                 ) -> list[list[list[float]]]:
    """Choice log-likelihoods for each (items, edits) pass, with shared prompts and shared lower layers.

    Passes over the same items (the same `Item` objects in the same order) share one unsteered run per batch when
    there are several of them, or when one of them is unsteered; a lone steered pass runs on its own. `encodings`
    keeps the items' tokens between calls (see `_groups`).
    """
    work = _groups(lm, passes, batch_size, encodings)
    results: list[list[list[float]]] = [[[0.0] * len(item.choices) for item in items] for items, _ in passes]
    bar = None
    if progress:
        bar = tqdm(total=sum(len(batches) for *_, batches in work), desc="scoring", unit="batch")
    for numbers, encoded, batches in work:
        edits = [combine_edits(passes[number][1]) for number in numbers]
        # A steered run on top of the shared unsteered one skips every layer up to and including its first edit.
        skips = [edit[0][0] + 1 if edit else 0 for edit in edits]
        shared = _shares_a_base(edits)
        keep = max(skips) if shared else 0
        for batch in batches:
            base = _run(lm, batch, [], keep=keep) if shared else None
            for number, edit, skipped in zip(numbers, edits, skips):
                run = base if not edit else _run(lm, batch, edit, below=base, skipped=skipped if shared else 0)
                _fill(results[number], batch, run, encoded)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return results


def forwards_of(lm, passes: Sequence[tuple[Sequence[Item], Sequence]], *, batch_size: int = 64) -> int:
    """How many forwards `score_passes` runs for `passes` (what one remote request carries), without running them."""
    total = 0
    for numbers, _, batches in _groups(lm, passes, batch_size):
        edits = [passes[number][1] for number in numbers]
        runs = sum(1 for edit in edits if edit) + _shares_a_base(edits)
        total += runs * sum(batch.forwards for batch in batches)
    return total
