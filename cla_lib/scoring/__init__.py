"""Scoring multiple-choice items by the likelihood a model gives each answer.

A model "answers" an item without generating anything: each choice is scored by the sum of the log-probabilities of
its tokens as a continuation of the prompt (the lm-evaluation-harness convention: raw sums, not length-normalized),
and the most likely choice is its answer. The continuation is cut from the encoding of prompt + choice, because a
choice tokenizes differently after a prompt.

One way to score serves every chapter: `choice_logprobs` computes each prompt once and each choice from its
key/value cache; `choice_logprobs_passes` scores several (items, edits) passes, sharing unsteered lower layers
(`cla_lib.scoring.shared`). Both equal the harness's one sequence per choice (`cla_lib.scoring.full`) to float32
rounding. Steering plugs in through `edits`, and only a few numbers per token leave the trace (which matters
remotely). `cla_lib.scoring.generative` scores culture questions BLEnD's own way. Design notes: docs/design-notes.md.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Sequence

import torch

from cla_lib.core.items import Item
from cla_lib.model.remote import Remote, remote_session
from cla_lib.scoring.encoding import (
    EncodedItem,
    check_single_token_choices,
    encode_choice,
    encode_item,
    predictions,
    tokenizer_name,
)
from cla_lib.scoring.full import full_sequence_logprobs
from cla_lib.scoring.shared import forwards_of, score_passes

# With fewer batches than this a progress bar only adds noise.
PROGRESS_MIN_BATCHES = 8

Passes = Sequence[tuple[Sequence[Item], Sequence[tuple[int, torch.Tensor]]]]


def choice_logprobs(
    lm,
    items: Sequence[Item],
    *,
    batch_size: int = 64,
    edits: Sequence[tuple[int, torch.Tensor]] = (),
    progress: bool | None = None,
    shared_prompts: bool = True,
) -> list[list[float]]:
    """The log-likelihood of each choice of each item after its prompt.

    Args:
        lm: An nnsight model from `cla_lib.plane.loading.load_model` (its tokenizer at `model.tokenizer`).
        items: The items to score.
        batch_size: At most this many rows in one forward: prompts, or choices on their prompts' cache (with
            `shared_prompts=False`, (prompt + choice) sequences).
        edits: `(layer, delta)` pairs: add `delta` (a `[hidden]` vector) to the residual stream after decoder
            layer `layer` in every forward — how steering vectors are applied. Deltas for the same layer add up.
        progress: Show a progress bar; `None` shows one when there are many batches.
        shared_prompts: Compute each prompt once (default); False runs one sequence per choice, as the harness.

    Returns:
        One list per item, one float per choice: the summed log-probability of the choice's tokens.

    Raises:
        ValueError: `batch_size` is below 1, or a prompt encodes to no tokens while its choice does (there is
            nothing to condition the choice's first token on).

    Example:
        >>> scores = choice_logprobs(model, items, edits=[(6, 4.0 * vector)])
        >>> accuracy = sum(p == item.gold for p, item in zip(predictions(scores), items)) / len(items)
    """
    _check_batch_size(batch_size)
    if progress is None:
        progress = len(items) >= PROGRESS_MIN_BATCHES * batch_size
    if not shared_prompts:
        return full_sequence_logprobs(lm, items, batch_size=batch_size, edits=edits, progress=progress)
    return choice_logprobs_passes(lm, [(items, edits)], batch_size=batch_size, progress=progress)[0]


def choice_logprobs_passes(lm, passes: Passes, *, batch_size: int = 64, remote: Remote = False,
                           progress: bool = False) -> list[list[list[float]]]:
    """`choice_logprobs` for several (items, edits) passes; remotely, all of them run as one session (one request).

    Passes over the same `Item` objects share their unsteered lower layers (`score_passes`). `remote` defaults to
    what the model was loaded with (`load_model(..., remote=True)`), so a remote model's plane costs one NDIF
    request rather than one per batch.
    """
    _check_batch_size(batch_size)
    remote = remote or getattr(lm, "_default_remote", False)
    if not remote:
        return score_passes(lm, passes, batch_size=batch_size, progress=progress, encodings=_encodings(lm))
    return remote_session(lm, score_passes, [{"passes": passes}], remote=remote, batch_size=batch_size)[0]


# Per tokenizer, the tokens of every item it has scored here ((prompt, choices) -> EncodedItem): chapters score the
# same items in many calls. Kept on this machine only: a remote session tokenizes on the server.
_ENCODINGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Tokenizers in the same state share one table (`tokenizer_state`): an organism's aligned models are loaded with
# their own copies of the base's tokenizer, and chapter 2 scores the same items through six models a seed, one model
# at a time (so the table outlives each tokenizer). The last few states only: a long session scoring many models
# keeps no table of a tokenizer it no longer uses.
_SHARED: OrderedDict[str, dict] = OrderedDict()
_SHARED_STATES = 4


def _encodings(lm) -> dict:
    tokenizer = lm.tokenizer
    table = _ENCODINGS.get(tokenizer)
    if table is None:
        state = tokenizer_state(tokenizer)
        if state is None:
            table = {}
        else:
            table = _SHARED.pop(state, None)
            table = _SHARED[state] = {} if table is None else table  # now the most recent
            while len(_SHARED) > _SHARED_STATES:
                _SHARED.popitem(last=False)
        _ENCODINGS[tokenizer] = table
    return table


# Settings that say where a tokenizer came from, not how it encodes.
_PROVENANCE_KEYS = {"name_or_path", "is_local", "local_files_only", "cache_dir", "_commit_hash", "revision", "token"}


def tokenizer_state(tokenizer) -> str | None:
    """A digest of everything a fast tokenizer encodes with (its class, its Rust tokenizer's full serialization:
    normalizer, pre-tokenizer, model, added tokens, post-processor; its special tokens, length and settings), so
    that equal digests encode every text alike; None for a tokenizer without a Rust backend (not shared)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    settings = {key: value for key, value in getattr(tokenizer, "init_kwargs", {}).items()
                if key not in _PROVENANCE_KEYS}
    digest = hashlib.sha256(backend.to_str().encode())
    digest.update(repr((type(tokenizer).__qualname__, len(tokenizer), sorted(tokenizer.special_tokens_map.items()),
                        sorted(settings.items(), key=lambda item: item[0]))).encode())
    return digest.hexdigest()


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")


__all__ = [
    "PROGRESS_MIN_BATCHES", "EncodedItem", "check_single_token_choices", "choice_logprobs",
    "choice_logprobs_passes", "encode_choice", "encode_item", "forwards_of", "full_sequence_logprobs",
    "predictions", "score_passes", "tokenizer_name",
]
