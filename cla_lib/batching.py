"""Token lists to tensors: packing documents into training rows."""

from __future__ import annotations

import torch


def pack_documents(tokenizer, documents: list[str], sequence_length: int) -> torch.Tensor:
    """Concatenate `<s> document </s>` token runs and cut them into rows of `sequence_length` tokens."""
    encoded = tokenizer(documents, add_special_tokens=True)["input_ids"]
    stream = [token for ids in encoded for token in (*ids, tokenizer.eos_token_id)]
    rows = len(stream) // sequence_length
    return torch.tensor(stream[: rows * sequence_length]).view(rows, sequence_length)
