"""Representation analysis, layer by layer: how alike parallel prompts are, how readable the language is,
how two kinds of vector relate.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence

import torch

import pandas

from cla_lib.core.items import Item, question_of
from cla_lib.core.languages import ENGLISH
from cla_lib.steering.activations import last_token_activations
from cla_lib.steering.extraction import en_pairs, target_languages, extract_vectors
from cla_lib.steering.vector import SteeringVector
from cla_lib.model.remote import Remote


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
    lm,
    items: Sequence[Item],
    *,
    seed: int = 0,
    batch_size: int = 64,
    remote: Remote = False,
):
    """How alike the last-token residuals of parallel English and target-language prompts are, layer by layer.

    For each target language: the mean cosine similarity between each item's prompt and its English version
    (`meta["english_prompt"]`), against a baseline of shuffled pairs (each prompt with another item's English).

    Returns:
        A DataFrame, one row per (language, layer): similarity, shuffled, gap (similarity - shuffled), n.
    """
    pairs_of = {language: en_pairs([item for item in items if item.language == language])
                for language in target_languages(items)}
    prompts = list(dict.fromkeys(prompt for pairs in pairs_of.values() for pair in pairs for prompt in pair))
    row_of = {prompt: row for row, prompt in enumerate(prompts)}
    states = last_token_activations(lm, prompts, batch_size=batch_size, remote=remote)
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
    lm,
    prompts_by_language: Mapping[str, Sequence[str]],
    *,
    probe: str = "logistic",
    folds: int = 5,
    seed: int = 0,
    batch_size: int = 64,
    remote: Remote = False,
):
    """How well the query language can be read off the last-token residual, layer by layer (cross-validated).

    Features are standardized with the training fold's mean and spread; the probe is an L2-regularized
    multinomial logistic regression (`"logistic"`, LBFGS) or a nearest-centroid classifier (`"centroid"`), in
    torch. Folds are stratified by language and seeded.

    Returns:
        A DataFrame, one row per layer: layer, accuracy, chance (the largest language's share), n, probe.
    """
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
    states = last_token_activations(lm, prompts, batch_size=batch_size, remote=remote).double()
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
    rows = []
    for first, second in pairs:
        for language in languages:
            cosines = vectors[f"{first}.{language}"].cosine(vectors[f"{second}.{language}"])
            rows += [{"pair": f"{first}·{second}", "language": language, "layer": layer, "cosine": cosine}
                     for layer, cosine in cosines.items()]
    return pandas.DataFrame(rows)


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


def mean_abs_cosine(cosines, first: str, second: str, layer: int) -> float:
    """The mean |cosine| over languages of two kinds of vector at one layer, from a `vector_cosines` frame."""
    rows = cosines[(cosines.pair == f"{first}·{second}") & (cosines.layer == layer)]
    return float(rows.cosine.abs().mean())


def cross_layer_cosine(vectors: Mapping[str, SteeringVector], languages: Sequence[str], en_layer: int,
                       loc_layer: int) -> float:
    """The mean |cosine| over languages between the EN vector at its layer and the LOC vector at its own: how much
    the two steer the same direction when each is applied where it works best."""
    values = [torch.nn.functional.cosine_similarity(vectors[f"en.{code}"][en_layer].double(),
                                                    vectors[f"loc.{code}"][loc_layer].double(), dim=0)
              for code in languages]
    return float(torch.stack(values).abs().mean())


@functools.lru_cache(maxsize=256)  # seeded, so a pure function; chapter 3 asks for the same bound at every layer
def random_cosine_bound(dimension: int, *, averaged: int = 1, absolute: bool = True, level: float = 0.95,
                        draws: int = 20000, seed: int = 0) -> float:
    """What unrelated directions reach by chance: the `level` quantile of the mean over `averaged` independent pairs
    of random directions in `dimension` of their cosine (|cosine| with `absolute`). A small cosine between two
    steering vectors is only evidence of perpendicularity when it is compared with this; in 128 dimensions one
    random pair's |cosine| stays below about 0.17."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.randn(draws, averaged, dimension, generator=generator, dtype=torch.float64)
    second = torch.randn(draws, averaged, dimension, generator=generator, dtype=torch.float64)
    cosines = torch.nn.functional.cosine_similarity(first, second, dim=-1)
    statistic = (cosines.abs() if absolute else cosines).mean(dim=1)
    return float(torch.quantile(statistic, level))


def split_halves(items: Sequence[Item], *, seed: int, split: str | None = "extract") -> tuple[list[Item], list[Item]]:
    """The items of `split` in two halves by question (a culture question with all its languages, a creature with
    all its relations), drawn with `seed`: two independent samples of the same extraction."""
    chosen = [item for item in items if split is None or item.split == split]
    questions = sorted(dict.fromkeys(question_of(item.id) for item in chosen))
    random.Random(seed).shuffle(questions)
    first = set(questions[:len(questions) // 2])
    return ([item for item in chosen if question_of(item.id) in first],
            [item for item in chosen if question_of(item.id) not in first])


def vector_reliability(lm, items: Sequence[Item], languages: Sequence[str], *, kinds: Sequence[str] = ("en", "loc"),
                       seed: int, split: str | None = "extract", batch_size: int = 64, remote: Remote = False):
    """Each vector's split-half reliability, layer by layer (`half_agreement`), from the two halves of the extraction
    questions that `split_halves` draws with `seed`."""
    halves = [extract_vectors(lm, half, kinds=kinds, languages=languages, split=None, batch_size=batch_size,
                              remote=remote, progress=False) for half in split_halves(items, seed=seed, split=split)]
    return half_agreement(*halves, kinds=kinds, languages=languages)


def half_agreement(first: Mapping[str, SteeringVector], second: Mapping[str, SteeringVector], *,
                   kinds: Sequence[str], languages: Sequence[str]):
    """The cosine between each vector from one half of its prompts and from the other, stepped up to the full set by
    the Spearman-Brown formula (reliability = 2r / (1 + r)): near 1 the vector is a stable direction, near 0 mostly
    sampling noise.

    Returns:
        A DataFrame, one row per (kind, language, layer): kind, language, layer, split_half, reliability.
    """
    rows = []
    for kind in kinds:
        for language in languages:
            name = f"{kind}.{language}"
            for layer, cosine in first[name].cosine(second[name]).items():
                rows.append({"kind": kind, "language": language, "layer": layer, "split_half": cosine,
                             "reliability": 2 * cosine / (1 + cosine) if cosine > -1 else float("nan")})
    return pandas.DataFrame(rows)
