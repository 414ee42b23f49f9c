"""The rules of chapters 3 and 4 (cla_lib.claims.verdicts) on simulated item-level answers: a planted effect is found, null
data do not reproduce the claim, and a contradicted part is reported as such."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from cla_lib.claims.analysis import half_agreement, random_cosine_bound, vector_cosines
from cla_lib.claims.intervals import CANNOT_TELL, DOES_NOT, REPRODUCES
from cla_lib.steering.vector import SteeringVector
from cla_lib.steering.study import CONTROL_KINDS
from cla_lib.claims.verdicts import (CONTROL_SETS, aligned_steering_intervals, balance_intervals, control_intervals,
                              controls_null, dissociation_intervals, erased, paired_balance_claims,
                              paired_dissociation_claims, perpendicularity, positive_found, seed_geometry,
                              geometry_text)

LANGUAGES = ("es", "ko", "fa")
LAYERS = range(8)


def _questions(task: str, count: int) -> list[str]:
    return [f"{task}/q{question}" for question in range(count)]


def simulated_sweeps(generator, *, en_layer: int | None, loc_layer: int | None, seeds: int = 3,
                     questions: int = 40, bump: float = 0.3, controls: dict | None = None) -> pd.DataFrame:
    """Validation answers of EN (transfer) and LOC (localization) sweeps: each question has its own difficulty; the
    vector helps by `bump` at its planted layer (None: a flat curve, every layer as good). `controls` adds sweeps of
    control kinds: kind -> planted layer."""
    kinds = [("en", "transfer", en_layer), ("loc", "localization", loc_layer)]
    kinds += [(kind, "transfer" if kind.startswith("en") else "localization", planted)
              for kind, planted in (controls or {}).items()]
    rows = []
    for seed in range(seeds):
        for kind, task, planted in kinds:
            difficulty = np.clip(0.4 + generator.normal(0, 0.2, questions), 0.05, 0.9)
            for index, question in enumerate(_questions(task, questions)):
                for language in LANGUAGES:
                    for layer in LAYERS:
                        for alpha in (1.0, 2.0):
                            chance = difficulty[index] + (bump if layer == planted else 0.0)
                            rows.append({"id": f"{question}/{language}", "task": task, "language": language,
                                         "seed": seed, "layer": layer, "alpha": alpha, "kind": kind,
                                         "correct": generator.random() < chance})
    return pd.DataFrame(rows)


def simulated_test(generator, effects: dict[str, dict[str, float]], *, seeds: int = 3,
                   questions: int = 80) -> pd.DataFrame:
    """Test answers of configurations (`effects`: method -> task -> added chance of a right answer), paired on the
    same questions: one uniform draw per item is shared by every configuration, as one model's answers under small
    edits are (a configuration differs from another only where its shift moves the item across its draw)."""
    rows = []
    for seed in range(seeds):
        for task in ("transfer", "localization"):
            difficulty = np.clip(0.5 + generator.normal(0, 0.2, questions), 0.05, 0.9)
            for index, question in enumerate(_questions(task, questions)):
                for language in LANGUAGES:
                    draw = generator.random()
                    for method, shifts in effects.items():
                        chance = np.clip(difficulty[index] + shifts.get(task, 0.0), 0, 1)
                        rows.append({"id": f"{question}/{language}", "task": task, "language": language,
                                     "seed": seed, "method": method, "correct": draw < chance})
    return pd.DataFrame(rows)


def test_a_planted_dissociation_is_found():
    generator = np.random.default_rng(11)
    validation = simulated_sweeps(generator, en_layer=2, loc_layer=6)
    test = simulated_test(generator, {"unsteered": {}, "EN": {"transfer": 0.15}, "LOC": {"localization": 0.15}})
    parts = dissociation_intervals(validation, test, resamples=300)
    assert list(parts.verdict) == [REPRODUCES] * 3
    assert 3.5 < parts.estimate.iloc[0] < 4.5  # layer 6 minus layer 2
    assert paired_dissociation_claims(parts).status == REPRODUCES


def test_null_sweeps_do_not_reproduce_the_dissociation():
    generator = np.random.default_rng(12)
    validation = simulated_sweeps(generator, en_layer=None, loc_layer=None)
    test = simulated_test(generator, {"unsteered": {}, "EN": {}, "LOC": {}})
    parts = dissociation_intervals(validation, test, resamples=300)
    assert list(parts.verdict[1:]) == [CANNOT_TELL] * 2
    verdict = paired_dissociation_claims(parts)
    assert verdict.status != REPRODUCES
    assert "picks among noise" in verdict.text


def test_loc_shallower_than_en_contradicts_the_dissociation():
    generator = np.random.default_rng(13)
    validation = simulated_sweeps(generator, en_layer=6, loc_layer=1)
    test = simulated_test(generator, {"unsteered": {}, "EN": {"transfer": 0.15}, "LOC": {"localization": 0.15}})
    parts = dissociation_intervals(validation, test, resamples=300)
    assert parts.verdict.iloc[0] == DOES_NOT
    assert paired_dissociation_claims(parts).status.startswith(DOES_NOT)


NULL_CONTROLS = {"en_random": None, "loc_random": None, "loc_shuffled": None}
CONTROL_NAMES = {kind: CONTROL_KINDS[kind][0] for kind in NULL_CONTROLS}


def test_null_controls_leave_a_planted_dissociation_standing():
    generator = np.random.default_rng(16)
    validation = simulated_sweeps(generator, en_layer=2, loc_layer=6, controls=NULL_CONTROLS)
    test = simulated_test(generator, {"unsteered": {}, "EN": {"transfer": 0.15}, "LOC": {"localization": 0.15},
                                      **{name: {} for name in CONTROL_NAMES.values()}})
    controls = control_intervals(validation, test, resamples=300)
    assert set(controls.controls) == set(CONTROL_SETS) and len(controls) == 3 * len(CONTROL_SETS)
    assert REPRODUCES not in set(controls.verdict) and controls_null(controls)
    verdict = paired_dissociation_claims(dissociation_intervals(validation, test, resamples=300), controls=controls)
    assert verdict.status == REPRODUCES
    assert "came out null, as they must" in verdict.text


def test_a_control_with_the_same_effect_takes_the_evidence_away():
    # An apparatus that raises transfer whatever is added (a random direction helps as much as EN): EN's gain is
    # no evidence, and the controls are reported as not null.
    generator = np.random.default_rng(17)
    validation = simulated_sweeps(generator, en_layer=2, loc_layer=6, controls=NULL_CONTROLS)
    test = simulated_test(generator, {"unsteered": {}, "EN": {"transfer": 0.15}, "LOC": {"localization": 0.15},
                                      CONTROL_NAMES["en_random"]: {"transfer": 0.15},
                                      CONTROL_NAMES["loc_random"]: {}, CONTROL_NAMES["loc_shuffled"]: {}})
    controls = control_intervals(validation, test, resamples=300)
    assert not controls_null(controls)
    parts = dissociation_intervals(validation, test, resamples=300)
    assert list(parts.verdict) == [REPRODUCES] * 3
    verdict = paired_dissociation_claims(parts, controls=controls)
    assert verdict.status.startswith("partly reproduces (2 of 3")
    assert list(verdict.checks.verdict) == [REPRODUCES, CANNOT_TELL, REPRODUCES]
    assert "a negative control reproduces it too" in verdict.text and "Not every negative control" in verdict.text


def test_the_positive_control_says_whether_a_null_verdict_means_anything():
    # The same null data for the real organism; a planted organism where the apparatus finds everything, and one
    # where it misses LOC's effect (the planted LOC does nothing on test).
    generator = np.random.default_rng(18)
    parts = dissociation_intervals(simulated_sweeps(generator, en_layer=None, loc_layer=None),
                                   simulated_test(generator, {"unsteered": {}, "EN": {}, "LOC": {}}), resamples=300)
    planted_validation = simulated_sweeps(generator, en_layer=3, loc_layer=5)
    found = dissociation_intervals(planted_validation, simulated_test(
        generator, {"unsteered": {}, "EN": {"transfer": 0.15}, "LOC": {"localization": 0.15}}), resamples=300)
    missed = dissociation_intervals(planted_validation, simulated_test(
        generator, {"unsteered": {}, "EN": {"transfer": 0.15}, "LOC": {}}), resamples=300)
    assert positive_found(found) and not positive_found(missed)
    verdict = paired_dissociation_claims(parts, positive=found)
    assert verdict.status != REPRODUCES and "finds every part" in verdict.text
    assert paired_dissociation_claims(parts).status == verdict.status  # the control informs; it does not decide
    uninformative = paired_dissociation_claims(parts, positive=missed).text
    assert "not found in full" in uninformative and "(3)" in uninformative and "uninformative" in uninformative


def test_balance_is_better_only_against_models_it_beats_on_the_sum():
    generator = np.random.default_rng(14)
    answered = simulated_test(generator, {
        "base": {}, "surgical": {"localization": 0.15},
        "eraser": {"transfer": 0.05, "localization": -0.2},  # a CLA method that trades culture for transfer
        "twin": {"localization": 0.15},  # as good as Surgical Steering: no difference to find
    })
    intervals = balance_intervals(answered, candidate="surgical", against=["base", "eraser"], resamples=500)
    assert list(intervals.verdict) == [REPRODUCES, REPRODUCES]
    assert (intervals.detectable > 0).all() and (intervals.seeds == 3).all()
    assert paired_balance_claims(intervals).status == REPRODUCES
    tied = balance_intervals(answered, candidate="surgical", against=["base", "twin"], resamples=500)
    assert list(tied.verdict) == [REPRODUCES, CANNOT_TELL]
    claim = paired_balance_claims(tied, labels={"twin": "the twin"})
    assert claim.status.startswith("partly reproduces (better than 1 of 2")
    assert "against the twin: Δ(transfer + localization)" in claim.text
    # Against itself (the search chose one vector alone): an interval of exactly zero, named for what it is.
    answered = pd.concat([answered, answered[answered.method == "surgical"].assign(method="itself")])
    same = balance_intervals(answered, candidate="surgical", against=["base", "itself"], resamples=500)
    assert (same.low.iloc[1], same.high.iloc[1]) == (0, 0) and list(same.creature_questions) == [
        intervals.creature_questions.iloc[0]] * 2
    assert "against itself: Δ(transfer + localization) +0.000 [+0.000, +0.000], the same model" in (
        paired_balance_claims(same).text)


def test_null_steering_does_not_balance_better_and_a_worse_one_is_contradicted():
    generator = np.random.default_rng(15)
    answered = simulated_test(generator, {"base": {}, "surgical": {}, "worse": {"localization": -0.2}})
    null = balance_intervals(answered, candidate="surgical", against=["base"], resamples=500)
    assert paired_balance_claims(null).status == CANNOT_TELL
    worse = balance_intervals(answered, candidate="worse", against=["base"], resamples=500)
    assert paired_balance_claims(worse).status.startswith(DOES_NOT)


def simulated_vectors(generator, *, shared: float, signal: float, dimension: int = 128, layers: int = 3,
                      vectors: bool = False):
    """EN and LOC vectors of each language from two halves of their prompts: a fixed direction per kind (LOC's has
    cosine `shared` with EN's) scaled by `signal`, plus independent unit-scale noise in every half."""
    halves = ({}, {})
    full = {}
    for language in LANGUAGES:
        en = torch.nn.functional.normalize(torch.randn(dimension, generator=generator), dim=0)
        other = torch.randn(dimension, generator=generator)
        other = torch.nn.functional.normalize(other - (other @ en) * en, dim=0)
        loc = shared * en + (1 - shared**2) ** 0.5 * other
        for kind, direction in (("en", en), ("loc", loc)):
            parts = [{layer: signal * direction + torch.randn(dimension, generator=generator) / dimension**0.5
                      for layer in range(layers)} for _ in range(2)]
            for half, part in zip(halves, parts):
                half[f"{kind}.{language}"] = SteeringVector(part, {})
            full[f"{kind}.{language}"] = SteeringVector(
                {layer: (parts[0][layer] + parts[1][layer]) / 2 for layer in range(layers)}, {})
    reliability = half_agreement(*halves, kinds=("en", "loc"), languages=LANGUAGES)
    if vectors:
        return reliability, full
    return reliability, vector_cosines(full, [("en", "loc")], LANGUAGES)


def test_perpendicularity_finds_planted_directions_and_says_nothing_on_noise():
    generator = torch.Generator().manual_seed(0)
    words = {}
    for name, shared, signal in (("perpendicular", 0.0, 3.0), ("aligned", 0.8, 3.0), ("noise", 0.0, 0.0),
                                 ("aligned noise", 0.8, 0.0)):
        reliability, cosines = simulated_vectors(generator, shared=shared, signal=signal)
        words[name] = {perpendicularity(reliability, cosines, layer, 128)["verdict"] for layer in range(3)}
    assert words == {"perpendicular": {REPRODUCES}, "aligned": {DOES_NOT}, "noise": {CANNOT_TELL},
                     "aligned noise": {CANNOT_TELL}}


def test_every_seeds_geometry_is_reported_with_the_random_bound_and_the_layers_distribution():
    from types import SimpleNamespace

    from cla_lib.steering.selection import LayerChoice

    generator = torch.Generator().manual_seed(1)
    rows = []
    for seed, shared in ((0, 0.0), (1, 0.0), (2, 0.9)):
        reliability, vectors = simulated_vectors(generator, shared=shared, signal=3.0, vectors=True)
        study = SimpleNamespace(seed=seed, vectors=vectors, choices={"en": LayerChoice(1 if seed else 2, 2.0, 0.5),
                                                                     "loc": LayerChoice(2, 4.0, 0.6)})
        rows.append(seed_geometry(study, reliability, n_layers=3))
    geometry = pd.DataFrame(rows)
    assert geometry["EN in the last third"].tolist() == [True, False, False]
    assert geometry["at the EN layer"].tolist() == ["near-perpendicular", "near-perpendicular",
                                                    "not near-perpendicular"]
    assert geometry["random bound"].iloc[0] == random_cosine_bound(128, averaged=len(LANGUAGES))
    text = geometry_text(geometry, {1: 0.7, 2: 0.3}, {2: 1.0})
    assert "last third on 1 of 3 seeds" in text and "near-perpendicular on 2 of 3 seeds" in text
    assert "in 128 dimensions" in text and "EN chose layer 1 (70%), 2 (30%)" in text


def test_random_cosine_bound_matches_its_distribution():
    # One pair of random directions in d dimensions: cosine ~ N(0, 1/d), so its 95% |cosine| is about 1.96 / sqrt(d);
    # averaging over languages narrows it; a signed mean is centred on zero.
    assert abs(random_cosine_bound(128) - 1.96 / 128**0.5) < 0.01
    assert random_cosine_bound(128, averaged=6) < random_cosine_bound(128)
    assert 0 < random_cosine_bound(128, averaged=6, absolute=False) < random_cosine_bound(128, averaged=6)


def test_steering_that_undoes_erasure_is_found_and_null_steering_is_not():
    generator = np.random.default_rng(18)
    erasing = {"localization": -0.3}
    answered = simulated_test(generator, {
        "base": {}, "mit": erasing, "mit+random_loc": erasing, "mit+surgical": {"localization": -0.1},
        "mit+loc_steering": {},  # restores every erased question
        "clo": erasing, "clo+random_loc": erasing, "clo+surgical": erasing, "clo+loc_steering": erasing,  # null
    })
    lost = erased(answered, "mit")
    right = lost.pivot_table(index=["seed", "id"], columns="method", values="correct", aggfunc="first")
    assert len(right) > 50 and (right["base"] == 1).all() and (right["mit"] == 0).all()
    undo = aligned_steering_intervals(answered, ["mit", "clo"], labels={"mit": "MIT"})
    by_method = {method: list(rows.verdict) for method, rows in undo.groupby("method", sort=False)}
    assert by_method == {"mit": [REPRODUCES, REPRODUCES, REPRODUCES], "clo": [CANNOT_TELL] * 3}
    assert undo.comparison.iloc[1] == "MIT: LOC steering − its random control, on the erased questions"


def test_a_negative_control_that_balances_better_takes_the_gain_over_the_base_away():
    generator = np.random.default_rng(19)
    answered = simulated_test(generator, {"base": {}, "surgical": {"localization": 0.15},
                                          "eraser": {"localization": -0.2}, "noise": {"localization": 0.15},
                                          "null noise": {}})
    intervals = balance_intervals(answered, candidate="surgical", against=["base", "eraser"], resamples=500)
    null = balance_intervals(answered, candidate="null noise", against=["base"], resamples=500)
    assert paired_balance_claims(intervals, control=null).status == REPRODUCES
    echoed = balance_intervals(answered, candidate="noise", against=["base"], resamples=500)
    verdict = paired_balance_claims(intervals, control=echoed)
    assert verdict.status.startswith("partly reproduces (better than 1 of 2")
    assert list(verdict.checks.verdict) == [CANNOT_TELL, REPRODUCES]
    assert "negative control balances better than the base as well" in verdict.text
