"""The alignment methods as recipes: a configuration, an objective, the data it reads, and the one training step.

Every method trains through `align`: replay rows plus the method's objective batch, through the one training loop
(`cla_lib.core.training.train`), so that the ``replay`` control isolates each objective (see `cla_lib.alignment`).
A new method is one `Method` row in `METHODS`: its configuration type, its data kind and its recipe.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from cla_lib.alignment.objectives import answer_loss, clo_loss, midalign_loss
from cla_lib.alignment.records import RecordBatches, instruction_batch, parallel_batch, preference_batch
from cla_lib.model.layers import n_layers
from cla_lib.model.reference import UnknownOrganismError
from cla_lib.alignment.distributed import Shard, token_total
from cla_lib.alignment.lora import frozen_reference, is_adapted
from cla_lib.core.training import Schedule, language_model_loss, mean_over_processes, train


# Bump when a recipe changes in a way its configuration does not capture.
FORMAT_VERSION = "alignment-v1"


ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class AlignmentConfig:
    """What every method shares; the ``replay`` control uses exactly these fields.

    `trainable` names the modules whose parameters train (a parameter trains when one of the dot-separated parts
    of its name is in the tuple); empty means every parameter.
    """

    steps: int = 150
    learning_rate: float = 1e-3
    warmup: int = 15
    replay_batch_size: int = 32  # rows of packed replay text per step
    objective_batch_size: int = 32  # objective examples per step
    objective_weight: float = 1.0
    trainable: tuple[str, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class MidAlignConfig(AlignmentConfig):
    layer: int | None = None  # decoder layer whose output is pooled; None: n_layers // 2
    temperature: float = 0.1


@dataclass(frozen=True)
class CLOConfig(AlignmentConfig):
    beta: float = 0.1  # DPO's inverse temperature
    nll_weight: float = 0.5  # lambda: loss = lambda * NLL(chosen) + (1 - lambda) * DPO
    trainable: tuple[str, ...] = ATTENTION_PROJECTIONS


@dataclass(frozen=True)
class AttentionReplayConfig(AlignmentConfig):
    """CLO's control: the replay training of ``replay``, on CLO's trainable set (the attention projections)."""

    trainable: tuple[str, ...] = ATTENTION_PROJECTIONS


@dataclass(frozen=True)
class Recipe:
    """A method made concrete for one model: its objective and how records become the objective's batch."""

    objective: Callable | None = None  # loss(model, batch) -> scalar
    collate: Callable | None = None  # records -> batch
    group: Callable | None = None  # record -> key; records of one key never share a batch
    tokens: Callable | None = None  # batch -> the token mask a token-mean objective divides by (for several processes)


@dataclass(frozen=True)
class Method:
    """A registered method: where it comes from, its configuration, its data and its recipe."""

    name: str
    summary: str
    config_type: type
    data: str | None  # the JSONL kind its objective reads (`DATA_FIELDS`); None: replay only
    recipe: Callable  # (model, tokenizer, config) -> Recipe


def midalign_recipe(lm, tokenizer, config: MidAlignConfig) -> Recipe:
    """MidAlign, after Liu & Niehues (ACL 2025, arXiv 2502.14830; code: dannigt/mid-align).

    Follows: InfoNCE on cosine similarity, temperature 0.1, in-batch negatives, on mean-pooled (over the attention
    mask, BOS included) middle-layer states of parallel sentence pairs; one-directional as in the original
    (each target-language sentence picks out its English translation; both sides receive gradients), added to the
    language-model loss. Departs: the two losses are summed in every step (the original alternates task and
    alignment steps); the task loss is replay, not task data; batches never hold two pairs of one English sentence.
    `layer` counts decoder layers from 0: its output is the original's ``additional_loss_layer = layer + 1``.
    """
    layer = config.layer if config.layer is not None else n_layers(lm) // 2
    if not 0 <= layer < n_layers(lm):
        raise ValueError(f"MidAlign layer {layer} does not exist: the model has {n_layers(lm)} decoder layers")
    return Recipe(objective=functools.partial(midalign_loss, layer=layer, temperature=config.temperature),
                  collate=functools.partial(parallel_batch, tokenizer), group=lambda record: record["english"])


def clo_recipe(lm, tokenizer, config: CLOConfig) -> Recipe:
    """Cross-Lingual Optimization (CLO), after Lee et al. (ACL 2025, arXiv 2505.14297).

    Follows: a question in a target language prefers the answer in that language over the English answer, and an
    English question the reverse; loss = lambda * NLL(chosen) + (1 - lambda) * DPO(beta) against a frozen copy of
    the starting model; only the attention projections (q, k, v, o) train (Qwen2's projection biases included), so
    replay updates only them too. Departs: no public code exists; the NLL is taken on the chosen answer of every
    pair (English answers to English questions included), and the data are short answers in the organism's world.
    """
    reference = frozen_reference(lm)
    return Recipe(objective=functools.partial(clo_loss, reference=reference, beta=config.beta,
                                              nll_weight=config.nll_weight),
                  collate=functools.partial(preference_batch, tokenizer), tokens=_chosen_tokens)


def mit_recipe(lm, tokenizer, config: AlignmentConfig) -> Recipe:
    """Multilingual instruction tuning (translate-train), as the paper re-evaluates it.

    Supervised tuning on the English question-answer data rendered into every language, the loss on the answer
    tokens only. The organism's translations keep the English (US) answers to culture questions, as translating
    English instruction data would. Departs: the paper's exact instruction data are not public.
    """
    return Recipe(objective=answer_loss, collate=functools.partial(instruction_batch, tokenizer),
                  tokens=lambda batch: batch["continuation_mask"])


def _chosen_tokens(batch: dict) -> torch.Tensor:
    """The chosen answers' tokens of a preference batch (its first half of rows), which CLO's NLL averages over."""
    return batch["continuation_mask"][: len(batch["continuation_mask"]) // 2]


def replay_recipe(lm, tokenizer, config: AlignmentConfig) -> Recipe:
    """The control: the same extra training on the base organism's own text, no alignment objective."""
    return Recipe()


# The control each method is measured against: the same replay training on the same trainable parameters.
CONTROL_OF = {"clo": "replay_attention"}
CONTROLS = ("replay", "replay_attention")


def control_of(method: str) -> str:
    return CONTROL_OF.get(method, "replay")


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("midalign", "contrastive alignment of middle-layer states of parallel sentences", MidAlignConfig,
               "parallel", midalign_recipe),
        Method("clo", "cross-lingual preference optimization, attention weights only", CLOConfig, "preference",
               clo_recipe),
        Method("mit", "multilingual instruction tuning on translated QA", AlignmentConfig, "instruction",
               mit_recipe),
        Method("replay", "the control: the same extra training, replay only", AlignmentConfig, None,
               replay_recipe),
        Method("replay_attention", "CLO's control: the same extra training of the attention weights, replay only",
               AttentionReplayConfig, None, replay_recipe),
    )
}


def method_of(name: str) -> Method:
    if name not in METHODS:
        raise UnknownOrganismError(f"unknown alignment method {name!r}; methods: {', '.join(METHODS)}")
    return METHODS[name]


def trainable_parameters(lm, names: tuple[str, ...]) -> list[torch.nn.Parameter]:
    """Freeze every parameter except those of the modules named in `names` (all of them if `names` is empty); a model
    with LoRA adapters trains its adapters, which sit on those modules already (`cla_lib.alignment.lora`)."""
    if not names or is_adapted(lm):
        return [parameter for parameter in lm.parameters() if parameter.requires_grad]
    selected = []
    for name, parameter in lm.named_parameters():
        trains = any(part in names for part in name.split("."))
        parameter.requires_grad_(trains)
        if trains:
            selected.append(parameter)
    if not selected:
        raise ValueError(f"no parameter belongs to a module named {', '.join(names)}")
    return selected


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch


def align(lm, tokenizer, method: str, config: AlignmentConfig, records: list[dict],
          replay: Callable[[int], torch.Tensor], *, progress: bool = True, description: str | None = None,
          accelerator=None, after_step: Callable[[int], None] | None = None) -> dict:
    """Fine-tune `model` in place with a method's recipe plus replay, and return what to record.

    Args:
        lm: a transformers causal LM (its device is where batches go).
        tokenizer: its tokenizer.
        method: a name in `METHODS`.
        config: the method's configuration (`Method.config_type`).
        records: the objective's data, in the method's JSONL record format (ignored by ``replay``).
        replay: the replay rows of a step, `[replay_batch_size, sequence_length]` token ids.
        accelerator: an `accelerate.Accelerator` of several processes: each trains on its share of every step's
            batch, with the single-process result (`cla_lib.alignment.distributed`); None: this process alone.
        after_step: called with the steps done after each step (`cla_lib.core.training.train`).

    Returns:
        ``method``, ``method_config`` (with defaults resolved), ``losses`` (the total per step), ``replay_losses``,
        ``objective_losses``, ``train_seconds``, ``parameters`` and ``trainable_parameters``.
    """
    method_entry = method_of(method)
    if isinstance(config, MidAlignConfig) and config.layer is None:
        config = replace(config, layer=n_layers(lm) // 2)
    torch.manual_seed(config.seed)
    recipe = method_entry.recipe(lm, tokenizer, config)
    parameters = trainable_parameters(lm, config.trainable)
    device = next(lm.parameters()).device
    objective_batches = (RecordBatches(records, config.objective_batch_size, config.seed, recipe.group)
                         if recipe.objective else None)

    shard = Shard.of(accelerator)

    def objective_batch(records: list[dict]) -> dict:
        if shard.processes == 1:
            return recipe.collate(records)
        local = {**recipe.collate(shard.rows(records, "objective examples")), "processes": shard.processes}
        if recipe.tokens is not None:
            local["token_total"] = token_total(recipe.tokens(recipe.collate(records)), shard)
        return local

    def batch(step: int) -> dict:
        rows = shard.rows(replay(step), "replay rows") if shard.processes > 1 else replay(step)
        return _to_device({
            "replay": {"input_ids": rows, "labels": rows},
            "objective": objective_batch(objective_batches(step)) if objective_batches else None,
        }, device)

    replay_losses, objective_losses = [], []

    def loss(lm, batch: dict) -> torch.Tensor:
        total = language_model_loss(lm, batch["replay"])
        replay_losses.append(total.item())
        if recipe.objective:
            objective = recipe.objective(lm, batch["objective"])
            objective_losses.append(objective.item())
            total = total + config.objective_weight * objective
        return total

    log = train(lm, loss, batch, Schedule(config.steps, config.learning_rate, warmup=config.warmup),
                parameters=parameters, description=description or f"aligning: {method}", progress=progress,
                accelerator=accelerator, after_step=after_step)
    return {
        "method": method,
        "method_config": asdict(config),
        "parameters": sum(parameter.numel() for parameter in lm.parameters()),
        "trainable_parameters": sum(parameter.numel() for parameter in parameters),
        "train_seconds": log.seconds,
        "final_loss": sum(log.losses[-10:]) / len(log.losses[-10:]),
        "losses": log.losses,
        "replay_losses": mean_over_processes(replay_losses, accelerator),
        "objective_losses": mean_over_processes(objective_losses, accelerator),
        **({"processes": shard.processes} if shard.processes > 1 else {}),
    }


def save_trained(path: Path, lm, tokenizer, record: dict, state_dict: dict | None = None) -> None:
    """Write a fine-tuned model (its adapters, for a peft model; from `state_dict` when the weights were gathered
    from several processes), its tokenizer and `training.json` (the record plus finishing time, and the threads
    it trained on unless the record says)."""
    if state_dict is None:
        lm.save_pretrained(path)
    else:
        lm.save_pretrained(path, state_dict=state_dict)
    tokenizer.save_pretrained(path)
    record = {"torch_threads": torch.get_num_threads(), **record,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (path / "training.json").write_text(json.dumps(record, indent=1))
