"""From an organism's reference to its directory, training it (and its base) first if it is not cached."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable, Sequence

from cla_lib.model.reference import ModelRef, UnknownOrganismError
from cla_lib.organism.aligned import aligned_organism, organism_method_config
from cla_lib.organism.base import base_organism, config_for
from cla_lib.organism.planted import PLANTED

# Organisms built by a layer above this package (the planted one: `cla_lib.steering.planted`, which registers itself
# when imported), by method: `build(config, *, train_if_missing, progress) -> directory`.
BUILDERS: dict[str, Callable[..., Path]] = {}
WHERE_BUILT = {PLANTED: "cla_lib.steering"}  # what to import for each, said when it is missing


def register_builder(method: str, build: Callable[..., Path]) -> None:
    BUILDERS[method] = build


def organism_path(reference: str | ModelRef = "organism", *, size: str | None = None, train_if_missing: bool = True,
                  progress: bool = True) -> Path:
    """The Hugging Face directory of an organism, training it (and its base) first if it is not cached.

    Args:
        reference: ``organism[:method][@seed]`` or its `ModelRef`.
        size: the organism's size (default: the reference's, else ``$CLA_ORGANISM_SIZE``, else ``default``).

    Raises:
        UnknownOrganismError: not an organism, or an unknown size or method (the message lists them).
    """
    parsed = ModelRef.parse(reference, size=size) if isinstance(reference, ModelRef) else ModelRef.organism(reference, size=size)
    if not parsed.is_organism:
        raise UnknownOrganismError(f"{parsed.name!r} is not an organism name (organism[:method][@seed])")
    config = config_for(parsed.size, parsed.seed)
    if parsed.method == "base":
        return base_organism(config, train_if_missing=train_if_missing, progress=progress)
    if parsed.method in WHERE_BUILT:
        if parsed.method not in BUILDERS:
            raise UnknownOrganismError(f"{parsed.name} is built by {WHERE_BUILT[parsed.method]}: import "
                                       f"{WHERE_BUILT[parsed.method]} first")
        return BUILDERS[parsed.method](config, train_if_missing=train_if_missing, progress=progress)
    return aligned_organism(parsed.method, config, train_if_missing=train_if_missing, progress=progress)


def _organism_name(method: str, seed: int) -> str:
    return ModelRef.of_organism(method, seed).name


def _prepare_one(name: str, size: str | None, builders: dict[str, Callable[..., Path]]) -> tuple[str, str, float]:
    BUILDERS.update(builders)  # unpickling them in a worker imported their modules
    started = time.perf_counter()
    path = organism_path(name, size=size, progress=False)
    return name, str(path), time.perf_counter() - started


def prepare_organisms(methods: Sequence[str], seeds: Sequence[int], *, size: str | None = None,
                      workers: int | None = None, report: Callable[[str], None] = print) -> dict[str, Path]:
    """Train (or find cached) every organism in methods x seeds, one per worker process at a time (a method is
    ``base``, an alignment method, or ``planted``: chapter 3's positive control).

    Each training runs on one thread (`TRAINING_THREADS`). There is one worker per core, and at least one per seed:
    the bases are the long trainings, and with fewer workers than bases the last base would train alone while a
    core idles (three bases on two cores share them instead; the aligned organisms follow). A seed's aligned
    organisms start as soon as its base is done. The results are those of training them one by one.

    Returns:
        The directory of each organism, by name (``organism:midalign@1``).
    """
    workers = workers or max(1, min(max(os.cpu_count() or 1, len(seeds)), len(seeds) * len(methods)))
    aligned = [method for method in methods if method != "base"]
    for method in aligned:  # unknown names fail here, before any training starts
        if method != PLANTED:
            organism_method_config(method, config_for(size))
    paths: dict[str, Path] = {}
    try:  # all cached: no worker processes to start
        paths = {_organism_name(method, seed): organism_path(_organism_name(method, seed), size=size,
                                                            train_if_missing=False)
                 for seed in seeds for method in methods}
        for name, path in paths.items():
            report(f"{name}: {path} (cached)")
        return paths
    except FileNotFoundError:
        paths = {}
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = {pool.submit(_prepare_one, _organism_name("base", seed), size, BUILDERS): seed for seed in seeds}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    seed = pending.pop(future)
                    name, path, seconds = future.result()
                    paths[name] = Path(path)
                    report(f"{name}: {path} ({seconds:.0f} s)")
                    if name == _organism_name("base", seed):
                        pending.update({pool.submit(_prepare_one, _organism_name(method, seed), size, BUILDERS): seed
                                        for method in aligned})
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return paths
