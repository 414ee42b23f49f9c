"""The plain way to score: one sequence per (item, choice), prompt and choice together, as the harness runs it.

Every choice recomputes its prompt, and every edit recomputes the layers below it, so this path spends about
(choices per item) times the floor's FLOPs. It stays as the reference the shared-prompt path (`cla_lib.scoring.
shared`) is tested and benchmarked against, and for users who want the harness's computation literally
(`choice_logprobs(..., shared_prompts=False)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tqdm import tqdm  # not tqdm.auto: it warns "IProgress not found" in kernels without ipywidgets

from cla_lib.core.batching import combine_edits, pad, pad_id
from cla_lib.core.items import Item
from cla_lib.model.layers import apply_edits
from cla_lib.scoring.encoding import encode_item


@dataclass(frozen=True)
class _ScoredSequence:
    """One (item, choice) pair, tokenized: the prompt's tokens followed by the choice's."""

    item_index: int
    choice_index: int
    tokens: tuple[int, ...]
    continuation_length: int


def full_sequence_logprobs(lm, items: Sequence[Item], *, batch_size: int = 64,
                           edits: Sequence[tuple[int, torch.Tensor]] = (), progress: bool = False) -> list[list[float]]:
    """`choice_logprobs` computed one (prompt + choice) sequence per row, `batch_size` rows per forward."""
    tokenizer = lm.tokenizer
    scores = [[0.0] * len(item.choices) for item in items]
    sequences = []
    for item_index, item in enumerate(items):
        encoded = encode_item(tokenizer, item)
        for choice_index, continuation in enumerate(encoded.continuations):
            if continuation:  # nothing to score otherwise: the sum over no tokens is 0, as in the harness
                sequences.append(_ScoredSequence(item_index, choice_index, encoded.context + continuation,
                                                 len(continuation)))

    # Longest first, as the harness does: similar lengths share a batch, and the first batch shows the peak memory.
    sequences.sort(key=lambda sequence: -len(sequence.tokens))
    batches = [sequences[start : start + batch_size] for start in range(0, len(sequences), batch_size)]
    layer_deltas = combine_edits(edits)
    pad_token_id = pad_id(tokenizer)
    if progress:
        batches = tqdm(batches, desc="scoring", unit="batch")

    for batch in batches:
        token_logprobs = _token_logprobs(lm, [sequence.tokens for sequence in batch], layer_deltas, pad_token_id)
        for row, sequence in enumerate(batch):
            # Input position i predicts token i + 1, so the continuation's tokens are predicted at the
            # positions from len(tokens) - 1 - continuation_length up to len(tokens) - 1.
            end = len(sequence.tokens) - 1
            start = end - sequence.continuation_length
            scores[sequence.item_index][sequence.choice_index] = float(token_logprobs[row, start:end].sum())
    return scores


def _token_logprobs(
    lm, token_lists: Sequence[Sequence[int]], layer_deltas: list[tuple[int, torch.Tensor]], pad_token_id: int
) -> torch.Tensor:
    """One forward over a batch: `[batch, width]` log-probabilities of each next token (0 past a row's end).

    Rows are right-padded with an attention mask; padding on the right leaves every real token at its own
    position, so no position ids are needed, and causal attention keeps padding out of the real tokens.
    """
    inputs = pad([tokens[:-1] for tokens in token_lists], pad_token_id)
    input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
    targets = pad([tokens[1:] for tokens in token_lists], 0)["input_ids"]

    # Scoring never backpropagates; without this the forward would keep its activations for a backward pass.
    with torch.no_grad():
        with lm.trace(input_ids=input_ids, attention_mask=attention_mask):
            apply_edits(lm, layer_deltas)
            # model.output.logits, not lm_head's output: Gemma 2/3 soft-cap the logits after the head.
            logits = lm.output.logits.float()
            target_ids = targets.to(logits.device).unsqueeze(-1)
            # log_softmax, then gather, without materializing a second vocabulary-sized tensor.
            token_logprobs = (logits.gather(-1, target_ids).squeeze(-1) - logits.logsumexp(-1)).save()
    return token_logprobs.cpu() * attention_mask
