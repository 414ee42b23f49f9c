"""Steering vectors: directions in the residual stream, read off contrasting prompts and added back at inference.

A steering vector for layer L is the difference between the mean residual stream after decoder layer L on two
sets of prompts that differ in one respect, read at the **last prompt token** (the position that predicts the
answer). Adding `alpha` times it to the residual after layer L at every position moves the model along that
respect. This companion defines three kinds (`VECTOR_KINDS`), each from parallel prompts of one target language:

- **en**: the question in English minus the same question in the target language (transfer and culture items):
  "make the model read this as English", the paper's English steering.
- **loc**: the culture question with the explicit cue for the language's own country ("In Korea, ...") minus the
  same question without it: Veselovsky et al. (2025)'s explicit-minus-implicit vector, the default LOC vector.
- **loclang**: the culture question in the target language minus its English version, i.e. -EN restricted to
  culture items: "the language itself as the cultural cue", an alternative LOC definition.

    vectors = extract_vectors(model, items)              # {"en.ko": SteeringVector, "loc.ko": ...}
    edits = steering_edits((vectors["en.ko"], 3, 4.0), (vectors["loc.ko"], 6, 2.0))   # Surgical Steering
    points = steered_plane(model, test_items, edits)

A `SteeringVector` is a value, `layer -> [hidden]` plus where it came from, with the arithmetic of the paper's
notation (`v_loc - v_en`, `2.0 * v`). Vectors are extracted on the items of the `extract` split only; layers and
strengths are chosen on `validation` (`best_layer`, `select_surgical`) and reported on `test` (`check_disjoint`
guards against overlap). Applying a vector never changes the model: the edits live inside one nnsight trace.

Every function that runs the model takes `remote`: `False` runs locally, `True` on NDIF, `"local"` through
nnsight's serialization round trip in-process (what a remote run would execute). Several forwards (a sweep, the
batches of an extraction) then run as one `model.session()`, so a remote sweep is one request. Everything a
session or trace body touches is built before it (token tensors, edit lists) and everything it returns is saved
inside it.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import random
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

from cla_lib.evaluation import PlanePoint, plane_from_answers
from cla_lib.items import Item
from cla_lib.languages import ENGLISH
from cla_lib.models import add_to_residual, n_layers, residual
from cla_lib.scoring import choice_logprobs, choice_logprobs_passes, predictions

# With fewer forwards than this a progress bar only adds noise.
PROGRESS_MIN_STEPS = 4

Edits = Sequence[tuple[int, torch.Tensor]]


# ----------------------------------------------------------------------------------------------------------
# The value


@dataclass(frozen=True, eq=False)
class SteeringVector:
    """A direction per layer, `layer -> [hidden]` float tensor, plus `source`: what it was made from.

    Arithmetic works layer by layer over the union of layers (a layer missing on one side counts as zero), so
    experiments read like the paper: `v_loc - v_en`, `-v`, `0.5 * (a + b)`.

    Example:
        >>> v = extract_vectors(model, items, kinds=["en"], languages=["ko"])["en.ko"]
        >>> v[3].shape, v.cosine(w)[3]
    """

    vectors: dict[int, torch.Tensor]
    source: dict = field(default_factory=dict)

    def __post_init__(self):
        sizes = {tuple(tensor.shape) for tensor in self.vectors.values()}
        if any(len(size) != 1 for size in sizes) or len(sizes) > 1:
            raise ValueError(f"a steering vector holds one [hidden] tensor per layer, not shapes {sorted(sizes)}")

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted(self.vectors))

    @property
    def hidden_size(self) -> int:
        return next(iter(self.vectors.values())).shape[0]

    def __getitem__(self, layer: int) -> torch.Tensor:
        if layer not in self.vectors:
            raise KeyError(f"no layer {layer} in this steering vector (layers {list(self.layers)})")
        return self.vectors[layer]

    def __contains__(self, layer: int) -> bool:
        return layer in self.vectors

    def __add__(self, other: "SteeringVector") -> "SteeringVector":
        if not isinstance(other, SteeringVector):
            return NotImplemented
        vectors = {}
        for layer in sorted(set(self.vectors) | set(other.vectors)):
            if layer in self.vectors and layer in other.vectors:
                vectors[layer] = self.vectors[layer] + other.vectors[layer].to(self.vectors[layer])
            else:
                vectors[layer] = (self.vectors.get(layer, other.vectors.get(layer))).clone()
        return SteeringVector(vectors, {"kind": "sum", "of": [self.source, other.source]})

    def __neg__(self) -> "SteeringVector":
        return self * -1.0

    def __sub__(self, other: "SteeringVector") -> "SteeringVector":
        if not isinstance(other, SteeringVector):
            return NotImplemented
        result = self + (-other)
        return SteeringVector(result.vectors, {"kind": "difference", "of": [self.source, other.source]})

    def __mul__(self, alpha: float) -> "SteeringVector":
        if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool):
            return NotImplemented
        return SteeringVector({layer: alpha * tensor for layer, tensor in self.vectors.items()},
                              {"kind": "scaled", "alpha": float(alpha), "of": self.source})

    __rmul__ = __mul__

    def cosine(self, other: "SteeringVector") -> dict[int, float]:
        """The cosine similarity with `other` at each layer both have."""
        return {layer: float(torch.nn.functional.cosine_similarity(
                    self.vectors[layer].double(), other.vectors[layer].double(), dim=0))
                for layer in self.layers if layer in other.vectors}

    def norms(self) -> dict[int, float]:
        """The Euclidean norm at each layer (to compare strengths with the residual's own norm)."""
        return {layer: float(self.vectors[layer].norm()) for layer in self.layers}

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "SteeringVector":
        return SteeringVector({layer: tensor.to(device=device, dtype=dtype) for layer, tensor in self.vectors.items()},
                              self.source)

    def __repr__(self) -> str:
        layers = self.layers
        span = f"{layers[0]}..{layers[-1]}" if len(layers) > 1 else str(layers[0]) if layers else "none"
        return f"SteeringVector({self.source.get('kind', '?')}, layers {span}, hidden {self.hidden_size if layers else 0})"


# ----------------------------------------------------------------------------------------------------------
# Reading activations


@dataclass(frozen=True)
class _PromptBatch:
    """Padded prompts, ready for one forward: model inputs plus which position is each row's last token."""

    rows: tuple[int, ...]  # indices into the caller's prompt list
    inputs: dict
    last: torch.Tensor  # [batch] index of each row's last non-pad token


def _padded(token_lists: Sequence[Sequence[int]], pad_token_id: int, side: str) -> dict:
    """input_ids and attention_mask for token lists, padded on `side`; position ids too when padding on the left,
    so that every real token keeps the position it has unpadded (models with absolute positions need it)."""
    width = max(len(tokens) for tokens in token_lists)
    input_ids = torch.full((len(token_lists), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        span = slice(width - len(tokens), width) if side == "left" else slice(0, len(tokens))
        input_ids[row, span] = torch.tensor(list(tokens), dtype=torch.long)
        attention_mask[row, span] = 1
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if side == "left":
        inputs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return inputs


def last_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """The index of each row's last non-pad token, whichever side the padding is on."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * (positions + 1)).argmax(dim=1)


def _prompt_batches(tokenizer, prompts: Sequence[str], batch_size: int, side: str | None = None) -> list[_PromptBatch]:
    """Tokenize prompts (default special tokens, as scoring does) into batches of similar length."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    token_lists = [list(tokenizer(prompt)["input_ids"]) for prompt in prompts]
    for prompt, tokens in zip(prompts, token_lists):
        if not tokens:
            raise ValueError(f"the prompt {prompt!r} encodes to no tokens, so it has no last token to read")
    order = sorted(range(len(prompts)), key=lambda index: -len(token_lists[index]))
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    side = side or getattr(tokenizer, "padding_side", "right")
    batches = []
    for start in range(0, len(order), batch_size):
        rows = tuple(order[start:start + batch_size])
        inputs = _padded([token_lists[row] for row in rows], pad_token_id, side)
        batches.append(_PromptBatch(rows, inputs, last_positions(inputs["attention_mask"])))
    return batches


def _last_token_states(model, inputs: dict, last: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """One forward: `[len(layers), batch, hidden]` float32 residuals at each row's last token, all layers at once."""
    rows = torch.arange(last.shape[0])
    with torch.no_grad():
        with model.trace(**inputs):
            states = []
            for layer in layers:
                states.append(residual(model, layer)[rows, last])
            stacked = torch.stack(states).float().save()
    return stacked


def last_token_activations(
    model,
    prompts: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    remote: bool | str = False,
    progress: bool | None = None,
) -> torch.Tensor:
    """The residual stream after each layer at the last token of each prompt, every layer from one forward per batch.

    Prompts are encoded with the tokenizer's default special tokens (as `cla_lib.scoring` encodes a prompt), so the
    last token is the position that predicts an answer. Batches are padded on the tokenizer's `padding_side`; each
    row's last non-pad token is found from the attention mask.

    Args:
        model: An nnsight model from `cla_lib.models.load_model`.
        prompts: The prompts.
        layers: 0-based decoder layers to read (default: all).
        batch_size: Prompts per forward.
        remote: `False`, `True` (NDIF) or `"local"` (nnsight's serialization round trip, run here).
        progress: Show a progress bar over batches; `None` shows one when there are many (never when remote).

    Returns:
        A float32 CPU tensor `[len(layers), len(prompts), hidden]`.

    Example:
        >>> states = last_token_activations(model, ["Das ist", "This is"])
        >>> states.shape   # [n_layers, 2, hidden]
    """
    if not prompts:
        raise ValueError("no prompts to read activations from")
    layers = list(range(n_layers(model))) if layers is None else [int(layer) for layer in layers]
    batches = _prompt_batches(model.tokenizer, prompts, batch_size)
    work = [(batch.inputs, batch.last) for batch in batches]
    if remote:
        _register_for_remote()
        with model.session(remote=remote):
            outputs = _save([])
            for inputs, last in work:
                outputs.append(_last_token_states(model, inputs, last, layers))
    else:
        outputs = [_last_token_states(model, inputs, last, layers)
                   for inputs, last in _progress(work, progress, "activations")]
    result = torch.empty((len(layers), len(prompts), outputs[0].shape[-1]), dtype=torch.float32)
    for batch, states in zip(batches, outputs):
        result[:, list(batch.rows)] = states.cpu()
    return result


def _save(value):
    """`nnsight.save`, imported here so that this module imports without tracing machinery at hand."""
    import nnsight

    return nnsight.save(value)


def _register_for_remote() -> None:
    """Ship this library's code by value with remote requests: the NDIF server has nnsight, not cla_lib."""
    import nnsight

    import cla_lib

    nnsight.register(cla_lib)


def _progress(iterable, progress: bool | None, description: str):
    steps = list(iterable)
    if progress is None:
        progress = len(steps) >= PROGRESS_MIN_STEPS
    if not progress:
        return steps
    from tqdm.auto import tqdm

    return tqdm(steps, desc=description, unit="pass")


# ----------------------------------------------------------------------------------------------------------
# Extraction: the kinds of vector


def _require(item: Item, key: str, kind: str) -> str:
    value = item.meta.get(key)
    if not value:
        raise ValueError(f"item {item.id!r} has no meta[{key!r}], which a {kind!r} vector needs (the organism's items "
                         f"have it; real-data items must carry the parallel prompt)")
    return value


def _en_pairs(items: Sequence[Item]) -> list[tuple[str, str]]:
    return [(_require(item, "english_prompt", "en"), item.prompt) for item in items]


def _loc_pairs(items: Sequence[Item]) -> list[tuple[str, str]]:
    return [(_require(item, "explicit_prompt", "loc"), item.prompt) for item in items if item.task == "localization"]


def _loclang_pairs(items: Sequence[Item]) -> list[tuple[str, str]]:
    return [(item.prompt, _require(item, "english_prompt", "loclang"))
            for item in items if item.task == "localization"]


class VectorKind(NamedTuple):
    """How one kind of vector is made: (plus, minus) prompt pairs from a language's items; vector = mean difference."""

    name: str
    definition: str
    pairs: Callable[[Sequence[Item]], list[tuple[str, str]]]


VECTOR_KINDS: dict[str, VectorKind] = {kind.name: kind for kind in (
    VectorKind("en", "English prompt minus the same prompt in the target language (transfer and culture items)",
               _en_pairs),
    VectorKind("loc", "culture question with the explicit own-country cue ('In Korea, ...') minus without it "
                      "(Veselovsky et al. 2025)", _loc_pairs),
    VectorKind("loclang", "culture question in the target language minus its English version (-EN on culture items)",
               _loclang_pairs),
)}


def _model_name(model) -> str:
    module = getattr(model, "_module", model)
    return str(getattr(module, "name_or_path", "") or getattr(getattr(module, "config", None), "_name_or_path", ""))


def _target_languages(items: Sequence[Item]) -> list[str]:
    return [language for language in dict.fromkeys(item.language for item in items) if language != ENGLISH]


def extract_vectors(
    model,
    items: Sequence[Item],
    *,
    kinds: Sequence[str] = tuple(VECTOR_KINDS),
    languages: Sequence[str] | None = None,
    split: str | None = "extract",
    batch_size: int = 64,
    remote: bool | str = False,
    model_name: str | None = None,
    progress: bool | None = None,
) -> dict[str, SteeringVector]:
    """Steering vectors of several kinds and languages, at every layer, from one batched read of all their prompts.

    Each distinct prompt is read once (`last_token_activations`), however many vectors use it.

    Args:
        model: An nnsight model.
        items: Items of one or more target languages (English items are ignored).
        kinds: Names in `VECTOR_KINDS`.
        languages: Target languages (default: every non-English language in `items`).
        split: Only items of this split (default `"extract"`; `None` for all, e.g. for cross-fitting).
        batch_size, remote, progress: as in `last_token_activations`.
        model_name: Recorded in each vector's `source` (default: the model's path or hub id).

    Returns:
        `{"<kind>.<language>": SteeringVector}`, each with every layer.

    Raises:
        ValueError: An unknown kind, or a (kind, language) with no items in `split`.
    """
    unknown = [kind for kind in kinds if kind not in VECTOR_KINDS]
    if unknown:
        raise ValueError(f"unknown vector kind(s) {unknown}; kinds: " + "; ".join(
            f"{kind.name}: {kind.definition}" for kind in VECTOR_KINDS.values()))
    chosen = [item for item in items if split is None or item.split == split]
    languages = list(languages) if languages is not None else _target_languages(chosen)
    if not languages:
        raise ValueError(f"no target-language items in the {split!r} split to extract vectors from")
    plan = {}
    for language in languages:
        of_language = [item for item in chosen if item.language == language]
        for kind in kinds:
            pairs = VECTOR_KINDS[kind].pairs(of_language)
            if not pairs:
                raise ValueError(f"no {kind!r} prompt pairs for {language!r} among the {split or 'given'} items "
                                 f"({len(of_language)} items of that language)")
            plan[f"{kind}.{language}"] = (kind, language, pairs)

    prompts = list(dict.fromkeys(prompt for _, _, pairs in plan.values() for pair in pairs for prompt in pair))
    row_of = {prompt: row for row, prompt in enumerate(prompts)}
    states = last_token_activations(model, prompts, batch_size=batch_size, remote=remote, progress=progress)
    model_name = model_name if model_name is not None else _model_name(model)
    vectors = {}
    for name, (kind, language, pairs) in plan.items():
        plus = states[:, [row_of[pair[0]] for pair in pairs]].mean(dim=1)
        minus = states[:, [row_of[pair[1]] for pair in pairs]].mean(dim=1)
        difference = plus - minus
        vectors[name] = SteeringVector(
            {layer: difference[layer].clone() for layer in range(difference.shape[0])},
            {"kind": kind, "language": language, "model": model_name, "n_prompts": len(pairs), "split": split,
             "definition": VECTOR_KINDS[kind].definition})
    return vectors


def extract_vector(kind: str, model, items: Sequence[Item], *, language: str | None = None, **options) -> SteeringVector:
    """One steering vector of `kind` for one target language (see `extract_vectors` for the options)."""
    if language is None:
        split = options.get("split", "extract")
        languages = _target_languages([item for item in items if split is None or item.split == split])
        if len(languages) != 1:
            raise ValueError(f"the items hold target languages {languages}; name one with language=")
        language = languages[0]
    return extract_vectors(model, items, kinds=[kind], languages=[language], **options)[f"{kind}.{language}"]


def en_vector(model, items: Sequence[Item], *, language: str | None = None, **options) -> SteeringVector:
    """EN: mean last-token residual of the English prompts minus the same prompts in the target language."""
    return extract_vector("en", model, items, language=language, **options)


def loc_vector(model, items: Sequence[Item], *, language: str | None = None, **options) -> SteeringVector:
    """LOC (Veselovsky et al. 2025): culture questions with the explicit own-country cue minus without it."""
    return extract_vector("loc", model, items, language=language, **options)


def loc_vector_language(model, items: Sequence[Item], *, language: str | None = None, **options) -> SteeringVector:
    """LOC, alternative: culture questions in the target language minus their English versions (-EN on culture)."""
    return extract_vector("loclang", model, items, language=language, **options)


# ----------------------------------------------------------------------------------------------------------
# Splits


# Meta keys naming the question an item asks, whatever language it is asked in: the organism's creature (all of
# its relations share a split) or culture question, Global-MMLU's sample id, BLEnD's question id.
QUESTION_KEYS = ("creature", "question", "sample_id", "question_id")


def question_key(item: Item) -> tuple[str, str]:
    """What `item` asks, independent of language: (task, the first of QUESTION_KEYS in its meta, else its id)."""
    for key in QUESTION_KEYS:
        if key in item.meta:
            return (item.task, str(item.meta[key]))
    return (item.task, item.id)


def check_disjoint(extract_items: Sequence[Item], eval_items: Sequence[Item]) -> None:
    """Raise if the items vectors are extracted on share an item or an underlying question with evaluation items.

    Raises:
        ValueError: Naming up to five shared item ids or questions.
    """
    shared_ids = sorted({item.id for item in extract_items} & {item.id for item in eval_items} - {""})
    shared_questions = sorted({question_key(item) for item in extract_items} & {question_key(item) for item in eval_items})
    if shared_ids or shared_questions:
        examples = shared_ids[:5] or [f"{task}:{key}" for task, key in shared_questions[:5]]
        raise ValueError(f"extraction and evaluation items overlap: {len(shared_ids)} shared items, "
                         f"{len(shared_questions)} shared questions (e.g. {', '.join(examples)}); extract vectors on "
                         "the 'extract' split and evaluate on 'validation' or 'test'")


# ----------------------------------------------------------------------------------------------------------
# Applying


def steering_edits(*terms: tuple[SteeringVector, int, float]) -> list[tuple[int, torch.Tensor]]:
    """Residual edits for `cla_lib.scoring.choice_logprobs(edits=...)` from (vector, layer, alpha) terms.

    Example:
        >>> edits = steering_edits((v_en, 3, 4.0), (v_loc, 6, 2.0))   # EN at layer 3 and LOC at layer 6 at once
    """
    edits = []
    for term in terms:
        if len(term) != 3 or not isinstance(term[0], SteeringVector):
            raise ValueError(f"a steering term is (SteeringVector, layer, alpha), not {term!r}")
        vector, layer, alpha = term
        edits.append((int(layer), float(alpha) * vector[int(layer)]))
    return edits


def apply_edits(model, edits: Edits) -> None:
    """Add each edit's delta to the residual after its layer; call inside a trace (or a generation step).

    Deltas for the same layer add up; layers are visited in the order the forward reaches them.
    """
    by_layer: dict[int, torch.Tensor] = {}
    for layer, delta in edits:
        by_layer[layer] = by_layer[layer] + delta if layer in by_layer else delta
    for layer in sorted(by_layer):
        add_to_residual(model, layer, by_layer[layer])


def _generate_batch(model, inputs: dict, edits: Edits, max_new_tokens: int, options: dict) -> torch.Tensor:
    """One steered `generate`: the edits apply to the prompt's forward and to every generated token's."""
    with torch.no_grad():
        with model.generate(max_new_tokens=max_new_tokens, **options) as tracer:
            with tracer.invoke(**inputs):
                # A bare edit would bind to the first forward only; each step of the loop binds to the next one.
                for _ in tracer.iter[:max_new_tokens]:
                    apply_edits(model, edits)
            # Its own invoke, so the ids are read even when every row stops early at EOS and the loop is cut short.
            with tracer.invoke():
                ids = tracer.result.save()
    return ids


def generate_ids(
    model,
    prompts: Sequence[str],
    *,
    edits: Edits = (),
    max_new_tokens: int = 20,
    batch_size: int = 16,
    remote: bool | str = False,
    **generate_options: Any,
) -> list[list[int]]:
    """The new token ids a (steered) model generates after each prompt, greedy unless told otherwise.

    Prompts are left-padded (generation continues every row from its last column) and encoded with default special
    tokens. `generate_options` go to transformers' `generate` (default `do_sample=False`).

    Returns:
        Per prompt, the generated ids (up to `max_new_tokens`, ending at EOS where the model stopped, no padding).
    """
    tokenizer = model.tokenizer
    options = {"do_sample": False, "pad_token_id": tokenizer.pad_token_id, **generate_options}
    batches = _prompt_batches(tokenizer, prompts, batch_size, side="left")
    edits = list(edits)
    work = [{"input_ids": batch.inputs["input_ids"], "attention_mask": batch.inputs["attention_mask"]}
            for batch in batches]
    with warnings.catch_warnings():
        # nnsight warns when a step loop asks for more steps than the run made: here that is an early EOS.
        warnings.filterwarnings("ignore", message=".*was never reached.*")
        if remote:
            _register_for_remote()
            with model.session(remote=remote):
                outputs = _save([])
                for inputs in work:
                    outputs.append(_generate_batch(model, inputs, edits, max_new_tokens, options))
        else:
            outputs = [_generate_batch(model, inputs, edits, max_new_tokens, options) for inputs in work]
    stop = _token_ids(options.get("eos_token_id"), tokenizer.eos_token_id,
                      getattr(getattr(getattr(model, "_module", None), "generation_config", None), "eos_token_id", None))
    generated: list[list[int]] = [[] for _ in prompts]
    for batch, ids in zip(batches, outputs):
        width = batch.inputs["input_ids"].shape[1]
        for row, prompt_index in enumerate(batch.rows):
            tokens = []
            for token in ids[row, width:].tolist():
                tokens.append(token)
                if token in stop:
                    break
            generated[prompt_index] = tokens
    return generated


def _token_ids(*values) -> set[int]:
    """The token ids among ints, lists of ints and Nones (eos_token_id comes in all three forms)."""
    ids = set()
    for value in values:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(token for token in value if isinstance(token, int))
    return ids


def generate(model, prompts: Sequence[str], *, edits: Edits = (), max_new_tokens: int = 20, **options) -> list[str]:
    """The text a (steered) model generates after each prompt (special tokens dropped); see `generate_ids`.

    Example:
        >>> generate(model, ["한국의 긴급 전화번호는"], edits=steering_edits((v_loc, 2, 4.0)), max_new_tokens=3)
    """
    ids = generate_ids(model, prompts, edits=edits, max_new_tokens=max_new_tokens, **options)
    return [model.tokenizer.decode(tokens, skip_special_tokens=True) for tokens in ids]


# ----------------------------------------------------------------------------------------------------------
# The plane under steering, and sweeps


def _score_passes(model, passes: Sequence[tuple[Sequence[Item], list]], *, batch_size: int, remote: bool | str,
                  progress: bool | None) -> list[list[list[float]]]:
    """Choice log-likelihoods for each (items, edits) pass; remote passes run as one session (one request)."""
    if remote:
        return choice_logprobs_passes(model, passes, batch_size=batch_size, remote=remote)
    return [choice_logprobs(model, pass_items, batch_size=batch_size, edits=pass_edits, progress=False)
            for pass_items, pass_edits in _progress(passes, progress, "steering")]


def _edits_by_language(edits: Edits | Mapping[str, Edits], languages: Sequence[str]) -> dict[str, list]:
    if isinstance(edits, Mapping):
        missing = [language for language in languages if language not in edits]
        if missing:
            raise ValueError(f"no edits for language(s) {missing}")
        return {language: list(edits[language]) for language in languages}
    return {language: list(edits) for language in languages}


class _Plan:
    """The passes that place a model on the plane under several configurations of edits.

    English items (the ceiling) are scored once, unsteered: the ceiling says what the model knows in English, and a
    target language's vector has no meaning on English prompts. Target items share one pass per configuration when
    every language gets the same edits, else one pass per language; identical configurations share their passes.
    """

    def __init__(self, items: Sequence[Item]):
        self.items = list(items)
        self.english = [index for index, item in enumerate(self.items) if item.language == ENGLISH]
        self.languages = _target_languages(self.items)
        self.of_language = {language: [index for index, item in enumerate(self.items) if item.language == language]
                            for language in self.languages}
        self.passes: list[tuple[list[Item], list]] = []
        self.pass_rows: list[list[int]] = []
        self.configurations: list[list[int]] = []  # per configuration, the passes that make it up
        self._known: dict[Any, list[int]] = {}
        if self.english:
            self._add_pass(self.english, [])

    def _add_pass(self, rows: list[int], edits: list) -> int:
        self.passes.append(([self.items[row] for row in rows], edits))
        self.pass_rows.append(rows)
        return len(self.passes) - 1

    def add(self, edits_by_language: dict[str, list], key: Any = None) -> None:
        """Add a configuration; `key` (hashable) identifies configurations that are the same edits."""
        if key is not None and key in self._known:
            self.configurations.append(self._known[key])
            return
        passes = [0] if self.english else []
        same = all(_same_edits(edits_by_language[language], edits_by_language[self.languages[0]])
                   for language in self.languages)
        if same and self.languages:
            rows = [row for language in self.languages for row in self.of_language[language]]
            passes.append(self._add_pass(rows, edits_by_language[self.languages[0]]))
        else:
            for language in self.languages:
                passes.append(self._add_pass(self.of_language[language], edits_by_language[language]))
        if key is not None:
            self._known[key] = passes
        self.configurations.append(passes)

    def points(self, model_name: str, scores: list[list[list[float]]]) -> list[list[PlanePoint]]:
        answers_of_pass = [predictions(pass_scores) for pass_scores in scores]
        results = []
        for passes in self.configurations:
            chosen = [0] * len(self.items)
            for index in passes:
                for row, answer in zip(self.pass_rows[index], answers_of_pass[index]):
                    chosen[row] = answer
            results.append(plane_from_answers(model_name, self.items, chosen))
        return results


def _same_edits(a: list, b: list) -> bool:
    return len(a) == len(b) and all(la == lb and (da is db or torch.equal(da, db)) for (la, da), (lb, db) in zip(a, b))


def steered_plane(
    model,
    items: Sequence[Item],
    edits: Edits | Mapping[str, Edits],
    *,
    model_name: str = "",
    batch_size: int = 64,
    remote: bool | str = False,
) -> list[PlanePoint]:
    """The plane under steering: target-language items scored with `edits`, the English ceiling unsteered.

    Args:
        model: An nnsight model.
        items: Items as from `cla_lib.evaluation.plane_items` (target languages plus English transfer items).
        edits: `(layer, delta)` pairs (see `steering_edits`) for every language, or `{language: edits}`.
        model_name: The `model` field of the points.

    Returns:
        One `PlanePoint` per target language, as `cla_lib.evaluation.plane` gives.
    """
    plan = _Plan(items)
    plan.add(_edits_by_language(edits, plan.languages))
    return plan.points(model_name, _score_passes(model, plan.passes, batch_size=batch_size, remote=remote,
                                                 progress=False))[0]


def _vector_for(vector: SteeringVector | Mapping[str, SteeringVector], language: str) -> SteeringVector:
    if isinstance(vector, SteeringVector):
        own = vector.source.get("language")
        if own not in (None, language):
            raise ValueError(f"a {own!r} steering vector on {language!r} items; pass {{language: vector}} to steer "
                             "each language with its own vector")
        return vector
    if language not in vector:
        raise ValueError(f"no steering vector for {language!r} (vectors for {sorted(vector)})")
    return vector[language]


def _check_held_out(items: Sequence[Item], vectors: Sequence[SteeringVector]) -> None:
    """Refuse to evaluate vectors on the split they were extracted on."""
    extracted = {vector.source.get("split") for vector in vectors} - {None}
    overlap = extracted & {item.split for item in items}
    if overlap:
        raise ValueError(f"the vectors were extracted on the {', '.join(sorted(overlap))!s} split, which the "
                         "evaluation items include; evaluate on validation (to choose) or test (to report)")


def _splits(items: Sequence[Item]) -> str:
    return ",".join(sorted({item.split for item in items}))


def _rows(points: list[PlanePoint], labels: dict, split: str) -> list[dict]:
    return [{**labels, "language": point.language, "split": split, "transfer": point.transfer,
             "localization": point.localization, "english_bias": point.english_bias, "n_transfer": point.n_transfer,
             "n_localization": point.n_localization, "english_transfer": point.english_transfer}
            for point in points]


def sweep(
    model,
    items: Sequence[Item],
    vector: SteeringVector | Mapping[str, SteeringVector],
    layers: Sequence[int],
    alphas: Sequence[float],
    *,
    model_name: str = "",
    batch_size: int = 64,
    remote: bool | str = False,
    progress: bool | None = None,
):
    """The plane under `alpha * vector` added after each layer, for every layer and alpha.

    Each (layer, alpha) is one batched pass over the items (the English ceiling once, unsteered; alpha 0 once for
    all layers). Locally a progress bar counts passes; remotely the whole sweep is one session.

    Args:
        model: An nnsight model.
        items: Evaluation items (validation to choose, test to report), of one or more target languages.
        vector: One vector (its `source["language"]` must match the items') or `{language: vector}`.
        layers: Decoder layers to steer at.
        alphas: Strengths (0 is the unsteered model).

    Returns:
        A pandas DataFrame, one row per (layer, alpha, language): layer, alpha, language, split, transfer,
        localization, english_bias, n_transfer, n_localization, english_transfer, kind.
    """
    import pandas

    plan = _Plan(items)
    vectors = {language: _vector_for(vector, language) for language in plan.languages}
    _check_held_out(items, list(vectors.values()))
    labels = []
    for layer in layers:
        for alpha in alphas:
            edits = {language: steering_edits((vectors[language], layer, alpha)) if alpha else []
                     for language in plan.languages}
            plan.add(edits, key=("unsteered",) if not alpha else (layer, float(alpha)))
            labels.append({"layer": int(layer), "alpha": float(alpha)})
    scores = _score_passes(model, plan.passes, batch_size=batch_size, remote=remote, progress=progress)
    kind = ",".join(dict.fromkeys(str(v.source.get("kind", "")) for v in vectors.values()))
    split = _splits(items)
    rows = [row for label, points in zip(labels, plan.points(model_name, scores))
            for row in _rows(points, {**label, "kind": kind}, split)]
    return pandas.DataFrame(rows)


def surgical_sweep(
    model,
    items: Sequence[Item],
    en: SteeringVector | Mapping[str, SteeringVector],
    loc: SteeringVector | Mapping[str, SteeringVector],
    *,
    en_layers: Sequence[int],
    en_alphas: Sequence[float],
    loc_layers: Sequence[int],
    loc_alphas: Sequence[float],
    model_name: str = "",
    batch_size: int = 64,
    remote: bool | str = False,
    progress: bool | None = None,
):
    """Surgical Steering candidates: EN at one layer and LOC at another at the same time, over the whole grid.

    Returns:
        A DataFrame, one row per (en_layer, en_alpha, loc_layer, loc_alpha, language), with the plane's columns.
    """
    import pandas

    plan = _Plan(items)
    en_vectors = {language: _vector_for(en, language) for language in plan.languages}
    loc_vectors = {language: _vector_for(loc, language) for language in plan.languages}
    _check_held_out(items, [*en_vectors.values(), *loc_vectors.values()])
    labels = []
    for en_layer in en_layers:
        for en_alpha in en_alphas:
            for loc_layer in loc_layers:
                for loc_alpha in loc_alphas:
                    edits = {}
                    for language in plan.languages:
                        terms = [(en_vectors[language], en_layer, en_alpha)] if en_alpha else []
                        terms += [(loc_vectors[language], loc_layer, loc_alpha)] if loc_alpha else []
                        edits[language] = steering_edits(*terms)
                    key = (en_layer if en_alpha else None, float(en_alpha), loc_layer if loc_alpha else None,
                           float(loc_alpha))
                    plan.add(edits, key=key)
                    labels.append({"en_layer": int(en_layer), "en_alpha": float(en_alpha),
                                   "loc_layer": int(loc_layer), "loc_alpha": float(loc_alpha)})
    scores = _score_passes(model, plan.passes, batch_size=batch_size, remote=remote, progress=progress)
    split = _splits(items)
    rows = [row for label, points in zip(labels, plan.points(model_name, scores))
            for row in _rows(points, label, split)]
    return pandas.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# Choosing layers on validation


class LayerChoice(NamedTuple):
    layer: int
    alpha: float
    score: float


class SurgicalChoice(NamedTuple):
    en_layer: int
    en_alpha: float
    loc_layer: int
    loc_alpha: float
    score: float


SELECTION_RULE = ("maximize the metric averaged over languages (each language weighs the same) on the validation "
                  "split; ties go to the smaller total |alpha|, then to the earlier layers")
SURGICAL_RULE = ("maximize transfer + localization averaged over languages on the validation split, over every "
                 "(en_layer, en_alpha, loc_layer, loc_alpha) candidate; ties go to the smaller |en_alpha| + "
                 "|loc_alpha|, then to the earlier layers")


def _check_selection_split(frame, allow_test: bool) -> None:
    splits = set(",".join(frame["split"].unique()).split(",")) if "split" in frame else set()
    if "test" in splits and not allow_test:
        raise ValueError("layers are chosen on the validation split and reported on test; this frame holds test "
                         "items (pass allow_test=True to choose on them anyway)")


def _choose(frame, keys: list[str], metric: Sequence[str], minimize: bool, alpha_columns: list[str]) -> tuple:
    means = frame.groupby(keys, sort=True)[list(metric)].mean().sum(axis=1)
    best = None
    for config, score in means.items():
        config = config if isinstance(config, tuple) else (config,)
        labelled = dict(zip(keys, config))
        if math.isnan(score):
            continue
        rank = ((score if minimize else -score), sum(abs(labelled[column]) for column in alpha_columns),
                tuple(labelled[key] for key in keys if key not in alpha_columns))
        if best is None or rank < best[0]:
            best = (rank, labelled, float(score))
    if best is None:
        raise ValueError("no candidate has a score for this metric")
    return best[1], best[2]


def best_layer(frame, metric: str | Sequence[str] = "transfer", *, minimize: bool = False,
               allow_test: bool = False) -> LayerChoice:
    """The (layer, alpha) of a `sweep` frame that is best on `metric` (see `SELECTION_RULE`).

    Args:
        frame: A `sweep` DataFrame, computed on validation items.
        metric: A column (`"transfer"`, `"localization"`, `"english_bias"`) or several, summed.
        minimize: Lower is better (e.g. for `"english_bias"`).
    """
    _check_selection_split(frame, allow_test)
    metric = [metric] if isinstance(metric, str) else list(metric)
    labelled, score = _choose(frame, ["layer", "alpha"], metric, minimize, ["alpha"])
    return LayerChoice(int(labelled["layer"]), float(labelled["alpha"]), score)


def select_surgical(frame, *, allow_test: bool = False) -> SurgicalChoice:
    """The Surgical Steering configuration of a `surgical_sweep` frame, by `SURGICAL_RULE`."""
    _check_selection_split(frame, allow_test)
    keys = ["en_layer", "en_alpha", "loc_layer", "loc_alpha"]
    labelled, score = _choose(frame, keys, ["transfer", "localization"], False, ["en_alpha", "loc_alpha"])
    return SurgicalChoice(int(labelled["en_layer"]), float(labelled["en_alpha"]), int(labelled["loc_layer"]),
                          float(labelled["loc_alpha"]), score)


# ----------------------------------------------------------------------------------------------------------
# The representation, layer by layer


def _derangement(count: int, seed: int) -> list[int]:
    """A seeded permutation with no fixed point (a shuffled pairing that pairs nothing with its own translation)."""
    if count < 2:
        raise ValueError("a shuffled baseline needs at least two pairs")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    # Shift the shuffled order by one: order[i] -> order[i + 1] is a single cycle, so no index maps to itself.
    permutation = [0] * count
    for position, index in enumerate(order):
        permutation[index] = order[(position + 1) % count]
    return permutation


def cross_lingual_similarity(
    model,
    items: Sequence[Item],
    *,
    seed: int = 0,
    batch_size: int = 64,
    remote: bool | str = False,
):
    """How alike the last-token residuals of parallel English and target-language prompts are, layer by layer.

    For each target language: the mean cosine similarity between each item's prompt and its English version
    (`meta["english_prompt"]`), against a baseline of shuffled pairs (each prompt with another item's English).

    Returns:
        A DataFrame, one row per (language, layer): similarity, shuffled, gap (similarity - shuffled), n.
    """
    import pandas

    pairs_of = {language: _en_pairs([item for item in items if item.language == language])
                for language in _target_languages(items)}
    prompts = list(dict.fromkeys(prompt for pairs in pairs_of.values() for pair in pairs for prompt in pair))
    row_of = {prompt: row for row, prompt in enumerate(prompts)}
    states = last_token_activations(model, prompts, batch_size=batch_size, remote=remote)
    rows = []
    for language, pairs in pairs_of.items():
        english = states[:, [row_of[pair[0]] for pair in pairs]]
        target = states[:, [row_of[pair[1]] for pair in pairs]]
        shuffled = english[:, _derangement(len(pairs), seed)]
        matched = torch.nn.functional.cosine_similarity(english.double(), target.double(), dim=-1).mean(dim=1)
        baseline = torch.nn.functional.cosine_similarity(shuffled.double(), target.double(), dim=-1).mean(dim=1)
        for layer in range(states.shape[0]):
            rows.append({"language": language, "layer": layer, "similarity": float(matched[layer]),
                         "shuffled": float(baseline[layer]), "gap": float(matched[layer] - baseline[layer]),
                         "n": len(pairs)})
    return pandas.DataFrame(rows)


def _stratified_folds(labels: list[int], folds: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    fold_of = [0] * len(labels)
    for label in sorted(set(labels)):
        members = [index for index, value in enumerate(labels) if value == label]
        rng.shuffle(members)
        for position, index in enumerate(members):
            fold_of[index] = position % folds
    return fold_of


def _centroid_predict(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, classes: int) -> torch.Tensor:
    centroids = torch.stack([train[train_labels == label].mean(dim=0) for label in range(classes)])
    return torch.cdist(test, centroids).argmin(dim=1)


def _logistic_predict(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, classes: int,
                      l2: float = 1e-2, steps: int = 100) -> torch.Tensor:
    weights = torch.zeros((train.shape[1], classes), dtype=train.dtype, requires_grad=True)
    bias = torch.zeros(classes, dtype=train.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def loss():
        optimizer.zero_grad()
        value = torch.nn.functional.cross_entropy(train @ weights + bias, train_labels) + l2 * weights.pow(2).sum()
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(loss)
    with torch.no_grad():
        return (test @ weights + bias).argmax(dim=1)


PROBES = {"centroid": _centroid_predict, "logistic": _logistic_predict}


def language_probe_accuracy(
    model,
    prompts_by_language: Mapping[str, Sequence[str]],
    *,
    probe: str = "logistic",
    folds: int = 5,
    seed: int = 0,
    batch_size: int = 64,
    remote: bool | str = False,
):
    """How well the query language can be read off the last-token residual, layer by layer (cross-validated).

    Features are standardized with the training fold's mean and spread; the probe is an L2-regularized
    multinomial logistic regression (`"logistic"`, LBFGS) or a nearest-centroid classifier (`"centroid"`), in
    torch. Folds are stratified by language and seeded.

    Returns:
        A DataFrame, one row per layer: layer, accuracy, chance (the largest language's share), n, probe.
    """
    import pandas

    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; probes: {', '.join(PROBES)}")
    languages = list(prompts_by_language)
    if len(languages) < 2:
        raise ValueError("a language probe needs prompts in at least two languages")
    prompts = [prompt for language in languages for prompt in prompts_by_language[language]]
    labels = [index for index, language in enumerate(languages) for _ in prompts_by_language[language]]
    smallest = min(len(prompts_by_language[language]) for language in languages)
    if smallest < folds:
        raise ValueError(f"each language needs at least {folds} prompts for {folds}-fold cross-validation")
    states = last_token_activations(model, prompts, batch_size=batch_size, remote=remote).double()
    label_tensor = torch.tensor(labels)
    fold_of = torch.tensor(_stratified_folds(labels, folds, seed))
    chance = max(labels.count(index) for index in range(len(languages))) / len(labels)
    rows = []
    for layer in range(states.shape[0]):
        correct = 0
        for fold in range(folds):
            train, test = fold_of != fold, fold_of == fold
            mean = states[layer, train].mean(dim=0)
            spread = states[layer, train].std(dim=0).clamp(min=1e-6)
            predicted = PROBES[probe]((states[layer, train] - mean) / spread, label_tensor[train],
                                      (states[layer, test] - mean) / spread, len(languages))
            correct += int((predicted == label_tensor[test]).sum())
        rows.append({"layer": layer, "accuracy": correct / len(labels), "chance": chance, "n": len(labels),
                     "probe": probe})
    return pandas.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# Files


def save_vectors(vectors: Mapping[str, SteeringVector], path: str | Path) -> None:
    """Write vectors as safetensors, atomically: key `<name>.<layer>` (e.g. `en.ko.3`), float32, sources as metadata."""
    from safetensors.torch import save_file

    tensors = {f"{name}.{layer}": vector[layer].detach().to("cpu", torch.float32).contiguous()
               for name, vector in vectors.items() for layer in vector.layers}
    metadata = {"sources": json.dumps({name: vector.source for name, vector in vectors.items()}, ensure_ascii=False)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_vectors(path: str | Path) -> dict[str, SteeringVector]:
    """Read a `save_vectors` file back: `{"en.ko": SteeringVector, ...}`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        sources = json.loads((handle.metadata() or {}).get("sources", "{}"))
        grouped: dict[str, dict[int, torch.Tensor]] = {}
        for key in handle.keys():
            name, _, layer = key.rpartition(".")
            if not name or not layer.lstrip("-").isdigit():
                raise ValueError(f"{path}: key {key!r} is not <kind>.<language>.<layer>")
            grouped.setdefault(name, {})[int(layer)] = handle.get_tensor(key)
    return {name: SteeringVector(layers, sources.get(name, {})) for name, layers in grouped.items()}


# ----------------------------------------------------------------------------------------------------------
# For the chapters: per-layer choices, cosines, several configurations in one request, the language of the answer


# Which metric each kind of vector is meant to raise: the one its strength is chosen on, layer by layer.
TARGET_METRIC = {"en": "transfer", "loc": "localization", "loclang": "localization"}


def best_alpha_per_layer(frame, metric: str, *, include_unsteered: bool = False):
    """For each layer of a `sweep` frame, the rows of the strength that is best on `metric` at that layer.

    The best strength maximizes the metric averaged over languages; ties go to the smaller |alpha| (the rule of
    `best_layer`, applied at each layer). Alpha 0 (the unsteered model, the same at every layer) competes only
    with `include_unsteered`.

    Returns:
        The frame's rows of the chosen (layer, alpha) pairs, every language, sorted by layer.
    """
    candidates = frame if include_unsteered else frame[frame["alpha"] != 0]
    means = candidates.groupby(["layer", "alpha"])[metric].mean().reset_index()
    means = means.assign(magnitude=means["alpha"].abs()).sort_values(
        ["layer", metric, "magnitude"], ascending=[True, False, True])
    chosen = means.drop_duplicates("layer")[["layer", "alpha"]]
    return candidates.merge(chosen, on=["layer", "alpha"]).sort_values(["layer", "language"]).reset_index(drop=True)


def ranked_layers(frame, metric: str, count: int | None = None) -> list[int]:
    """The layers of a `sweep` frame, best first by `metric` at each layer's best strength (earlier first on ties)."""
    means = best_alpha_per_layer(frame, metric).groupby("layer")[metric].mean().reset_index()
    ranked = [int(layer) for layer in means.sort_values([metric, "layer"], ascending=[False, True])["layer"]]
    return ranked if count is None else ranked[:count]


def vector_cosines(vectors: Mapping[str, SteeringVector], pairs: Sequence[tuple[str, str]],
                   languages: Sequence[str]):
    """The cosine of two kinds of vector of the same language, layer by layer.

    Args:
        vectors: `{"<kind>.<language>": SteeringVector}`, as `extract_vectors` returns.
        pairs: (kind, kind) pairs, e.g. `[("en", "loc")]`.
        languages: The target languages.

    Returns:
        A DataFrame, one row per (pair, language, layer): pair (``"en·loc"``), language, layer, cosine.
    """
    import pandas

    rows = []
    for first, second in pairs:
        for language in languages:
            cosines = vectors[f"{first}.{language}"].cosine(vectors[f"{second}.{language}"])
            rows += [{"pair": f"{first}·{second}", "language": language, "layer": layer, "cosine": cosine}
                     for layer, cosine in cosines.items()]
    return pandas.DataFrame(rows)


def steered_planes(
    model,
    items: Sequence[Item],
    configurations: Mapping[str, Edits | Mapping[str, Edits]],
    *,
    model_name: str = "",
    batch_size: int = 64,
    remote: bool | str = False,
) -> dict[str, list[PlanePoint]]:
    """The plane under several named configurations of edits, scored together (remotely: one request).

    Args:
        configurations: `{name: edits}`, each as `steered_plane` takes them (`[]` for the unsteered model).

    Returns:
        `{name: [PlanePoint per target language]}`, in the order of `configurations`.

    Example:
        >>> steered_planes(model, test, {"unsteered": [], "EN": {"ko": steering_edits((v_en, 3, 2.0))}})
    """
    plan = _Plan(items)
    for edits in configurations.values():
        plan.add(_edits_by_language(edits, plan.languages))
    scores = _score_passes(model, plan.passes, batch_size=batch_size, remote=remote, progress=False)
    return dict(zip(configurations, plan.points(model_name, scores)))


def forward_count(items: Sequence[Item], *, per_language: int = 0, shared: int = 0, batch_size: int = 64) -> int:
    """How many batched forwards scoring `items` under some configurations runs (what one remote request carries).

    English items (the ceiling) are scored once; a configuration whose edits are the same for every language (the
    unsteered model) is one pass over all target items; one with each language's own vector is one pass per language.
    Each pass runs ceil(sequences / batch_size) forwards, one sequence per choice.

    Args:
        per_language: Configurations steered with each language's own vector (a sweep's (layer, alpha) pairs).
        shared: Configurations with the same edits for every language.
    """
    def forwards(selected: Sequence[Item]) -> int:
        return math.ceil(sum(len(item.choices) for item in selected) / batch_size)

    english = [item for item in items if item.language == ENGLISH]
    targets = [item for item in items if item.language != ENGLISH]
    languages = _target_languages(items)
    count = forwards(english) if english else 0
    count += shared * forwards(targets)
    count += per_language * sum(forwards([item for item in targets if item.language == language])
                                for language in languages)
    return count


def probe_prompts(items: Sequence[Item]) -> dict[str, list[str]]:
    """Prompts per language for `language_probe_accuracy`: each target language's prompts and, as ``en``, the
    English versions they carry (`meta["english_prompt"]`) and the English items' own prompts; no duplicates."""
    prompts: dict[str, list[str]] = {ENGLISH: []}
    for item in items:
        if item.language == ENGLISH:
            prompts[ENGLISH].append(item.prompt)
            continue
        prompts.setdefault(item.language, []).append(item.prompt)
        if item.meta.get("english_prompt"):
            prompts[ENGLISH].append(item.meta["english_prompt"])
    return {language: list(dict.fromkeys(texts)) for language, texts in prompts.items() if texts}


def with_english_choices(items: Sequence[Item]) -> list[Item]:
    """Target-language transfer items whose candidates are their own plus the English item's (same question).

    The English item is the one among `items` whose prompt is the target item's `meta["english_prompt"]`; an
    English candidate identical to a target-language one is not repeated. Items whose English candidates add
    nothing (letters, shared tokens) are left out. Each returned item keeps its gold (the answer in its language)
    and records in meta ``own_choices`` (how many of its own come first), ``english_gold`` (the English answer's
    index) and ``english_only`` (the indices of candidates that exist only in English).

    What it is for: steering a question towards English can make a model retrieve the answer but say it in
    English. Scored on these items, "the right concept in either language" and "an English answer" become visible
    (see `answer_language_sweep`).
    """
    from dataclasses import replace

    english = {item.prompt: item for item in items if item.language == ENGLISH and item.task == "transfer"}
    result = []
    for item in items:
        if item.language == ENGLISH or item.task != "transfer":
            continue
        counterpart = english.get(item.meta.get("english_prompt", ""))
        if counterpart is None:
            continue
        choices = list(item.choices)
        english_index = {}
        for index, choice in enumerate(counterpart.choices):
            if choice not in choices:
                choices.append(choice)
            english_index[index] = choices.index(choice)
        english_only = sorted(set(english_index.values()) - set(range(len(item.choices))))
        if not english_only:
            continue
        result.append(replace(item, choices=tuple(choices), id=item.id + "/with-english",
                              meta={**item.meta, "own_choices": len(item.choices),
                                    "english_gold": english_index[counterpart.gold], "english_only": english_only}))
    return result


def _answer_language_rows(items: Sequence[Item], scores: Sequence[Sequence[float]], labels: dict) -> list[dict]:
    by_language: dict[str, list[tuple[bool, bool, bool]]] = {}
    for item, item_scores in zip(items, scores):
        own = item.meta["own_choices"]
        in_language = max(range(own), key=item_scores.__getitem__) == item.gold
        chosen = max(range(len(item_scores)), key=item_scores.__getitem__)
        concept = chosen in (item.gold, item.meta["english_gold"])
        by_language.setdefault(item.language, []).append((in_language, concept, chosen in item.meta["english_only"]))
    return [{**labels, "language": language, "transfer": sum(row[0] for row in rows) / len(rows),
             "concept": sum(row[1] for row in rows) / len(rows),
             "english_answer": sum(row[2] for row in rows) / len(rows), "n": len(rows)}
            for language, rows in by_language.items()]


def answer_language_sweep(
    model,
    items: Sequence[Item],
    vector: SteeringVector | Mapping[str, SteeringVector],
    layers: Sequence[int],
    alphas: Sequence[float],
    *,
    batch_size: int = 64,
    remote: bool | str = False,
    progress: bool | None = None,
):
    """Does steering make the model answer transfer questions in their language, or retrieve the fact in English?

    Scores `with_english_choices(items)` (each question's candidates in its language and in English) under
    `alpha * vector` after each layer, and reads three rates off the highest-scoring candidate:

    - ``transfer``: among the candidates in the question's language only, the right one wins (the plane's transfer);
    - ``concept``: among all candidates, the right answer wins in either language;
    - ``english_answer``: among all candidates, one that exists only in English wins.

    Returns:
        A DataFrame, one row per (layer, alpha, language): layer, alpha, language, transfer, concept,
        english_answer, n. Alpha 0 (unsteered) is scored once and repeated for every layer.

    Raises:
        ValueError: No item has English candidates that differ from its own (e.g. letter answers).
    """
    import pandas

    bilingual = with_english_choices(items)
    if not bilingual:
        raise ValueError("no transfer item has English candidates different from its own (answers are letters or "
                         "shared tokens), so the language of an answer cannot be told apart")
    languages = _target_languages(bilingual)
    of_language = {language: [item for item in bilingual if item.language == language] for language in languages}
    vectors = {language: _vector_for(vector, language) for language in languages}
    _check_held_out(bilingual, list(vectors.values()))
    passes, labels = [], []
    if any(not alpha for alpha in alphas):
        passes.append((bilingual, []))
        labels.append(("unsteered", None))
    for layer in layers:
        for alpha in alphas:
            if not alpha:
                continue
            for language in languages:
                passes.append((of_language[language], steering_edits((vectors[language], layer, alpha))))
                labels.append(("steered", {"layer": int(layer), "alpha": float(alpha)}))
    scores = _score_passes(model, passes, batch_size=batch_size, remote=remote, progress=progress)
    rows = []
    for (what, label), (pass_items, _), pass_scores in zip(labels, passes, scores):
        if what == "unsteered":
            for layer in layers:
                rows += _answer_language_rows(pass_items, pass_scores, {"layer": int(layer), "alpha": 0.0})
        else:
            rows += _answer_language_rows(pass_items, pass_scores, label)
    # Rows come language by language within each (layer, alpha); a stable sort keeps that order.
    return pandas.DataFrame(rows).sort_values(["layer", "alpha"], kind="stable").reset_index(drop=True)
