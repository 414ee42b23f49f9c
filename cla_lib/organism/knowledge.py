"""What a base organism knows of its world: the testbed's first two properties, measured.

A verdict about alignment or steering says something about the paper only if the organism knows the facts that
alignment should carry across languages and the culture that it should not erase, and leaves room for both to
move. These are the measurements (organism issue, items 1 and 2), each a share of items answered right: the English
ceiling, transfer, anchor facts (and the weakest language's), and culture questions with and without the country
named, on questions taught implicitly and on held-out ones. `RULES` turns them into the testbed's pass/fail rows;
the thresholds are the issue's, fixed before any design run. Design notes: docs/design-notes.md.
"""

from __future__ import annotations

from statistics import mean

import pandas as pd

from cla_lib.plane.evaluation import answers, with_explicit_cue
from cla_lib.core.languages import DEFAULT_LANGUAGES, ENGLISH
from cla_lib.plane.loading import load_model
from cla_lib.model.reference import ModelRef
from cla_lib.organism.base import world_of
from cla_lib.organism.registry import organism_path
from cla_lib.organism.world import World

CHANCE = 1 / 8
# How far naming the country must raise held-out culture questions for LOC steering to have something to recover.
LOC_HEADROOM = 0.20

# (name, rule text, test on the measurements): knowledge (item 1) and headroom (item 2).
RULES = (
    ("English ceiling", "≥ 0.85", lambda k: k["english_ceiling"] >= 0.85),
    ("anchor facts in every language", "≥ 0.85 in the weakest language", lambda k: k["anchor_min"] >= 0.85),
    ("culture with the country named, taught", "≥ 0.85", lambda k: k["culture_taught_cued"] >= 0.85),
    ("culture with the country named, held out", "≥ 0.75", lambda k: k["culture_held_out_cued"] >= 0.75),
    ("transfer above chance", "≥ chance + 0.15", lambda k: k["transfer"] >= CHANCE + 0.15),
    ("transfer below the English ceiling", "≤ ceiling − 0.15",
     lambda k: k["transfer"] <= k["english_ceiling"] - 0.15),
    ("LOC has something to recover", f"held out: named − plain ≥ {LOC_HEADROOM:.2f}",
     lambda k: k["culture_held_out_cued"] - k["culture_held_out"] >= LOC_HEADROOM),
)


def accuracy(lm, items) -> float:
    if not items:
        return float("nan")
    chosen = answers(lm, items)
    return mean(float(choice == item.gold) for choice, item in zip(chosen, items))


def knowledge(lm, world: World, languages=DEFAULT_LANGUAGES) -> dict[str, float]:
    """The measurements above for `model` (a loaded organism) on its `world`."""
    result = {"english_ceiling": accuracy(lm, world.fact_items(ENGLISH, "transfer"))}
    transfer, plain, anchor, culture = [], [], {}, {key: [] for key in ("taught", "held_out", "taught_cued", "held_out_cued")}
    for language in languages:
        transfer.append(accuracy(lm, world.fact_items(language, "transfer")))
        anchor[language] = accuracy(lm, world.fact_items(language, "anchor"))
        items = world.localization_items(language)
        plain.append(accuracy(lm, items))
        for held_out, name in ((False, "taught"), (True, "held_out")):
            chosen = [item for item in items if item.meta["held_out"] == held_out]
            culture[name].append(accuracy(lm, chosen))
            culture[f"{name}_cued"].append(accuracy(lm, with_explicit_cue(chosen)))
    anchor[ENGLISH] = accuracy(lm, world.fact_items(ENGLISH, "anchor"))
    result.update(transfer=mean(transfer), anchor=mean(anchor.values()), anchor_min=min(anchor.values()),
                  **{f"culture_{name}": mean(values) for name, values in culture.items()})
    result["culture_plain"] = mean(plain)
    return result


def rule_rows(measured: dict[str, float]) -> list[dict]:
    """`RULES` applied to `knowledge`'s measurements: property, rule, whether it holds."""
    return [{"property": name, "rule": rule, "holds": bool(test(measured))} for name, rule, test in RULES]


# The measurements whose spread over seeds item 5 bounds: every seed within this of the seeds' mean.
STABLE = ("english_ceiling", "transfer", "culture_plain")
STABILITY = 0.05


def seed_table(seeds, size: str | None = None) -> pd.DataFrame:
    """`knowledge` of each seed's base organism, one row per seed, with each rule's verdict as a column and
    ``stable``: whether the seed sits within `STABILITY` of the seeds' mean on every `STABLE` measurement."""
    rows = []
    for seed in seeds:
        path = organism_path(ModelRef.of_organism(seed=seed, size=size), progress=False)
        measured = knowledge(load_model(str(path)), world_of(path))
        rows.append({"seed": seed, **measured, **{row["property"]: row["holds"] for row in rule_rows(measured)}})
    table = pd.DataFrame(rows).set_index("seed")
    spread = (table[list(STABLE)] - table[list(STABLE)].mean()).abs()
    table["within ±0.05 of the seeds' mean"] = (spread <= STABILITY).all(axis=1)
    return table
