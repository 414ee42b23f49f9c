"""Reading the residual stream at each prompt's last token, every layer from one forward per batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tqdm import tqdm  # not tqdm.auto: it warns "IProgress not found" in kernels without ipywidgets

from cla_lib.core.batching import pad, pad_id
from cla_lib.model.layers import n_layers, residual
from cla_lib.model.remote import Remote, remote_session


# With fewer forwards than this a progress bar only adds noise.
PROGRESS_MIN_STEPS = 4


@dataclass(frozen=True)
class _PromptBatch:
    """Padded prompts, ready for one forward: model inputs plus which position is each row's last token."""

    rows: tuple[int, ...]  # indices into the caller's prompt list
    inputs: dict
    last: torch.Tensor  # [batch] index of each row's last non-pad token


def last_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """The index of each row's last non-pad token, whichever side the padding is on."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * (positions + 1)).argmax(dim=1)


def prompt_batches(tokenizer, prompts: Sequence[str], batch_size: int, side: str | None = None) -> list[_PromptBatch]:
    """Tokenize prompts (default special tokens, as scoring does) into batches of similar length."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    token_lists = [list(tokenizer(prompt)["input_ids"]) for prompt in prompts]
    for prompt, tokens in zip(prompts, token_lists):
        if not tokens:
            raise ValueError(f"the prompt {prompt!r} encodes to no tokens, so it has no last token to read")
    order = sorted(range(len(prompts)), key=lambda index: -len(token_lists[index]))
    pad_token_id = pad_id(tokenizer)
    side = side or getattr(tokenizer, "padding_side", "right")
    batches = []
    for start in range(0, len(order), batch_size):
        rows = tuple(order[start:start + batch_size])
        inputs = pad([token_lists[row] for row in rows], pad_token_id, side)
        batches.append(_PromptBatch(rows, inputs, last_positions(inputs["attention_mask"])))
    return batches


def _last_token_states(lm, inputs: dict, last: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """One forward: `[len(layers), batch, hidden]` float32 residuals at each row's last token, all layers at once."""
    rows = torch.arange(last.shape[0])
    with torch.no_grad():
        with lm.trace(**inputs):
            states = []
            for layer in layers:
                states.append(residual(lm, layer)[rows, last])
            stacked = torch.stack(states).float().save()
    return stacked


def last_token_activations(
    lm,
    prompts: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    remote: Remote = False,
    progress: bool | None = None,
) -> torch.Tensor:
    """The residual stream after each layer at the last token of each prompt, every layer from one forward per batch.

    Prompts are encoded with the tokenizer's default special tokens (as `cla_lib.scoring` encodes a prompt), so the
    last token is the position that predicts an answer. Batches are padded on the tokenizer's `padding_side`; each
    row's last non-pad token is found from the attention mask.

    Args:
        lm: An nnsight model from `cla_lib.plane.loading.load_model`.
        prompts: The prompts.
        layers: 0-based decoder layers to read (default: all).
        batch_size: Prompts per forward.
        remote: `False`, `True` (NDIF) or `"local"` (nnsight's serialization round trip, run here).
        progress: Show a progress bar over batches; `None` shows one when there are many (never when remote).

    Returns:
        A float32 CPU tensor `[len(layers), len(prompts), hidden]`.

    Example:
        >>> states = last_token_activations(model, ["Das ist", "This is"])
        >>> states.shape   # [n_layers, 2, hidden]
    """
    if not prompts:
        raise ValueError("no prompts to read activations from")
    layers = list(range(n_layers(lm))) if layers is None else [int(layer) for layer in layers]
    batches = prompt_batches(lm.tokenizer, prompts, batch_size)
    work = [(batch.inputs, batch.last) for batch in batches]
    if remote:
        outputs = remote_session(lm, _last_token_states, [{"inputs": inputs, "last": last} for inputs, last in work],
                                 remote=remote, layers=layers)
    else:
        outputs = [_last_token_states(lm, inputs, last, layers)
                   for inputs, last in _progress(work, progress, "activations")]
    result = torch.empty((len(layers), len(prompts), outputs[0].shape[-1]), dtype=torch.float32)
    for batch, states in zip(batches, outputs):
        result[:, list(batch.rows)] = states.cpu()
    return result


def _progress(iterable, progress: bool | None, description: str):
    steps = list(iterable)
    if progress is None:
        progress = len(steps) >= PROGRESS_MIN_STEPS
    if not progress:
        return steps

    return tqdm(steps, desc=description, unit="pass")
