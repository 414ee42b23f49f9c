"""Tests for cla_lib.claims.doses: the dose-response of the aligned organisms and the positive control's rule.

The rule is tested as every verdict rule is: on planted effects (it must find them) and on noise (it must not),
on answer frames made here in `comparison.evaluate`'s layout; the dose runs on the tiny organism's checkpoints.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cla_lib.claims import doses
from cla_lib.claims.comparison import BASE, Run, evaluate

METHODS = ("midalign", "clo", "mit", "replay")


def answers(rises: dict[str, float], *, creatures: int = 60, rng_seed: int = 0) -> tuple[pd.DataFrame, list[Run]]:
    """Item-level answers of a base (accuracy 0.4) and each method at each dose: transfer items of `creatures`
    creatures x 4 relations x 2 languages, culture items of 40 questions; a method-dose label in `rises` answers
    transfer items correctly that much more often."""
    rng = np.random.default_rng(rng_seed)
    labels = [BASE] + [doses.dose_label(method, dose) for method in METHODS for dose in (0.25, 0.5, 1.0)]
    rows = []
    for label in labels:
        for creature in range(creatures):
            for relation in range(4):
                for language in ("ko", "es"):
                    rows.append({"task": "transfer", "language": language, "seed": 0, "method": label,
                                 "id": f"transfer/c{creature}/r{relation}/{language}",
                                 "correct": rng.random() < 0.4 + rises.get(label, 0.0)})
        for question in range(40):
            rows.append({"task": "localization", "language": "ko", "seed": 0, "method": label,
                         "id": f"localization/q{question}/ko", "correct": rng.random() < 0.5})
    runs = [Run(label, 0, "unused") for label in labels]
    return pd.DataFrame(rows), runs


def test_the_rule_finds_a_planted_rise_at_one_dose_of_one_method():
    frame, runs = answers({doses.dose_label("mit", 1.0): 0.3})
    result = doses.raises_transfer(doses.dose_intervals(frame, runs, resamples=1000), seed=0)
    assert result["holds"] and (result["method"], result["dose"]) == ("mit", 1.0)
    assert result["tested"] == 9  # three methods at three doses; the replay control is not a method
    assert "found" in result["control"] and "not found" not in result["control"]


def test_the_rule_finds_nothing_in_noise_nor_in_a_rise_of_the_replay_control_alone():
    found = [doses.raises_transfer(doses.dose_intervals(*answers({}, rng_seed=seed), resamples=1000))["holds"]
             for seed in range(12)]
    assert sum(found) <= 1, found  # family-wise 5%: about 0.6 of 12 expected
    frame, runs = answers({doses.dose_label("replay", 1.0): 0.3}, rng_seed=1)
    assert not doses.raises_transfer(doses.dose_intervals(frame, runs, resamples=1000))["holds"]


def test_family_wise_intervals_are_wider_than_the_single_ones():
    frame, runs = answers({})
    intervals = doses.dose_intervals(frame, runs, resamples=1000)
    tested = intervals.dropna(subset=["family_low"])
    assert len(tested) == 9 and (tested.family_low < tested.low).all() and (tested.family_high > tested.high).all()
    assert tested.family_level.iloc[0] == pytest.approx(1 - 0.05 / 9)


def test_the_doses_of_the_tiny_organism_are_scored_against_its_base(tiny_organism_environment):
    from cla_lib.claims.comparison import erasure_runs

    runs = erasure_runs("organism", ["mit"], [0], include_replay=False, size="tiny", progress=False)
    models = doses.dose_runs(runs, 0)
    assert [run.method for run in models] == [BASE, "mit ×0.25", "mit ×0.5", "mit ×1"]
    _, answered = evaluate(models, ["ko"], batch_size=64)
    intervals = doses.dose_intervals(answered, models, resamples=200)
    assert set(intervals.half) == {"Δtransfer", "Δlocalization"} and len(intervals) == 6
    table = doses.dose_table(intervals)
    assert list(table.columns) == ["Δtransfer", "Δlocalization", "n (Δtransfer)", "n (Δlocalization)"]
    assert len(table) == 3 and table["n (Δtransfer)"].iloc[0] == intervals.questions.iloc[0]
    # The chapter's own answers of the base and the full dose are reused: the same rows as scoring every dose.
    _, chapter_answers = evaluate(runs, ["ko"], batch_size=64)
    reused_models, reused = doses.dose_answers(runs, chapter_answers, 0, ["ko"], batch_size=64)
    assert reused_models == models
    pd.testing.assert_frame_equal(reused, answered)
    with pytest.raises(ValueError, match="no base run of seed 5"):
        doses.dose_runs(runs, 5)
