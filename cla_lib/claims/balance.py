"""Chapter 4's claim in words: Surgical Steering's balance against the base, the CLA methods and LOC steering.

The intervals and the verdict come from `verdicts` (`balance_intervals`, `paired_balance_claims`,
`aligned_steering_intervals`); this module lays one seed's test split out as a plane of conditions and words what
the intervals found, so that the chapter displays and glues while each conditional sentence is written once.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cla_lib.claims.intervals import DOES_NOT, REPRODUCES
from cla_lib.claims.plots import METHOD_LABELS
from cla_lib.plane.evaluation import points_frame
from cla_lib.steering.study import SURGICAL_CONFIGURATIONS, SURGICAL_CONTROL

# How the verdict's rows name each model Surgical Steering is compared with.
LABELS = {**METHOD_LABELS, "base": "the base", "en_steering": "English steering", "loc_steering": "LOC steering",
          "surgical": "Surgical Steering", "explicit_cue": "the explicit cue"}
# Each condition's marker family on the plane: the CLA methods are squares, steering configurations triangles.
FAMILIES = {"base": "base", "English steering": "CLA method", "LOC steering": "steering",
            "Surgical Steering": "steering", SURGICAL_CONTROL: "negative control"}
EXPLICIT_CUE = "localization: explicit cue − LOC steering"


def scope_text(is_organism: bool, aligned_methods: Sequence[str]) -> str:
    """Which CLA methods this run compares with: the aligned organisms, or English steering alone."""
    if not is_organism:
        return ("This run is on a model that is not the organism, so there are no aligned organisms: the CLA method "
                "compared with is English steering alone.")
    if aligned_methods:
        return ("The aligned organisms are " + ", ".join(METHOD_LABELS.get(method, method)
                                                         for method in aligned_methods) + ", of each seed.")
    return "No aligned organism was asked for (`aligned` is empty): the CLA method compared with is English steering."


def conditions_plane(study, aligned_points: dict) -> tuple[pd.DataFrame, str]:
    """One seed's test split as a plane of conditions (the study's configurations, the explicit cue when its items
    carry one, and the aligned organisms' `aligned_points` by method), and the sentence that says whether the cue
    is in it. The cue concerns culture questions only, so its transfer is the base model's."""
    rows = [points_frame(points, condition=name, method=SURGICAL_CONFIGURATIONS[name], family=FAMILIES[name])
            for name, points in study.planes.items()]
    if study.explicit:
        explicit = points_frame(study.explicit)
        base_rows = rows[0].set_index("language")
        explicit["transfer"] = explicit.language.map(base_rows.transfer)
        explicit["transfer_interval"] = explicit.language.map(base_rows.transfer_interval)
        rows.append(explicit.assign(condition="explicit cue", method="explicit_cue", family="prompting"))
        note = "The explicit cue is the diamond."
    else:
        note = ("These culture questions carry no explicitly cued version (`meta['explicit_prompt']`), so the "
                "explicit-cue baseline is left out of this run.")
    for method, points in aligned_points.items():
        rows.append(points_frame(points, condition=METHOD_LABELS.get(method, method), method=method,
                                 family="CLA method"))
    return pd.concat(rows, ignore_index=True), note


def control_text(control: pd.Series) -> str:
    """The negative control's row (random directions at Surgical Steering's layers and strengths, against the
    base), in words: null, or better than the base, which would make the gain over the base no evidence."""
    return (f"Its negative control, random directions with EN's and LOC's norms at Surgical Steering's layers and "
            f"strengths (`cla_lib.steering.SURGICAL_CONTROL`), against the base: Δ(transfer + localization) "
            f"{control['Δ(transfer + localization)']}, "
            + ("null, as it must be." if control.verdict != REPRODUCES else
               "**better than the base: the apparatus finds balance in noise**, so Surgical Steering's gain over the "
               "base is no evidence."))


def controls_status(control: pd.Series) -> str:
    """The claims table's controls for claim 4."""
    return ("negative control null" if control.verdict != REPRODUCES else
            "negative control not null (random directions balance better than the base)")


def claim_evidence(intervals: pd.DataFrame, seeds: int) -> str:
    """The claims table's evidence for claim 4: the balance against the base and how many models Surgical Steering
    beats, from the verdict's checks."""
    against_base = intervals.set_index("against").loc["base"]
    return (f"Δ(transfer + localization) against the base {against_base['Δ(transfer + localization)']}"
            f"; better than {list(intervals.verdict).count(REPRODUCES)} of {len(intervals)} models (95% intervals;"
            f" n = {against_base['creature_questions']} creature questions and {against_base['culture_questions']}"
            f" culture questions per seed, {seeds} seeds; detectable ±{intervals.detectable.max():.3f})")


def beside_comparisons(against: Sequence[str], labels: dict, *, explicit: bool) -> list[tuple]:
    """The comparisons reported beside the verdict (`verdicts.paired_intervals`): Surgical Steering's US answers
    against each model (lower is the claim), and the explicit cue against LOC steering when the items have it."""
    comparisons = [(f"US answers: Surgical Steering − {labels.get(other, other)}", "surgical", other, "localization",
                    "us_answer", -1) for other in against]
    if explicit:
        comparisons.append((EXPLICIT_CUE, "explicit_cue", "loc_steering", "localization", "correct", 1))
    return comparisons


def beside_text(beside: pd.DataFrame, *, explicit: bool) -> str:
    """The comparisons of `beside_comparisons` in words: fewer or more US answers than how many models, and whether
    naming the country localizes better than LOC steering."""
    lower_bias = beside[beside.comparison.str.startswith("US answers")]
    fewer, more = (list(lower_bias.verdict).count(word) for word in (REPRODUCES, DOES_NOT))
    counted = [f"{word} US answers than {count} of them" for word, count in (("fewer", fewer), ("more", more))
               if count]
    text = (f"Of the {len(lower_bias)} models compared, Surgical Steering gives "
            + (" and ".join(counted) + (", and as many as the rest as far as this sample can tell."
                                        if fewer + more < len(lower_bias) else ".")
               if counted else "US answers as often as each, as far as this sample can tell: its English-centric "
                               "bias cannot be told apart from theirs here."))
    if explicit:
        cue = beside.set_index("comparison").loc[EXPLICIT_CUE]
        text += (f" Naming the country against LOC steering alone: {cue.interval}, "
                 + {REPRODUCES: "the cue localizes better than steering towards the culture.",
                    DOES_NOT: "LOC steering localizes better than the cue."}.get(
                        cue.verdict, "no difference this sample can tell."))
    return text


def undo_text(undo: pd.DataFrame | None, labels: dict) -> str:
    """`verdicts.aligned_steering_intervals` in words, per aligned organism: whether LOC steering raises
    localization and restores erased questions better than its random control, and what Surgical Steering does."""
    if undo is None:
        return "No aligned organism was asked for (`aligned` is empty), so there is no erasure to undo here."
    words = {REPRODUCES: "does", DOES_NOT: "does the opposite:"}
    return " ".join(
        f"On {labels.get(method, method)}, LOC steering {words.get(rows.verdict.iloc[0], 'cannot be told to')} "
        f"raise localization ({rows.interval.iloc[0]})"
        + (f" and, on the questions it erased, {words.get(rows.verdict.iloc[1], 'cannot be told to')} restore more "
           f"than its random control ({rows.interval.iloc[1]})" if len(rows) == 3 else "")
        + f"; Surgical Steering changes its transfer + localization by {rows.interval.iloc[-1]}."
        for method, rows in undo.groupby("method", sort=False))
