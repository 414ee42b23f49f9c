"""Verdicts: the stated rules that turn measured differences into the chapters' claims."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from cla_lib.claims.analysis import random_cosine_bound, vector_cosines
from cla_lib.claims.comparison import BASE, reference_of
from cla_lib.claims.intervals import (
    CANNOT_TELL, DOES_NOT, REPRODUCES, cluster_bootstrap, paired_differences, summed_bootstrap
)
from cla_lib.claims.intervals import verdict as interval_verdict
from cla_lib.steering.selection import layer_difference, resampled_layers
from cla_lib.steering.study import CONTROL_KINDS, STUDY_KINDS


@dataclass(frozen=True)
class RuleVerdict:
    """A verdict from a stated rule: `status`, one Markdown paragraph `text` with the numbers, and `checks`, one row
    per condition or comparison the rule looked at."""

    status: str
    text: str
    checks: pd.DataFrame


def size_note(tiny: bool, seeds: int | None = None) -> str:
    """What a run's numbers can say, under its verdict: nothing about the paper on the tiny organism (too small to
    learn its world); otherwise that every number is this run's, and over how many seeds its intervals span."""
    if tiny:
        return ("This was a quick run on the tiny organism, which is too small to learn its world: its numbers sit "
                "near chance and say nothing about the paper.")
    if seeds is None:
        return "Every number in this chapter comes from this run."
    return (f"Every number in this chapter comes from this run; the verdict's intervals span {seeds} seed"
            f"{'s' if seeds > 1 else ''}.")


def in_last_third(layer: int, n_layers: int) -> bool:
    """Whether decoder layer `layer` (0-based) of `n_layers` lies in the last third: relative depth above 2/3."""
    return n_layers > 1 and layer / (n_layers - 1) > 2 / 3


PAIRED_DISSOCIATION_RULE = (
    "Each part of the claim is measured over every seed with a 95% interval, and the words come from the intervals "
    "(`cla_lib.claims.intervals`): (1) *LOC deeper than EN*: the layer LOC steering chooses for localization minus the "
    "layer EN steering chooses for transfer, both re-chosen on bootstrap resamples of the validation questions "
    "(ties drawn at random, not to the earlier layer) and averaged over resampled seeds; (2) *EN raises transfer* "
    "and (3) *LOC raises localization* on the test split, as paired differences from the unsteered model averaged "
    "within questions (a best layer without an effect is a pick among noise). A part reproduces when its interval "
    "lies above zero and does not when it lies below. The dissociation reproduces when all three do, does not when "
    "any is contradicted, and cannot be told otherwise (partly, when some reproduce). EN's depth and whether the "
    "vectors are near-perpendicular (`PERPENDICULAR_RULE`) are reported beside it.")

# What "near-perpendicular" means for the claim: a cosine below 0.3 (more than 72 degrees apart).
NEAR_PERPENDICULAR = 0.3

PERPENDICULAR_RULE = (
    "At a layer, EN and LOC are called *near-perpendicular* when their |cosine| (mean over languages), corrected for "
    "each vector's sampling noise (divided by the square root of the two split-half reliabilities, "
    f"`cla_lib.claims.analysis.vector_reliability`), is below {NEAR_PERPENDICULAR}, and the vectors are reliable enough for "
    "that to mean something: their halves agree better than random directions of the residual's dimension do, and "
    f"a |cosine| of {NEAR_PERPENDICULAR} would have stood out above the bound that random directions' |cosine| stays "
    "below 95% of the time (`cla_lib.claims.analysis.random_cosine_bound`, for the same mean over languages). They are "
    f"*not* near-perpendicular when the |cosine| exceeds that bound and its corrected value reaches "
    f"{NEAR_PERPENDICULAR}. Otherwise the vectors are too noisy to tell: a small cosine between noisy vectors says "
    "nothing.")


PERPENDICULAR_WORDS = {REPRODUCES: "near-perpendicular", DOES_NOT: "not near-perpendicular",
                       CANNOT_TELL: "too noisy to tell"}


def perpendicularity(reliability: pd.DataFrame, cosines: pd.DataFrame, layer: int, dimension: int) -> dict:
    """`PERPENDICULAR_RULE` at one layer, from `analysis.vector_reliability` and the ``en·loc`` rows of
    `analysis.vector_cosines` (of the same model and languages): the numbers it reads and its verdict word."""
    at = reliability[reliability.layer == layer].groupby("kind")[["split_half", "reliability"]].mean()
    pair = cosines[(cosines.pair == "en·loc") & (cosines.layer == layer)]
    n_languages = pair.language.nunique()
    chance = random_cosine_bound(dimension, averaged=n_languages)
    agreement_bound = random_cosine_bound(dimension, averaged=n_languages, absolute=False)
    observed = float(pair.cosine.abs().mean())
    scale = float(at.loc["en", "reliability"].clip(min=0) * at.loc["loc", "reliability"].clip(min=0)) ** 0.5
    reliable = min(at.loc["en", "split_half"], at.loc["loc", "split_half"]) > agreement_bound and scale > 0
    corrected = observed / scale if scale else float("nan")
    detectable = chance / scale if scale else float("inf")
    word = (CANNOT_TELL if not reliable or detectable >= NEAR_PERPENDICULAR else
            DOES_NOT if observed > chance and corrected >= NEAR_PERPENDICULAR else
            REPRODUCES if corrected < NEAR_PERPENDICULAR else CANNOT_TELL)
    return {"layer": layer, "|cos(EN, LOC)|": observed, "random bound": chance,
            "EN split-half": float(at.loc["en", "split_half"]), "LOC split-half": float(at.loc["loc", "split_half"]),
            "corrected |cos|": corrected, "detectable |cos|": detectable, "verdict": word}


def seed_geometry(study, reliability: pd.DataFrame, n_layers: int) -> dict:
    """One seed's parts of claim 3 that are reported beside the verdict, from its `layer_study` and
    `analysis.vector_reliability`: the EN layer's relative depth, and `PERPENDICULAR_RULE` at EN's and LOC's layers."""
    languages = sorted(key.split(".", 1)[1] for key in study.vectors if key.startswith("en."))
    cosines = vector_cosines(study.vectors, [("en", "loc")], languages)
    dimension = study.vectors[f"en.{languages[0]}"].hidden_size
    en, loc = study.choices["en"], study.choices["loc"]
    row = {"seed": study.seed, "EN layer": en.layer, "EN depth": en.layer / max(1, n_layers - 1),
           "EN in the last third": in_last_third(en.layer, n_layers), "LOC layer": loc.layer}
    for name, layer in (("EN", en.layer), ("LOC", loc.layer)):
        measured = perpendicularity(reliability, cosines, layer, dimension)
        row[f"|cos| at the {name} layer"] = measured["|cos(EN, LOC)|"]
        row[f"at the {name} layer"] = PERPENDICULAR_WORDS[measured["verdict"]]
        row["random bound"] = measured["random bound"]
    row["dimension"] = dimension
    return row


def _shares_text(shares: dict[int, float]) -> str:
    ordered = sorted(shares.items(), key=lambda pair: -pair[1])
    return ", ".join(f"{layer} ({share:.0%})" for layer, share in ordered)


def geometry_text(geometry: pd.DataFrame, en_shares: dict[int, float], loc_shares: dict[int, float]) -> str:
    """The reported-beside parts over every seed (`seed_geometry` rows) and the chosen layers' distribution over
    resamples × seeds (`steering.layer_shares`), in one paragraph."""
    n = len(geometry)
    depths = ", ".join(f"{depth:.2f}" for depth in geometry["EN depth"])
    text = (f"Reported beside it, on every seed: EN's chosen layer lies in the last third on "
            f"{int(geometry['EN in the last third'].sum())} of {n} seeds (relative depths {depths}; the paper's EN "
            "layer is in the middle).")
    for name in ("EN", "LOC"):
        words = geometry[f"at the {name} layer"]
        cosines = ", ".join(f"{value:.3f}" for value in geometry[f"|cos| at the {name} layer"])
        text += (f" At the {name} layer the vectors are near-perpendicular on "
                 f"{int((words == PERPENDICULAR_WORDS[REPRODUCES]).sum())} of {n} seeds, not near-perpendicular on "
                 f"{int((words == PERPENDICULAR_WORDS[DOES_NOT]).sum())} (|cos| {cosines}).")
    text += (f" Two random directions in {int(geometry['dimension'].iloc[0])} dimensions, averaged over the same "
             f"languages, stay below |cos| {geometry['random bound'].iloc[0]:.3f} 95% of the time. Over resamples of "
             f"the validation questions × seeds, EN chose layer {_shares_text(en_shares)}; LOC chose layer "
             f"{_shares_text(loc_shares)}.")
    return text


# The parts of `PAIRED_DISSOCIATION_RULE`: (number, wording, task of a test effect or None for the layer order);
# {en} and {loc} are the configurations measured (the vectors, or their negative controls).
DISSOCIATION_PARTS = ((1, "{loc} deeper than {en} (layers chosen on validation)", None),
                      (2, "{en} raises transfer (test)", "transfer"),
                      (3, "{loc} raises localization (test)", "localization"))


def dissociation_intervals(validation: pd.DataFrame, test: pd.DataFrame, *, en: str = "en", loc: str = "loc",
                           resamples: int = 1000) -> pd.DataFrame:
    """The three parts of `PAIRED_DISSOCIATION_RULE` from the seeds' layer studies (`cla_lib.steering.layer_study`:
    `validation` and `test` concatenated over seeds): one row per part with its number, estimate, interval, n,
    detectable effect (half-width) and verdict word. `en` and `loc` name the vector kinds in EN's and LOC's roles
    (a pair of `CONTROL_KINDS` measures the controls)."""
    names = {kind: (STUDY_KINDS | CONTROL_KINDS)[kind][0] for kind in (en, loc)}
    rows = []
    _, en_layers = resampled_layers(validation[validation.kind == en], "transfer", resamples=resamples)
    _, loc_layers = resampled_layers(validation[validation.kind == loc], "localization", resamples=resamples)
    for number, part, task in DISSOCIATION_PARTS:
        if task is None:
            interval = layer_difference(en_layers, loc_layers)
            n = f"{interval.n_clusters} resamples × {interval.n_seeds} seeds"
        else:
            interval = cluster_bootstrap(paired_differences(test, method=names[en if task == "transfer" else loc],
                                                            reference="unsteered", task=task))
            n = f"{interval.n_clusters} questions × {interval.n_seeds} seeds"
        rows.append({"number": number, "part": part.format(en=names[en], loc=names[loc]),
                     "estimate": interval.estimate, "low": interval.low, "high": interval.high,
                     "interval": f"{interval.estimate:+.3f} [{interval.low:+.3f}, {interval.high:+.3f}]", "n": n,
                     "questions": interval.n_clusters if task else None, "seeds": interval.n_seeds,
                     "detectable": interval.half_width, "verdict": interval_verdict(interval, 1)})
    return pd.DataFrame(rows)


# The negative controls in EN's and LOC's roles: name -> (kind in EN's role, kind in LOC's role).
CONTROL_SETS = {"random directions": ("en_random", "loc_random"),
                "random EN, shuffled LOC": ("en_random", "loc_shuffled")}

CONTROLS_RULE = (
    "The negative controls, random directions with each vector's norm at every layer and LOC made from its own "
    "pairs with the cue put on a random side of each (`cla_lib.steering.controls`), go through the same sweep, "
    "layer choice, test and intervals as EN and LOC. They come out *null*, as they must, when none of their parts "
    "reproduces. A part of the claim that a control reproduces as well is no evidence for it, and is read as "
    "cannot tell.")


def control_intervals(validation: pd.DataFrame, test: pd.DataFrame, *, resamples: int = 1000) -> pd.DataFrame:
    """`dissociation_intervals` of every `CONTROL_SETS` entry, one row per (controls, part)."""
    return pd.concat([dissociation_intervals(validation, test, en=en, loc=loc, resamples=resamples)
                      .assign(controls=name) for name, (en, loc) in CONTROL_SETS.items()], ignore_index=True)


def controls_null(controls: pd.DataFrame) -> bool:
    """Whether the negative controls came out as they must: no part of any control set reproduces."""
    return bool((controls.verdict != REPRODUCES).all())


POSITIVE_RULE = (
    "The positive control is an organism with the dissociation planted at known layers (`cla_lib.organism.planted`: "
    "EN steering works only after its EN layer, LOC only after its deeper LOC layer). It goes through the same "
    "extraction, sweeps, layer choice, test and intervals as the base organisms, on the same seeds. The apparatus "
    "*finds* a part when that part reproduces on the planted organisms. A part it does not find there could not "
    "have been found on the real organism either: the real organism's verdict on that part is uninformative.")


def positive_found(planted: pd.DataFrame) -> bool:
    """Whether the apparatus found the planted dissociation: every part of `dissociation_intervals` on the planted
    organisms reproduces."""
    return bool((planted.verdict == REPRODUCES).all())


def _positive_text(planted: pd.DataFrame) -> str:
    missed = planted[planted.verdict != REPRODUCES]
    found = "; ".join(f"({row.number}) {row.interval}" for row in planted.itertuples())
    if missed.empty:
        return (f" The positive control: on organisms with the dissociation planted, the same code finds every part "
                f"({found}), so the apparatus sees effects of that size; a part it cannot tell here is smaller "
                "than its detectable effect.")
    numbers = ", ".join(f"({number})" for number in missed.number)
    return (f" **The positive control was not found in full**: on organisms with the dissociation planted, the same "
            f"code does not find part(s) {numbers} ({found}), so this verdict on them is uninformative.")


def paired_dissociation_claims(parts: pd.DataFrame, *, controls: pd.DataFrame | None = None,
                               positive: pd.DataFrame | None = None,
                               model_label: str = "the base model") -> RuleVerdict:
    """Judge the layer-dissociation claim by `PAIRED_DISSOCIATION_RULE` from `dissociation_intervals`, and, given
    their `control_intervals`, by `CONTROLS_RULE`: a part its control reproduces too counts as cannot tell. Given
    `positive`, the `dissociation_intervals` of the planted organisms (`POSITIVE_RULE`), the text says whether the
    apparatus found the planted parts."""
    echoed = set() if controls is None else set(controls[controls.verdict == REPRODUCES].number)
    words = [CANNOT_TELL if word == REPRODUCES and number in echoed else word
             for number, word in zip(parts.number, parts.verdict)]
    held, contradicted = words.count(REPRODUCES), words.count(DOES_NOT)
    status = (REPRODUCES if held == len(words) else
              f"{DOES_NOT} ({contradicted} of {len(words)} parts contradict it)" if contradicted else
              f"partly reproduces ({held} of {len(words)} parts; cannot tell for the rest)" if held else CANNOT_TELL)
    listed = "; ".join(f"({row.number}) {row.part}: {row.interval}, {word}"
                       + (" (a negative control reproduces it too)" if row.number in echoed else "")
                       for row, word in zip(parts.itertuples(), words))
    text = f"**The dissociation on {model_label}: {status}.** {listed}."
    if all(word != REPRODUCES for word in words[1:]):
        text += (" Neither vector is shown to improve its metric on held-out questions, so the chosen layers are "
                 "picks among noise and their order says little about where the model keeps facts and culture.")
    if controls is not None:
        text += (" The negative controls came out null, as they must." if controls_null(controls) else
                 " **Not every negative control came out null**: the apparatus finds some effects in noise.")
    if positive is not None:
        text += _positive_text(positive)
    return RuleVerdict(status=status, text=text, checks=parts.assign(verdict=words))


def paired_intervals(answered: pd.DataFrame, comparisons: Sequence[tuple], *, resamples: int = 4000) -> pd.DataFrame:
    """Paired intervals reported beside a verdict: one row per ``(label, method, reference, task, metric,
    direction)`` of `comparisons`, with method minus reference on `metric` over `task`'s items, its n, the detectable
    effect (half-width) and the verdict word for an effect of sign `direction`."""
    rows = []
    for label, method, reference, task, metric, direction in comparisons:
        interval = cluster_bootstrap(paired_differences(answered, method=method, reference=reference, task=task,
                                                        metric=metric), resamples=resamples)
        rows.append({"comparison": label, "interval": interval.text(), "estimate": interval.estimate,
                     "low": interval.low, "high": interval.high, "detectable": interval.half_width,
                     "verdict": interval_verdict(interval, direction)})
    return pd.DataFrame(rows)


PAIRED_BALANCE_RULE = (
    "Surgical Steering is compared with the unsteered base, with each of its vectors alone (English and LOC "
    "steering) and with each CLA method on the test split, item by item "
    "within each seed: its Δtransfer (over creatures), its Δlocalization (over culture questions) and their sum, "
    "the change of the balance transfer + localization, each with a 95% interval resampling questions within seeds "
    "and seeds (`cla_lib.claims.intervals.summed_bootstrap` for the sum). It balances *better* than a model when the sum's "
    "interval lies above zero and *worse* when it lies below. The claim reproduces when Surgical Steering balances "
    "better than every CLA method, than each vector alone and than the base, does not when it balances worse than any of them, and cannot "
    "be told otherwise (partly, when it is better than some).")


def balance_intervals(answered: pd.DataFrame, *, candidate: str, against: Sequence[str],
                      resamples: int = 4000) -> pd.DataFrame:
    """One row per model in `against`: `candidate` minus it on transfer, localization and their sum, with
    intervals, n, the detectable effect (the sum's half-width) and the verdict word (on the sum)."""
    rows = []
    for reference in against:
        parts = {task: paired_differences(answered, method=candidate, reference=reference, task=task)
                 for task in ("transfer", "localization")}
        transfer = cluster_bootstrap(parts["transfer"], resamples=resamples)
        localization = cluster_bootstrap(parts["localization"], resamples=resamples)
        both = summed_bootstrap(list(parts.values()), resamples=resamples)
        rows.append({"against": reference, "Δtransfer": transfer.text(), "Δlocalization": localization.text(),
                     "Δ(transfer + localization)": f"{both.estimate:+.3f} [{both.low:+.3f}, {both.high:+.3f}]",
                     "estimate": both.estimate, "low": both.low, "high": both.high, "seeds": both.n_seeds,
                     "creature_questions": transfer.n_clusters, "culture_questions": localization.n_clusters,
                     "detectable": both.half_width, "verdict": interval_verdict(both, 1)})
    return pd.DataFrame(rows)


def paired_balance_claims(intervals: pd.DataFrame, *, labels: dict | None = None,
                          control: pd.DataFrame | None = None) -> RuleVerdict:
    """Judge "Surgical Steering balances transfer and localization better" by `PAIRED_BALANCE_RULE`. `control` is
    `balance_intervals` of its negative control against the base: where the control balances better than the base
    too, Surgical Steering's "better than the base" is no evidence and is read as cannot tell."""
    echoed = control is not None and (control.verdict == REPRODUCES).any()
    intervals = intervals.assign(verdict=[CANNOT_TELL if echoed and against == BASE and word == REPRODUCES else word
                                          for against, word in zip(intervals.against, intervals.verdict)])
    words = list(intervals.verdict)
    better, worse = words.count(REPRODUCES), words.count(DOES_NOT)
    status = (REPRODUCES if better == len(words) else
              f"{DOES_NOT} (worse than {worse} of {len(words)})" if worse else
              f"partly reproduces (better than {better} of {len(words)}; cannot tell for the rest)" if better else
              CANNOT_TELL)
    words = {REPRODUCES: "better", DOES_NOT: "worse"}
    # An interval of exactly 0 is the same model compared with itself (the search chose one vector alone).
    listed = "; ".join(f"against {(labels or {}).get(row['against'], row['against'])}: Δ(transfer + localization) "
                       f"{row['Δ(transfer + localization)']}, "
                       + (words.get(row["verdict"], "cannot tell") if (row["low"], row["high"]) != (0, 0) else
                          "the same model (Surgical Steering chose it)")
                       for _, row in intervals.iterrows())
    text = f"**Surgical Steering's balance: {status}.** {listed}."
    if echoed:
        text += " Its negative control balances better than the base as well, so that comparison is no evidence."
    return RuleVerdict(status=status, text=text, checks=intervals)


def erased(answered: pd.DataFrame, method: str, *, reference: str = BASE) -> pd.DataFrame:
    """The rows of `answered` on the culture items `method` erased: those whose local answer `reference` gives and
    `method` does not, in the same seed (every configuration's rows of those items)."""
    culture = answered[(answered.task == "localization") & (answered.language != "en")]
    right = culture.pivot_table(index=["seed", "id"], columns="method", values="correct", aggfunc="first")
    lost = right[(right[reference] == 1) & (right[method] == 0)].index
    return culture.set_index(["seed", "id"]).loc[lambda frame: frame.index.isin(lost)].reset_index()


def aligned_steering_intervals(answered: pd.DataFrame, methods: Sequence[str], *,
                               labels: dict | None = None) -> pd.DataFrame:
    """Whether steering undoes erasure (`cla_lib.steering.aligned_test_answers`): for each aligned method, LOC
    steering on it minus it on localization (all culture questions); LOC steering minus its random control on the
    questions the method erased (`erased`: an unbiased comparison there, as both are selected alike); and Surgical
    Steering on it minus it on transfer + localization. One row each, as `paired_intervals` gives them."""
    rows = []
    for method in methods:
        name = (labels or {}).get(method, method)
        comparisons = paired_intervals(answered, [
            (f"{name}: LOC steering − unsteered, localization", f"{method}+loc_steering", method, "localization",
             "correct", 1)])
        lost = erased(answered, method)
        if not lost.empty:
            comparisons = pd.concat([comparisons, paired_intervals(lost, [
                (f"{name}: LOC steering − its random control, on the erased questions", f"{method}+loc_steering",
                 f"{method}+random_loc", "localization", "correct", 1)])], ignore_index=True)
        balance = balance_intervals(answered, candidate=f"{method}+surgical", against=[method]).iloc[0]
        rows.append(comparisons.assign(method=method))
        rows.append(pd.DataFrame([{"comparison": f"{name}: Surgical Steering − unsteered, transfer + localization",
                                   "interval": balance["Δ(transfer + localization)"], "estimate": balance.estimate,
                                   "low": balance.low, "high": balance.high, "detectable": balance.detectable,
                                   "verdict": balance.verdict, "method": method}]))
    return pd.concat(rows, ignore_index=True)


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
# Baseline erasure from paired intervals (cla_lib.claims.intervals)

ERASURE_HALVES = (("transfer", 1, "improves transfer"), ("localization", -1, "costs localization"))
# Reported beside the halves, not judged by the rule: transfer relative to the same model's English ceiling (the
# change of the gap between the facts asked in the language and asked in English), so that a method that moves the
# ceiling is not read as transfer.
GAP_ROW = (("transfer", 1, "closes the gap to English"),)

PAIRED_ERASURE_RULE = (
    "For each method, its change from the reference model (the base, or the replay control) is measured item by "
    "item, averaged within each question (a culture question with all its languages, a creature with all its "
    "relations) and given a 95% interval by resampling questions within seeds and seeds (`cla_lib.claims.intervals`), over "
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
                    answered, method=method, reference=reference_of(method, reference), task=task, language=language,
                    relative_to_english=half == GAP_ROW[0][2]), resamples=resamples)
                rows.append({"method": method, "reference": reference_of(method, reference),
                             "language": language or "all", "half": half,
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
