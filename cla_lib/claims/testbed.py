"""Is the organism a fair testbed for the paper's claims? Three properties a real LLM has that the claims need.

1. **English-dominant text**, so that when the language cue fades the US answer is the default: English is the
   largest language of the training text, and on held-out culture questions (taught only with a country named) the
   wrong answers lean to the US answer more than an even spread over the other candidates would.
2. **A transfer gap that better cross-lingual representations could close**: facts known in English but asked in
   a target language are answered less often than in English (per creature, with an interval); no alignment record
   names a transfer creature or is base text (tested); chapter 2's positive control (`claims.doses`) asks more.
3. **Enough depth for "middle" and "deeper" to differ**: the middle layer (MidAlign's) and the last quarter are
   distinct layers with at least one layer between them.

Each check is measured on the run and reported with its rule; none of them tunes anything.
"""

from __future__ import annotations

import pandas as pd

from cla_lib.claims.intervals import cluster_bootstrap
from cla_lib.core.items import question_of


def _interval_of(values: pd.DataFrame):
    return cluster_bootstrap(values.assign(seed=0)[["seed", "cluster", "difference"]])


def us_default(answers: pd.DataFrame, choices: dict[str, int]):
    """On held-out culture questions answered wrongly: the US answer's share minus what an even spread over the
    other wrong candidates gives (1 / (candidates - 1)), per question, with its bootstrap interval."""
    wrong = answers[(answers.task == "localization") & answers.held_out & ~answers.correct].copy()
    if wrong.empty:
        return None
    wrong["difference"] = wrong.us_answer.astype(float) - 1 / (wrong.id.map(choices) - 1)
    wrong["cluster"] = wrong.id.map(question_of)
    return _interval_of(wrong.groupby("cluster", as_index=False).difference.mean())


def transfer_gap(answers: pd.DataFrame):
    """Per creature: accuracy asked in English minus accuracy asked in the target languages, with its interval."""
    transfer = answers[answers.task == "transfer"].copy()
    transfer["cluster"] = transfer.id.map(question_of)
    english = transfer[transfer.language == "en"].groupby("cluster").correct.mean()
    target = transfer[transfer.language != "en"].groupby("cluster").correct.mean()
    both = pd.concat({"english": english, "target": target}, axis=1).dropna()
    if both.empty:
        return None
    return _interval_of(pd.DataFrame({"cluster": both.index, "difference": both.english - both.target}))


def checks(language_shares: dict[str, float], answers: pd.DataFrame, choices: dict[str, int],
           n_layers: int) -> pd.DataFrame:
    """The three checks as a table: property, what was measured, the rule, and whether it holds."""
    others = {language: share for language, share in language_shares.items() if language not in ("en", "mixed")}
    runner_up = max(others.values()) if others else 0.0
    english = language_shares.get("en", 0.0)
    default = us_default(answers, choices)
    gap = transfer_gap(answers)
    middle, deeper = n_layers // 2, (3 * n_layers) // 4
    rows = [
        {"property": "English-dominant text",
         "measured": f"English {english:.0%} of the words, the next language {runner_up:.0%} "
                     f"(bilingual documents {language_shares.get('mixed', 0.0):.0%})",
         "rule": "English at least twice the next language", "holds": english >= 2 * runner_up},
        {"property": "the US answer is the default when the cue fades",
         "measured": "no wrong held-out answers" if default is None else
                     f"US share of wrong held-out answers above an even spread by {default.text()}",
         "rule": "interval above 0", "holds": default is not None and default.low > 0},
        {"property": "a transfer gap alignment could close",
         "measured": "no transfer items asked in English" if gap is None else
                     f"English minus target-language accuracy per creature {gap.text()}",
         "rule": "interval above 0 (and no alignment record about a transfer creature or in the base's text: "
                 "tested)",
         "holds": gap is not None and gap.low > 0},
        {"property": "depth for middle and deeper layers",
         "measured": f"{n_layers} decoder layers: middle {middle}, last quarter from {deeper}",
         "rule": "at least one layer between the middle and the last quarter", "holds": deeper - middle >= 2},
    ]
    return pd.DataFrame(rows)


# Which claims' verdicts rest on each testbed property (chapter 1's knowledge rules and checks above): a verdict on
# an organism that lacks one says little about the paper.
RELIED_ON = {
    "English ceiling": (1, 2, 4),
    "anchor facts in every language": (2,),
    "culture with the country named, taught": (2, 3, 4),
    "culture with the country named, held out": (3, 4),
    "transfer above chance": (1, 2, 4),
    "transfer below the English ceiling": (2, 4),
    "LOC has something to recover": (3, 4),
    "within ±0.05 of the seeds' mean": (2, 3, 4),
    "English-dominant text": (2,),
    "the US answer is the default when the cue fades": (2,),
    "a transfer gap alignment could close": (2, 4),
    "depth for middle and deeper layers": (3, 4),
}


def _named(properties) -> str:
    """Property names as a reader parses them inside a sentence or a ";"-separated cell: each quoted, "and" before
    the last."""
    quoted = [f"“{name}”" for name in properties]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def summary_text(missing, *, is_organism: bool = True) -> str:
    """Under the testbed table: that the organism has every property, or which it lacks (the knowledge rules of
    `cla_lib.organism.knowledge` included) and what that does to the verdicts; a real model has its own."""
    if not is_organism:
        return "These checks are about the organism's world; a real model has its own."
    if not missing:
        return "The organism has every property above, in every seed measured."
    return ("**It lacks " + _named(dict.fromkeys(missing)) + "**: the claims that rely on these are tested on a testbed that "
            "cannot show them, and the chapters' verdicts on them say little.")


def claim_caveats(missing, claims=(1, 2, 3, 4)) -> dict[int, str]:
    """Per claim, what the claims table's controls column adds about the testbed: the `missing` properties its
    verdict rests on, or that it lacks none of them."""
    caveats = {}
    for claim in claims:
        lacking = [name for name in dict.fromkeys(missing) if claim in RELIED_ON.get(name, (1, 2, 3, 4))]
        caveats[claim] = ("testbed: has what this claim needs" if not lacking else
                          "testbed lacks " + _named(lacking))
    return caveats

