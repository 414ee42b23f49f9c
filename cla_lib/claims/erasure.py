"""Chapter 2's claim in words: what the erasure comparison found, for the page and for the first page's claims table.

The numbers come from `comparison`, `verdicts` and `doses`; these functions only choose the words, so that the
chapter displays and glues while every conditional sentence lives where it can be read and tested.
"""

from __future__ import annotations

import pandas as pd

from cla_lib.claims.verdicts import RuleVerdict

# The `comparison.training_data` columns that would make an aligned organism's data old news to the base.
OVERLAP = ["about_scored", "mention_scored", "contain_scored_prompt", "in_base_text"]


def data_text(data: pd.DataFrame) -> str:
    """Whether the methods' data are new to the base, from `comparison.training_data` (empty: a real model's)."""
    if data.empty:
        return "A real model's training data are the user's: check them against the scored items."
    overlapping = int(data[OVERLAP].to_numpy().sum())
    if overlapping == 0:
        return ("No record of any method or seed concerns a scored creature or question, contains a scored prompt, or "
                "is (or is inside) a document the base trained on: the methods' data are new to the base.")
    return (f"**{overlapping} records overlap with scored items or the base's text**: the verdicts below are "
            "contaminated by what the methods trained on, or the methods teach nothing new.")


def claim_evidence(verdict: RuleVerdict, intervals: pd.DataFrame) -> str:
    """The claims table's evidence for claim 2: how many methods transfer and erase, on how many questions,
    creatures and seeds, and the largest effect the run could have missed."""
    pooled = intervals[intervals.language == "all"]
    sizes = pooled.groupby("half").questions.max()
    return (f"{int((verdict.checks.verdict == 'reproduces').sum())} of {len(verdict.checks)} methods transfer and "
            f"erase (paired 95% intervals over {sizes['costs localization']} culture questions and "
            f"{sizes['improves transfer']} creatures per seed × {int(pooled.seeds.max())} seeds; detectable effects "
            f"up to ±{pooled.detectable.max():.3f})")


def controls_status(objective: RuleVerdict | None, raises: dict | None) -> str:
    """The claims table's controls for claim 2: the verdict against each method's own replay control (None: no
    replay controls were run) and the positive control of `doses.raises_transfer` (None: no doses)."""
    controls = [f"against each method's own replay control: {objective.status}" if objective is not None
                else "no replay controls in this run (include_replay=False)"]
    controls += [raises["control"]] if raises else []
    return "; ".join(controls)
