"""Choosing layers and strengths on the validation split, by stated rules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple


# Surgical Steering's candidate layers per vector: the best few of each single-vector sweep (chapter 04 crosses them;
# `cla_lib.costs` counts the grid they make).
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
