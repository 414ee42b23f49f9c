"""Split discipline: vectors come from `extract`, choices from `validation`, reports from `test`."""

from __future__ import annotations

from collections.abc import Sequence

from cla_lib.core.items import Item


# Meta keys naming the question an item asks, whatever language it is asked in: the organism's creature (all of
# its relations share a split) or culture question, Global-MMLU's sample id, BLEnD's question id.
QUESTION_KEYS = ("creature", "question", "sample_id", "question_id")


def question_key(item: Item) -> tuple[str, str]:
    """What `item` asks, independent of language: (task, the first of QUESTION_KEYS in its meta, else its id)."""
    for key in QUESTION_KEYS:
        if key in item.meta:
            return (item.task, str(item.meta[key]))
    return (item.task, item.id)


def check_disjoint(extract_items: Sequence[Item], eval_items: Sequence[Item]) -> None:
    """Raise if the items vectors are extracted on share an item or an underlying question with evaluation items.

    Raises:
        ValueError: Naming up to five shared item ids or questions.
    """
    shared_ids = sorted({item.id for item in extract_items} & {item.id for item in eval_items} - {""})
    shared_questions = sorted({question_key(item) for item in extract_items} & {question_key(item) for item in eval_items})
    if shared_ids or shared_questions:
        examples = shared_ids[:5] or [f"{task}:{key}" for task, key in shared_questions[:5]]
        raise ValueError(f"extraction and evaluation items overlap: {len(shared_ids)} shared items, "
                         f"{len(shared_questions)} shared questions (e.g. {', '.join(examples)}); extract vectors on "
                         "the 'extract' split and evaluate on 'validation' or 'test'")
