"""One seed's steering studies: chapter 3's (EN and LOC swept over layers on validation, the chosen layers checked
on test) and chapter 4's (Surgical Steering chosen on validation, every configuration on test).

Chapters 3 and 4 repeat them on every organism seed, so that the chosen layers come with a distribution and the
gains with paired intervals over questions and seeds (`cla_lib.claims.intervals`, `resampled_layers`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from cla_lib.plane.evaluation import with_explicit_cue
from cla_lib.core.items import Item
from cla_lib.steering.apply import steering_edits
from cla_lib.steering.controls import random_like
from cla_lib.steering.extraction import VECTOR_KINDS, extract_vectors
from cla_lib.steering.selection import (
    SURGICAL_CANDIDATE_LAYERS, LayerChoice, SurgicalChoice, best_layer, ranked_layers, select_surgical, sweep_means
)
from cla_lib.steering.sweeps import forward_count, steered_planes, surgical_sweep, sweep
from cla_lib.steering.vector import SteeringVector
from cla_lib.model.remote import Remote

STUDY_KINDS = {"en": ("EN", "transfer"), "loc": ("LOC", "localization")}  # kind -> (configuration, target metric)
# Negative controls (`cla_lib.steering.controls`), swept on their target's questions, chosen and tested exactly like
# the vectors they stand beside: kind -> (configuration, target metric).
CONTROL_KINDS = {"en_random": ("random (EN's norms)", "transfer"),
                 "loc_random": ("random (LOC's norms)", "localization"),
                 "loc_shuffled": ("LOC, shuffled pairs", "localization")}


@dataclass
class LayerStudy:
    """What one seed's study measured. `validation` and `test` are item-level frames (`answer_frame` columns plus
    ``seed``; `validation` with ``layer``, ``alpha``, ``kind``; `test` with ``method``: ``unsteered``, ``EN``,
    ``LOC`` and each control's configuration), ready for `cla_lib.claims.intervals.paired_differences` and
    `resampled_layers`."""

    seed: int
    sweeps: dict[str, pd.DataFrame]  # kind -> sweep frame (validation)
    choices: dict[str, LayerChoice]  # kind -> the chosen layer and strength
    validation: pd.DataFrame
    test: pd.DataFrame
    vectors: dict[str, SteeringVector]


def with_controls(lm, items: Sequence[Item], languages: Sequence[str], vectors: Mapping[str, SteeringVector], *,
                  seed: int, batch_size: int = 64, remote: Remote = False) -> dict[str, SteeringVector]:
    """`vectors` (EN and LOC of each language) plus their negative controls: random directions with EN's and
    LOC's norms (drawn with `seed`, the kind and the language) and LOC from shuffled pairs (extracted here)."""
    shuffled = extract_vectors(lm, items, kinds=["loc_shuffled"], languages=languages, batch_size=batch_size,
                               remote=remote, progress=False)
    randoms = {f"{kind}_random.{code}": random_like(vectors[f"{kind}.{code}"], seed=(seed, kind, code))
               for kind in ("en", "loc") for code in languages}
    return {**vectors, **shuffled, **randoms}


def layer_study(lm, items: Sequence[Item], languages: Sequence[str], layers: Sequence[int],
                alphas: Sequence[float], *, seed: int, vectors: Mapping[str, SteeringVector] | None = None,
                controls: bool = False, batch_size: int = 64, remote: Remote = False) -> LayerStudy:
    """Extract EN and LOC (unless `vectors` holds them), sweep each over `layers` x `alphas` on the validation
    items, choose each one's layer by `SELECTION_RULE` on its own target metric, and score the test items unsteered
    and with each vector at its chosen layer (one batched run). With `controls`, the `CONTROL_KINDS` go through
    the same sweep (on their target's questions), choice and test."""
    if vectors is None:
        vectors = extract_vectors(lm, items, kinds=list(STUDY_KINDS), languages=languages, batch_size=batch_size,
                                  remote=remote, progress=False)
    kinds = dict(STUDY_KINDS)
    if controls:
        vectors = with_controls(lm, items, languages, vectors, seed=seed, batch_size=batch_size, remote=remote)
        kinds.update(CONTROL_KINDS)
    validation = [item for item in items if item.split == "validation"]
    test = [item for item in items if item.split == "test"]
    sweeps, answered, choices = {}, [], {}
    for kind, (_, metric) in kinds.items():
        own = {code: vectors[f"{kind}.{code}"] for code in languages}
        # A control is read on its target only (each metric reads the task of its name): half the sweep's cost.
        on = validation if kind in STUDY_KINDS else [item for item in validation if item.task == metric]
        frame, rows = sweep(lm, on, own, layers, alphas, batch_size=batch_size, remote=remote,
                            progress=False, answered=True)
        sweeps[kind] = frame
        answered.append(rows.assign(kind=kind))
        choices[kind] = best_layer(frame[frame.alpha != 0], metric)
    configurations = {"unsteered": []}
    for kind, (name, _) in kinds.items():
        choice = choices[kind]
        configurations[name] = {code: steering_edits((vectors[f"{kind}.{code}"], choice.layer, choice.alpha))
                                for code in languages}
    _, tested = steered_planes(lm, test, configurations, batch_size=batch_size, remote=remote, answered=True)
    return LayerStudy(seed, sweeps, choices, pd.concat(answered, ignore_index=True).assign(seed=seed),
                      tested.rename(columns={"configuration": "method"}).assign(seed=seed), dict(vectors))


# Surgical Steering's negative control: random directions with EN's and LOC's norms at its chosen layers and strengths.
SURGICAL_CONTROL = "random, Surgical's layers"
# Chapter 4's configurations on the test split: name -> method key of the item-level frame.
SURGICAL_CONFIGURATIONS = {"base": "base", "English steering": "en_steering", "LOC steering": "loc_steering",
                           "Surgical Steering": "surgical", SURGICAL_CONTROL: "surgical_random"}


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

    @property
    def n_candidates(self) -> int:
        """Distinct Surgical grid points: each component off (strength 0) or at one of its layers and nonzero
        strengths; both off is the unsteered base."""
        def options(layers, alphas):
            return len(layers) * len(set(alphas) - {0.0}) + 1
        return (options(self.en_layers, self.surgical_sweep.en_alpha)
                * options(self.loc_layers, self.surgical_sweep.loc_alpha))

    def surgical_text(self) -> str:
        """What the grid chose, in words: both vectors, one alone, or neither."""
        choice = self.surgical
        parts = [f"{name} at layer {layer} (α = {alpha:g})" for name, layer, alpha in
                 (("EN", choice.en_layer, choice.en_alpha), ("LOC", choice.loc_layer, choice.loc_alpha)) if alpha]
        if len(parts) == 2:
            return " with ".join(parts)
        return f"{parts[0]} alone, no {'LOC' if choice.en_alpha else 'EN'}" if parts else "no steering at all"


def surgical_study(lm, items: Sequence[Item], languages: Sequence[str], layers: Sequence[int],
                   strengths: Sequence[float], *, seed: int, candidate_layers: int = SURGICAL_CANDIDATE_LAYERS,
                   batch_size: int = 64, remote: Remote = False) -> SurgicalStudy:
    """EN and LOC swept alone, the best `candidate_layers` of each crossed in the Surgical grid (`SURGICAL_RULE`;
    strength 0 in each component's grid, so the search may return EN alone, LOC alone or the base), and the test split scored unsteered, under each chosen configuration, under its negative control
    (`SURGICAL_CONTROL`) and with the explicit cue."""
    vectors = extract_vectors(lm, items, kinds=["en", "loc"], languages=languages, batch_size=batch_size,
                              remote=remote, progress=False)
    en = {code: vectors[f"en.{code}"] for code in languages}
    loc = {code: vectors[f"loc.{code}"] for code in languages}
    validation = [item for item in items if item.split == "validation"]
    test = [item for item in items if item.split == "test"]
    grid = [0.0, *strengths]
    common = dict(model_name="base", batch_size=batch_size, remote=remote, progress=False)
    en_sweep = sweep(lm, validation, en, layers, grid, **common)
    loc_sweep = sweep(lm, validation, loc, layers, grid, **common)
    en_choice = best_layer(en_sweep[en_sweep.alpha != 0], "transfer")
    loc_choice = best_layer(loc_sweep[loc_sweep.alpha != 0], "localization")
    en_layers = ranked_layers(en_sweep, "transfer", candidate_layers)
    loc_layers = ranked_layers(loc_sweep, "localization", candidate_layers)
    grid_frame = surgical_sweep(lm, validation, en, loc, en_layers=en_layers, en_alphas=grid,
                                loc_layers=loc_layers, loc_alphas=grid, **common)
    surgical = select_surgical(grid_frame)
    configurations = {
        "base": [],
        "English steering": {code: steering_edits((en[code], en_choice.layer, en_choice.alpha)) for code in languages},
        "LOC steering": {code: steering_edits((loc[code], loc_choice.layer, loc_choice.alpha)) for code in languages},
        "Surgical Steering": {code: steering_edits((en[code], surgical.en_layer, surgical.en_alpha),
                                                   (loc[code], surgical.loc_layer, surgical.loc_alpha))
                              for code in languages},
        SURGICAL_CONTROL: {code: steering_edits(
            (random_like(en[code], seed=(seed, "en", code)), surgical.en_layer, surgical.en_alpha),
            (random_like(loc[code], seed=(seed, "loc", code)), surgical.loc_layer, surgical.loc_alpha))
            for code in languages},
    }
    planes, tested = steered_planes(lm, test, configurations, model_name="base", batch_size=batch_size,
                                    remote=remote, answered=True)
    tested = tested.assign(method=tested.configuration.map(SURGICAL_CONFIGURATIONS)).drop(columns="configuration")
    frames, explicit = [tested], []
    cued = with_explicit_cue([item for item in test if item.language != "en"])
    if cued:
        cue_planes, cue_answers = steered_planes(lm, cued, {"explicit cue": []}, model_name="base",
                                                 batch_size=batch_size, remote=remote, answered=True)
        explicit = cue_planes["explicit cue"]
        # The cued item asks the same question: paired with its uncued self under its own id.
        frames.append(cue_answers.assign(method="explicit_cue", id=cue_answers.id.str.removesuffix("/explicit"))
                      .drop(columns="configuration"))
    return SurgicalStudy(seed, en_sweep, loc_sweep, grid_frame, en_choice, loc_choice, surgical, en_layers,
                         loc_layers, planes, explicit, pd.concat(frames, ignore_index=True).assign(seed=seed))


# What chapter 4 applies on top of each aligned organism, at the base's chosen layers and strengths: name -> the
# suffix of its method key (``<method>+<suffix>``).
ALIGNED_STEERING = {"LOC steering": "loc_steering", "Surgical Steering": "surgical",
                    "random, LOC's layer": "random_loc"}


def aligned_test_answers(lm, items: Sequence[Item], *, method: str, seed: int,
                         languages: Sequence[str] | None = None, study: SurgicalStudy | None = None,
                         batch_size: int = 64, remote: Remote = False):
    """An aligned model on the test split: its plane points and its item-level answers (``method``, ``seed``).

    Given the same seed's base `study`, the aligned model is also scored under `ALIGNED_STEERING`: LOC steering and
    Surgical Steering at the layers and strengths the base chose on validation (fixed in advance for the aligned
    model, so its test split chooses nothing), with vectors extracted from the aligned model itself, and LOC's
    negative control (a random direction with LOC's norms at LOC's layer and strength). Their methods are
    ``<method>+<suffix>``: whether steering undoes what the method erased."""
    test = [item for item in items if item.split == "test"]
    configurations = {method: []}
    if study is not None:
        vectors = extract_vectors(lm, items, kinds=["en", "loc"], languages=languages, batch_size=batch_size,
                                  remote=remote, progress=False)
        loc, surgical = study.loc, study.surgical
        edits = {
            "loc_steering": lambda code: steering_edits((vectors[f"loc.{code}"], loc.layer, loc.alpha)),
            "surgical": lambda code: steering_edits((vectors[f"en.{code}"], surgical.en_layer, surgical.en_alpha),
                                                    (vectors[f"loc.{code}"], surgical.loc_layer, surgical.loc_alpha)),
            "random_loc": lambda code: steering_edits(
                (random_like(vectors[f"loc.{code}"], seed=(seed, method, "loc", code)), loc.layer, loc.alpha)),
        }
        configurations.update({f"{method}+{suffix}": {code: edits[suffix](code) for code in languages}
                               for suffix in ALIGNED_STEERING.values()})
    planes, answered = steered_planes(lm, test, configurations, model_name=method, batch_size=batch_size,
                                      remote=remote, answered=True)
    answered = answered.rename(columns={"configuration": "method"}).assign(seed=seed)
    return planes[method], answered


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


def surgical_requests(lm, items: Sequence[Item], languages: Sequence[str], study: SurgicalStudy, *,
                      batch_size: int = 64) -> list[tuple[str, int]]:
    """What one seed's `surgical_study` sends when remote: (request, batched forwards), one request per row."""
    extract = [item for item in items if item.split == "extract"]
    validation = [item for item in items if item.split == "validation"]
    test = [item for item in items if item.split == "test"]
    prompts = {prompt for code in languages for kind in ("en", "loc")
               for pair in VECTOR_KINDS[kind].pairs([item for item in extract if item.language == code])
               for prompt in pair}
    single = len(set(study.en_sweep.layer)) * len(set(study.en_sweep.alpha) - {0.0})
    rows = [("extract EN and LOC vectors", math.ceil(len(prompts) / batch_size)),
            *((name, forward_count(lm, validation, steered=single, batch_size=batch_size))
              for name in ("EN sweep", "LOC sweep")),
            ("Surgical Steering sweep", forward_count(lm, validation, steered=study.n_candidates - 1,
                                                      batch_size=batch_size)),
            ("test: base, English, LOC and Surgical Steering, its control", forward_count(lm, test, steered=4,
                                                                              batch_size=batch_size))]
    cued = with_explicit_cue([item for item in test if item.language != "en"])
    if cued:
        rows.append(("test: explicit cue", forward_count(lm, cued, batch_size=batch_size)))
    return rows
