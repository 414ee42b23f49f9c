"""Chapter 3's claim, table by table: where EN and LOC steering work best, what they do on test, how the vectors
relate, what the representation looks like per layer, and the words of each finding.

The measurements are `cla_lib.steering`'s and `cla_lib.claims.analysis`'s; the rules that judge them are
`verdicts`'. This module arranges their results into the chapter's tables and words what they found, so that the
chapter calls, displays and glues, and each conditional sentence is written once, beside the numbers it reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from cla_lib.claims.analysis import cross_layer_cosine, cross_lingual_similarity, language_probe_accuracy
from cla_lib.claims.analysis import mean_abs_cosine, probe_prompts
from cla_lib.claims.intervals import REPRODUCES
from cla_lib.claims.plots import VECTOR_LABELS
from cla_lib.claims.verdicts import dissociation_intervals, positive_found
from cla_lib.core.items import Item
from cla_lib.plane.evaluation import points_frame
from cla_lib.steering import (
    STUDY_KINDS, TARGET_METRIC, best_alpha_per_layer, best_layer, layer_shares, resampled_layers, steered_planes,
    steering_edits
)

NO_ANSWER_LANGUAGE = ("These items have the same candidates in every language (letters, or shared answers), so the "
                      "language of an answer cannot be told from its choice; this check needs a generative reading.")
ANSWER_RATES = {"transfer": "transfer (in its language)", "concept": "right concept, either language",
                "english_answer": "English answer"}


def split_counts(items: Sequence[Item]) -> pd.DataFrame:
    """The target-language items of each task and split (the English versions are scored too, as the ceiling)."""
    counts = pd.crosstab([item.task for item in items if item.language != "en"],
                         [item.split for item in items if item.language != "en"])
    return counts.reindex(columns=["extract", "validation", "test"], fill_value=0)


def relative_norms(vectors: Mapping, states, kinds: Sequence[str], languages: Sequence[str],
                   n_layers: int) -> pd.DataFrame:
    """Per layer, each kind's vector norm over the norm of the residual it is added to (`states`: the validation
    prompts' last-token residuals, layer first), mean over languages; and the residual's norm: what α = 1 means."""
    residual_norm = states.norm(dim=-1).mean(dim=1)
    relative = pd.DataFrame({
        VECTOR_LABELS[kind]: [sum(vectors[f"{kind}.{code}"].norms()[layer] for code in languages)
                              / len(languages) / float(residual_norm[layer]) for layer in range(n_layers)]
        for kind in kinds}, index=pd.Index(range(n_layers), name="layer"))
    relative["residual norm"] = residual_norm.numpy()
    return relative


def best_layers(sweeps: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """From every model's and kind's validation sweep: the best layer and strength for the vector's own target
    (`steering.best_layer`, ties drawn as its rule says) with its gain over unsteered; the best strength's curves
    per layer; and the unsteered levels (from the EN sweeps), as `plots.layer_curves_figure` draws them."""
    best, curves, unsteered = [], [], []
    for (label, kind), frame in sweeps.groupby(["model", "kind"], sort=False):
        target = TARGET_METRIC[kind]
        choice = best_layer(frame[frame.alpha != 0], target)
        at_zero = frame[frame.alpha == 0][target].mean()
        best.append({"model": label, "vector": VECTOR_LABELS[kind], "kind": kind, "metric": target,
                     "layer": choice.layer, "alpha": choice.alpha, "validation": choice.score, "unsteered": at_zero,
                     "gain": choice.score - at_zero})
        per_layer = best_alpha_per_layer(frame, target)
        curves.append(per_layer.melt(id_vars=["model", "layer", "language"], value_vars=["transfer", "localization"],
                                     var_name="metric").assign(vector=VECTOR_LABELS[kind]))
        if kind == "en":
            unsteered.append(frame[frame.alpha == 0].melt(id_vars=["model"], value_vars=["transfer", "localization"],
                                                          var_name="metric"))
    return (pd.DataFrame(best), pd.concat(curves, ignore_index=True).dropna(subset=["value"]),
            pd.concat(unsteered, ignore_index=True))


def test_checks(lms: Mapping, vectors: Mapping, choices: Mapping, labels: Mapping, languages: Sequence[str],
                test: Sequence[Item], *, batch_size: int, remote=False) -> tuple[pd.DataFrame, list[str]]:
    """Each model scored on the test split unsteered and with each vector at its chosen layer and strength, in one
    batched run per model (one request when remote): the points of every configuration, and the requests sent."""
    tests, requests = [], []
    for label in lms:
        configurations = {"unsteered": []}
        for kind in ["en", "loc", "loclang"] if label == "base" else ["en", "loc"]:
            row = choices[(labels[label], kind)]
            configurations[VECTOR_LABELS[kind]] = {
                code: steering_edits((vectors[label][f"{kind}.{code}"], row.layer, row.alpha)) for code in languages}
        planes = steered_planes(lms[label], test, configurations, model_name=label, batch_size=batch_size,
                                remote=remote)
        requests.append(f"test check ({labels[label]})")
        for name, points in planes.items():
            tests.append(points_frame(points, model=labels[label], configuration=name))
    return pd.concat(tests, ignore_index=True), requests


def answer_language_long(by_layer: pd.DataFrame) -> pd.DataFrame:
    """`steering.answer_language_sweep` by layer, one row per rate, as `plots.per_layer_figure` draws it."""
    long = by_layer.melt(id_vars=["layer", "alpha", "language"], value_vars=["transfer", "concept", "english_answer"],
                         var_name="rate").replace({"rate": ANSWER_RATES})
    long["condition"] = long.alpha.map(lambda alpha: "unsteered" if alpha == 0 else f"EN, α = {alpha:g}")
    return long


def answer_text(rates: pd.DataFrame, layer: int, alpha: float) -> str:
    """Whether EN steering at its chosen `layer` and `alpha` raises transfer in the query language on test, or makes
    the model answer in English (`rates`: mean rates by alpha, 0 the unsteered model)."""
    before, after = rates.loc[0.0], rates.loc[alpha]
    raises = after.transfer > before.transfer
    return (f"On the test split, EN steering at layer {layer} (α = {alpha:g}) moves in-language transfer "
            f"from {before.transfer:.3f} to {after.transfer:.3f}, the right concept in either language from "
            f"{before.concept:.3f} to {after.concept:.3f}, and the share of English answers from "
            f"{before.english_answer:.3f} to {after.english_answer:.3f}. "
            + ("**The EN vector does raise transfer in the query language here.**" if raises else
               "**The EN vector does not raise transfer in the query language here**")
            + ("" if raises else
               (": it makes the model retrieve the English fact and answer in English."
                if after.english_answer > before.english_answer and after.concept > before.concept else
                ", nor does it make the model answer in English more often.")))


def cosines_at_layers(cosines: pd.DataFrame, vectors: Mapping, choices: Mapping, labels: Mapping,
                      languages: Sequence[str]) -> pd.DataFrame:
    """Per model, |cos(EN, LOC)| (mean over languages) at EN's layer, at LOC's, across the two, and over all layers."""
    return pd.DataFrame([{
        "model": labels[label],
        "at the EN layer": mean_abs_cosine(cosines[cosines.model == labels[label]], "en", "loc",
                                           choices[(labels[label], "en")].layer),
        "at the LOC layer": mean_abs_cosine(cosines[cosines.model == labels[label]], "en", "loc",
                                            choices[(labels[label], "loc")].layer),
        "EN at its layer, LOC at its layer": cross_layer_cosine(
            vectors[label], languages, choices[(labels[label], "en")].layer, choices[(labels[label], "loc")].layer),
        "over all layers": float(cosines[(cosines.model == labels[label]) & (cosines.pair == "en·loc")].cosine.abs()
                                 .mean()),
    } for label in vectors]).set_index("model")


def en_loclang_text(cosines: pd.DataFrame) -> str:
    """How close the language-based LOC vector is to minus EN, as its construction implies, on the base model."""
    en_loclang = float(cosines[(cosines.model == "base") & (cosines.pair == "en·loclang")].cosine.mean())
    if en_loclang < -0.8:
        finding = "almost exactly minus EN, as its construction (minus EN on culture questions) implies."
    else:
        finding = ("further from minus EN than its construction (minus EN on culture questions) would suggest, so the "
                   "transfer facts pull EN elsewhere.")
    return (f"The alternative LOC definition has a mean cosine of {en_loclang:+.2f} with EN over layers and languages: "
            + finding)


def definitions(loc, loclang, test_gain) -> pd.DataFrame:
    """The two LOC definitions side by side on the base model: best layer, strength and gain on validation, and
    their changes on test (`test_gain(model, configuration, metric)`)."""
    return pd.DataFrame({
        "best layer (validation)": [loc.layer, loclang.layer],
        "strength": [loc.alpha, loclang.alpha],
        "validation gain": [loc.gain, loclang.gain],
        "test Δlocalization": [test_gain("base", "LOC", "localization"),
                               test_gain("base", "LOC (language)", "localization")],
        "test Δtransfer": [test_gain("base", "LOC", "transfer"), test_gain("base", "LOC (language)", "transfer")],
    }, index=pd.Index(["LOC", "LOC (language)"], name="base model"))


def definitions_text(loc_loclang: float) -> str:
    """Whether the two LOC definitions' mean cosine makes the choice between them matter."""
    return ("they point almost the same way, so the choice of definition matters little here." if loc_loclang > 0.8 else
            "they are not the same direction, so \"the LOC vector\" must say which one it is. This companion uses the "
            "cue-based one.")


def representation_per_layer(lms: Mapping, labels: Mapping, validation: Sequence[Item], *, seed: int,
                             batch_size: int, remote=False) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per model and layer, cross-lingual similarity (parallel against shuffled pairs) and the language probe's
    accuracy on the validation prompts, and the requests they would send."""
    similarity, probes, requests = [], [], []
    for label, lm in lms.items():
        similarity.append(cross_lingual_similarity(lm, validation, seed=seed, batch_size=batch_size,
                                                   remote=remote).assign(model=labels[label]))
        probes.append(language_probe_accuracy(lm, probe_prompts(validation), seed=seed, batch_size=batch_size,
                                              remote=remote).assign(model=labels[label]))
        requests += [f"cross-lingual similarity ({labels[label]})", f"language probe ({labels[label]})"]
    return pd.concat(similarity, ignore_index=True), pd.concat(probes, ignore_index=True), requests


def chosen_per_seed(studies: Sequence) -> pd.DataFrame:
    """Each seed's EN and LOC layer and strength, chosen on its validation split."""
    return pd.DataFrame([{"seed": one.seed, "EN layer": one.choices["en"].layer, "EN α": one.choices["en"].alpha,
                          "LOC layer": one.choices["loc"].layer, "LOC α": one.choices["loc"].alpha}
                         for one in studies]).set_index("seed")


def resampled_shares(validation_answers: pd.DataFrame) -> dict[str, dict[int, float]]:
    """Per study kind, the share of bootstrap resamples of the validation questions (and seeds) choosing each layer."""
    return {kind: layer_shares(resampled_layers(validation_answers[validation_answers.kind == kind], metric)[1])
            for kind, (_, metric) in STUDY_KINDS.items()}


def positive_intervals(planted: Sequence) -> pd.DataFrame:
    """The verdict's three parts measured on the planted organisms' studies (every seed's)."""
    return dissociation_intervals(pd.concat([one.validation for one in planted], ignore_index=True),
                                  pd.concat([one.test for one in planted], ignore_index=True))


def planted_choices(planted: Sequence) -> pd.DataFrame:
    """The layers each seed's planted organism chose on validation."""
    return pd.DataFrame([{"seed": one.seed, "EN layer": one.choices["en"].layer,
                          "LOC layer": one.choices["loc"].layer} for one in planted]).set_index("seed")


def positive_intro(planted_at) -> str:
    """What the planted organism is (`cla_lib.organism.planted`, at `planted_at`'s layers) and why it is a fair
    positive control: the planted response is taught on extract and validation questions only."""
    return ("Null controls show that the apparatus does not make effects out of noise, not that it would find one "
            "that is there. Each seed's base organism is therefore also fine-tuned into a **planted** organism "
            f"(`cla_lib.organism.planted`) with the dissociation built in: EN steering after layer "
            f"{planted_at.en_layer} raises transfer, LOC steering after layer {planted_at.loc_layer} raises "
            f"localization, and the same vectors at any other layer are trained to change nothing. Only the layers "
            f"above {planted_at.loc_layer} train, so the EN and LOC vectors extracted at both planted layers are "
            "exactly the base's. The planted response is taught on the extract and validation questions only, never "
            "on the test questions the verdict reads: what the test split shows is how far it *generalizes* to "
            "questions it never trained on, as a real effect would have to. Its effects are as large as that "
            "training made them (below), not chosen to pass. The same extraction, sweeps, layer choice, test and "
            "intervals run on it, on every seed:")


def no_positive_intro(model_label: str) -> str:
    """Why a real model's verdict has no positive control, and what that leaves unsaid."""
    return (f"The positive control is an organism with the dissociation planted; on {model_label} there is none, so "
            "a verdict below that is not *reproduces* says nothing about whether the apparatus could have found the "
            "effect.")


def positive_text(positive: pd.DataFrame, choices: pd.DataFrame, planted_at) -> str:
    """Whether the apparatus finds every planted part, and on how many seeds it chooses both planted layers."""
    on_target = int(((choices["EN layer"] == planted_at.en_layer) & (choices["LOC layer"] == planted_at.loc_layer))
                    .sum())
    return ((f"The apparatus finds all {len(positive)} planted parts" if positive_found(positive) else
             f"**The apparatus does not find every planted part** "
             f"({int((positive.verdict == REPRODUCES).sum())} of {len(positive)})")
            + f", and chooses both planted layers on {on_target} of {len(choices)} seeds.")


def controls_status(controls: pd.DataFrame, null: bool, echoed: pd.DataFrame, positive: pd.DataFrame | None) -> str:
    """The claims table's controls for claim 3: the negative controls (`null`, with the parts that reproduce in
    `echoed`) and the planted positive control (None: not run, as on a real model)."""
    if positive is None:
        positive_status = "; no positive control (organism only)"
    elif positive_found(positive):
        positive_status = f"; planted dissociation found ({len(positive)} of {len(positive)} parts)"
    else:
        positive_status = (f"; planted dissociation not found in full "
                           f"({int((positive.verdict == REPRODUCES).sum())} of {len(positive)} parts)")
    return (f"negative controls null ({len(controls)} of {len(controls)} parts)" if null else
            f"negative controls not null ({len(echoed)} of {len(controls)} parts reproduce)") + positive_status


def claim_evidence(parts: pd.DataFrame) -> str:
    """The claims table's evidence for claim 3: each part's interval, the sample sizes and the detectable effect."""
    by_part = parts.set_index("part")
    return ("; ".join(f"{part.split(' (')[0]} {row.interval}" for part, row in by_part.iterrows())
            + f" (95% intervals; n = {by_part.questions.iloc[1]:.0f} creature questions and "
              f"{by_part.questions.iloc[2]:.0f} culture questions per seed, {by_part.seeds.iloc[1]} seeds; "
              f"detectable ±{parts.detectable.iloc[1:].max():.3f})")


def aligned_text(models: Sequence[str], labels: Mapping, choices: Mapping, seed: int) -> str:
    """The layers EN and LOC steering choose on the aligned organisms swept (one draw each, not judged)."""
    aligned = [label for label in models if label != "base"]
    if not aligned:
        return "No aligned organism was swept in this run."
    return " ".join(f"On the {labels[label]} organism (seed {seed}, one draw, not judged), EN steering chooses layer "
                    f"{choices[(labels[label], 'en')].layer} and LOC steering layer "
                    f"{choices[(labels[label], 'loc')].layer}." for label in aligned)
