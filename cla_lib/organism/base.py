"""The base organism: a small Llama trained on CPU on the synthetic world, cached by its configuration.

The organism is a `LlamaForCausalLM` (8 decoder layers by default, so that it has an early, a middle and a late
stage) with a byte-level BPE tokenizer trained on the world's text. Training is deterministic in the
`OrganismConfig` and the result is a standard Hugging Face directory (`config.json`, `model.safetensors`,
tokenizer files) cached under a key of the world and training configuration; the directory appears atomically,
so an interrupted training never leaves a half-written model behind. Sizes: ``default`` for the book, ``tiny`` for
tests and quick runs (the environment variable ``CLA_ORGANISM_SIZE`` picks the default size).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from transformers import LlamaConfig, LlamaForCausalLM

from cla_lib.core.files import building, cache_root, save_atomically, sha256
from cla_lib.model.reference import UnknownOrganismError
from cla_lib.organism.corpus import PackedStream, train_tokenizer
from cla_lib.organism.world import World, WorldConfig
from cla_lib.core.performance import machine, torch_threads
from cla_lib.core.training import Schedule, TrainingLog, language_model_loss, train


# Bump when the world's text or the training code changes in a way the configs do not capture.
# v2: creature names are never lexicon words; v3: a smaller, denser world; v4: exact split counts, an alignment pool;
# v5: a budget and learning rate at which the base learns its world's facts (the design runs in `OrganismConfig`);
# v6: every explicit culture statement also written as a question (`SIZES`' design runs); v7: alignment data new to
# the base (the pool's creatures and culture questions, `WorldConfig.n_pool`: the base reads their profiles and
# implicit statements only)
FORMAT_VERSION = "organism-v7"


@dataclass(frozen=True)
class OrganismConfig:
    world: WorldConfig = field(default_factory=WorldConfig)
    vocab_size: int = 3072
    n_layers: int = 8
    hidden_size: int = 128
    intermediate_size: int = 512
    n_heads: int = 4
    # Untied input and output embeddings (a creature's name is never predictable as a next token; untied, its input
    # embedding need not serve that prediction too): alone, 0.26 -> 0.31 on the English ceiling (design runs below).
    tie_embeddings: bool = False
    sequence_length: int = 64
    # Design runs (organism-v5), chosen on the testbed's knowledge rows (`cla_lib.organism.knowledge`), never on a
    # verdict; seed 0, each reproduced by `python benchmarks/organism_design.py --set NAME=VALUE ...` with the
    # settings named (against organism-v4's defaults: 128-token rows, tied embeddings, 2,400 steps, lr 6e-3), as
    # English ceiling / anchor facts / culture taught, named / held out, named:
    #   organism-v4 as built (2,400 x 8 x 128, lr 6e-3)                     0.26 / 0.17 / 0.38 / 0.16
    #   world.paraphrases=True world.profile_repeats=10 world.qa_repeats=2
    #     world.explicit_question_share=1.0 world.parallel_culture_share=0.05  0.21 / 0.17 / 0.39 / 0.21
    #   tie_embeddings=False                                                  0.31 / 0.31 / 0.45 / 0.24
    #   sequence_length=64 steps=4800 (the same tokens, twice the updates)    0.33 / 0.32 / 0.41 / 0.21
    #   steps=4800 (twice the tokens)                                         0.62 / 0.68 / 0.62 / 0.32
    #   sequence_length=64 steps=7200 tie_embeddings=False (1.5x the tokens)  0.33 / 0.38 / 0.51 / 0.20
    #     ... learning_rate=0.012                                             0.27 / 0.18 / 0.36 / 0.20
    #     ... learning_rate=0.012 and the first row's world settings           0.13 / 0.17 / 0.44 / 0.29
    #     ... learning_rate=0.003                                             0.79 / 1.00 / 0.84 / 0.39
    #     ... learning_rate=0.0015                                            0.91 / 1.00 / 0.91 / 0.40
    # Below its plateau (loss ~1.0, every fact's value at 8-way chance, names at chance) the organism had learnt
    # the text's frames and none of its facts; a lower learning rate left it, where more tokens alone did slowly.
    # Kept: the last row (1.5x organism-v4's tokens, the most CI's cold hour holds; the lowest rate tried). Held-out
    # culture with the country named stays low (0.40): the explicit facts are the rarest text (next design step).
    batch_size: int = 8
    steps: int = 7200
    learning_rate: float = 1.5e-3
    warmup: int = 120
    seed: int = 0

    def key(self) -> str:
        payload = json.dumps({"version": FORMAT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


# Design runs (organism-v6), on seed 1, organism-v5's weakest seed, chosen on the testbed's knowledge rows, never on a
# verdict; each is `python benchmarks/organism_design.py --seed 1 --set NAME=VALUE ...` with the settings named
# (against organism-v5: `OrganismConfig()`), as English ceiling / anchor facts in the weakest language / culture
# with the country named, taught / held out / held out without it (rules: >= 0.85 / 0.85 / 0.85 / 0.75, and held
# out named - plain >= 0.20):
#   organism-v5 as built                                                  0.80 / 0.98 / 0.87 / 0.48 / 0.33
#   learning_rate=0.00075                                                 0.79 / 0.84 / 0.79 / 0.41 / 0.28
#   world.explicit_question_share=1.0                                     0.78 / 0.90 / 0.93 / 0.62 / 0.43
#     ... world.paraphrases=True world.profile_repeats=8                  0.93 / 0.83 / 0.85 / 0.54 / 0.35
#     ... and world.explicit_repeats=2                                    0.84 / 0.67 / 0.93 / 0.74 / 0.57
# At a fixed budget the kinds of fact compete: English profiles raise the ceiling and cost the anchors and culture;
# explicit culture raises held-out culture named and plain together, so LOC's headroom stays ~0.18-0.19. Kept, by
# the rule fixed before these runs (the most knowledge and headroom rules passed on seed 1): the third row, 4 of 7.
SIZES = {
    "default": OrganismConfig(world=WorldConfig(explicit_question_share=1.0)),
    "tiny": OrganismConfig(world=WorldConfig(n_anchor=16, n_bridge=8, n_transfer=8, n_pool=8, culture_limit=40), vocab_size=1024, n_layers=4,
                           hidden_size=64, intermediate_size=128, tie_embeddings=True, sequence_length=64,
                           batch_size=16, steps=40, learning_rate=6e-3, warmup=5),
}


def config_for(size: str | None = None, seed: int = 0) -> OrganismConfig:
    size = size or os.environ.get("CLA_ORGANISM_SIZE", "default")
    if size not in SIZES:
        raise UnknownOrganismError(f"unknown organism size {size!r}; sizes: {', '.join(SIZES)}")
    config = SIZES[size]
    return replace(config, seed=seed, world=replace(config.world, seed=seed))


def size_of(config: OrganismConfig) -> str | None:
    """The name of the size `config` is a seed of (None for a design run's variant)."""
    unseeded = replace(config, seed=0, world=replace(config.world, seed=0))
    return next((name for name, size in SIZES.items() if size == unseeded), None)


# Organisms train on one thread each and `prepare_organisms` trains one per core. On this 2-core machine 60 steps of
# the default base ran at 0.58 s/step on one thread and 0.40 on two (one run), and two 1-thread trainings side by
# side at 0.57 s/step each (`cla organism prepare`): 1.4x the throughput of one training on both cores. The thread
# count does not change the bytes (those 60 steps gave identical weights on 1 and 2 threads).
# Pinned numerics, measured (organism issue, item 5; `python benchmarks/numerics.py --steps 60 --repeats 3`, seed 0,
# nothing else running, this 2-core AMD EPYC, torch 2.13.0 on AVX512): the weights are byte-identical on 1 and 2
# threads both as torch dispatches by default and pinned (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2,
# MKL_CBWR=COMPATIBLE); pinned gives other bytes than the default, and costs 0.272 / 0.138 s/step = 1.97x on one
# thread (1.77x on two). Not adopted: the rule was to adopt at <= 1.3x, and twice the training time is the organisms'
# whole budget in CI's hour. An organism's provenance records the pins where set (`performance.machine`).
TRAINING_THREADS = 1


def training_threads():
    """Train inside this: torch on `TRAINING_THREADS` threads, restored afterwards."""
    return torch_threads(TRAINING_THREADS)


def build_model(config: OrganismConfig, tokenizer):
    torch.manual_seed(config.seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads, num_key_value_heads=config.n_heads,
        max_position_embeddings=max(256, config.sequence_length), tie_word_embeddings=config.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(model_config)


def cached_or_built(directory: Path, build, *, train_if_missing: bool, what: str) -> Path:
    """`directory` if the cache holds it, else `build()`'s (which trains and saves it atomically), one process at a
    time (`files.building`): a second process asking for the same organism waits and reuses the first's."""
    if (directory / "model.safetensors").exists():
        return directory
    if not train_if_missing:
        raise FileNotFoundError(f"{what} is not trained yet (expected at {directory})")
    with building(directory):
        if (directory / "model.safetensors").exists():  # trained by another process while this one waited
            return directory
        return build()


def base_organism(config: OrganismConfig, *, train_if_missing: bool = True, progress: bool = True) -> Path:
    directory = cache_root() / "organisms" / f"base-{config.key()}"

    def build() -> Path:
        lm, tokenizer, stream = training_inputs(config)
        log = train_base(lm, stream, config, progress=progress)
        return save_atomically(directory, lambda path: _save(path, lm, tokenizer, config, log, stream))

    return cached_or_built(directory, build, train_if_missing=train_if_missing, what="the organism")


def training_inputs(config: OrganismConfig):
    """(untrained model, tokenizer, batch stream) of a base organism: what its training starts from."""
    torch.use_deterministic_algorithms(True)
    world = World(config.world)
    tokenizer = train_tokenizer(world, config.vocab_size)
    stream = PackedStream(world, tokenizer, config.sequence_length, config.batch_size, config.steps)
    return build_model(config, tokenizer), tokenizer, stream


def train_base(lm, stream: PackedStream, config: OrganismConfig, *, steps: int | None = None,
               progress: bool = True) -> TrainingLog:
    """The base organism's training; `steps` stops it early (throughput benchmarks: every step costs the same)."""
    schedule = Schedule(config.steps, config.learning_rate, warmup=config.warmup, weight_decay=0.01)
    with training_threads():
        return train(lm, language_model_loss, stream.batch, schedule, stop=steps,
                     tokens_per_batch=config.batch_size * config.sequence_length,
                     description=f"training the base organism (seed {config.seed})", progress=progress)


def _save(path: Path, lm, tokenizer, config: OrganismConfig, log: TrainingLog, stream: PackedStream) -> None:
    lm.save_pretrained(path)
    tokenizer.save_pretrained(path)
    record = {
        "method": "base",
        "config": asdict(config),
        "parameters": sum(p.numel() for p in lm.parameters()),
        "train_seconds": log.seconds,
        "tokens": log.tokens,
        "tokens_per_second": log.tokens_per_second,
        "epochs": log.tokens / stream.tokens_per_epoch,
        "final_loss": sum(log.losses[-20:]) / len(log.losses[-20:]),
        "losses": log.losses,
        "torch_threads": TRAINING_THREADS,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**machine(), "torch_threads": TRAINING_THREADS},
        "weights_sha256": sha256(path / "model.safetensors"),
    }
    (path / "training.json").write_text(json.dumps(record, indent=1))


def training_record(path: str | Path) -> dict:
    """What a cached organism's training recorded (config, loss curve, throughput)."""
    return json.loads((Path(path) / "training.json").read_text())


def world_of(path: str | Path) -> World:
    """The world an organism directory was trained on (its items are the organism's benchmark)."""
    world = training_record(path)["config"]["world"]
    world = {key: tuple(value) if isinstance(value, list) else value for key, value in world.items()}
    return World(WorldConfig(**world))


def is_organism_directory(path: str | Path) -> bool:
    """Whether `path` holds an organism: a training record that names its world (a real model aligned by `cla align`
    has a training record too, without one)."""
    record = Path(path) / "training.json"
    if not record.exists():
        return False
    try:
        return "world" in json.loads(record.read_text()).get("config", {})
    except (ValueError, AttributeError):
        return False
