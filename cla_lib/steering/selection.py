"""Choosing layers and strengths on the validation split, by stated rules."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from cla_lib.claims.intervals import Interval
from cla_lib.core.items import question_of


# Surgical Steering's candidate layers per vector: the best few of each single-vector sweep (chapter 04 crosses them;
# `cla_lib.book.costs` counts the grid they make).
SURGICAL_CANDIDATE_LAYERS = 2


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
                  "split; ties go to the smaller total |alpha|, then to one of the tied layers drawn at random "
                  "(seeded by the tied set), so that a flat curve favours neither early nor late layers")


SURGICAL_RULE = ("maximize transfer + localization averaged over languages on the validation split, over every "
                 "(en_layer, en_alpha, loc_layer, loc_alpha) candidate; ties go to the smaller |en_alpha| + "
                 "|loc_alpha|, then to one of the tied candidates drawn at random (seeded by the tied set)")


def _check_selection_split(frame, allow_test: bool) -> None:
    splits = set(",".join(frame["split"].unique()).split(",")) if "split" in frame else set()
    if "test" in splits and not allow_test:
        raise ValueError("layers are chosen on the validation split and reported on test; this frame holds test "
                         "items (pass allow_test=True to choose on them anyway)")


def break_tie(tied: list):
    """One of `tied` (configurations as tuples), drawn by a generator seeded with the sorted set: repeatable, and
    without a preference for early or late layers (taking the first would bias a flat curve's choice early)."""
    ordered = sorted(tied)
    return ordered[random.Random(repr(ordered)).randrange(len(ordered))]


def _choose(frame, keys: list[str], metric: Sequence[str], minimize: bool, alpha_columns: list[str]) -> tuple:
    means = frame.groupby(keys, sort=True)[list(metric)].mean().sum(axis=1)
    ranked = []
    for config, score in means.items():
        config = config if isinstance(config, tuple) else (config,)
        labelled = dict(zip(keys, config))
        if math.isnan(score):
            continue
        ranked.append(((round(-score if not minimize else score, 12),
                        round(sum(abs(labelled[column]) for column in alpha_columns), 12)), config, float(score)))
    if not ranked:
        raise ValueError("no candidate has a score for this metric")
    best_rank = min(rank for rank, _, _ in ranked)
    tied = {config: score for rank, config, score in ranked if rank == best_rank}
    chosen = break_tie(list(tied))
    return dict(zip(keys, chosen)), tied[chosen]


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


def sweep_means(frame, **where):
    """Transfer and localization of a sweep frame's rows that match `where` (`layer=3, alpha=2.0`), averaged over
    languages."""
    selected = frame
    for column, value in where.items():
        selected = selected[selected[column] == value]
    return selected[["transfer", "localization"]].mean()


def resampled_layers(answered, task: str, *, resamples: int = 1000, seed: int = 0):
    """The best layer re-chosen on bootstrap resamples of the validation questions, per organism seed.

    `answered` is a sweep's item-level frame (``sweep(..., answered=True)``) with a ``seed`` column, for one vector
    kind; `task` is the one its target metric reads (``transfer`` for EN, ``localization`` for LOC). Each resample
    draws the seed's questions (`cla_lib.core.items.question_of`: a creature with all its relations and languages, a
    culture question with all its languages) with replacement and applies `SELECTION_RULE` to the mean over the
    drawn questions (ties drawn at random, as there), over the steered configurations (alpha != 0).

    Returns:
        ``(seeds, choices)``: the sorted seeds, and an int array (resamples, seeds) of chosen layers.
    """
    rows = answered[(answered.task == task) & (answered.language != "en") & (answered.alpha != 0)]
    if rows.empty:
        raise ValueError(f"no steered {task} items to choose a layer on")
    generator = np.random.default_rng(seed)
    seeds = sorted(rows.seed.unique())
    choices = np.zeros((resamples, len(seeds)), dtype=int)
    for column, organism_seed in enumerate(seeds):
        of_seed = rows[rows.seed == organism_seed].assign(cluster=lambda frame: frame.id.map(question_of))
        table = of_seed.pivot_table(index="cluster", columns=["layer", "alpha"], values="correct", aggfunc="mean")
        matrix = table.to_numpy(float)
        configs = list(table.columns)
        magnitudes = np.array([abs(alpha) for _, alpha in configs])
        drawn = generator.integers(0, len(matrix), (resamples, len(matrix)))
        weights = np.stack([np.bincount(row, minlength=len(matrix)) for row in drawn]) / len(matrix)
        scores = np.round(weights @ matrix, 12)
        for resample in range(resamples):
            best = scores[resample] == scores[resample].max()
            smallest = best & (magnitudes == magnitudes[best].min())
            tied = np.flatnonzero(smallest)
            choices[resample, column] = configs[tied[generator.integers(len(tied))]][0]
    return seeds, choices


def layer_shares(choices) -> dict[int, float]:
    """How often each layer was chosen over every (resample, seed) of `resampled_layers`."""
    layers, counts = np.unique(choices, return_counts=True)
    return {int(layer): float(count / choices.size) for layer, count in zip(layers, counts)}


def layer_difference(first, second, *, level: float = 0.95, seed: int = 0):
    """The interval of (second's layer - first's layer), mean over seeds, resampling seeds too: `first` and
    `second` are `resampled_layers` arrays over the same seeds. Returns a `cla_lib.claims.intervals.Interval` whose
    ``n_clusters`` is the number of resamples."""
    difference = (np.asarray(second) - np.asarray(first)).astype(float)
    generator = np.random.default_rng(seed)
    resamples, n_seeds = difference.shape
    drawn = generator.integers(0, n_seeds, (resamples, n_seeds))
    statistics = np.take_along_axis(difference, drawn, axis=1).mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(statistics, [tail, 1 - tail])
    return Interval(float(difference.mean()), float(low), float(high), resamples, n_seeds, level)
