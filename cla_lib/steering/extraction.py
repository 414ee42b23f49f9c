"""The kinds of steering vector (`VECTOR_KINDS`) and their extraction: mean last-token differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from cla_lib.core.items import Item
from cla_lib.core.languages import ENGLISH
from cla_lib.steering.activations import last_token_activations
from cla_lib.steering.controls import flipped
from cla_lib.steering.vector import SteeringVector
from cla_lib.model.remote import Remote


def _require(item: Item, key: str, kind: str) -> str:
    value = item.meta.get(key)
    if not value:
        raise ValueError(f"item {item.id!r} has no meta[{key!r}], which a {kind!r} vector needs (the organism's items "
                         f"have it; real-data items must carry the parallel prompt)")
    return value


def en_pairs(items: Sequence[Item]) -> list[tuple[str, str]]:
    return [(_require(item, "english_prompt", "en"), item.prompt) for item in items]


def _loc_pairs(items: Sequence[Item]) -> list[tuple[str, str]]:
    return [(_require(item, "explicit_prompt", "loc"), item.prompt) for item in items if item.task == "localization"]


def _loc_shuffled_pairs(items: Sequence[Item]) -> list[tuple[str, str]]:
    culture = [item for item in items if item.task == "localization"]
    return [pair[::-1] if flipped(item.id) else pair for item, pair in zip(culture, _loc_pairs(culture))]


def _loclang_pairs(items: Sequence[Item]) -> list[tuple[str, str]]:
    return [(item.prompt, _require(item, "english_prompt", "loclang"))
            for item in items if item.task == "localization"]


class VectorKind(NamedTuple):
    """How one kind of vector is made: (plus, minus) prompt pairs from a language's items; vector = mean difference.
    A `control` kind is a negative control (`cla_lib.steering.controls`), extracted only when asked for by name."""

    name: str
    definition: str
    pairs: Callable[[Sequence[Item]], list[tuple[str, str]]]
    control: bool = False


VECTOR_KINDS: dict[str, VectorKind] = {kind.name: kind for kind in (
    VectorKind("en", "English prompt minus the same prompt in the target language (transfer and culture items)",
               en_pairs),
    VectorKind("loc", "culture question with the explicit own-country cue ('In Korea, ...') minus without it "
                      "(Veselovsky et al. 2025)", _loc_pairs),
    VectorKind("loclang", "culture question in the target language minus its English version (-EN on culture items)",
               _loclang_pairs),
    VectorKind("loc_shuffled", "negative control: LOC from its own pairs with the cue on a random side of each pair "
                               "(a sign-flip permutation: the cue's direction cancels, the prompts' noise stays)",
               _loc_shuffled_pairs, control=True),
)}
# What `extract_vectors` and `cla vectors` extract unless told otherwise: the vectors, not their controls.
DEFAULT_KINDS = tuple(name for name, kind in VECTOR_KINDS.items() if not kind.control)


def _model_name(lm) -> str:
    module = getattr(lm, "_module", lm)
    return str(getattr(module, "name_or_path", "") or getattr(getattr(module, "config", None), "_name_or_path", ""))


def target_languages(items: Sequence[Item]) -> list[str]:
    return [language for language in dict.fromkeys(item.language for item in items) if language != ENGLISH]


def extract_vectors(
    lm,
    items: Sequence[Item],
    *,
    kinds: Sequence[str] = DEFAULT_KINDS,
    languages: Sequence[str] | None = None,
    split: str | None = "extract",
    batch_size: int = 64,
    remote: Remote = False,
    model_name: str | None = None,
    progress: bool | None = None,
) -> dict[str, SteeringVector]:
    """Steering vectors of several kinds and languages, at every layer, from one batched read of all their prompts.

    Each distinct prompt is read once (`last_token_activations`), however many vectors use it.

    Args:
        lm: An nnsight model.
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
    languages = list(languages) if languages is not None else target_languages(chosen)
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
    states = last_token_activations(lm, prompts, batch_size=batch_size, remote=remote, progress=progress)
    model_name = model_name if model_name is not None else _model_name(lm)
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

