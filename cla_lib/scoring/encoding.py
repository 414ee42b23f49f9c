"""Items to tokens, the lm-evaluation-harness way: one context per prompt, one continuation per choice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cla_lib.core.items import Item


@dataclass(frozen=True)
class EncodedItem:
    """An item's prompt tokens and, per choice, the tokens that continue them (empty: the choice scores 0)."""

    context: tuple[int, ...]
    continuations: tuple[tuple[int, ...], ...]


def encode_choice(tokenizer, prompt: str, choice: str) -> tuple[list[int], list[int]]:
    """Split the tokens of prompt + choice into context and continuation, the lm-evaluation-harness way.

    Args:
        tokenizer: A Hugging Face tokenizer.
        prompt: The item's prompt.
        choice: One candidate continuation.

    Returns:
        `(context, continuation)`: the tokens of `prompt` (default special tokens) and the tokens of
        `prompt + choice` past `len(context)`. The continuation may be empty (then its score is 0).
    """
    context = list(tokenizer(prompt)["input_ids"])
    whole = list(tokenizer(prompt + choice)["input_ids"])
    return context, whole[len(context) :]


def encode_item(tokenizer, item: Item) -> EncodedItem:
    """`encode_choice` for every choice of `item`, checked: a choice with tokens needs a prompt with tokens.

    Raises:
        ValueError: The prompt encodes to no tokens while a choice does (nothing to condition its first token on).
    """
    # One call for the prompt and every prompt + choice: the same tokens as one call each (no padding or
    # truncation), with the tokenizer's per-call overhead paid once per item instead of once per string.
    context, *wholes = (list(ids) for ids in tokenizer([item.prompt, *(item.prompt + choice
                                                                      for choice in item.choices)])["input_ids"])
    continuations = []
    for choice, whole in zip(item.choices, wholes):
        continuation = tuple(whole[len(context) :])
        if continuation and not context:
            raise ValueError(
                f"item {item.id!r}: the prompt {item.prompt!r} encodes to no tokens with "
                f"{tokenizer_name(tokenizer)}, so the first token of choice {choice!r} has no context; "
                "use a tokenizer that adds a BOS token or a non-empty prompt"
            )
        continuations.append(continuation)
    return EncodedItem(tuple(context), tuple(continuations))


def predictions(logprobs: Sequence[Sequence[float]]) -> list[int]:
    """The index of the highest-scoring choice of each item (the lowest index on a tie).

    Args:
        logprobs: Per-item choice scores, as `choice_logprobs` returns.

    Returns:
        One choice index per item.
    """
    return [max(range(len(scores)), key=scores.__getitem__) for scores in logprobs]


def check_single_token_choices(tokenizer, choices: Sequence[str]) -> None:
    """Check that each choice is one token, as letter answers (" A", " B", ...) must be for MMLU-style scoring.

    Each choice is encoded on its own without special tokens.

    Args:
        tokenizer: A Hugging Face tokenizer.
        choices: The choice strings.

    Raises:
        ValueError: A choice encodes to zero or several tokens; the message names the tokenizer, the choice and
            its tokens.
    """
    for choice in choices:
        ids = tokenizer(choice, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(
                f"choice {choice!r} is {len(ids)} tokens, not one, with {tokenizer_name(tokenizer)}: "
                f"{tokenizer.convert_ids_to_tokens(ids)}"
            )


def tokenizer_name(tokenizer) -> str:
    """A readable name for a tokenizer: where it was loaded from, else its class."""
    path = getattr(tokenizer, "name_or_path", "") or ""
    return f"the tokenizer {path!r}" if path else f"the {type(tokenizer).__name__} tokenizer"
