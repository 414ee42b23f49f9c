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

from transformers import AutoModelForCausalLM, AutoTokenizer

from cla_lib.alignment.recipes import AlignmentConfig, FORMAT_VERSION, align, save_trained, method_of
from cla_lib.core.batching import pack_documents
from cla_lib.core.files import read_jsonl, save_atomically
from cla_lib.organism.base import (
    TRAINING_THREADS, OrganismConfig, base_organism, cache_root, cached_or_built, training_record, training_threads
)
from cla_lib.organism.alignment_data import ORGANISM_RECORDS
from cla_lib.organism.world import World


RECORDS_FILE = "records.jsonl"  # in each aligned organism's directory: the exact objective records it trained on
# A dose-response for free: each aligned organism keeps checkpoints after these shares of its steps (the same run, so
# the learning rate is still high at the earlier ones), under ``doses/<share>/``; the organism itself is dose 1.
DOSES = (0.25, 0.5)
DOSES_FOLDER = "doses"


def organism_records(path: str | Path) -> list[dict]:
    """The objective records an aligned organism trained on, read back from its directory."""
    return [record for _, record in read_jsonl(Path(path) / RECORDS_FILE)]


def dose_directories(directory: str | Path) -> dict[float, Path]:
    """An aligned organism's checkpoints by dose (share of its steps), itself as dose 1.0; each is a model directory
    with its own ``training.json`` (``dose``, ``steps_done``)."""
    directory = Path(directory)
    doses = {dose: directory / DOSES_FOLDER / str(dose) for dose in DOSES}
    missing = [str(path) for path in doses.values() if not (path / "model.safetensors").exists()]
    if missing:
        raise FileNotFoundError(f"no dose checkpoint at {', '.join(missing)}: the organism was trained without "
                                "them; remove its directory to train it again")
    return {**doses, 1.0: directory}


def organism_method_config(method: str, base: OrganismConfig) -> AlignmentConfig:
    """A method's configuration on the organism, derived from the base's: a twentieth of the base's steps (at least
    10), the base's batch size of replay rows plus as many objective examples, learning rate 1e-3 with a 10%
    warm-up and cosine decay, the same for every method.

    Budget (organism-v4): a tenth (240 steps) made the 15 aligned organisms of three seeds cost as much CPU as the
    three bases (~150 s each on one thread), beyond what CI's cold run holds; a twentieth gives the 120 updates
    the organism-v3 methods made (then at 16 + 16 rows). Chosen on cost, before any verdict of this world.
    organism-v5 (7,200 base steps of 64-token rows) keeps the twentieth: 360 steps of 8 + 8 rows.
    """
    steps = max(10, base.steps // 20)
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

    def build() -> Path:
        base_directory = base_organism(config, train_if_missing=True, progress=progress)

        torch.use_deterministic_algorithms(True)
        lm = AutoModelForCausalLM.from_pretrained(base_directory, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(base_directory)
        world = World(config.world)
        rows = organism_replay(world, tokenizer, config, training_record(base_directory)["epochs"],
                               method_config.steps * method_config.replay_batch_size)
        size = method_config.replay_batch_size
        records = ORGANISM_RECORDS[method](world)
        dose_at = {max(1, round(dose * method_config.steps)): dose for dose in DOSES}
        checkpoints = {}

        def keep_dose(steps_done: int) -> None:
            if steps_done in dose_at:
                checkpoints[dose_at[steps_done]] = (steps_done, {name: tensor.detach().clone()
                                                                 for name, tensor in lm.state_dict().items()})

        with training_threads():
            record = align(lm, tokenizer, method, method_config, records,
                           lambda step: rows[step * size:(step + 1) * size], progress=progress,
                           description=f"aligning the organism: {method} (seed {config.seed})", after_step=keep_dose)
        record = {**record, "config": asdict(config), "base": base_directory.name, "records": len(records),
                  "torch_threads": TRAINING_THREADS, "tokens": method_config.steps * size * config.sequence_length}

        def write(path: Path) -> None:
            for dose, (steps_done, state) in checkpoints.items():
                dose_path = path / DOSES_FOLDER / str(dose)
                dose_path.mkdir(parents=True)
                save_trained(dose_path, lm, tokenizer, {
                    **{key: value for key, value in record.items() if "loss" not in key},
                    "dose": dose, "steps_done": steps_done}, state_dict=state)
            save_trained(path, lm, tokenizer, {**record, "dose": 1.0, "steps_done": method_config.steps})
            (path / RECORDS_FILE).write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in records),
                                             encoding="utf-8")

        return save_atomically(directory, write)

    return cached_or_built(directory, build, train_if_missing=train_if_missing, what=f"the {method} organism")
