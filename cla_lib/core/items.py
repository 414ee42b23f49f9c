"""Scored items: the unit every evaluation in the companion works on.

An item is a prompt and a list of candidate continuations. Its score is the log-likelihood of each
continuation after the prompt (the lm-evaluation-harness convention: encode prompt and prompt + choice with the
model's tokenizer and default special tokens; the continuation is the tokens past the encoded prompt's length);
the highest-scoring choice is the model's answer. Items are plain data so anyone can rescore them with plain
transformers from the JSONL that `cla items` writes.

- `task == "transfer"`: a universal fact asked in `language`; `gold` is the correct answer.
- `task == "localization"`: a culture question asked in `language` with no country named; `gold` is the local
  answer, `us_choice` the answer an English-centric (US) model would give.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from cla_lib.core.files import read_jsonl, write_atomic


TASKS = ("transfer", "localization")


SPLITS = ("extract", "validation", "test")


@dataclass(frozen=True)
class Item:
    task: str
    language: str
    prompt: str
    choices: tuple[str, ...]
    gold: int
    us_choice: int | None = None
    id: str = ""
    split: str = "test"
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"item {self.id!r}: task must be one of {TASKS}, not {self.task!r}")
        if not 0 <= self.gold < len(self.choices):
            raise ValueError(f"item {self.id!r}: gold index {self.gold} outside {len(self.choices)} choices")
        if self.us_choice is not None and not 0 <= self.us_choice < len(self.choices):
            raise ValueError(f"item {self.id!r}: us_choice {self.us_choice} outside the choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"item {self.id!r}: choices repeat: {self.choices}")

    def to_json(self) -> dict:
        record = asdict(self)
        record["choices"] = list(self.choices)
        return record

    @classmethod
    def from_json(cls, record: dict) -> "Item":
        record = dict(record)
        record["choices"] = tuple(record["choices"])
        return cls(**record)


def question_of(item_id: str) -> str:
    """The question an item asks, whatever its language: the unit that resamples together.

    Item ids name their question and language (`organism.world`, `data`): ``transfer/<creature>/<relation>/<lang>``
    and ``localization/<question>/<lang>`` on the organism (a creature's relations are one unit: they share what
    the model learnt about it), ``<lang>:<sample>`` in Global-MMLU, ``<lang>:<country>:<question>`` in BLEnD.
    An explicitly cued copy (``.../explicit``) asks the same question. Any other id is its own question.
    """
    item_id = item_id.removesuffix("/explicit")
    if item_id.startswith("transfer/"):
        return "/".join(item_id.split("/")[:2])
    if item_id.startswith("localization/"):
        return item_id.rsplit("/", 1)[0]
    if ":" in item_id:
        return item_id.rsplit(":", 1)[1]
    return item_id


def write_items(items: Iterable[Item], path: str | Path) -> None:
    """Write items as JSONL, one object a line, atomically."""
    write_atomic(path, "".join(json.dumps(item.to_json(), ensure_ascii=False) + "\n" for item in items))


def read_items(path: str | Path) -> list[Item]:
    return [Item.from_json(record) for _, record in read_jsonl(path)]
