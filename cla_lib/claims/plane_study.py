"""Chapter 1's study of the base model: its world in a few tables, its plane in numbers, and where its localization
has room to move.

The chapter loads, scores and draws; the tables, the headline numbers and the sentences that depend on them are
made here, so that what a number means is worded once, beside the rule it comes from (`verdicts.plane_claims`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cla_lib.claims.verdicts import RuleVerdict
from cla_lib.organism import training_record, world_of
from cla_lib.organism.knowledge import LOC_HEADROOM


def world_tables(path: str | Path):
    """The organism's world (`world_of`), a few example texts per language and kind, and how many creatures and
    culture questions of each kind it has (from its training record's config)."""
    world = world_of(path)
    examples = pd.DataFrame(world.example_table()).pivot(index="language", columns="kind", values="text")
    config = training_record(path)["config"]
    sizes = pd.Series({
        "anchor creatures": config["world"]["n_anchor"], "bridge creatures": config["world"]["n_bridge"],
        "transfer creatures": config["world"]["n_transfer"], "pool creatures": config["world"]["n_pool"],
        "culture questions": len(world.culture),
        "of which the alignment pool (never scored)": len(world.alignment_pool),
        "held-out culture questions per language": len(world.held_out["ko"]),
    }, name="count")
    return world, examples, sizes


def plane_numbers(plane: pd.DataFrame, ceiling: float, chance: dict, languages: Sequence[str]) -> dict:
    """The numbers the chapter's prose reads, by glue name: the English ceiling, the mean transfer and its gap to
    the ceiling, the mean localization and English bias, chance on both axes, and the number of languages."""
    mean_transfer, mean_localization = plane.transfer.mean(), plane.localization.mean()
    return {"english_ceiling": float(ceiling), "mean_transfer": float(mean_transfer),
            "transfer_gap": float(ceiling - mean_transfer), "mean_localization": float(mean_localization),
            "mean_english_bias": float(plane.english_bias.mean()), "transfer_chance": float(chance["transfer"]),
            "localization_chance": float(chance["localization"]), "n_languages": len(languages)}


def claim_evidence(claim: RuleVerdict, plane: pd.DataFrame, chance: dict) -> str:
    """The claims table's evidence for claim 1: the (language, axis) pairs above chance, the means against chance,
    and the items they rest on."""
    return (f"{int(claim.checks.holds.sum())} of {len(claim.checks)} (language, axis) pairs above chance; transfer "
            f"{plane.transfer.mean():.2f} (chance {chance['transfer']:.2f}), localization "
            f"{plane.localization.mean():.2f} (chance {chance['localization']:.2f}); n = "
            f"{int(plane.n_transfer.sum())} transfer and {int(plane.n_localization.sum())} culture items")


def controls_status(chance: dict) -> str:
    """The claims table's controls for claim 1: chance is the rule's reference."""
    return f"chance, {chance['transfer']:.2f} and {chance['localization']:.2f}, is the rule's reference"


def localization_breakdown(answers: pd.DataFrame, explicit: pd.DataFrame, languages: Sequence[str]) -> pd.DataFrame:
    """Per language: localization on the culture questions taught implicitly and on the held-out ones, with and
    without the country named (`explicit`: the answers with the explicit cue), and the US answer's share."""
    culture = answers[answers.task == "localization"]
    return pd.DataFrame({
        "taught implicitly": culture[~culture.held_out].groupby("language").correct.mean(),
        "held out (explicit only)": culture[culture.held_out].groupby("language").correct.mean(),
        "held out, country named": explicit[explicit.held_out].groupby("language").correct.mean(),
        "all, no cue": culture.groupby("language").correct.mean(),
        "all, country named": explicit.groupby("language").correct.mean(),
        "US answer, no cue": culture.groupby("language").us_answer.mean(),
    }).loc[languages]


def recoverable_text(breakdown: pd.DataFrame) -> str:
    """How much naming the country recovers on the held-out questions: at most what a LOC vector, which stands in
    for the named country, could recover there; below `LOC_HEADROOM`, LOC steering has little to show."""
    before, after = breakdown["held out (explicit only)"].mean(), breakdown["held out, country named"].mean()
    recoverable = float(after - before)
    return (f"On the held-out questions themselves, naming the country moves the local answer from {before:.2f} to "
            f"{after:.2f}: {recoverable:+.2f} is what a localization steering vector, which stands in for the named "
            "country, could at most recover there (chapter 3)"
            + ("." if recoverable >= LOC_HEADROOM else
               f", less than the {LOC_HEADROOM:.2f} the testbed asks of it (below), so LOC steering has little to "
               "show on this organism."))
