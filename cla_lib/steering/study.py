"""One seed's steering studies: chapter 3's (EN and LOC swept over layers on validation, the chosen layers checked
on test) and chapter 4's (Surgical Steering chosen on validation, every configuration on test).

Chapters 3 and 4 repeat them on every organism seed, so that the chosen layers come with a distribution and the
gains with paired intervals over questions and seeds (`cla_lib.intervals`, `resampled_layers`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from cla_lib.evaluation import with_explicit_cue
from cla_lib.items import Item
from cla_lib.steering.apply import steering_edits
from cla_lib.steering.extraction import VECTOR_KINDS, extract_vectors
from cla_lib.steering.selection import (
    SURGICAL_CANDIDATE_LAYERS, LayerChoice, SurgicalChoice, best_layer, ranked_layers, select_surgical, sweep_means
)
from cla_lib.steering.sweeps import forward_count, steered_planes, surgical_sweep, sweep
from cla_lib.steering.vector import SteeringVector

STUDY_KINDS = {"en": ("EN", "transfer"), "loc": ("LOC", "localization")}  # kind -> (configuration, target metric)


@dataclass
class LayerStudy:
    """What one seed's study measured. `validation` and `test` are item-level frames (`answer_frame` columns plus
    ``seed``; `validation` with ``layer``, ``alpha``, ``kind``; `test` with ``method``: ``unsteered``, ``EN``,
    ``LOC``), ready for `cla_lib.intervals.paired_differences` and `resampled_layers`."""

    seed: int
    sweeps: dict[str, pd.DataFrame]  # kind -> sweep frame (validation)
    choices: dict[str, LayerChoice]  # kind -> the chosen layer and strength
    validation: pd.DataFrame
    test: pd.DataFrame
    vectors: dict[str, SteeringVector]


def layer_study(model, items: Sequence[Item], languages: Sequence[str], layers: Sequence[int],
                alphas: Sequence[float], *, seed: int, vectors: Mapping[str, SteeringVector] | None = None,
                batch_size: int = 64, remote: bool | str = False) -> LayerStudy:
    """Extract EN and LOC (unless `vectors` holds them), sweep each over `layers` x `alphas` on the validation
    items, choose each one's layer by `SELECTION_RULE` on its own target metric, and score the test items unsteered
    and with each vector at its chosen layer (one batched run)."""
    if vectors is None:
        vectors = extract_vectors(model, items, kinds=list(STUDY_KINDS), languages=languages, batch_size=batch_size,
                                  remote=remote, progress=False)
    validation = [item for item in items if item.split == "validation"]
    test = [item for item in items if item.split == "test"]
    sweeps, answered, choices = {}, [], {}
    for kind, (_, metric) in STUDY_KINDS.items():
        own = {code: vectors[f"{kind}.{code}"] for code in languages}
        frame, rows = sweep(model, validation, own, layers, alphas, batch_size=batch_size, remote=remote,
                            progress=False, answered=True)
        sweeps[kind] = frame
        answered.append(rows.assign(kind=kind))
        choices[kind] = best_layer(frame[frame.alpha != 0], metric)
    configurations = {"unsteered": []}
    for kind, (name, _) in STUDY_KINDS.items():
        choice = choices[kind]
        configurations[name] = {code: steering_edits((vectors[f"{kind}.{code}"], choice.layer, choice.alpha))
                                for code in languages}
    _, tested = steered_planes(model, test, configurations, batch_size=batch_size, remote=remote, answered=True)
    return LayerStudy(seed, sweeps, choices, pd.concat(answered, ignore_index=True).assign(seed=seed),
                      tested.rename(columns={"configuration": "method"}).assign(seed=seed), dict(vectors))


# Chapter 4's configurations on the test split: name -> method key of the item-level frame.
SURGICAL_CONFIGURATIONS = {"base": "base", "English steering": "en_steering", "LOC steering": "loc_steering",
                           "Surgical Steering": "surgical"}


@dataclass
class SurgicalStudy:
    """One seed's Surgical Steering study: the single-vector sweeps and the Surgical grid on validation, the
    choices, and the test split under each configuration (`planes`: name -> plane points; `test`: item-level,
    ``method`` one of `SURGICAL_CONFIGURATIONS`' keys or ``explicit_cue``, with ``seed``)."""

    seed: int
    en_sweep: pd.DataFrame
    loc_sweep: pd.DataFrame
    surgical_sweep: pd.DataFrame
    en: LayerChoice
    loc: LayerChoice
    surgical: SurgicalChoice
    en_layers: list[int]
    loc_layers: list[int]
    planes: dict
    explicit: list  # plane points of the explicit cue (empty when the items carry none)
    test: pd.DataFrame


def surgical_study(model, items: Sequence[Item], languages: Sequence[str], layers: Sequence[int],
                   strengths: Sequence[float], *, seed: int, candidate_layers: int = SURGICAL_CANDIDATE_LAYERS,
                   batch_size: int = 64, remote: bool | str = False) -> SurgicalStudy:
    """EN and LOC swept alone, the best `candidate_layers` of each crossed in the Surgical grid (`SURGICAL_RULE`),
    and the test split scored unsteered, under each chosen configuration and with the explicit cue."""
    vectors = extract_vectors(model, items, kinds=["en", "loc"], languages=languages, batch_size=batch_size,
                              remote=remote, progress=False)
    en = {code: vectors[f"en.{code}"] for code in languages}
    loc = {code: vectors[f"loc.{code}"] for code in languages}
    validation = [item for item in items if item.split == "validation"]
    test = [item for item in items if item.split == "test"]
    grid = [0.0, *strengths]
    common = dict(model_name="base", batch_size=batch_size, remote=remote, progress=False)
    en_sweep = sweep(model, validation, en, layers, grid, **common)
    loc_sweep = sweep(model, validation, loc, layers, grid, **common)
    en_choice = best_layer(en_sweep[en_sweep.alpha != 0], "transfer")
    loc_choice = best_layer(loc_sweep[loc_sweep.alpha != 0], "localization")
    en_layers = ranked_layers(en_sweep, "transfer", candidate_layers)
    loc_layers = ranked_layers(loc_sweep, "localization", candidate_layers)
    grid_frame = surgical_sweep(model, validation, en, loc, en_layers=en_layers, en_alphas=strengths,
                                loc_layers=loc_layers, loc_alphas=strengths, **common)
    surgical = select_surgical(grid_frame)
    configurations = {
        "base": [],
        "English steering": {code: steering_edits((en[code], en_choice.layer, en_choice.alpha)) for code in languages},
        "LOC steering": {code: steering_edits((loc[code], loc_choice.layer, loc_choice.alpha)) for code in languages},
        "Surgical Steering": {code: steering_edits((en[code], surgical.en_layer, surgical.en_alpha),
                                                   (loc[code], surgical.loc_layer, surgical.loc_alpha))
                              for code in languages},
    }
    planes, tested = steered_planes(model, test, configurations, model_name="base", batch_size=batch_size,
                                    remote=remote, answered=True)
    tested = tested.assign(method=tested.configuration.map(SURGICAL_CONFIGURATIONS)).drop(columns="configuration")
    frames, explicit = [tested], []
    cued = with_explicit_cue([item for item in test if item.language != "en"])
    if cued:
        cue_planes, cue_answers = steered_planes(model, cued, {"explicit cue": []}, model_name="base",
                                                 batch_size=batch_size, remote=remote, answered=True)
        explicit = cue_planes["explicit cue"]
        # The cued item asks the same question: paired with its uncued self under its own id.
        frames.append(cue_answers.assign(method="explicit_cue", id=cue_answers.id.str.removesuffix("/explicit"))
                      .drop(columns="configuration"))
    return SurgicalStudy(seed, en_sweep, loc_sweep, grid_frame, en_choice, loc_choice, surgical, en_layers,
                         loc_layers, planes, explicit, pd.concat(frames, ignore_index=True).assign(seed=seed))


def aligned_test_answers(model, items: Sequence[Item], *, method: str, seed: int, batch_size: int = 64,
                         remote: bool | str = False):
    """An aligned model on the test split: its plane points and its item-level answers (``method``, ``seed``)."""
    test = [item for item in items if item.split == "test"]
    planes, answered = steered_planes(model, test, {method: []}, model_name=method, batch_size=batch_size,
                                      remote=remote, answered=True)
    return planes[method], answered.drop(columns="configuration").assign(method=method, seed=seed)


def surgical_choices(study: SurgicalStudy) -> pd.DataFrame:
    """One seed's chosen configurations with their layers, strengths and validation means (one row each)."""
    en, loc, surgical = study.en, study.loc, study.surgical
    rows = [
        {"configuration": "unsteered", **sweep_means(study.en_sweep, alpha=0.0)},
        {"configuration": "English steering", "EN layer": en.layer, "EN α": en.alpha,
         **sweep_means(study.en_sweep, layer=en.layer, alpha=en.alpha)},
        {"configuration": "LOC steering", "LOC layer": loc.layer, "LOC α": loc.alpha,
         **sweep_means(study.loc_sweep, layer=loc.layer, alpha=loc.alpha)},
        {"configuration": "Surgical Steering", "EN layer": surgical.en_layer, "EN α": surgical.en_alpha,
         "LOC layer": surgical.loc_layer, "LOC α": surgical.loc_alpha,
         **sweep_means(study.surgical_sweep, en_layer=surgical.en_layer, en_alpha=surgical.en_alpha,
                       loc_layer=surgical.loc_layer, loc_alpha=surgical.loc_alpha)},
    ]
    columns = ["configuration", "EN layer", "EN α", "LOC layer", "LOC α", "transfer", "localization"]
    return pd.DataFrame(rows, columns=columns).set_index("configuration")


def surgical_choice_row(study: SurgicalStudy) -> dict:
    """One seed's choices as one row: each single vector's layer and strength, and Surgical Steering's."""
    return {"seed": study.seed, "EN layer": study.en.layer, "EN α": study.en.alpha, "LOC layer": study.loc.layer,
            "LOC α": study.loc.alpha, "Surgical EN layer": study.surgical.en_layer,
            "Surgical EN α": study.surgical.en_alpha, "Surgical LOC layer": study.surgical.loc_layer,
            "Surgical LOC α": study.surgical.loc_alpha}


def surgical_requests(model, items: Sequence[Item], languages: Sequence[str], study: SurgicalStudy, *,
                      batch_size: int = 64) -> list[tuple[str, int]]:
    """What one seed's `surgical_study` sends when remote: (request, batched forwards), one request per row."""
    extract = [item for item in items if item.split == "extract"]
    validation = [item for item in items if item.split == "validation"]
    test = [item for item in items if item.split == "test"]
    prompts = {prompt for code in languages for kind in ("en", "loc")
               for pair in VECTOR_KINDS[kind].pairs([item for item in extract if item.language == code])
               for prompt in pair}
    single = len(set(study.en_sweep.layer)) * len(set(study.en_sweep.alpha) - {0.0})
    candidates = len(study.en_layers) * len(study.loc_layers) * len(set(study.surgical_sweep.en_alpha)) * len(
        set(study.surgical_sweep.loc_alpha))
    rows = [("extract EN and LOC vectors", math.ceil(len(prompts) / batch_size)),
            *((name, forward_count(model, validation, steered=single, batch_size=batch_size))
              for name in ("EN sweep", "LOC sweep")),
            ("Surgical Steering sweep", forward_count(model, validation, steered=candidates, unsteered=False,
                                                      batch_size=batch_size)),
            ("test: base, English, LOC and Surgical Steering", forward_count(model, test, steered=3,
                                                                              batch_size=batch_size))]
    cued = with_explicit_cue([item for item in test if item.language != "en"])
    if cued:
        rows.append(("test: explicit cue", forward_count(model, cued, batch_size=batch_size)))
    return rows
