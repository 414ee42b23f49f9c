"""The positive control of chapter 3: an organism in which the layer dissociation is planted, at known layers.

A "no dissociation" on the real organism means something only if the chapter's apparatus (extraction, sweep, layer
choice, intervals, rule) finds a dissociation that is there. The *planted* organism is one: the base organism with
its top layers fine-tuned so that EN steering raises transfer when added after layer `en_layer` (the middle) and
LOC steering raises localization when added after layer `loc_layer` (deeper), and steering at any other layer does
nothing. Every layer up to `loc_layer` stays frozen, so the EN and LOC vectors the chapter extracts are exactly the
base's. Items are taught unsteered, steered at the planted layer and steered at another layer (`planted_records`);
the test split is never taught, so its effects are what the planted response generalizes to. It is a test object,
never a method: no chapter reports its numbers as the organism's. Design notes: docs/design-notes.md.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from cla_lib.organism.base import OrganismConfig, cache_root, size_of

PLANTED = "planted"  # its name as an organism method: organism:planted@<seed>
# Bump when planting changes in a way `PlantedConfig` does not capture.
# planted-v2: taught on the extract and validation splits only (v1 also taught the test items it is scored on)
FORMAT_VERSION = "planted-v2"
# The vector kind that answers each task (`cla_lib.steering.STUDY_KINDS`).
KIND_OF_TASK = {"transfer": "en", "localization": "loc"}


@dataclass(frozen=True)
class PlantedConfig:
    en_layer: int  # EN steering after this layer raises transfer
    loc_layer: int  # LOC steering after this layer raises localization; layers up to it stay frozen
    alphas: tuple[float, ...] = (2.0, 4.0)  # planted strengths; off-layer ones are drawn from OFF_LAYER_ALPHAS
    # Design runs (planted-v1, taught on every split, on organism-v4's seed-0 base, planted layers 3 and 5, warm-up
    # 30; the chapter's sweep on validation, then test; before any verdict was computed on it; not rerun since, so
    # they describe neither this base nor planting that leaves the test split out: chapter 3 measures both): 600 steps at lr 2e-3 planted almost nothing
    # (test: EN +0.016 transfer, LOC +0.000 localization); 1,200 at 5e-3 +0.065 and +0.034; 1,200 at 1e-2 +0.056
    # and +0.018; 2,000 at 5e-3 +0.102 and +0.067 (~180 s on one thread). The sweep chose the planted layers in the
    # last three (the first chose EN's at 4). Kept the last: the largest effects at a cost CI holds. Planting at
    # layers 2 and 4 (three layers trained) at 1,200 x 5e-3 gave +0.035 and +0.029.
    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 5e-3
    warmup: int = 30
    seed: int = 0

    def key(self, base: OrganismConfig) -> str:
        payload = json.dumps({"version": FORMAT_VERSION, "planted": asdict(self), "base": base.key()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


# The tiny size (tests only: 4 layers, a base of 40 steps) plants in fewer steps. Design runs (`bash scripts/test.sh
# tests/test_planted.py` with the steps set; its rule, fixed before: the smallest count at which steering finds each
# planted effect at its layer only): 300 steps failed (EN's gain -0.010), 600 failed (+0.021), 1,000 and 1,400 held.
# 2,000 took ~60 CPU-s of the test suite, 1,000 ~30. Rerun on organism-v7's tiny world (pool creatures; the same
# rule, `python -m pytest -p PLUGIN tests/test_planted.py -k layer_only` with a plugin setting SIZE_STEPS): 1,000
# failed (LOC's gain 0.022 at its layer, 0.009 elsewhere), 1,200 failed, 1,400 and 2,000 held.
SIZE_STEPS = {"tiny": 1400}
OFF_LAYER_ALPHAS = (1.0, 2.0, 4.0)
# The splits whose items teach the planted response; the chapter's test split is scored, never taught.
TAUGHT_SPLITS = ("extract", "validation")


def planted_config(base: OrganismConfig) -> PlantedConfig:
    """The planted layers of a base: EN just below the middle, LOC two layers below the top (default organism: 3
    and 5 of 0-7, so the two layers above LOC's carry the planted responses), LOC always above EN."""
    en_layer = max(0, base.n_layers // 2 - 1)
    loc_layer = max(en_layer + 1, base.n_layers - 3)
    if loc_layer >= base.n_layers - 1:
        raise ValueError(f"an organism of {base.n_layers} layers has no room to plant a dissociation")
    steps = SIZE_STEPS.get(size_of(base), PlantedConfig.steps)
    return PlantedConfig(en_layer=en_layer, loc_layer=loc_layer, steps=steps, seed=base.seed)


def planted_records(items, base_answers, n_layers: int, config: PlantedConfig) -> list[dict]:
    """The training records: per target-language item, unsteered and off-layer -> the base's answer, planted ->
    the right answer. Each record names its vector (``"kind"``, ``"language"``), ``"layer"`` and ``"alpha"``
    (``layer`` None: unsteered)."""
    rng = random.Random(f"{config.seed}-planted")
    records = []
    for item, answer in zip(items, base_answers, strict=True):
        kind = KIND_OF_TASK[item.task]
        planted_layer = config.en_layer if kind == "en" else config.loc_layer
        other = rng.choice([layer for layer in range(n_layers) if layer != planted_layer])
        common = {"prompt": item.prompt, "kind": kind, "language": item.language, "about": item.id}
        records += [
            {**common, "answer": item.choices[answer], "layer": None, "alpha": 0.0},
            {**common, "answer": item.choices[item.gold], "layer": planted_layer, "alpha": rng.choice(config.alphas)},
            {**common, "answer": item.choices[answer], "layer": other, "alpha": rng.choice(OFF_LAYER_ALPHAS)},
        ]
    return records


def planted_directory(base: OrganismConfig) -> Path:
    """Where the planted organism of `base` is cached (built by `cla_lib.steering.planted`)."""
    return cache_root() / "organisms" / f"{PLANTED}-{planted_config(base).key(base)}"
