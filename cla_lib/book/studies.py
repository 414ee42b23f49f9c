"""The steering chapters' loops over seeds: each seed's base organism loaded, studied, its aligned organisms
scored, and let go before the next seed loads.

Every seed is its own world and base organism, so chapters 3 and 4 repeat one seed's study (`cla_lib.steering`)
per seed; the loop lives here, beside `ChapterSetup`, which knows how to load each seed's models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from cla_lib.book.chapters import ChapterSetup
from cla_lib.core.items import Item
from cla_lib.steering.study import aligned_test_answers, surgical_requests, surgical_study


class SurgicalSeeds(NamedTuple):
    """Chapter 4 over its seeds: one `SurgicalStudy` per seed (the set-up's own first), the aligned organisms'
    test points by seed and method, their test answers, and the requests one seed would send to NDIF."""

    studies: list
    aligned_points: dict
    aligned_answers: list
    requests: list


def surgical_seeds(setup: ChapterSetup, seeds: str | int, lm, items: Sequence[Item], layers: Sequence[int], *,
                   candidate_layers: int, batch_size: int, remote=False) -> SurgicalSeeds:
    """Surgical Steering's study on each seed of `seeds` (`lm` and `items` are the set-up's own seed's, already
    loaded), and each aligned organism of that seed scored on its test split with the study's choices. A seed's
    base model is dropped before its aligned organisms load, so that one model is held at a time."""
    studies, aligned_points, aligned_answers, requests = [], {}, [], []
    for organism_seed in setup.seeds(seeds):
        seed_setup = setup if organism_seed == setup.seed else setup.for_seed(organism_seed)
        seed_lm = lm if organism_seed == setup.seed else seed_setup.load()
        seed_items = items if organism_seed == setup.seed else seed_setup.items(tokenizer=seed_lm.tokenizer)
        studies.append(surgical_study(seed_lm, seed_items, setup.languages, layers, setup.strengths,
                                      seed=organism_seed, candidate_layers=candidate_layers, batch_size=batch_size,
                                      remote=remote))
        if organism_seed == setup.seed:
            requests = surgical_requests(seed_lm, seed_items, setup.languages, studies[-1], batch_size=batch_size)
        del seed_lm
        for method in setup.aligned:
            points, answers = aligned_test_answers(seed_setup.load(method), seed_items, method=method,
                                                   seed=organism_seed, languages=setup.languages, study=studies[-1],
                                                   batch_size=batch_size)
            aligned_points.setdefault(organism_seed, {})[method] = points
            aligned_answers.append(answers)
    return SurgicalSeeds(studies, aligned_points, aligned_answers, requests)
