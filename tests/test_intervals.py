"""Paired cluster-bootstrap intervals and their verdict words (cla_lib.claims.intervals): planted effects are found, null
data are not (beyond the interval's error rate), and clusters, not rows, set the width."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cla_lib.claims.intervals import (CANNOT_TELL, DOES_NOT, REPRODUCES, Interval, cluster_bootstrap, paired_differences,
                               verdict)
from cla_lib.core.items import question_of

LANGUAGES = ("es", "zh", "ko", "id", "el", "fa")


def simulated_answers(generator, *, effect: float, questions: int = 120, seeds: int = 3, base_rate: float = 0.6,
                      question_spread: float = 0.25) -> pd.DataFrame:
    """Base and method answer the same culture questions in six languages; each question has its own difficulty
    (shared by its languages, so rows of one question are correlated); the method adds `effect` to the chance of a
    correct answer."""
    rows = []
    for seed in range(seeds):
        difficulty = np.clip(base_rate + generator.normal(0, question_spread, questions), 0.02, 0.98)
        for question in range(questions):
            for language in LANGUAGES:
                item = f"localization/q{question}/{language}"
                for method, shift in (("base", 0.0), ("method", effect)):
                    probability = np.clip(difficulty[question] + shift, 0, 1)
                    rows.append({"id": item, "task": "localization", "language": language, "seed": seed,
                                 "method": method, "correct": generator.random() < probability})
    return pd.DataFrame(rows)


def interval_of(answers: pd.DataFrame, **options) -> Interval:
    differences = paired_differences(answers, method="method", reference="base", task="localization")
    return cluster_bootstrap(differences, resamples=options.pop("resamples", 1000), **options)


@pytest.mark.parametrize("effect, direction", [(-0.15, -1), (0.12, 1)])
def test_a_planted_effect_is_found_in_its_direction(effect, direction):
    interval = interval_of(simulated_answers(np.random.default_rng(1), effect=effect))
    assert verdict(interval, direction) == REPRODUCES
    assert verdict(interval, -direction) == DOES_NOT
    assert interval.low < effect < interval.high
    assert interval.n_clusters == 120 and interval.n_seeds == 3


def test_null_data_rarely_reproduce_a_claimed_effect():
    # 60 null datasets: a 95% interval excludes zero on the claimed side about 2.5% of the time.
    generator = np.random.default_rng(2)
    words = [verdict(interval_of(simulated_answers(generator, effect=0.0, questions=60), resamples=400), -1)
             for _ in range(60)]
    assert words.count(REPRODUCES) <= 5
    assert words.count(CANNOT_TELL) >= 50


def test_too_few_questions_cannot_tell_a_small_effect():
    interval = interval_of(simulated_answers(np.random.default_rng(3), effect=-0.05, questions=10, seeds=1))
    assert verdict(interval, -1) == CANNOT_TELL
    assert interval.half_width > 0.05  # the smallest effect it could have detected is larger than the effect


def test_the_languages_of_one_question_resample_together():
    # Six copies of each question's answer in six languages carry one question's worth of information: the interval
    # is as wide as with one language, not sqrt(6) times narrower.
    generator = np.random.default_rng(4)
    answers = simulated_answers(generator, effect=0.0, questions=80, seeds=1, question_spread=0.0)
    one = answers[answers.language == "es"]
    copied = pd.concat([one.assign(language=language, id=one.id.str.replace("/es", f"/{language}"))
                        for language in LANGUAGES], ignore_index=True)
    single, clustered = interval_of(one), interval_of(copied)
    assert clustered.n_clusters == single.n_clusters == 80
    assert clustered.half_width == pytest.approx(single.half_width, rel=0.05)


def test_the_bootstrap_is_repeatable_and_needs_pairs():
    answers = simulated_answers(np.random.default_rng(5), effect=0.1, questions=20, seeds=2)
    assert interval_of(answers) == interval_of(answers)
    with pytest.raises(ValueError, match="answered by both"):
        paired_differences(answers, method="method", reference="nobody", task="localization")
    with pytest.raises(ValueError, match="direction"):
        verdict(interval_of(answers), 0)


def test_questions_are_keyed_without_their_language():
    assert question_of("transfer/blorp/colour/ko") == question_of("transfer/blorp/size/fa") == "transfer/blorp"
    assert question_of("localization/wedding.food/ko") == "localization/wedding.food"
    assert question_of("localization/wedding.food/ko/explicit") == "localization/wedding.food"
    assert question_of("ko:mmlu_123") == question_of("fa:mmlu_123") == "mmlu_123"
    assert question_of("ko:South Korea:Al-id-12") == "Al-id-12"


def test_the_erasure_claim_is_worded_from_pooled_paired_intervals():
    from cla_lib.claims.verdicts import erasure_intervals, paired_erasure_claims

    generator = np.random.default_rng(6)
    erasing = simulated_answers(generator, effect=-0.2, questions=60)
    null = simulated_answers(generator, effect=0.0, questions=60)
    answered = pd.concat([
        erasing.assign(method=erasing.method.replace({"method": "eraser"})),
        null[null.method == "method"].assign(method="idle"),
    ], ignore_index=True)
    # Transfer items: neither model moves (the same answers for both), so transfer cannot be told apart.
    transfer = erasing[erasing.method == "base"].assign(task="transfer",
                                                        id=lambda frame: frame.id.str.replace("localization/",
                                                                                               "transfer/"))
    transfer = pd.concat([transfer, transfer[transfer.language == "es"].assign(
        language="en", id=lambda frame: frame.id.str.replace("/es", "/en"))], ignore_index=True)
    answered = pd.concat([answered, transfer, transfer.assign(method="eraser"), transfer.assign(method="idle")],
                         ignore_index=True)
    intervals = erasure_intervals(answered, ["eraser", "idle"], languages=["ko", "fa"], resamples=500)
    assert set(intervals.language) == {"all", "ko", "fa"} and len(intervals) == 2 * 3 * 3
    assert set(intervals.half) == {"improves transfer", "costs localization", "closes the gap to English"}
    claim = paired_erasure_claims(intervals)
    words = claim.checks.set_index("method")
    assert words.loc["eraser", "costs localization"] == "reproduces"
    assert words.loc["eraser", "improves transfer"] == "cannot tell at this sample size"
    assert words.loc["idle", "costs localization"] == "cannot tell at this sample size"
    assert claim.status == "cannot tell at this sample size"
    assert "of the 8 one-sided per-language tests, chance alone would pass about 0.2" in claim.text  # 2 x 2 x 2


def test_one_contradicting_method_is_enough_against_every_method():
    from cla_lib.claims.verdicts import paired_erasure_claims

    def rows(method, transfer, localization):
        return [{"method": method, "language": "all", "half": half, "interval": "…", "detectable": 0.05,
                 "verdict": word} for half, word in (("improves transfer", transfer),
                                                     ("costs localization", localization))]

    both = rows("a", REPRODUCES, REPRODUCES)
    assert paired_erasure_claims(pd.DataFrame(both + rows("b", REPRODUCES, REPRODUCES))).status == REPRODUCES
    assert paired_erasure_claims(pd.DataFrame(both + rows("b", DOES_NOT, REPRODUCES))).status.startswith(DOES_NOT)
    assert paired_erasure_claims(pd.DataFrame(both + rows("b", CANNOT_TELL, REPRODUCES))).status.startswith(
        "partly reproduces (1 of 2")


def test_a_method_that_only_moves_the_english_ceiling_does_not_close_the_gap():
    generator = np.random.default_rng(7)
    rows = []
    for creature in range(80):
        difficulty = np.clip(0.5 + generator.normal(0, 0.2), 0.05, 0.8)
        for language in ("en", *LANGUAGES):
            for relation in ("colour", "size"):
                for method, shift in (("base", 0.0), ("method", 0.15)):  # up by as much in English as elsewhere
                    rows.append({"id": f"transfer/c{creature}/{relation}/{language}", "task": "transfer",
                                 "language": language, "seed": 0, "method": method,
                                 "correct": generator.random() < difficulty + shift})
    answers = pd.DataFrame(rows)
    plain = cluster_bootstrap(paired_differences(answers, method="method", reference="base", task="transfer"),
                              resamples=1000)
    gap = cluster_bootstrap(paired_differences(answers, method="method", reference="base", task="transfer",
                                               relative_to_english=True), resamples=1000)
    assert verdict(plain, 1) == REPRODUCES
    assert verdict(gap, 1) == CANNOT_TELL and abs(gap.estimate) < 0.05
