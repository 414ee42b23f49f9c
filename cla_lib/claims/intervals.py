"""Paired differences with intervals that respect the design, and the verdict words they allow.

Two models answer the same items, so a difference is paired; but the items are not independent (one culture
question is asked in six languages, one creature has several relations, the seeds are separate worlds), so a
difference is averaged first within its *cluster*, and the bootstrap resamples seeds and, within each drawn seed,
clusters, never rows. Its percentile interval is what a verdict reads:

- "reproduces" when the interval excludes zero in the claimed direction;
- "does not reproduce" when it lies entirely on the other side of zero (beyond `minimum`, default 0);
- "cannot tell at this sample size" otherwise; the interval's half-width is then the smallest effect this sample
  could have detected, and the chapters print it next to the verdict. Design notes: docs/design-notes.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cla_lib.core.items import question_of

REPRODUCES, DOES_NOT, CANNOT_TELL = "reproduces", "does not reproduce", "cannot tell at this sample size"


@dataclass(frozen=True)
class Interval:
    """A paired mean difference with its bootstrap interval; `n_clusters` is the number of questions per seed (the
    mean, where seeds differ), `n_seeds` the number of seeds."""

    estimate: float
    low: float
    high: float
    n_clusters: int
    n_seeds: int
    level: float = 0.95

    @property
    def half_width(self) -> float:
        """Half the interval's width: about the smallest difference this sample could tell from zero."""
        return (self.high - self.low) / 2

    def text(self) -> str:
        return (f"{self.estimate:+.3f} [{self.low:+.3f}, {self.high:+.3f}] "
                f"(n = {self.n_clusters} questions × {self.n_seeds} seed{'s' if self.n_seeds != 1 else ''})")


def verdict(interval: Interval, direction: int, minimum: float = 0.0) -> str:
    """The verdict word for a claimed effect of sign `direction` (+1: the claim says up, -1: down)."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, not {direction!r}")
    low, high = sorted((direction * interval.low, direction * interval.high))
    if low > 0:
        return REPRODUCES
    if high < -abs(minimum):
        return DOES_NOT
    return CANNOT_TELL


def _cluster_differences(rows: pd.DataFrame, method: str, reference: str, metric: str) -> pd.DataFrame:
    pivot = rows[rows.method.isin([method, reference])].pivot_table(
        index=["seed", "id"], columns="method", values=metric, aggfunc="mean")
    if method not in pivot or reference not in pivot:
        return pd.DataFrame(columns=["seed", "cluster", "difference"])
    pivot = pivot.dropna(subset=[method, reference])
    frame = pd.DataFrame({"difference": pivot[method].astype(float) - pivot[reference].astype(float)})
    frame = frame.reset_index()
    frame["cluster"] = frame["id"].map(question_of)
    return frame.groupby(["seed", "cluster"], sort=True, as_index=False).difference.mean()


def paired_differences(answered: pd.DataFrame, *, method: str, reference: str, task: str,
                       metric: str = "correct", language: str | None = None,
                       relative_to_english: bool = False) -> pd.DataFrame:
    """Per (seed, cluster): the mean over the cluster's items of `method`'s `metric` minus `reference`'s, matched
    item by item within a seed (`answered` is `comparison.evaluate`'s item-level frame; English items are left
    out: they are the ceiling, not the target languages; `language` keeps one target language only).

    `relative_to_english` subtracts, per cluster, the same difference on the cluster's English items: the change of
    the gap to the English ceiling, so that a method that only moves what the model knows in English (the ceiling)
    does not count as transfer. Clusters without English items are dropped then.
    """
    rows = answered[answered.task == task]
    target = rows[rows.language != "en"]
    if language is not None:
        target = target[target.language == language]
    differences = _cluster_differences(target, method, reference, metric)
    if differences.empty:
        raise ValueError(f"no {task} items answered by both {method!r} and {reference!r}")
    if relative_to_english:
        english = _cluster_differences(rows[rows.language == "en"], method, reference, metric)
        differences = differences.merge(english, on=["seed", "cluster"], suffixes=("", "_english"))
        if differences.empty:
            raise ValueError(f"no {task} question answered in English and in a target language")
        differences["difference"] = differences.difference - differences.difference_english
        differences = differences.drop(columns="difference_english")
    return differences


def _seed_means(differences: pd.DataFrame, resamples: int, generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Each seed's clusters resampled `resamples` times: the per-seed values and a (resamples, seeds) table of
    resampled seed means."""
    per_seed = [group.difference.to_numpy(float) for _, group in differences.groupby("seed", sort=True)]
    return per_seed, np.stack([values[generator.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
                               for values in per_seed], axis=1)


def _percentile_interval(seed_means: np.ndarray, estimate: float, n_clusters: int, generator,
                         level: float) -> Interval:
    resamples, n_seeds = seed_means.shape
    if n_seeds > 1:
        drawn = generator.integers(0, n_seeds, (resamples, n_seeds))
        statistics = np.take_along_axis(seed_means, drawn, axis=1).mean(axis=1)
    else:
        statistics = seed_means[:, 0]
    tail = (1 - level) / 2
    low, high = np.quantile(statistics, [tail, 1 - tail])
    return Interval(estimate, float(low), float(high), n_clusters, n_seeds, level)


def cluster_bootstrap(differences: pd.DataFrame, *, resamples: int = 4000, level: float = 0.95,
                      seed: int = 0) -> Interval:
    """The percentile interval of the mean difference, resampling seeds and, within each seed, its clusters.

    `differences` has columns ``seed``, ``cluster``, ``difference`` (`paired_differences`). The estimate is the
    mean over seeds of each seed's mean over clusters; the random generator is seeded, so a build is repeatable.
    """
    if differences.empty:
        raise ValueError("no paired differences to resample")
    generator = np.random.default_rng(seed)
    per_seed, seed_means = _seed_means(differences, resamples, generator)
    estimate = float(np.mean([values.mean() for values in per_seed]))
    per_seed_clusters = round(float(np.mean([len(values) for values in per_seed])))
    return _percentile_interval(seed_means, estimate, per_seed_clusters, generator, level)


def summed_bootstrap(parts: list[pd.DataFrame], *, resamples: int = 4000, level: float = 0.95,
                     seed: int = 0) -> Interval:
    """The interval of a sum of mean differences over separate sets of clusters (Δtransfer over creatures plus
    Δlocalization over culture questions: a change of the balance transfer + localization). Each part's clusters
    are resampled on their own within each seed, and the seeds together; ``n_clusters`` adds the parts' clusters."""
    if not parts or any(part.empty for part in parts):
        raise ValueError("no paired differences to resample")
    seeds = [sorted(part.seed.unique()) for part in parts]
    if any(these != seeds[0] for these in seeds):
        raise ValueError(f"the parts cover different seeds: {seeds}")
    generator = np.random.default_rng(seed)
    drawn = [_seed_means(part, resamples, generator) for part in parts]
    estimate = float(sum(np.mean([values.mean() for values in per_seed]) for per_seed, _ in drawn))
    clusters = sum(round(float(np.mean([len(values) for values in per_seed]))) for per_seed, _ in drawn)
    return _percentile_interval(sum(means for _, means in drawn), estimate, clusters, generator, level)
