"""Verdicts: the stated rules that turn measured differences into the chapters' claims."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from cla_lib.comparison import BASE, CONTROL
from cla_lib.intervals import CANNOT_TELL, DOES_NOT, REPRODUCES, cluster_bootstrap, paired_differences
from cla_lib.intervals import verdict as interval_verdict


@dataclass(frozen=True)
class Verdict:
    """The verdict on the baseline-erasure claim.

    `status` is ``"holds"``, ``"partly holds"`` or ``"fails"``; `text` says so in one Markdown paragraph, naming
    the methods and languages; `cells` has one row per (method, language) with ``improves_transfer``,
    ``costs_localization`` and ``both``.
    """

    status: str
    text: str
    cells: pd.DataFrame

    def grid(self) -> pd.DataFrame:
        """A method x language table: "T↑ L↓" when both held, "T↑" or "L↓" for one half, "–" for neither."""
        def mark(row) -> str:
            parts = (["T↑"] if row.improves_transfer else []) + (["L↓"] if row.costs_localization else [])
            return " ".join(parts) or "–"

        table = self.cells.assign(mark=self.cells.apply(mark, axis=1)).pivot(index="method", columns="language",
                                                                              values="mark")
        return table.loc[list(dict.fromkeys(self.cells.method)), list(dict.fromkeys(self.cells.language))]


def _names(values: Sequence[str], labels: dict | None) -> str:
    names = [labels.get(value, value) if labels else value for value in values]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def claims(summary: pd.DataFrame, *, method_labels: dict | None = None, language_labels: dict | None = None,
           minimum_seeds: int = 3) -> Verdict:
    """Judge "every method improves transfer and costs localization in every language" from `summarize` output.

    The rule (this module's docstring): a method improves transfer in a language when its transfer difference
    from the base is above zero in every seed, and costs localization when its localization difference is below
    zero in every seed. The claim holds when every (method, language) pair does both, fails when none does, and
    partly holds otherwise. `summary` holds differences against the base (the paper's claim), or against the
    replay control (the same question for each method's objective alone: then the text says so); the replay
    control and the base are never among the methods judged.

    Example:
        >>> verdict = claims(summarize(deltas(plane)))
        >>> verdict.status
        'partly holds'
    """
    reference = summary.reference.iloc[0] if "reference" in summary and len(summary) else BASE
    judged = summary[~summary.method.isin({BASE, CONTROL, reference})]
    if judged.empty:
        raise ValueError("no alignment method to judge")
    n_seeds = judged.n_seeds
    cells = pd.DataFrame({
        "method": judged.method, "language": judged.language, "n_seeds": n_seeds,
        "improves_transfer": (judged.transfer_positive == n_seeds) & (n_seeds > 0),
        "costs_localization": (judged.localization_negative == n_seeds) & (n_seeds > 0),
    }).reset_index(drop=True)
    cells["both"] = cells.improves_transfer & cells.costs_localization
    total, held = len(cells), int(cells.both.sum())
    status = "holds" if held == total else "fails" if held == 0 else "partly holds"

    seeds_low, seeds_high = int(n_seeds.min()), int(n_seeds.max())
    seeds_text = f"{seeds_low}" if seeds_low == seeds_high else f"{seeds_low}–{seeds_high}"
    against = "" if reference == BASE else f" against the {reference} control"
    parts = [f"**The claim {status} here{against}.** Over {seeds_text} seed{'s' if seeds_high > 1 else ''}, "
             f"{held} of {total} method–language pairs both improve transfer and cost localization"]
    if 0 < held < total:
        where = []
        for method, group in cells[cells.both].groupby("method", sort=False):
            languages = list(group.language)
            everywhere = len(languages) == (cells.method == method).sum()
            where.append(f"{_names([method], method_labels)} in "
                         + ("every language" if everywhere else _names(languages, language_labels)))
        parts[-1] += f" ({'; '.join(where)})"
    parts[-1] += "."
    parts.append(f"Transfer improves in {int(cells.improves_transfer.sum())} of {total} pairs and localization "
                 f"falls in {int(cells.costs_localization.sum())} of {total}.")
    if seeds_low < minimum_seeds:
        parts.append(f"With fewer than {minimum_seeds} seeds this verdict is provisional.")
    return Verdict(status=status, text=" ".join(parts), cells=cells)


@dataclass(frozen=True)
class RuleVerdict:
    """A verdict from a stated rule: `status`, one Markdown paragraph `text` with the numbers, and `checks`, one row
    per condition or comparison the rule looked at."""

    status: str
    text: str
    checks: pd.DataFrame

    def grid(self, index: str = "method", columns: str = "language", values: str = "mark") -> pd.DataFrame:
        """`checks` as an `index` x `columns` table of `values` (for comparisons laid out per method and language)."""
        table = self.checks.pivot(index=index, columns=columns, values=values)
        return table.loc[list(dict.fromkeys(self.checks[index])), list(dict.fromkeys(self.checks[columns]))]


COSINE_THRESHOLD = 0.3


DISSOCIATION_RULE = (
    "The dissociation reproduces when (1) the layer where the LOC vector best raises localization is deeper than "
    "the layer where the EN vector best raises transfer (both chosen on the validation split), (2) the EN layer is "
    "not in the last third of the network (relative depth layer / (layers - 1) at most 2/3), (3) the two vectors are "
    f"nearly perpendicular: the mean over languages of |cos(EN, LOC)| is below {COSINE_THRESHOLD} at both layers, "
    "(4) EN steering at its layer raises transfer and (5) LOC steering at its layer raises localization, both "
    "against the unsteered model on the test split (a best layer without an effect is a pick among noise). It "
    "partly reproduces when some of these hold and does not when none does.")


def in_last_third(layer: int, n_layers: int) -> bool:
    """Whether decoder layer `layer` (0-based) of `n_layers` lies in the last third: relative depth above 2/3."""
    return n_layers > 1 and layer / (n_layers - 1) > 2 / 3


def dissociation_claims(*, en_layer: int, loc_layer: int, n_layers: int, cosine_at_en_layer: float,
                        cosine_at_loc_layer: float, en_gain: float, loc_gain: float,
                        threshold: float = COSINE_THRESHOLD, model_label: str = "the base model") -> RuleVerdict:
    """Judge the layer-dissociation claim (the paper's claim 3) by `DISSOCIATION_RULE`.

    Args:
        en_layer, loc_layer: The best steering layers (0-based) of the EN vector for transfer and of the LOC vector
            for localization, chosen on validation.
        n_layers: The model's decoder layers.
        cosine_at_en_layer, cosine_at_loc_layer: The mean over languages of |cos(EN, LOC)| at each of those layers.
        en_gain, loc_gain: On test, transfer under EN steering (at its layer and strength) minus unsteered transfer,
            and the same for localization under LOC steering (means over languages).

    Example:
        >>> dissociation_claims(en_layer=3, loc_layer=6, n_layers=8, cosine_at_en_layer=0.1,
        ...                     cosine_at_loc_layer=0.2, en_gain=0.05, loc_gain=0.1).status
        'reproduces'
    """
    largest_cosine = max(abs(cosine_at_en_layer), abs(cosine_at_loc_layer))
    checks = pd.DataFrame([
        {"condition": "LOC steers best deeper than EN", "holds": loc_layer > en_layer,
         "value": f"LOC layer {loc_layer} vs EN layer {en_layer}"},
        {"condition": "EN's layer is not in the last third", "holds": not in_last_third(en_layer, n_layers),
         "value": f"layer {en_layer} of {n_layers} (relative depth {en_layer / max(1, n_layers - 1):.2f})"},
        {"condition": "EN and LOC nearly perpendicular", "holds": largest_cosine < threshold,
         "value": f"mean |cos| {abs(cosine_at_en_layer):.2f} at layer {en_layer}, {abs(cosine_at_loc_layer):.2f} at "
                  f"layer {loc_layer} (threshold {threshold})"},
        {"condition": "EN steering raises transfer (test)", "holds": en_gain > 0, "value": f"{en_gain:+.3f}"},
        {"condition": "LOC steering raises localization (test)", "holds": loc_gain > 0, "value": f"{loc_gain:+.3f}"},
    ])
    held = int(checks.holds.sum())
    status = "reproduces" if held == len(checks) else "does not reproduce" if held == 0 else "partly reproduces"
    listed = "; ".join(f"({number}) {row.condition}: {row.value}, {'yes' if row.holds else 'no'}"
                       for number, row in enumerate(checks.itertuples(), start=1))
    text = f"**The dissociation {status} on {model_label}.** {held} of {len(checks)} conditions hold: {listed}."
    if en_gain <= 0 and loc_gain <= 0:
        text += (" Neither vector improves its metric on held-out questions, so the best layers are picks among "
                 "noise and their order says nothing about where the model keeps facts and culture.")
    return RuleVerdict(status=status, text=text, checks=checks)


BALANCE_RULE = (
    "A steering configuration gives a better balance than a CLA method in a language when its transfer + "
    "localization on the test split is higher (it Pareto-dominates the method when neither coordinate is lower and "
    "one is higher, the stronger form, marked ≻; a higher sum alone is marked +). The claim holds when it is "
    "better than every CLA method in every language and on the mean over languages, fails when it is better in "
    "none of these comparisons, and partly holds otherwise.")


def balance_claims(plane: pd.DataFrame, *, candidate: str, methods: Sequence[str],
                   method_labels: dict | None = None, candidate_label: str | None = None) -> RuleVerdict:
    """Judge "`candidate` gives a better balance than each CLA method" by `BALANCE_RULE`.

    Args:
        plane: One row per (method, language) with ``transfer`` and ``localization`` (one seed, or means).
        candidate: The method judged (e.g. ``"surgical"``).
        methods: The CLA methods it is compared with (those absent from `plane` are ignored).

    Returns:
        A `RuleVerdict` whose `checks` have one row per (method, language), the languages followed by ``mean``:
        candidate_sum, method_sum, better, dominates, mark (``≻``, ``+`` or ``–``); status ``not tested`` when no
        method is left to compare with.
    """
    name = candidate_label or (method_labels or {}).get(candidate, candidate)
    languages = list(dict.fromkeys(plane.language))
    metrics = plane.groupby(["method", "language"], sort=False)[["transfer", "localization"]].mean()
    means = plane.groupby("method", sort=False)[["transfer", "localization"]].mean()
    compared = [method for method in methods if method in set(plane.method) and method != candidate]
    rows = []
    for method in compared:
        for language in [*languages, "mean"]:
            ours = means.loc[candidate] if language == "mean" else metrics.loc[(candidate, language)]
            theirs = means.loc[method] if language == "mean" else metrics.loc[(method, language)]
            better = ours.transfer + ours.localization > theirs.transfer + theirs.localization
            dominates = bool((ours >= theirs).all() and (ours > theirs).any())
            rows.append({"method": method, "language": language,
                         "candidate_sum": ours.transfer + ours.localization,
                         "method_sum": theirs.transfer + theirs.localization, "better": bool(better),
                         "dominates": dominates, "mark": "≻" if dominates else "+" if better else "–"})
    checks = pd.DataFrame(rows, columns=["method", "language", "candidate_sum", "method_sum", "better", "dominates",
                                         "mark"])
    if checks.empty:
        return RuleVerdict("not tested", f"**Not tested here:** no CLA method to compare {name} with.", checks)
    held = int(checks.better.sum())
    status = "holds" if held == len(checks) else "fails" if held == 0 else "partly holds"
    parts = []
    for method, group in checks.groupby("method", sort=False):
        per_language = group[group.language != "mean"]
        average = group[group.language == "mean"].iloc[0]
        parts.append(f"than {_names([method], method_labels)} in {int(per_language.better.sum())} of "
                     f"{len(per_language)} language{'s' if len(per_language) > 1 else ''} (Pareto-dominating it in "
                     f"{int(per_language.dominates.sum())}) and {'' if average.better else 'not '}on average "
                     f"({average.candidate_sum:.3f} against {average.method_sum:.3f})")
    text = (f"**The claim {status} here.** {name} has the higher transfer + localization " + "; ".join(parts) + ".")
    return RuleVerdict(status=status, text=text, checks=checks)


PLANE_RULE = (
    "The plane can place a model when, in every language, the lower end of the 95% Wilson interval of its transfer "
    "and of its localization lies above chance: both axes then measure something the model does, not guessing. It "
    "partly can when only some (language, axis) pairs clear chance and cannot when none does.")


def plane_claims(plane: pd.DataFrame, *, chance: dict, model_label: str = "the model") -> RuleVerdict:
    """Judge whether both axes of the plane measure `plane`'s model above chance (`PLANE_RULE`; the paper's claim 1
    is a definition, so what a run can check is that its two numbers are not noise).

    `plane` is `evaluation.points_frame` output (one row per language, with ``transfer_interval`` and
    ``localization_interval``); `chance` maps ``transfer`` and ``localization`` to their chance levels.
    """
    rows = []
    for row in plane.itertuples():
        for axis in ("transfer", "localization"):
            low, high = getattr(row, f"{axis}_interval")
            rows.append({"language": row.language, "axis": axis, "value": getattr(row, axis), "low": low,
                         "high": high, "chance": chance[axis], "holds": low > chance[axis]})
    checks = pd.DataFrame(rows)
    held = int(checks.holds.sum())
    status = "holds" if held == len(checks) else "fails" if held == 0 else "partly holds"
    means = checks.groupby("axis").value.mean()
    text = (f"**Both axes measure {model_label} above chance in {held} of {len(checks)} (language, axis) pairs.** "
            f"Mean transfer {means['transfer']:.3f} (chance {chance['transfer']:.3f}), mean localization "
            f"{means['localization']:.3f} (chance {chance['localization']:.3f}).")
    return RuleVerdict(status=status, text=text, checks=checks)


# ----------------------------------------------------------------------------------------------------------
# Baseline erasure from paired intervals (cla_lib.intervals)

ERASURE_HALVES = (("transfer", 1, "improves transfer"), ("localization", -1, "costs localization"))
# Reported beside the halves, not judged by the rule: transfer relative to the same model's English ceiling (the
# change of the gap between the facts asked in the language and asked in English), so that a method that moves the
# ceiling is not read as transfer.
GAP_ROW = (("transfer", 1, "closes the gap to English"),)

PAIRED_ERASURE_RULE = (
    "For each method, its change from the reference model (the base, or the replay control) is measured item by "
    "item, averaged within each question (a culture question with all its languages, a creature with all its "
    "relations) and given a 95% interval by resampling questions within seeds and seeds (`cla_lib.intervals`), over "
    "all seeds and languages together. A method *improves transfer* when the interval of its Δtransfer lies above "
    "zero and *costs localization* when that of its Δlocalization lies below zero; it does not when the interval "
    "lies on the other side of zero, and this run cannot tell otherwise. A method reproduces the claim when both "
    "halves hold and does not when either half is contradicted. The claim (every method) reproduces when every "
    "method does and does not when any method contradicts it; otherwise it partly reproduces (some methods do, "
    "the rest cannot be told) or cannot be told.")


def erasure_intervals(answered: pd.DataFrame, methods: Sequence[str], *, reference: str = BASE,
                      languages: Sequence[str] = (), resamples: int = 4000) -> pd.DataFrame:
    """One row per (method, language, half of the claim): the paired difference from `reference` with its interval,
    n, the detectable effect (half-width) and the verdict word; ``language`` is ``all`` for the pooled test (every
    seed and target language together) and each of `languages` for the per-language ones. A third row per
    (method, language), ``closes the gap to English``, reports transfer relative to the English ceiling."""
    rows = []
    for method in methods:
        for language in [None, *languages]:
            for task, direction, half in ERASURE_HALVES + GAP_ROW:
                interval = cluster_bootstrap(paired_differences(
                    answered, method=method, reference=reference, task=task, language=language,
                    relative_to_english=half == GAP_ROW[0][2]), resamples=resamples)
                rows.append({"method": method, "language": language or "all", "half": half,
                             "estimate": interval.estimate, "low": interval.low, "high": interval.high,
                             "questions": interval.n_clusters, "seeds": interval.n_seeds,
                             "detectable": interval.half_width, "verdict": interval_verdict(interval, direction),
                             "interval": interval.text()})
    return pd.DataFrame(rows)


def paired_erasure_claims(intervals: pd.DataFrame, *, method_labels: dict | None = None,
                          against: str = "the base") -> RuleVerdict:
    """Judge "every method improves transfer and costs localization" by `PAIRED_ERASURE_RULE` from the pooled rows
    of `erasure_intervals`. `checks` has one row per method: both halves' intervals and words, and the method's
    word; the text also counts the per-language pairs where both halves held, with what chance alone would give."""
    halves = {half for _, _, half in ERASURE_HALVES}
    intervals = intervals[intervals.half.isin(halves)]
    pooled = intervals[intervals.language == "all"]
    rows = []
    for method, halves in pooled.groupby("method", sort=False):
        words = dict(zip(halves.half, halves.verdict))
        texts = dict(zip(halves.half, halves.interval))
        word = (REPRODUCES if all(word == REPRODUCES for word in words.values()) else
                DOES_NOT if DOES_NOT in words.values() else CANNOT_TELL)
        rows.append({"method": method, "Δtransfer": texts["improves transfer"],
                     "improves transfer": words["improves transfer"], "Δlocalization": texts["costs localization"],
                     "costs localization": words["costs localization"], "verdict": word,
                     "detectable": float(halves.detectable.max())})
    checks = pd.DataFrame(rows)
    counts = checks.verdict.value_counts()
    held, contradicted = int(counts.get(REPRODUCES, 0)), int(counts.get(DOES_NOT, 0))
    if held == len(checks):
        status = REPRODUCES
    elif contradicted:  # "every method ..." is contradicted by one method that does not
        status = f"{DOES_NOT} ({contradicted} of {len(checks)} methods contradict it)"
    elif held:
        status = f"partly reproduces ({held} of {len(checks)} methods; cannot tell for the rest)"
    else:
        status = CANNOT_TELL
    per_language = intervals[intervals.language != "all"]
    both = (per_language.verdict == REPRODUCES).groupby([per_language.method, per_language.language]).all()
    tests = len(per_language)
    listed = "; ".join(
        f"{(method_labels or {}).get(row['method'], row['method'])}: Δtransfer {row['Δtransfer']}, "
        f"{row['improves transfer']}; Δlocalization {row['Δlocalization']}, {row['costs localization']}"
        for row in checks.to_dict(orient="records"))
    text = (f"**Against {against}, the claim: {status}.** {listed}. Per language, {int(both.sum())} of {len(both)} "
            f"method–language pairs show both halves; of the {tests} one-sided per-language tests, chance alone "
            f"would pass about {0.025 * tests:.1f} (2.5% each, were there no effect at all).")
    return RuleVerdict(status=status, text=text, checks=checks)
