"""Aligned organisms: the base organism fine-tuned with each alignment method, on data from its own world.

An aligned organism is a standard Hugging Face directory, cached at ``cache_root()/organisms/<method>-<key>`` under a
key of the method's configuration and the base organism's key, written atomically; its ``training.json`` keeps the
base ``"config"`` (so `world_of` works on it), the ``"method"``, the ``"method_config"`` and the loss curves.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path

import torch

from cla_lib.alignment.recipes import AlignmentConfig, FORMAT_VERSION, align, save_trained, method_of
from cla_lib.batching import pack_documents
from cla_lib.files import save_atomically
from cla_lib.organism.base import OrganismConfig, base_organism, cache_root, training_record
from cla_lib.organism.world import World


def _parallel_records(world: World) -> list[dict]:
    return [{"language": language, "english": english, "target": target}
            for language, english, target in world.parallel_pairs()]


def _preference_records(world: World) -> list[dict]:
    return [{"prompt": prompt, "chosen": chosen, "rejected": rejected}
            for prompt, chosen, rejected in world.preference_triples()]


def _instruction_records(world: World) -> list[dict]:
    # The world's QA documents read "question answer": the answer follows after a space.
    return [{"language": language, "prompt": question, "answer": f" {answer}"}
            for language, question, answer in world.translated_qa()]


# Each method's objective data on the organism, as records of its JSONL kind (`cla_lib.alignment.DATA_FIELDS`).
ORGANISM_RECORDS = {"midalign": _parallel_records, "clo": _preference_records, "mit": _instruction_records,
                    "replay": lambda world: []}


def prompts_in_records(method: str, world: World, prompts) -> set[str]:
    """The `prompts` that occur verbatim in `method`'s objective records on `world`: a leak check (a scored prompt
    a method trained on measures what it memorised, not what it generalised)."""
    texts = "\n".join(value for record in ORGANISM_RECORDS[method](world) for value in record.values()
                       if isinstance(value, str))
    return {prompt for prompt in set(prompts) if prompt.strip() and prompt.strip() in texts}


def organism_method_config(method: str, base: OrganismConfig) -> AlignmentConfig:
    """A method's configuration on the organism, derived from the base's: a tenth of the base's steps (at least
    10), the base's batch size of replay rows plus as many objective examples, learning rate 1e-3 with a 10%
    warm-up and cosine decay, the same for every method."""
    steps = max(10, base.steps // 10)
    common = dict(steps=steps, warmup=max(1, steps // 10), learning_rate=1e-3, replay_batch_size=base.batch_size,
                  objective_batch_size=base.batch_size, seed=base.seed)
    if method == "midalign":
        common["layer"] = base.n_layers // 2
    return method_of(method).config_type(**common)


def aligned_organism_key(method: str, base: OrganismConfig, config: AlignmentConfig | None = None) -> str:
    config = config or organism_method_config(method, base)
    payload = json.dumps({"version": FORMAT_VERSION, "method": method, "config": asdict(config),
                          "base": base.key()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def organism_replay(world: World, tokenizer, base: OrganismConfig, base_epochs: float, rows: int) -> torch.Tensor:
    """`rows` rows of packed training text, continuing the base organism's stream at the first epoch it did not
    reach (every epoch holds the same documents in a new order, so the rows are new packings of known text)."""
    epoch = math.ceil(round(base_epochs, 6))  # rounded first: 2.0000000001 epochs means epochs 0 and 1
    chunks, available = [], 0
    while available < rows:
        chunk = pack_documents(tokenizer, world.documents(epoch), base.sequence_length)
        chunks.append(chunk)
        available += len(chunk)
        epoch += 1
    return torch.cat(chunks)[:rows]


def aligned_organism(method: str, config: OrganismConfig, *, train_if_missing: bool = True,
                     progress: bool = True) -> Path:
    """The directory of an aligned organism: the base organism of `config`, fine-tuned with `method`.

    Trains the base (if needed) and the aligned organism on first use; later calls return the cached directory.

    Args:
        method: a name in `METHODS`.
        config: the base organism's configuration (`cla_lib.organism.config_for`).
        train_if_missing: train when the organism is not cached; otherwise raise FileNotFoundError.
        progress: show progress bars.

    Raises:
        UnknownOrganismError: `method` is not in `METHODS` (the message lists them).

    Example:
        >>> path = aligned_organism("midalign", config_for("tiny"))
        >>> training_record(path)["method_config"]["layer"]
    """
    method_config = organism_method_config(method, config)
    directory = cache_root() / "organisms" / f"{method}-{aligned_organism_key(method, config, method_config)}"
    if (directory / "model.safetensors").exists():
        return directory
    if not train_if_missing:
        raise FileNotFoundError(f"the {method} organism is not trained yet (expected at {directory})")
    base_directory = base_organism(config, train_if_missing=True, progress=progress)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.use_deterministic_algorithms(True)
    model = AutoModelForCausalLM.from_pretrained(base_directory, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(base_directory)
    world = World(config.world)
    rows = organism_replay(world, tokenizer, config, training_record(base_directory)["epochs"],
                           method_config.steps * method_config.replay_batch_size)
    size = method_config.replay_batch_size
    record = align(model, tokenizer, method, method_config, ORGANISM_RECORDS[method](world),
                   lambda step: rows[step * size:(step + 1) * size], progress=progress,
                   description=f"aligning the organism: {method} (seed {config.seed})")
    record = {**record, "config": asdict(config), "base": base_directory.name,
              "tokens": method_config.steps * size * config.sequence_length}
    return save_atomically(directory, lambda path: save_trained(path, model, tokenizer, record))
