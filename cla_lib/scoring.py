"""Scoring multiple-choice items by the likelihood a model gives each answer.

A model "answers" an item without generating anything: each choice is scored by how likely the model finds it
as a continuation of the prompt, and the most likely choice is its answer. The score of a choice is the sum of
the log-probabilities of its tokens, each given everything before it — the lm-evaluation-harness convention:

    context      = tokenizer(prompt)["input_ids"]            # default special tokens (a BOS, for most models)
    whole        = tokenizer(prompt + choice)["input_ids"]
    continuation = whole[len(context):]
    score        = sum over continuation tokens t_i of log p(t_i | whole[:position of t_i])

The continuation is cut from the encoding of prompt + choice rather than encoded on its own, because a choice
tokenizes differently after a prompt (" Paris" is often one token after "is", two on its own). Scores are raw
sums, not length-normalized, so choices of different lengths compete as the harness's `acc` metric has them.

One way to score serves every chapter: `choice_logprobs` flattens all (item, choice) pairs, sorts them by
length so that padding wastes little, and runs one batched forward per `batch_size` sequences. Steering plugs
in through `edits`, vectors added to the residual stream inside the same forward (see `cla_lib.model.layers`). The
log-probabilities are gathered inside the trace, so only one number per token leaves it — not the
`[batch, seq, vocabulary]` logits, which matters when the trace runs remotely on a 256k-token vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from cla_lib.items import Item
from cla_lib.batching import combine_edits, pad
from cla_lib.model.layers import apply_edits
from cla_lib.model.remote import remote_session

# With fewer batches than this a progress bar only adds noise.
PROGRESS_MIN_BATCHES = 8


@dataclass(frozen=True)
class _ScoredSequence:
    """One (item, choice) pair, tokenized: the prompt's tokens followed by the choice's."""

    item_index: int
    choice_index: int
    tokens: tuple[int, ...]
    continuation_length: int


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


def choice_logprobs(
    model,
    items: Sequence[Item],
    *,
    batch_size: int = 64,
    edits: Sequence[tuple[int, torch.Tensor]] = (),
    progress: bool | None = None,
) -> list[list[float]]:
    """The log-likelihood of each choice of each item after its prompt.

    Args:
        model: An nnsight model from `cla_lib.loading.load_model` (its tokenizer at `model.tokenizer`).
        items: The items to score.
        batch_size: How many (item, choice) sequences go through the model in one forward.
        edits: `(layer, delta)` pairs: add `delta` (a `[hidden]` vector) to the residual stream after decoder
            layer `layer` in every forward — how steering vectors are applied. Deltas for the same layer add up.
        progress: Show a progress bar; `None` shows one when there are many batches.

    Returns:
        One list per item, one float per choice: the summed log-probability of the choice's tokens.

    Raises:
        ValueError: `batch_size` is below 1, or a prompt encodes to no tokens while its choice does (there is
            nothing to condition the choice's first token on).

    Example:
        >>> scores = choice_logprobs(model, items, edits=[(6, 4.0 * vector)])
        >>> accuracy = sum(p == item.gold for p, item in zip(predictions(scores), items)) / len(items)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    tokenizer = model.tokenizer
    scores = [[0.0] * len(item.choices) for item in items]
    sequences = []
    for item_index, item in enumerate(items):
        for choice_index, choice in enumerate(item.choices):
            context, continuation = encode_choice(tokenizer, item.prompt, choice)
            if not continuation:
                continue  # nothing to score: the sum over no tokens is 0, as in the harness
            if not context:
                raise ValueError(
                    f"item {item.id!r}: the prompt {item.prompt!r} encodes to no tokens with "
                    f"{_tokenizer_name(tokenizer)}, so the first token of choice {choice!r} has no context; "
                    "use a tokenizer that adds a BOS token or a non-empty prompt"
                )
            sequences.append(_ScoredSequence(item_index, choice_index, tuple(context + continuation), len(continuation)))

    # Longest first, as the harness does: similar lengths share a batch, and the first batch shows the peak memory.
    sequences.sort(key=lambda sequence: -len(sequence.tokens))
    batches = [sequences[start : start + batch_size] for start in range(0, len(sequences), batch_size)]
    layer_deltas = combine_edits(edits)
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if progress is None:
        progress = len(batches) >= PROGRESS_MIN_BATCHES
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="scoring", unit="batch")

    for batch in batches:
        token_logprobs = _token_logprobs(model, [sequence.tokens for sequence in batch], layer_deltas, pad_token_id)
        for row, sequence in enumerate(batch):
            # Input position i predicts token i + 1, so the continuation's tokens are predicted at the
            # positions from len(tokens) - 1 - continuation_length up to len(tokens) - 1.
            end = len(sequence.tokens) - 1
            start = end - sequence.continuation_length
            scores[sequence.item_index][sequence.choice_index] = float(token_logprobs[row, start:end].sum())
    return scores


def _token_logprobs(
    model, token_lists: Sequence[Sequence[int]], layer_deltas: list[tuple[int, torch.Tensor]], pad_token_id: int
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
        with model.trace(input_ids=input_ids, attention_mask=attention_mask):
            apply_edits(model, layer_deltas)
            # model.output.logits, not lm_head's output: Gemma 2/3 soft-cap the logits after the head.
            logits = model.output.logits.float()
            target_ids = targets.to(logits.device).unsqueeze(-1)
            # log_softmax, then gather, without materializing a second vocabulary-sized tensor.
            token_logprobs = (logits.gather(-1, target_ids).squeeze(-1) - logits.logsumexp(-1)).save()
    return token_logprobs.cpu() * attention_mask


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
                f"choice {choice!r} is {len(ids)} tokens, not one, with {_tokenizer_name(tokenizer)}: "
                f"{tokenizer.convert_ids_to_tokens(ids)}"
            )


def _tokenizer_name(tokenizer) -> str:
    """A readable name for a tokenizer: where it was loaded from, else its class."""
    path = getattr(tokenizer, "name_or_path", "") or ""
    return f"the tokenizer {path!r}" if path else f"the {type(tokenizer).__name__} tokenizer"


def choice_logprobs_passes(model, passes: Sequence[tuple[Sequence[Item], Sequence[tuple[int, torch.Tensor]]]], *,
                           batch_size: int = 64, remote: bool | str = False) -> list[list[list[float]]]:
    """`choice_logprobs` for several (items, edits) passes; remotely, all of them run as one session (one request).

    `remote` defaults to what the model was loaded with (`load_model(..., remote=True)`), so a remote model's
    plane costs one NDIF request rather than one per batch.
    """
    remote = remote or getattr(model, "_default_remote", False)
    if not remote:
        return [choice_logprobs(model, items, batch_size=batch_size, edits=edits) for items, edits in passes]
    return remote_session(model, choice_logprobs, [{"items": items, "edits": edits} for items, edits in passes],
                          remote=remote, batch_size=batch_size, progress=False)
