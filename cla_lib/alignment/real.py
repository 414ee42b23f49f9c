"""Aligning a real model: the same recipes, losses and loop on a Hugging Face directory, data from JSONL files.

By default every weight trains, in float32 (`dtype` changes that); `trainable` restricts training to the modules it
names (CLO's attention-only training is this option). For large models LoRA adapters would be the way; they are not
implemented here (peft is not a dependency).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import torch

from cla_lib.alignment.recipes import align, method_of, save_trained
from cla_lib.alignment.records import RecordBatches, read_records
from cla_lib.batching import pack_documents
from cla_lib.files import save_atomically


def align_model(model_directory: str | Path, method: str, data_files: dict, out_directory: str | Path, *,
                steps: int, learning_rate: float, batch_size: int, layer: int | None = None,
                device: str | None = None, seed: int = 0, replay_batch_size: int | None = None,
                sequence_length: int = 512, trainable: tuple[str, ...] | None = None,
                dtype: torch.dtype = torch.float32, progress: bool = True, **options) -> Path:
    """Fine-tune a Hugging Face model with an alignment method and save it as a Hugging Face directory.

    Args:
        model_directory: a local Hugging Face model directory.
        method: a name in `METHODS`.
        data_files: JSONL files by kind: ``"replay"`` (always) and the method's kind (``Method.data``:
            ``"parallel"`` for midalign, ``"preference"`` for clo, ``"instruction"`` for mit).
        out_directory: where the aligned model goes; it must not exist (it appears atomically).
        steps, learning_rate: the schedule (10% linear warm-up, then cosine decay; ``warmup=`` overrides).
        batch_size: objective examples per step, and replay rows per step unless `replay_batch_size` is given.
        layer: MidAlign's decoder layer (default: the middle one).
        device: a torch device; default ``"cuda"`` when available, else the CPU.
        seed: the seed of the data order.
        sequence_length: the length of the packed replay rows.
        trainable: module names whose parameters train (for example ``("q_proj", "v_proj")``); default: the
            method's (every parameter, or CLO's attention projections).
        dtype: the weights' dtype during training and in the saved model.
        **options: other fields of the method's configuration (``temperature``, ``beta``, ``nll_weight``,
            ``objective_weight``, ``warmup``).

    Returns:
        `out_directory`, with the model, its tokenizer and a ``training.json`` (method, configuration, losses).

    Example:
        >>> align_model("gemma-3-1b-it", "midalign", {"parallel": "pairs.jsonl", "replay": "text.jsonl"},
        ...             "gemma-3-1b-midalign", steps=500, learning_rate=1e-5, batch_size=16)
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    entry = method_of(method)
    out_directory = Path(out_directory)
    if out_directory.exists():
        raise ValueError(f"{out_directory} exists already; choose a new output directory")
    needed = ["replay"] + ([entry.data] if entry.data else [])
    missing = [kind for kind in needed if kind not in data_files]
    if missing:
        raise ValueError(f"{method} needs data files of kind {', '.join(needed)}; missing: {', '.join(missing)}")
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

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_directory)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_directory, dtype=dtype).to(device)
    records = read_records(data_files[entry.data], entry.data) if entry.data else []
    texts = [record["text"] for record in read_records(data_files["replay"], "replay")]
    rows = pack_documents(tokenizer, texts, sequence_length)
    if len(rows) == 0:
        raise ValueError(f"{data_files['replay']}: too little replay text for one row of {sequence_length} tokens")
    replay_indices = RecordBatches(list(range(len(rows))), config.replay_batch_size, seed)
    record = align(model, tokenizer, method, config, records, lambda step: rows[replay_indices(step)],
                   progress=progress, description=f"aligning {Path(model_directory).name}: {method}")
    record = {**record, "source": str(model_directory),
              "data_files": {kind: str(path) for kind, path in data_files.items()},
              "sequence_length": sequence_length, "device": str(device)}
    return save_atomically(out_directory, lambda path: save_trained(path, model, tokenizer, record))
