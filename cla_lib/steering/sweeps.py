"""The plane under steering: one configuration, several, or a sweep over layers and strengths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas
from dataclasses import replace

from cla_lib.plane.evaluation import PlanePoint, answer_frame, plane_from_answers
from cla_lib.core.items import Item
from cla_lib.core.languages import ENGLISH
from cla_lib.scoring import choice_logprobs_passes, forwards_of, predictions
from cla_lib.steering.activations import PROGRESS_MIN_STEPS
from cla_lib.steering.apply import Edits, steering_edits
from cla_lib.steering.extraction import target_languages
from cla_lib.steering.vector import SteeringVector
from cla_lib.model.remote import Remote


def _score_passes(lm, passes: Sequence[tuple[Sequence[Item], list]], *, batch_size: int, remote: Remote,
                  progress: bool | None) -> list[list[list[float]]]:
    """Choice log-likelihoods for each (items, edits) pass; remote passes run as one session (one request)."""
    if progress is None:
        progress = len(passes) >= PROGRESS_MIN_STEPS
    return choice_logprobs_passes(lm, passes, batch_size=batch_size, remote=remote, progress=bool(progress))


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
    target language's vector has no meaning on English prompts. Target items get one pass per language and
    configuration, each over the same `Item` objects, so that the scorer shares the unsteered lower layers between
    a language's configurations (`cla_lib.scoring.shared`); identical configurations share their passes.
    """

    def __init__(self, items: Sequence[Item]):
        self.items = list(items)
        self.english = [index for index, item in enumerate(self.items) if item.language == ENGLISH]
        self.languages = target_languages(self.items)
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
        for language in self.languages:
            passes.append(self._add_pass(self.of_language[language], edits_by_language[language]))
        if key is not None:
            self._known[key] = passes
        self.configurations.append(passes)

    def answers(self, scores: list[list[list[float]]]) -> list[list[int]]:
        """Per configuration, the chosen candidate of every item (in `items` order)."""
        answers_of_pass = [predictions(pass_scores) for pass_scores in scores]
        results = []
        for passes in self.configurations:
            chosen = [0] * len(self.items)
            for index in passes:
                for row, answer in zip(self.pass_rows[index], answers_of_pass[index]):
                    chosen[row] = answer
            results.append(chosen)
        return results

    def points(self, model_name: str, scores: list[list[list[float]]]) -> list[list[PlanePoint]]:
        return [plane_from_answers(model_name, self.items, chosen) for chosen in self.answers(scores)]

    def answered(self, scores: list[list[list[float]]], labels: list[dict]):
        """One row per (configuration, item): `cla_lib.plane.evaluation.answer_frame` plus each configuration's labels."""
        return pandas.concat([answer_frame(self.items, chosen).assign(**label)
                              for label, chosen in zip(labels, self.answers(scores))], ignore_index=True)


def steered_plane(
    lm,
    items: Sequence[Item],
    edits: Edits | Mapping[str, Edits],
    *,
    model_name: str = "",
    batch_size: int = 64,
    remote: Remote = False,
) -> list[PlanePoint]:
    """The plane under steering: target-language items scored with `edits`, the English ceiling unsteered.

    Args:
        lm: An nnsight model.
        items: Items as from `cla_lib.plane.evaluation.plane_items` (target languages plus English transfer items).
        edits: `(layer, delta)` pairs (see `steering_edits`) for every language, or `{language: edits}`.
        model_name: The `model` field of the points.

    Returns:
        One `PlanePoint` per target language, as `cla_lib.plane.evaluation.plane` gives.
    """
    plan = _Plan(items)
    plan.add(_edits_by_language(edits, plan.languages))
    return plan.points(model_name, _score_passes(lm, plan.passes, batch_size=batch_size, remote=remote,
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
    lm,
    items: Sequence[Item],
    vector: SteeringVector | Mapping[str, SteeringVector],
    layers: Sequence[int],
    alphas: Sequence[float],
    *,
    model_name: str = "",
    batch_size: int = 64,
    remote: Remote = False,
    progress: bool | None = None,
    answered: bool = False,
):
    """The plane under `alpha * vector` added after each layer, for every layer and alpha.

    Each (layer, alpha) is one batched pass over the items (the English ceiling once, unsteered; alpha 0 once for
    all layers). Locally a progress bar counts passes; remotely the whole sweep is one session.

    Args:
        lm: An nnsight model.
        items: Evaluation items (validation to choose, test to report), of one or more target languages.
        vector: One vector (its `source["language"]` must match the items') or `{language: vector}`.
        layers: Decoder layers to steer at.
        alphas: Strengths (0 is the unsteered model).
        answered: Also return every item's answer per (layer, alpha), for intervals over questions.

    Returns:
        A pandas DataFrame, one row per (layer, alpha, language): layer, alpha, language, split, transfer,
        localization, english_bias, n_transfer, n_localization, english_transfer, kind. With `answered`, the pair
        (that frame, one row per (layer, alpha, item) with `cla_lib.plane.evaluation.answer_frame`'s columns).
    """
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
    scores = _score_passes(lm, plan.passes, batch_size=batch_size, remote=remote, progress=progress)
    kind = ",".join(dict.fromkeys(str(v.source.get("kind", "")) for v in vectors.values()))
    split = _splits(items)
    rows = [row for label, points in zip(labels, plan.points(model_name, scores))
            for row in _rows(points, {**label, "kind": kind}, split)]
    if answered:
        return pandas.DataFrame(rows), plan.answered(scores, [{**label, "kind": kind} for label in labels])
    return pandas.DataFrame(rows)


def surgical_sweep(
    lm,
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
    remote: Remote = False,
    progress: bool | None = None,
):
    """Surgical Steering candidates: EN at one layer and LOC at another at the same time, over the whole grid.

    Returns:
        A DataFrame, one row per (en_layer, en_alpha, loc_layer, loc_alpha, language), with the plane's columns.
    """
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
    scores = _score_passes(lm, plan.passes, batch_size=batch_size, remote=remote, progress=progress)
    split = _splits(items)
    rows = [row for label, points in zip(labels, plan.points(model_name, scores))
            for row in _rows(points, label, split)]
    return pandas.DataFrame(rows)


def steered_planes(
    lm,
    items: Sequence[Item],
    configurations: Mapping[str, Edits | Mapping[str, Edits]],
    *,
    model_name: str = "",
    batch_size: int = 64,
    remote: Remote = False,
    answered: bool = False,
):
    """The plane under several named configurations of edits, scored together (remotely: one request).

    Args:
        configurations: `{name: edits}`, each as `steered_plane` takes them (`[]` for the unsteered model).
        answered: Also return every item's answer per configuration (a ``configuration`` column), for paired
            intervals.

    Returns:
        `{name: [PlanePoint per target language]}`, in the order of `configurations`; with `answered`, the pair
        (that dict, one row per (configuration, item)).

    Example:
        >>> steered_planes(model, test, {"unsteered": [], "EN": {"ko": steering_edits((v_en, 3, 2.0))}})
    """
    plan = _Plan(items)
    for edits in configurations.values():
        plan.add(_edits_by_language(edits, plan.languages))
    scores = _score_passes(lm, plan.passes, batch_size=batch_size, remote=remote, progress=False)
    planes = dict(zip(configurations, plan.points(model_name, scores)))
    if answered:
        return planes, plan.answered(scores, [{"configuration": name} for name in configurations])
    return planes


def forward_count(lm, items: Sequence[Item], *, steered: int = 0, unsteered: bool = True,
                  batch_size: int = 64) -> int:
    """How many forwards scoring `items` under some configurations runs (what one remote request carries).

    Counts the passes of the same plan that `sweep`, `surgical_sweep` and `steered_planes` build (the English
    ceiling once, one pass per language and configuration) as `cla_lib.scoring.forwards_of` counts them: a prompt
    forward per prompt batch, one per chunk of multi-token choices, and the unsteered run shared by a language's
    configurations.

    Args:
        lm: The nnsight model (its tokenizer and config decide batches and chunks).
        steered: Configurations with a steering edit (a sweep's (layer, alpha) pairs).
        unsteered: Whether the unsteered model is one of the configurations.
    """
    plan = _Plan(items)
    marker = [(0, None)]  # any nonempty edits: counting never runs them
    for number in range(steered):
        plan.add({language: marker for language in plan.languages}, key=("steered", number))
    if unsteered:
        plan.add({language: [] for language in plan.languages}, key=("unsteered",))
    return forwards_of(lm, plan.passes, batch_size=batch_size)


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
    lm,
    items: Sequence[Item],
    vector: SteeringVector | Mapping[str, SteeringVector],
    layers: Sequence[int],
    alphas: Sequence[float],
    *,
    batch_size: int = 64,
    remote: Remote = False,
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
    bilingual = with_english_choices(items)
    if not bilingual:
        raise ValueError("no transfer item has English candidates different from its own (answers are letters or "
                         "shared tokens), so the language of an answer cannot be told apart")
    languages = target_languages(bilingual)
    of_language = {language: [item for item in bilingual if item.language == language] for language in languages}
    vectors = {language: _vector_for(vector, language) for language in languages}
    _check_held_out(bilingual, list(vectors.values()))
    # Per language: the unsteered pass and every steered one over the same items, so they share lower layers.
    passes, labels = [], []
    for language in languages:
        if any(not alpha for alpha in alphas):
            passes.append((of_language[language], []))
            labels.append(("unsteered", None))
        for layer in layers:
            for alpha in alphas:
                if alpha:
                    passes.append((of_language[language], steering_edits((vectors[language], layer, alpha))))
                    labels.append(("steered", {"layer": int(layer), "alpha": float(alpha)}))
    scores = _score_passes(lm, passes, batch_size=batch_size, remote=remote, progress=progress)
    rows = []
    for (what, label), (pass_items, _), pass_scores in zip(labels, passes, scores):
        if what == "unsteered":
            for layer in layers:
                rows += _answer_language_rows(pass_items, pass_scores, {"layer": int(layer), "alpha": 0.0})
        else:
            rows += _answer_language_rows(pass_items, pass_scores, label)
    # Rows come language by language within each (layer, alpha); a stable sort keeps that order.
    return pandas.DataFrame(rows).sort_values(["layer", "alpha"], kind="stable").reset_index(drop=True)
