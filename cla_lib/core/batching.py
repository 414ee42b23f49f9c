"""Token lists to tensors, and edits to the order a forward reaches them: the plumbing every forward shares.

`pad` is the one padder (scoring, activations, generation and alignment batches all use it), `combine_edits` the one
way several residual edits become one per layer, and `pack_documents` the one way text becomes training rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pad(token_lists: Sequence[Sequence[int]], pad_token_id: int, side: str = "right") -> dict:
    """`input_ids` and `attention_mask` for token lists, padded on `side`.

    Right padding leaves every real token at its own position. Left padding (generation continues every row from its
    last column) adds `position_ids`, so that every real token keeps the position it has unpadded (models with
    absolute positions need it).
    """
    width = max(len(tokens) for tokens in token_lists)
    input_ids = torch.full((len(token_lists), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        span = slice(width - len(tokens), width) if side == "left" else slice(0, len(tokens))
        input_ids[row, span] = torch.tensor(list(tokens), dtype=torch.long)
        attention_mask[row, span] = 1
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if side == "left":
        inputs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return inputs


def pad_id(tokenizer) -> int:
    """The token that pads a tokenizer's rows: its pad token, else 0 (padding is masked, so any id serves)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def combine_edits(edits: Sequence[tuple[int, torch.Tensor]]) -> list[tuple[int, torch.Tensor]]:
    """Sum the deltas of each layer and order them by layer, the order a forward reaches them in."""
    by_layer: dict[int, torch.Tensor] = {}
    for layer, delta in edits:
        by_layer[layer] = by_layer[layer] + delta if layer in by_layer else delta
    return sorted(by_layer.items(), key=lambda pair: pair[0])


def pack_documents(tokenizer, documents: list[str], sequence_length: int) -> torch.Tensor:
    """Concatenate `<s> document </s>` token runs and cut them into rows of `sequence_length` tokens."""
    encoded = tokenizer(documents, add_special_tokens=True)["input_ids"]
    stream = [token for ids in encoded for token in (*ids, tokenizer.eos_token_id)]
    rows = len(stream) // sequence_length
    return torch.tensor(stream[: rows * sequence_length]).view(rows, sequence_length)
