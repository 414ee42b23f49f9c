"""Alignment data: the JSONL record kinds, and how records become batches of tensors.

    parallel     {"language": "ko", "english": "The cat sleeps.", "target": "고양이가 잔다."}
    preference   {"prompt": "고양이는 무엇을 먹나요?", "chosen": " 생선", "rejected": " fish"}
    instruction  {"language": "ko", "prompt": "고양이는 무엇을 먹나요?", "answer": " 생선"}
    replay       {"text": "any pre-training-like text"}

A continuation (``chosen``, ``rejected``, ``answer``) is appended to its prompt as it is, so it carries its own
separator (a leading space or newline).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

import torch

from cla_lib.core.batching import pad
from cla_lib.core.files import read_jsonl
from cla_lib.scoring import encode_choice


# The JSONL record kinds and their fields (all strings).
DATA_FIELDS = {
    "parallel": ("language", "english", "target"),
    "preference": ("prompt", "chosen", "rejected"),
    "instruction": ("language", "prompt", "answer"),
    "replay": ("text",),
}


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def encode_texts(tokenizer, texts: list[str]) -> dict:
    """Texts (with the tokenizer's default special tokens), right-padded: `input_ids`, `attention_mask`."""
    return pad([list(tokenizer(text)["input_ids"]) for text in texts], _pad_id(tokenizer))


def encode_continuations(tokenizer, prompts: list[str], continuations: list[str]) -> dict:
    """Prompt + continuation rows, split the lm-evaluation-harness way (`cla_lib.scoring.encode_choice`): the
    prompt's tokens, then the tokens of prompt + continuation past the prompt's length.

    Returns `input_ids`, `attention_mask` and `continuation_mask` (1 on the continuation's tokens).
    """
    rows, starts = [], []
    for prompt, continuation in zip(prompts, continuations, strict=True):
        context, rest = encode_choice(tokenizer, prompt, continuation)
        if not context or not rest:
            raise ValueError(f"prompt {prompt!r} with continuation {continuation!r} leaves no context or no "
                             "continuation tokens to train on")
        rows.append(context + rest)
        starts.append(len(context))
    padded = pad(rows, _pad_id(tokenizer))
    input_ids, attention_mask = padded["input_ids"], padded["attention_mask"]
    positions = torch.arange(input_ids.shape[1])
    continuation_mask = (positions >= torch.tensor(starts).unsqueeze(1)) & attention_mask.bool()
    return {"input_ids": input_ids, "attention_mask": attention_mask,
            "continuation_mask": continuation_mask.long()}


def parallel_batch(tokenizer, records: list[dict]) -> dict:
    return {"english": encode_texts(tokenizer, [record["english"] for record in records]),
            "target": encode_texts(tokenizer, [record["target"] for record in records])}


def preference_batch(tokenizer, records: list[dict]) -> dict:
    """Chosen rows first, then rejected rows, each after its prompt."""
    prompts = [record["prompt"] for record in records]
    return encode_continuations(tokenizer, prompts + prompts, [record["chosen"] for record in records]
                                + [record["rejected"] for record in records])


def instruction_batch(tokenizer, records: list[dict]) -> dict:
    return encode_continuations(tokenizer, [record["prompt"] for record in records],
                                [record["answer"] for record in records])


class RecordBatches:
    """Batches of records as a pure function of the step.

    Each epoch visits the records' groups in a seeded order and takes one record of each group, chosen at random;
    a batch never spans two epochs, so no group appears twice in a batch. (MidAlign groups pairs by their English
    sentence, so that no in-batch negative is a translation of the positive.) Without `group`, every record is
    its own group.
    """

    def __init__(self, records: list, batch_size: int, seed: int, group: Callable | None = None):
        groups: dict = {}
        for index, record in enumerate(records):
            groups.setdefault(group(record) if group else index, []).append(index)
        if not groups:
            raise ValueError("no records to train on")
        self.records = records
        self.groups = list(groups.values())
        self.batch_size = min(batch_size, len(self.groups))
        self.seed = seed
        self._order: tuple[int, list[int]] = (-1, [])  # the latest epoch's order, as steps run in sequence

    def _epoch(self, epoch: int) -> list[int]:
        if self._order[0] != epoch:
            rng = random.Random(f"{self.seed}-records-{epoch}")
            groups = list(range(len(self.groups)))
            rng.shuffle(groups)
            self._order = (epoch, [rng.choice(self.groups[group]) for group in groups])
        return self._order[1]

    def __call__(self, step: int) -> list:
        epoch, index = divmod(step, len(self.groups) // self.batch_size)
        chosen = self._epoch(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        return [self.records[position] for position in chosen]


def read_records(path: str | Path, kind: str) -> list[dict]:
    """The records of a JSONL file of one kind (`DATA_FIELDS`), checked field by field."""
    if kind not in DATA_FIELDS:
        raise ValueError(f"unknown data kind {kind!r}; kinds: {', '.join(DATA_FIELDS)}")
    records = []
    for number, record in read_jsonl(path):
        missing = [name for name in DATA_FIELDS[kind] if not isinstance(record.get(name), str)]
        if missing:
            raise ValueError(f"{path}:{number}: {kind} records need the string fields "
                             f"{', '.join(DATA_FIELDS[kind])}; missing or not a string: {', '.join(missing)}")
        records.append(record)
    if not records:
        raise ValueError(f"{path}: no {kind} records")
    return records
