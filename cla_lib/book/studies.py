"""The steering chapters' loops over seeds: each seed's base organism loaded, studied, its aligned organisms
scored, and let go before the next seed loads.

Every seed is its own world and base organism, so chapters 3 and 4 repeat one seed's study (`cla_lib.steering`)
per seed; the loop lives here, beside `ChapterSetup`, which knows how to load each seed's models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from cla_lib.book.chapters import ChapterSetup
from cla_lib.claims.analysis import vector_reliability
from cla_lib.core.items import Item
from cla_lib.organism import PLANTED, config_for, planted_config
from cla_lib.steering.study import aligned_test_answers, layer_study, surgical_requests, surgical_study


class LayerSeeds(NamedTuple):
    """Chapter 3 over its seeds: one `LayerStudy` per seed (the set-up's own first), each seed's items, each seed's
    vector reliabilities, and the requests the further seeds would send to NDIF."""

    studies: list
    items: dict
    reliabilities: dict
    requests: list


def layer_seeds(setup: ChapterSetup, seeds: str | int, study, items: Sequence[Item], reliability, layers: Sequence[int],
                *, batch_size: int, remote=False) -> LayerSeeds:
    """The layer study with its controls and the vectors' split-half reliability on every further seed of `seeds`
    (`study`, `items` and `reliability` are the set-up's own seed's); each seed's base is dropped before the next."""
    studies, seed_items, reliabilities, requests = [study], {setup.seed: items}, {study.seed: reliability}, []
    for other in setup.seeds(seeds)[1:]:
        other_setup = setup.for_seed(other)
        other_lm = other_setup.load()
        seed_items[other] = other_setup.items(tokenizer=other_lm.tokenizer)
        studies.append(layer_study(other_lm, seed_items[other], setup.languages, layers, setup.grid, seed=other,
                                   controls=True, batch_size=batch_size, remote=remote))
        reliabilities[other] = vector_reliability(other_lm, seed_items[other], setup.languages, seed=other,
                                                  batch_size=batch_size, remote=remote)
        requests += [f"extract, sweep and test EN, LOC and their controls (seed {other})"] * 8
        requests += [f"extract EN and LOC from each half of the questions (seed {other})"] * 2
        del other_lm
    return LayerSeeds(studies, seed_items, reliabilities, requests)


def planted_seeds(setup: ChapterSetup, seeds: str | int, seed_items: dict, layers: Sequence[int], *,
                  batch_size: int) -> tuple:
    """The positive control: the layer study on each seed's planted organism (`cla_lib.organism.planted`), its
    sweeps always including the two planted layers; the planted configuration and one study per seed."""
    planted_at = planted_config(config_for(setup.reference.size, setup.seed))
    planted = []
    for one in setup.seeds(seeds):
        planted_lm = setup.for_seed(one).load(PLANTED)
        planted.append(layer_study(planted_lm, seed_items[one], setup.languages,  # the planted layers always
                                   sorted({*layers, planted_at.en_layer, planted_at.loc_layer}), setup.grid, seed=one,
                                   batch_size=batch_size))
        del planted_lm
    return planted_at, planted


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
