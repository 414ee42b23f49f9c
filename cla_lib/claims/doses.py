"""Alignment at several doses, and the testbed's positive control: can alignment raise transfer in this world?

Every aligned organism keeps checkpoints after a quarter and a half of its steps (`cla_lib.organism.aligned.DOSES`), so one
seed's dose-response costs scoring only. Each (method, dose) is compared with the base, paired, with the intervals
of `cla_lib.claims.intervals`. The positive control asks whether *any* alignment raises transfer: with k method-dose
pairs tested, each interval is a family-wise one (Bonferroni, level 1 - 0.05 / k), so that picking the best of k does
not find a rise in noise (tested on planted rises and on noise).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from cla_lib.alignment import CONTROLS
from cla_lib.claims.comparison import BASE, Run, evaluate
from cla_lib.claims.intervals import cluster_bootstrap, paired_differences
from cla_lib.organism.aligned import dose_directories

HALVES = (("transfer", "Δtransfer"), ("localization", "Δlocalization"))
RAISES_TRANSFER_RULE = (
    "Alignment can raise transfer in this world when at least one method, at one of its doses, raises transfer over "
    "its base with a family-wise 95% interval above zero (each of the k method-dose intervals at level 1 − 0.05/k, "
    "Bonferroni), resampling creatures.")


def dose_label(method: str, dose: float) -> str:
    return f"{method} ×{dose:g}"


def dose_runs(runs: Sequence[Run], seed: int) -> list[Run]:
    """The base of `seed` and every aligned organism of that seed at each of its doses (``"<method> ×<dose>"``)."""
    base = [run for run in runs if run.method == BASE and run.seed == seed]
    if not base:
        raise ValueError(f"no base run of seed {seed} to compare the doses with")
    doses = [Run(dose_label(run.method, dose), seed, str(path))
             for run in runs if run.seed == seed and run.method != BASE
             for dose, path in sorted(dose_directories(run.source).items())]
    return base + doses


def dose_answers(runs: Sequence[Run], answered: pd.DataFrame, seed: int, languages: Sequence[str], *,
                 batch_size: int = 64) -> tuple[list[Run], pd.DataFrame]:
    """`dose_runs` of `seed` and their answers, the rows of `evaluate`. The base's and each full dose's answers are
    `answered`'s own (`evaluate` of `runs`: the same models on the same items), so only the partial checkpoints are
    scored; the rows come in `dose_runs`' order, as one `evaluate` of them all would give them."""
    models = dose_runs(runs, seed)
    partial = [run for run in models if run.method != BASE and not run.method.endswith(f" ×{1.0:g}")]
    _, scored = evaluate(partial, languages, batch_size=batch_size)
    own = answered[answered.seed == seed]
    frames = []
    for run in models:
        method, _, dose = run.method.rpartition(" ×")
        if run.method == BASE or dose == f"{1.0:g}":
            frames.append(own[own.method == (method or BASE)].assign(method=run.method))
        else:
            frames.append(scored[scored.method == run.method])
    return models, pd.concat(frames, ignore_index=True)


def dose_intervals(answered: pd.DataFrame, runs: Sequence[Run], *, resamples: int = 4000) -> pd.DataFrame:
    """Per (method, dose, half): the paired difference from the base with its 95% interval, and for the transfer
    half of the alignment methods (not the replay controls) the family-wise interval of `RAISES_TRANSFER_RULE`."""
    doses = [(run.method.rsplit(" ×", 1)[0], float(run.method.rsplit(" ×", 1)[1]), run.method)
             for run in runs if run.method != BASE]
    tested = [label for method, _, label in doses if method not in CONTROLS]
    family_level = 1 - 0.05 / max(1, len(tested))
    rows = []
    for method, dose, label in doses:
        for task, half in HALVES:
            differences = paired_differences(answered, method=label, reference=BASE, task=task)
            interval = cluster_bootstrap(differences, resamples=resamples)
            row = {"method": method, "dose": dose, "half": half, "estimate": interval.estimate,
                   "interval": interval.text(), "low": interval.low, "high": interval.high,
                   "questions": interval.n_clusters, "detectable": interval.half_width}
            if task == "transfer" and label in tested:
                family = cluster_bootstrap(differences, resamples=resamples, level=family_level)
                row.update(family_low=family.low, family_high=family.high, family_level=family_level)
            rows.append(row)
    return pd.DataFrame(rows)


def dose_table(intervals: pd.DataFrame, labels: dict | None = None) -> pd.DataFrame:
    """The intervals as a table to read: one row per (method, dose), one column per half (estimate [95% interval]),
    and the questions each half is paired over."""
    frame = intervals.assign(cell=[f"{row.estimate:+.3f} [{row.low:+.3f}, {row.high:+.3f}]"
                                   for row in intervals.itertuples()])
    table = frame.pivot_table(index=["method", "dose"], columns="half", values="cell", aggfunc="first", sort=False)
    table = table[[half for _, half in HALVES]]
    for _, half in HALVES:
        table[f"n ({half})"] = frame[frame.half == half].groupby(["method", "dose"], sort=False).questions.first()
    return table.rename(index=labels or {}, level="method")


def raises_transfer(intervals: pd.DataFrame, labels: dict | None = None, *, seed: int = 0) -> dict:
    """`RAISES_TRANSFER_RULE` on `dose_intervals`: whether it holds and the best method-dose pair, in words for the
    chapter (``text``) and for the claims table's controls column (``control``)."""
    tested = intervals.dropna(subset=["family_low"]) if "family_low" in intervals else intervals.iloc[0:0]
    if tested.empty:
        text = "no alignment method at any dose to test"
        return {"holds": False, "text": text, "control": f"alignment raises transfer (positive control): {text}"}
    best = tested.loc[tested.family_low.idxmax()]
    name = f"{(labels or {}).get(best.method, best.method)} at ×{best.dose:g}"
    holds = bool(best.family_low > 0)
    word = "found" if holds else "not found"
    detail = (f"best {name}, Δtransfer {best.interval}; family-wise {best.family_level:.1%} lower bound "
              f"{best.family_low:+.3f} over {len(tested)} method-dose pairs")
    return {"holds": holds, "method": best.method, "dose": float(best.dose), "estimate": float(best.estimate),
            "family_low": float(best.family_low), "tested": len(tested),
            "text": f"**Positive control {word}** (seed {seed}): {detail}.",
            "control": f"alignment raises transfer (positive control, seed {seed}'s doses): {word}, {detail}"}
