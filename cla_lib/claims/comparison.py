"""Comparing models on the transfer-localization plane: base against aligned, over seeds, with a verdict.

The paper's second claim (*baseline erasure*) is a comparison: every cross-lingual alignment method, applied to a
base model, raises transfer and lowers localization, in every language. Testing it needs the same measurement on
several models and seeds, differences against the base of the same seed, a spread across seeds, and a rule that
turns the numbers into a verdict. This module holds those steps, as functions of tidy DataFrames: `erasure_runs`
(which models), `evaluate` (every run on the plane), `deltas` (each run minus its reference), `summarize` (the
spread across seeds) and `training_data` (what each aligned organism trained on). The verdict itself is read from
paired intervals (`cla_lib.claims.verdicts.erasure_intervals`). Design notes: docs/design-notes.md.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from transformers.utils import logging as transformers_logging

from cla_lib.alignment.recipes import CONTROLS, control_of
from cla_lib.plane.evaluation import answer_frame, plane_from_answers, plane_items, points_frame
from cla_lib.plane.loading import load_model
from cla_lib.model.reference import ModelRef
from cla_lib.organism import (
    ORGANISM_DATA, RECORDS_FILE, in_base_text, organism_records, record_overlap, training_record, world_of
)
from cla_lib.organism.registry import organism_path
from cla_lib.scoring import choice_logprobs, predictions
from cla_lib.model.remote import Remote


METRICS = ("transfer", "localization", "english_bias")


BASE, CONTROL = "base", "replay"
# As a `reference`: each method against its own replay control (`cla_lib.alignment.control_of`: CLO's trains the
# attention projections only, as CLO does; every other method's trains every weight).
OWN_CONTROL = "own control"


def reference_of(method: str, reference: str) -> str:
    """The method `method` is compared with for `reference` (``base``, a method name, or `OWN_CONTROL`)."""
    return control_of(method) if reference == OWN_CONTROL else reference


# Student's t quantile t(0.975, df) for df = 1 .. 30; beyond, the Cornish-Fisher expansion about z = 1.96 (within
# 1e-4 there: t(31) = 2.0395, where z alone would be 4% short and the interval too narrow).
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
          2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile(degrees_of_freedom: int) -> float:
    """The two-sided 95% Student's t critical value (NaN for no degrees of freedom)."""
    if degrees_of_freedom < 1:
        return math.nan
    if degrees_of_freedom <= len(_T_975):
        return _T_975[degrees_of_freedom - 1]
    z, nu = 1.959964, degrees_of_freedom
    return z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)


@contextmanager
def _quiet_loading(quiet: bool):
    """Without transformers' per-checkpoint progress bars (one per model loaded, noise in a chapter's output)."""
    enabled = transformers_logging.is_progress_bar_enabled()
    if quiet:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and enabled:
            transformers_logging.enable_progress_bar()


@dataclass(frozen=True)
class Run:
    """One model of a comparison: `method` (``base``, an alignment method or ``replay``) at `seed`, loaded from
    `source` (an organism directory, a local Hugging Face directory or a hub id)."""

    method: str
    seed: int
    source: str


def parse_list(text: str) -> list[str]:
    """``"midalign, clo"`` -> ``["midalign", "clo"]`` (empty entries dropped)."""
    return [part.strip() for part in str(text).split(",") if part.strip()]


def parse_seeds(text: str | int) -> list[int]:
    """``"0,1,2"`` (or one integer) -> ``[0, 1, 2]``."""
    return [int(part) for part in parse_list(str(text))]


def parse_aligned_models(text: str) -> dict[tuple[str, int], str]:
    """Aligned real models from ``"method=path,method@seed=path"`` pairs -> ``{(method, seed): path}``; the seed is
    0 when omitted."""
    models = {}
    for pair in parse_list(text):
        if "=" not in pair:
            raise ValueError(f"aligned model {pair!r} is not a method=path pair")
        name, path = (part.strip() for part in pair.split("=", 1))
        method, _, seed = name.partition("@")
        models[(method, int(seed) if seed else 0)] = path
    return models


def erasure_runs(reference: str, methods: Sequence[str], seeds: Sequence[int] | None = None, *,
                 include_replay: bool = True,
                 size: str | None = None, aligned_models: str | dict = "", progress: bool = True) -> list[Run]:
    """The runs of a baseline-erasure comparison: the base and each method (and the replay control) per seed.

    Args:
        reference: ``"organism"`` for the model organism (each run is trained on first use and cached), or the base
            real model (a local directory or hub id).
        methods: alignment method names (`cla_lib.alignment.METHODS`), without ``replay``.
        seeds: organism seeds (default: 0). For a real model, the seeds of its aligned checkpoints (default: every
            seed named in `aligned_models`); its base is the same model in every seed.
        include_replay: add the replay controls: ``replay``, and ``replay_attention`` when CLO is compared (its
            control trains the attention projections only, as CLO does).
        size: the organism size (``"tiny"`` for quick runs).
        progress: show progress bars while organisms train.
        aligned_models: real models only: the aligned checkpoints, trained beforehand with `cla align` or
            `cla_lib.alignment.align_model`, as ``"method[@seed]=path,..."`` (see `parse_aligned_models`) or a dict.

    Returns:
        The runs, seed by seed, base first.

    Example:
        >>> erasure_runs("organism", ["midalign", "clo"], [0, 1, 2], size="tiny")
    """
    methods = [method for method in methods if method not in (BASE, *CONTROLS)]
    controls = list(dict.fromkeys([CONTROL, *map(control_of, methods)]))  # replay, and CLO's own when compared
    compared = methods + (controls if include_replay else [])
    runs = []
    if ModelRef.parse(reference, size=size).is_organism:
        with _quiet_loading(not progress):
            for seed in seeds if seeds is not None else [0]:
                for method in [BASE] + compared:
                    parsed = ModelRef.of_organism(method, seed, size=size)
                    runs.append(Run(method, seed, str(organism_path(parsed, progress=progress))))
        return runs
    aligned = parse_aligned_models(aligned_models) if isinstance(aligned_models, str) else dict(aligned_models)
    seeds = seeds if seeds is not None else sorted({seed for _, seed in aligned}) or [0]
    missing = [f"{method}@{seed}" for seed in seeds for method in compared if (method, seed) not in aligned]
    if missing:
        raise ValueError(
            f"no aligned checkpoint for {', '.join(missing)}: a real model's aligned versions are trained beforehand "
            "(cla align --model DIR --method METHOD ... --out DIR) and passed as aligned_models='method=DIR,...' "
            "(method@seed=DIR for more seeds); or leave those methods (or the replay control) out")
    for seed in seeds:
        runs.append(Run(BASE, seed, reference))
        runs += [Run(method, seed, aligned[(method, seed)]) for method in compared]
    return runs


def training_table(runs: Sequence[Run]) -> pd.DataFrame:
    """What each run's training recorded (organisms and `align_model` outputs): steps, seconds, final loss."""
    rows = []
    for run in runs:
        record_path = Path(run.source) / "training.json"
        if not record_path.exists():
            continue
        record = json.loads(record_path.read_text())
        steps = record.get("method_config", {}).get("steps", record.get("config", {}).get("steps"))
        rows.append({"method": run.method, "seed": run.seed, "steps": steps,
                     "trainable parameters": record.get("trainable_parameters", record.get("parameters")),
                     "training time (s)": record.get("train_seconds"), "final loss": record.get("final_loss")})
    return pd.DataFrame(rows)


def _items_key(source: str) -> str:
    """Runs that share this key are scored on the same items (an organism's world; real data otherwise)."""
    record_path = Path(source) / "training.json"
    if record_path.exists():
        config = json.loads(record_path.read_text()).get("config")
        if config is not None:
            return json.dumps(config["world"], sort_keys=True)
    return "real data"


def evaluate(runs: Sequence[Run], languages: Sequence[str], *, transfer_data: str | None = None,
             localization_data: str | None = None, batch_size: int = 64, remote: Remote = False,
             progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Place every run on the plane for `languages`, on all items.

    Models are loaded one at a time; a source that appears in several runs (a real base model in every seed) is
    scored once. Each item's answer is its highest-scoring choice (`cla_lib.scoring`), as in
    `cla_lib.plane.evaluation.answers`; `progress` shows the loading and scoring progress bars.

    Returns:
        ``(plane, answered)``: `plane` has one row per (method, seed, language) with the columns of
        `cla_lib.plane.evaluation.points_frame` plus ``method`` and ``seed``; `answered` has one row per item and run
        (`cla_lib.plane.evaluation.answer_frame` plus ``method`` and ``seed``), English ceiling items included.
    """
    items_by_key: dict[str, list] = {}
    chosen_by_source: dict[str, list[int]] = {}
    planes, answered = [], []
    for run in runs:
        key = _items_key(run.source)
        if key not in items_by_key:
            items_by_key[key] = plane_items(run.source, languages, transfer_data=transfer_data,
                                            localization_data=localization_data)
        items = items_by_key[key]
        if run.source not in chosen_by_source:
            with _quiet_loading(not progress):
                lm = load_model(run.source, remote=remote)
            scores = choice_logprobs(lm, items, batch_size=batch_size, progress=progress)
            chosen_by_source[run.source] = predictions(scores)
            del lm
        chosen = chosen_by_source[run.source]
        points = plane_from_answers(f"{run.method}@{run.seed}", items, chosen)
        planes.append(points_frame(points, method=run.method, seed=run.seed))
        answered.append(answer_frame(items, chosen).assign(method=run.method, seed=run.seed))
    return pd.concat(planes, ignore_index=True), pd.concat(answered, ignore_index=True)


def deltas(plane: pd.DataFrame, reference: str = BASE, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Each run's metrics minus those of the `reference` method of the same seed and language (`OWN_CONTROL`: each
    alignment method minus its own replay control).

    Returns:
        One row per (method, seed, language), `reference` itself left out, with one column per metric (the
        difference) and ``reference``.
    """
    if reference == OWN_CONTROL:
        methods = [method for method in dict.fromkeys(plane.method) if method not in (BASE, *CONTROLS)]
        frames = [deltas(plane[plane.method.isin([method, control_of(method)])], control_of(method), metrics)
                  for method in methods]
        return pd.concat(frames, ignore_index=True)
    keys = ["seed", "language"]
    baseline = plane.loc[plane.method == reference, keys + list(metrics)]
    if baseline.empty:
        raise ValueError(f"no {reference!r} rows to compare against")
    others = plane.loc[plane.method != reference, ["method"] + keys + list(metrics)]
    merged = others.merge(baseline, on=keys, suffixes=("", "_reference"), validate="many_to_one")
    for metric in metrics:
        merged[metric] = merged[metric] - merged[f"{metric}_reference"]
    return merged[["method"] + keys + list(metrics)].assign(reference=reference).reset_index(drop=True)


def summarize(differences: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per (method, language): the mean difference over seeds, its standard deviation, the half-width of its 95%
    Student's t interval (NaN with one seed), and the number of seeds where it was above and below zero.

    Returns:
        One row per (method, language), in the order they first appear, with columns ``n_seeds`` and, per metric,
        ``<metric>`` (the mean), ``<metric>_sd``, ``<metric>_half_width``, ``<metric>_positive``,
        ``<metric>_negative``.
    """
    rows = []
    for (method, language), group in differences.groupby(["method", "language"], sort=False):
        n = group.seed.nunique()
        row = {"method": method, "language": language, "n_seeds": n}
        for metric in metrics:
            values = group[metric]
            sd = values.std(ddof=1) if n > 1 else math.nan
            row[metric] = values.mean()
            row[f"{metric}_sd"] = sd
            row[f"{metric}_half_width"] = t_quantile(n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
            row[f"{metric}_positive"] = int((values > 0).sum())
            row[f"{metric}_negative"] = int((values < 0).sum())
        if "reference" in group:
            row["reference"] = group.reference.iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def delta_table(summary: pd.DataFrame, metric: str, *, digits: int = 3) -> pd.DataFrame:
    """`summary` as a method x language table of ``"+0.120 ± 0.050"`` strings (mean ± 95% half-width over seeds;
    no ± with one seed), with a last column averaging the means over languages."""
    def cell(row) -> str:
        text = f"{row[metric]:+.{digits}f}"
        half = row[f"{metric}_half_width"]
        return text if math.isnan(half) else f"{text} ± {half:.{digits}f}"

    table = summary.assign(cell=summary.apply(cell, axis=1)).pivot(index="method", columns="language",
                                                                    values="cell")
    table = table.loc[list(dict.fromkeys(summary.method)), list(dict.fromkeys(summary.language))]
    table["mean"] = summary.groupby("method", sort=False)[metric].mean().map(lambda value: f"{value:+.{digits}f}")
    return table


def held_out_breakdown(answered: pd.DataFrame) -> pd.DataFrame:
    """Localization per method on the culture questions each language was taught implicitly and on the held-out
    ones (seen only with a country named), averaged over languages and seeds, with the change from the base.

    Returns:
        One row per method (base first), columns ``taught``, ``held out``, ``Δ taught``, ``Δ held out``.
    """
    culture = answered[answered.task == "localization"]
    per_seed = culture.groupby(["method", "seed", "held_out"], sort=False).correct.mean().unstack("held_out")
    per_seed = per_seed.rename(columns={False: "taught", True: "held out"})
    means = per_seed.groupby("method", sort=False).mean()
    base = per_seed.xs(BASE, level="method")
    change = per_seed.sub(base, level="seed").groupby("method", sort=False).mean()
    columns = [column for column in ("taught", "held out") if column in means]
    return means[columns].join(change[columns].add_prefix("Δ "))


def configuration_gain(means: pd.DataFrame, label: str, configuration: str, metric: str,
                       reference: str = "unsteered") -> float:
    """How much `configuration` moves `metric` from `reference`, in a frame of means indexed by (model,
    configuration)."""
    return float(means.loc[(label, configuration), metric] - means.loc[(label, reference), metric])


def training_data(runs: Sequence[Run]) -> pd.DataFrame:
    """What each aligned organism trained on: its method's data (`ORGANISM_DATA`), the number of records it kept
    (``records.jsonl`` in its directory), their overlap with what this comparison scores
    (`cla_lib.organism.record_overlap`, 0 for leak-free data) and how many are base text (``in_base_text``: 0 for
    data new to the base). One row per (method, seed); real models' runs are skipped (their data are the user's)."""
    rows = []
    for run in runs:
        path = Path(run.source)
        if run.method not in ORGANISM_DATA or not (path / RECORDS_FILE).exists():
            continue
        records, world = organism_records(path), world_of(path)
        base_epochs = training_record(path.parent / training_record(path)["base"])["epochs"]
        rows.append({"method": run.method, "seed": run.seed, "data": ORGANISM_DATA[run.method],
                     **record_overlap(records, world), "in_base_text": in_base_text(records, world, base_epochs)})
    return pd.DataFrame(rows, columns=["method", "seed", "data", "records", "about_scored", "mention_scored",
                                       "contain_scored_prompt", "in_base_text"])
