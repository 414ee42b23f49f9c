"""The chapters' shared set-up: a chapter's parameters cell, resolved once into the values every chapter needs.

Chapters 01, 03 and 04 take the same parameters (`model`, `language`, `seed`, `organism_size`, `aligned`, `alphas`,
`remote`); `chapter_setup` turns them into one `ChapterSetup`, so that a chapter's first cell is a call, not a
page of bookkeeping that each chapter repeats.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from cla_lib.alignment.estimate import check_device
from cla_lib.alignment.recipes import METHODS
from cla_lib.claims.comparison import Run, erasure_runs, parse_list, parse_seeds
from cla_lib.plane.evaluation import check_data, plane_items
from cla_lib.core.items import SPLITS, Item
from cla_lib.core.languages import resolve_languages
from cla_lib.plane.loading import load_model, placement, use_placement
from cla_lib.model.reference import ModelRef, UnknownOrganismError
from cla_lib.organism.base import SIZES
from cla_lib.organism.registry import organism_path
from cla_lib.steering.splits import check_disjoint
from cla_lib.core.values import dtype_name
from cla_lib.model.remote import Remote, is_remote


@dataclass(frozen=True)
class ChapterSetup:
    """A chapter's model, languages and strengths.

    Attributes:
        reference: the base model; an organism named without a seed gets the chapter's `seed`.
        languages: the target languages.
        aligned: the aligned organisms' methods (none for a real model).
        strengths: the steering strengths (`alphas`), without 0.
        layer_stride: the sweeps try every k-th decoder layer from layer 0 (`swept_layers`).
        remote: run on NDIF.
        transfer_data, localization_data: a real model's data (hub ids or local copies), the defaults of `items`.
    """

    reference: ModelRef
    languages: list[str]
    seed: int
    aligned: list[str]
    strengths: list[float]
    layer_stride: int = 1
    remote: Remote = False
    transfer_data: str | None = None
    localization_data: str | None = None

    @property
    def is_organism(self) -> bool:
        return self.reference.is_organism

    @property
    def name(self) -> str:
        return self.reference.name

    @property
    def label(self) -> str:
        """How figures name the model: the organism by size and seed, any other model by its name."""
        return self.label_of(self.seed)

    def label_of(self, seed: int) -> str:
        """`label` for one of several seeds a chapter runs (a real model has one, and no seed in its name)."""
        return f"the {self.reference.size} model organism (seed {seed})" if self.is_organism else self.name

    @property
    def languages_text(self) -> str:
        return ", ".join(self.languages)

    @property
    def grid(self) -> list[float]:
        """The strengths of a sweep: 0 (the unsteered model, scored once per sweep) and `strengths`."""
        return [0.0, *self.strengths]

    def seeds(self, seeds: str | int) -> list[int]:
        """The organism seeds of a multi-seed analysis: this set-up's own seed first, then the others of `seeds`
        (a real model has one: its own)."""
        if not self.is_organism:
            return [self.seed]
        own = self.reference.seed
        return [own] + [other for other in parse_seeds(seeds) if other != own]

    def for_seed(self, seed: int) -> ChapterSetup:
        """The same set-up on the organisms of another seed (its base and the same aligned methods)."""
        return replace(self, reference=ModelRef.of_organism(seed=seed, size=self.reference.size), seed=seed)

    def directories(self, seeds: str | int, methods: Sequence[str] = ("base",)) -> list[Path | str]:
        """Every model a multi-seed analysis ran on: `methods` of each seed of `seeds` (provenance)."""
        return [(self if seed == self.seed else self.for_seed(seed)).directory(method)
                for seed in self.seeds(seeds) for method in methods]

    def aligned_reference(self, method: str) -> ModelRef:
        return ModelRef.of_organism(method, self.seed, size=self.reference.size)

    def directory(self, method: str = "base") -> Path | str:
        """The directory of the base organism or an aligned one (trained first if need be); a real model's name."""
        if not self.is_organism:
            return self.name
        reference = self.reference if method == "base" else self.aligned_reference(method)
        return organism_path(reference, progress=False)

    def load(self, method: str = "base"):
        """The base model, or the aligned organism of `method`, loaded for tracing; a real model says where it went."""
        lm = load_model(str(self.directory(method)), remote=self.remote)
        if not self.is_organism and not self.remote:
            print(f"{self.name}: {placement(lm)}")
        return lm

    def swept_layers(self, n_layers: int) -> list[int]:
        """The decoder layers the chapter's sweeps steer at: every `layer_stride`-th of `n_layers`, from layer 0."""
        return list(range(0, n_layers, self.layer_stride))

    def items(self, *, tokenizer=None) -> list[Item]:
        """The chapter's items: the organism's world, or the real model's data sets the set-up was made with."""
        return plane_items(self.reference, self.languages, transfer_data=self.transfer_data,
                           localization_data=self.localization_data, tokenizer=tokenizer)


def _cell(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3f}"


def table_style() -> None:
    """How the book's tables show numbers: counts as integers (3174, not 3174.0), everything else to three decimals,
    and no cell cut short with "…" (pandas' display options, for every table a chapter displays)."""
    pd.set_option("display.float_format", _cell)
    pd.set_option("display.max_colwidth", None)


def _whole(value, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not str(value).strip().lstrip("-").isdigit():
        raise ValueError("not a whole number")
    if int(value) < least:
        raise ValueError(f"{int(value)} is below {least}")
    return int(value)


def _strengths(value) -> None:
    for part in parse_list(value):
        try:
            alpha = float(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a number") from None
        if not math.isfinite(alpha) or alpha == 0:
            raise ValueError(f"{part} is not a finite nonzero strength (the unsteered model is always scored)")


def _seeds(value) -> None:
    if not parse_list(value):
        raise ValueError("no seed given")
    for part in parse_list(value):
        _whole(part, least=0)


def _methods(value) -> None:
    unknown = [method for method in parse_list(value) if method not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; methods: {', '.join(METHODS)}")


def _flag(value) -> None:
    if not isinstance(value, bool):
        raise ValueError("not True or False")


def _remote(value) -> None:
    if not is_remote(value):
        raise ValueError("not True, False or 'local'")


def _size(value) -> None:
    if value is not None and value not in SIZES:
        raise ValueError(f"unknown organism size; sizes: {', '.join(SIZES)}")


# Each chapter parameter's check (what its value can mean), run before a kernel starts (`cla rerun`) or anything
# loads (`chapter_setup`).
PARAMETER_CHECKS = {
    "seed": lambda value: value is None or _whole(value, least=0),  # None: chapter 2's "every seed of seeds"
    "seeds": _seeds,
    "batch_size": lambda value: _whole(value, least=1),
    "language": resolve_languages,
    "organism_size": _size,
    "aligned": _methods,
    "methods": _methods,
    "include_replay": _flag,
    "alphas": _strengths,
    "layer_stride": lambda value: _whole(value, least=1),
    "remote": _remote,
    "embedded_world": _flag,
    "device": check_device,
    "dtype": lambda value: value is None or dtype_name(value),
}


def check_parameters(parameters: dict) -> None:
    """Refuse a chapter parameter whose value cannot mean anything, in one line that names it: a ValueError."""
    for name, value in parameters.items():
        if name not in PARAMETER_CHECKS:
            continue
        try:
            PARAMETER_CHECKS[name](value)
        except (ValueError, TypeError, argparse.ArgumentTypeError, UnknownOrganismError) as error:
            raise ValueError(f"-p {name}={value!r}: {error}") from None


def chapter_setup(reference: str, language: str, *, seed: int = 0, organism_size: str | None = None,
                  aligned: str = "", alphas: str = "", layer_stride: int = 1, remote: Remote = False,
                  device: str | None = None,
                  dtype: str | None = None, transfer_data: str | None = None, localization_data: str | None = None,
                  embedded_world: bool = False) -> ChapterSetup:
    """The set-up of a chapter from its parameters' values (see `ChapterSetup`); `device` and `dtype` become the
    defaults of every model the chapter loads (`cla_lib.plane.loading.use_placement`). A real model without its data is
    refused here, before anything loads, unless `embedded_world` asks for the organism's world (`check_data`)."""
    table_style()
    check_parameters(dict(language=language, seed=seed, organism_size=organism_size, aligned=aligned, alphas=alphas,
                          layer_stride=layer_stride, remote=remote, device=device, dtype=dtype,
                          embedded_world=embedded_world))
    parsed = ModelRef.parse(reference, size=organism_size)
    check_data(parsed, transfer_data, localization_data, embedded_world=embedded_world, how="chapter")
    use_placement(device, dtype)
    if parsed.is_organism and "@" not in parsed.name:
        parsed = ModelRef.of_organism(parsed.method, seed, size=organism_size)
    return ChapterSetup(parsed, resolve_languages(language), seed,
                        parse_list(aligned) if parsed.is_organism else [],
                        [float(alpha) for alpha in parse_list(alphas)], int(layer_stride), remote, transfer_data,
                        localization_data)


@dataclass(frozen=True)
class ErasureSetup:
    """Chapter 2's set-up: its languages, its methods and the runs compared (`comparison.erasure_runs`), with the
    seeds those runs have (a real model's: its checkpoints') and how figures name the model."""

    languages: list[str]
    is_organism: bool
    methods: list[str]
    runs: list[Run]
    seeds: list[int]
    label: str

    @property
    def seeds_text(self) -> str:
        return ", ".join(map(str, self.seeds))


def erasure_setup(reference: str, language: str, methods: str, seeds: str, *, seed: int | None = None,
                  include_replay: bool = True, organism_size: str | None = None, aligned_models: str = "",
                  transfer_data: str | None = None, localization_data: str | None = None,
                  embedded_world: bool = False, device: str | None = None, dtype: str | None = None) -> ErasureSetup:
    """Chapter 2's parameters resolved, its models trained or found: a real model without its data is refused
    before anything loads, `device` and `dtype` become the defaults of every model loaded, and `seed` (one seed)
    overrides `seeds`, as in every chapter; its tables take the book's style (`table_style`)."""
    table_style()
    languages = resolve_languages(language)
    check_data(reference, transfer_data, localization_data, embedded_world=embedded_world, how="chapter")
    use_placement(device, dtype)
    is_organism = reference.startswith("organism")
    method_list = parse_list(methods)
    seed_list = [int(seed)] if seed is not None else parse_seeds(seeds) if is_organism else None
    runs = erasure_runs(reference, method_list, seed_list, include_replay=include_replay, size=organism_size,
                        aligned_models=aligned_models, progress=False)
    return ErasureSetup(languages, is_organism, method_list, runs, sorted({run.seed for run in runs}),
                        f"the {organism_size} model organism" if is_organism else reference)


def by_split(items: list[Item]) -> dict[str, list[Item]]:
    """The items of each split, checked: no question of the extract split is asked again in validation or test."""
    split = {name: [item for item in items if item.split == name] for name in SPLITS}
    check_disjoint(split["extract"], split["validation"] + split["test"])
    return split
