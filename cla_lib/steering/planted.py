"""Chapter 3's positive control built: the base organism taught its planted dissociation (what it is, its records and
where it is cached: `cla_lib.organism.planted`). It is trained with the apparatus it tests (scoring and vector
extraction), so it lives above them; importing this module registers it with the organism registry
(`register_builder`), which every model reference of ``organism:planted`` goes through."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from transformers import AutoModelForCausalLM, AutoTokenizer

from cla_lib.alignment.objectives import answer_loss
from cla_lib.alignment.records import RecordBatches, instruction_batch
from cla_lib.alignment.recipes import save_trained, trainable_parameters
from cla_lib.core.files import save_atomically
from cla_lib.core.languages import DEFAULT_LANGUAGES
from cla_lib.core.training import Schedule, train
from cla_lib.model.layers import decoder_layers
from cla_lib.organism.aligned import RECORDS_FILE
from cla_lib.organism.base import TRAINING_THREADS, OrganismConfig, base_organism, cached_or_built, training_threads
from cla_lib.organism.planted import (
    KIND_OF_TASK, PLANTED, TAUGHT_SPLITS, planted_config, planted_directory, planted_records
)
from cla_lib.organism.registry import register_builder
from cla_lib.plane.evaluation import answers, plane_items
from cla_lib.plane.loading import load_model
from cla_lib.steering.extraction import extract_vectors


def _row_edits(records: list[dict], vectors: dict, hidden_size: int) -> dict[int, torch.Tensor]:
    """Per layer, a `[rows, hidden]` delta: each steered record's alpha * vector on its own row, zero elsewhere."""
    edits: dict[int, torch.Tensor] = {}
    for row, record in enumerate(records):
        if record["layer"] is None:
            continue
        delta = edits.setdefault(record["layer"], torch.zeros(len(records), hidden_size))
        delta[row] = record["alpha"] * vectors[f"{record['kind']}.{record['language']}"][record["layer"]]
    return edits


def steered_answer_loss(lm, batch: dict) -> torch.Tensor:
    """`answer_loss` with each row's steering added to the residual after its layer, at every position, as
    `cla_lib.model.add_to_residual` adds it when the chapter scores."""
    def hook(delta):
        def add(module, arguments, output):
            hidden = output[0] if isinstance(output, tuple) else output
            shifted = hidden + delta[:, None, :].to(hidden.dtype)
            return (shifted, *output[1:]) if isinstance(output, tuple) else shifted
        return add

    layers = decoder_layers(lm)
    handles = [layers[layer].register_forward_hook(hook(delta)) for layer, delta in batch["edits"].items()]
    try:
        return answer_loss(lm, batch["encoded"])
    finally:
        for handle in handles:
            handle.remove()


def planted_organism(base: OrganismConfig, *, train_if_missing: bool = True, progress: bool = True) -> Path:
    """The directory of the planted organism of a base (`planted_config`), training it on first use.

    Raises:
        FileNotFoundError: it is not cached and `train_if_missing` is False.
    """
    config = planted_config(base)
    directory = planted_directory(base)

    def build() -> Path:
        base_directory = base_organism(base, train_if_missing=True, progress=progress)

        torch.use_deterministic_algorithms(True)
        with training_threads():
            lm = load_model(str(base_directory))
            # The base's own directory names its world: a name would resolve the size from $CLA_ORGANISM_SIZE.
            items = plane_items(str(base_directory), DEFAULT_LANGUAGES, tokenizer=lm.tokenizer)
            vectors = extract_vectors(lm, items, kinds=sorted(set(KIND_OF_TASK.values())), languages=DEFAULT_LANGUAGES,
                                      progress=False)
            targets = [item for item in items if item.language != "en" and item.split in TAUGHT_SPLITS]
            records = planted_records(targets, answers(lm, targets), base.n_layers, config)
            del lm
            network = AutoModelForCausalLM.from_pretrained(base_directory, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(base_directory)
            top = tuple(str(layer) for layer in range(config.loc_layer + 1, base.n_layers))
            parameters = trainable_parameters(network, (*top, "norm"))  # the decoder layers above LOC's, the final norm
            torch.manual_seed(config.seed)
            batches = RecordBatches(records, config.batch_size, config.seed)

            def batch(step: int) -> dict:
                chosen = batches(step)
                return {"encoded": instruction_batch(tokenizer, chosen),
                        "edits": _row_edits(chosen, vectors, base.hidden_size)}

            log = train(network, steered_answer_loss, batch,
                        Schedule(config.steps, config.learning_rate, warmup=config.warmup), parameters=parameters,
                        description=f"planting the dissociation (seed {base.seed})", progress=progress)
        record = {"method": PLANTED, "config": asdict(base), "planted": asdict(config), "base": base_directory.name,
                  "records": len(records), "trainable": [f"model.layers.{layer}" for layer in top] + ["model.norm"],
                  "train_seconds": log.seconds, "final_loss": sum(log.losses[-20:]) / len(log.losses[-20:]),
                  "losses": log.losses, "torch_threads": TRAINING_THREADS}
        def write(path: Path) -> None:
            save_trained(path, network, tokenizer, record)
            (path / RECORDS_FILE).write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in records),
                                             encoding="utf-8")

        return save_atomically(directory, write)

    return cached_or_built(directory, build, train_if_missing=train_if_missing, what="the planted organism")


register_builder(PLANTED, planted_organism)
