"""Aligning a real model: the same recipes, losses and loop on a Hugging Face directory, data from JSONL files.

By default every weight trains, in float32 (`dtype` changes that); `trainable` restricts training to the modules it
names (CLO's attention-only training is this option). A model too large for that trains LoRA adapters
(`lora_rank`, `cla_lib.alignment.lora`) over bfloat16 weights, with gradient checkpointing if need be. Before
loading any weight, the run's memory and compute are estimated (`cla_lib.alignment.estimate`) and a run that
cannot fit is refused. Several processes (GPUs, nodes) are started by `accelerate launch`, which the run detects
(`cla_lib.alignment.distributed`); the first saves. Not `trl`'s trainers: every recipe here is one step of replay
plus its objective through one loop, so that the replay control isolates the objective.
Design notes: docs/design-notes.md.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Callable

import torch

from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from cla_lib.alignment.estimate import (
    TrainingEstimate, architecture, check_device, check_fits, estimate_training, preset_architecture
)
from cla_lib.alignment.lora import LoraSettings, add_adapters
from cla_lib.alignment.recipes import align, method_of, save_trained
from cla_lib.alignment.records import RecordBatches, read_records
from cla_lib.core.batching import pack_documents
from cla_lib.core.files import save_atomically
from cla_lib.model.reference import ModelNotFoundError, known_reference
from cla_lib.model.remote import in_hub_cache, offline_keywords


# The texts of one objective example that become rows of its batch (target and English; chosen and rejected).
EXAMPLE_ROWS = {
    "parallel": lambda record: [record["target"], record["english"]],
    "preference": lambda record: [record["prompt"] + record["chosen"], record["prompt"] + record["rejected"]],
    "instruction": lambda record: [record["prompt"] + record["answer"]],
}


def align_model(model_directory: str | Path, method: str, data_files: dict, out_directory: str | Path, *,
                steps: int, learning_rate: float, batch_size: int, layer: int | None = None,
                device: str | None = None, seed: int = 0, replay_batch_size: int | None = None,
                sequence_length: int = 512, trainable: tuple[str, ...] | None = None,
                dtype: torch.dtype | str = torch.float32, lora_rank: int | None = None,
                lora_alpha: float | None = None, lora_targets: tuple[str, ...] = (),
                gradient_checkpointing: bool = False, estimate_only: bool = False,
                report: Callable[[str], None] = print, progress: bool = True,
                **options) -> Path | TrainingEstimate | None:
    """Fine-tune a Hugging Face model with an alignment method and save it as a Hugging Face directory.

    Args:
        model_directory: a local Hugging Face model directory, a hub id or a preset name (its hub id and revision).
        method: a name in `METHODS`.
        data_files: JSONL files by kind: ``"replay"`` (always) and the method's kind (``Method.data``:
            ``"parallel"`` for midalign, ``"preference"`` for clo, ``"instruction"`` for mit).
        out_directory: where the aligned model goes; it must not exist (it appears atomically).
        steps, learning_rate: the schedule (10% linear warm-up, then cosine decay; ``warmup=`` overrides).
        batch_size: objective examples per step, and replay rows per step unless `replay_batch_size` is given.
        layer: MidAlign's decoder layer (default: the middle one).
        device: a torch device; default ``"cuda"`` when available, else the CPU (under `accelerate launch`, each
            process's own).
        seed: the seed of the data order.
        sequence_length: the length of the packed replay rows.
        trainable: module names whose parameters train (for example ``("q_proj", "v_proj")``); default: the
            method's (every parameter, or CLO's attention projections).
        dtype: the weights' dtype (or its name) during training and in the saved model.
        lora_rank: train LoRA adapters of this rank (on `lora_targets`, default the method's trainable modules or
            every projection) instead of the weights; the adapters are saved in peft's format.
        lora_alpha: LoRA's scale (default: twice the rank).
        gradient_checkpointing: recompute activations in backward instead of keeping them.
        estimate_only: report the memory and compute estimate and return it, without training.
        report: where the estimate and the placement are written.
        **options: other fields of the method's configuration (``temperature``, ``beta``, ``nll_weight``,
            ``objective_weight``, ``warmup``).

    Returns:
        `out_directory`, with the model (or its adapters), its tokenizer and a ``training.json`` (method,
        configuration, losses, estimate); the `TrainingEstimate` when `estimate_only`; None on the processes
        other than the first under `accelerate launch` (the first writes).

    Raises:
        TrainingWontFitError: the estimate exceeds the device's memory.

    Example:
        >>> align_model("gemma-3-1b-it", "midalign", {"parallel": "pairs.jsonl", "replay": "text.jsonl"},
        ...             "gemma-3-1b-midalign", steps=500, learning_rate=1e-5, batch_size=16)
    """
    entry = method_of(method)
    out_directory = Path(out_directory)
    if out_directory.exists():
        raise ValueError(f"{out_directory} exists already; choose a new output directory")
    needed = ["replay"] + ([entry.data] if entry.data else [])
    missing = [kind for kind in needed if kind not in data_files]
    if missing:
        raise ValueError(f"{method} needs data files of kind {', '.join(needed)}; missing: {', '.join(missing)}")
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; for example bfloat16 or float32")
    settings = dict(steps=steps, learning_rate=learning_rate, warmup=steps // 10, objective_batch_size=batch_size,
                    replay_batch_size=replay_batch_size or batch_size, seed=seed)
    if layer is not None:
        settings["layer"] = layer
    if trainable is not None:
        settings["trainable"] = tuple(trainable)
    settings.update(options)
    known = {item.name for item in fields(entry.config_type)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{method} has no option {', '.join(unknown)}; its options: {', '.join(sorted(known))}")
    config = entry.config_type(**settings)
    lora = LoraSettings(lora_rank, lora_alpha, tuple(lora_targets)).resolved(config.trainable) if lora_rank else None

    accelerator = _accelerator()
    processes = accelerator.num_processes if accelerator else 1
    check_device(device)
    device = accelerator.device if accelerator else torch.device(
        device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # A preset stands for its hub id (and pinned revision). Offline, a model the hub cache lacks is refused at once,
    # except for an estimate of a preset: its architecture ships with the library, and the objective's tokens are
    # bounded by the records' bytes.
    # The data first: a bad file is refused before anything is fetched or loaded.
    records = read_records(data_files[entry.data], entry.data) if entry.data else []
    texts = [record["text"] for record in read_records(data_files["replay"], "replay")]
    named = known_reference(str(model_directory))
    if named is not None and named.is_organism:
        raise ModelNotFoundError(f"{model_directory!r} is an organism: its aligned variants are built in (`cla organism "
                                 "path --method midalign`); `cla align` fine-tunes a Hugging Face model directory")
    preset = named.preset if named is not None else None
    source = named.source if named is not None else str(model_directory)
    hub = {"revision": preset.revision} if preset and preset.revision else {}
    hub = offline_keywords(source, hub, None if estimate_only and preset else ModelNotFoundError(
        f"could not fetch {source!r}: the Hugging Face hub cannot be reached from this machine; download the model "
        "once where it can be and pass its directory"))
    offline_estimate = bool(hub.get("local_files_only")) and not in_hub_cache(source)
    tokenizer = None if offline_estimate else AutoTokenizer.from_pretrained(source, **hub)
    if tokenizer is not None and tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = pack_documents(tokenizer, texts, sequence_length) if tokenizer is not None else None
    if rows is not None and len(rows) == 0:
        raise ValueError(f"{data_files['replay']}: too little replay text for one row of {sequence_length} tokens")

    tokens = config.replay_batch_size * sequence_length + _objective_tokens(tokenizer, entry.data, records,
                                                                             config.objective_batch_size)
    estimate = estimate_training(
        preset_architecture(preset) if offline_estimate else architecture(AutoConfig.from_pretrained(source, **hub)),
        bytes_per_value=dtype.itemsize,
        tokens=-(-tokens // processes), lora_rank=lora.rank if lora else None, targets=lora.targets if lora else (),
        trainable=config.trainable, reference=method == "clo", checkpointing=gradient_checkpointing,
        processes=processes, sharding=_sharding(accelerator))
    adapters = f", LoRA rank {lora.rank} on {'/'.join(lora.targets)}" if lora else ""
    if accelerator is not None and not accelerator.is_main_process:
        report = _silent
    bounded = " (objective tokens bounded by the records' bytes: no tokenizer offline)" if offline_estimate else ""
    report(f"{Path(model_directory).name}, {method}{adapters}, {str(dtype).removeprefix('torch.')} on {device}: "
           f"{estimate.describe()}{bounded}")
    if estimate_only:
        return estimate
    check_fits(estimate, device)

    lm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **hub).to(device)
    if gradient_checkpointing:
        lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if lora:
        if named is not None and named.base_name:  # what the adapters name as their base (peft reads the attribute)
            lm.name_or_path = lm.config._name_or_path = named.base_name
        torch.manual_seed(seed)  # the adapters' initialisation, the same in every process
        lm = add_adapters(lm, lora)
    replay_indices = RecordBatches(list(range(len(rows))), config.replay_batch_size, seed)
    record = align(lm, tokenizer, method, config, records, lambda step: rows[replay_indices(step)],
                   progress=progress and (accelerator is None or accelerator.is_main_process),
                   description=f"aligning {Path(model_directory).name}: {method}", accelerator=accelerator)
    record = {**record, "source": str(model_directory),
              "data_files": {kind: str(path) for kind, path in data_files.items()},
              "sequence_length": sequence_length, "device": str(device), "dtype": str(dtype).removeprefix("torch."),
              "gradient_checkpointing": gradient_checkpointing, "estimate": vars(estimate),
              **({"lora": vars(lora)} if lora else {})}
    if accelerator is None:
        return save_atomically(out_directory, lambda path: save_trained(path, lm, tokenizer, record))
    # Every process takes part in gathering the weights (sharded ones under FSDP); the first writes them.
    state_dict = accelerator.get_state_dict(lm)
    if accelerator.is_main_process:
        save_atomically(out_directory, lambda path: save_trained(path, lm, tokenizer, record, state_dict))
    accelerator.wait_for_everyone()
    return out_directory if accelerator.is_main_process else None


def _silent(line: str) -> None:
    pass


def _accelerator():
    """An `accelerate.Accelerator` when `accelerate launch` started several processes; None for one process (which
    then trains exactly as without accelerate)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import Accelerator

    # Without GPUs (a CPU cluster, the tests: `accelerate launch --multi_gpu` on CPUs) the processes talk over gloo.
    return Accelerator(cpu=not torch.cuda.is_available())


def _sharding(accelerator) -> str:
    if accelerator is None:
        return "ddp"
    return "fsdp" if "FSDP" in str(accelerator.distributed_type) or "DEEPSPEED" in str(accelerator.distributed_type) \
        else "ddp"


def _objective_tokens(tokenizer, kind: str | None, records: list[dict], batch_size: int) -> int:
    """The most tokens one objective batch can hold: its rows times the longest row (of the first 2,000 examples)."""
    if kind is None:
        return 0
    texts = [text for record in records[:2000] for text in EXAMPLE_ROWS[kind](record)]
    # Without a tokenizer (an offline estimate), a text's UTF-8 bytes bound its tokens (each covers at least one
    # byte), plus a BOS.
    longest = max(len(ids) for ids in tokenizer(texts)["input_ids"]) if tokenizer is not None else \
        max(len(text.encode()) for text in texts) + 1
    return len(EXAMPLE_ROWS[kind](records[0])) * min(batch_size, len(records)) * longest
