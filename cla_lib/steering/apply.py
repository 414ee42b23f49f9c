"""Applying vectors: residual edits inside one trace, for scoring and for steered generation."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from cla_lib.model.layers import apply_edits
from cla_lib.model.remote import remote_session
from cla_lib.steering.activations import prompt_batches
from cla_lib.steering.vector import SteeringVector
from cla_lib.model.remote import Remote


Edits = Sequence[tuple[int, torch.Tensor]]


def steering_edits(*terms: tuple[SteeringVector, int, float]) -> list[tuple[int, torch.Tensor]]:
    """Residual edits for `cla_lib.scoring.choice_logprobs(edits=...)` from (vector, layer, alpha) terms.

    Example:
        >>> edits = steering_edits((v_en, 3, 4.0), (v_loc, 6, 2.0))   # EN at layer 3 and LOC at layer 6 at once
    """
    edits = []
    for term in terms:
        if len(term) != 3 or not isinstance(term[0], SteeringVector):
            raise ValueError(f"a steering term is (SteeringVector, layer, alpha), not {term!r}")
        vector, layer, alpha = term
        if float(alpha):  # a term at strength 0 is no edit: its configuration is the same pass as one without it
            edits.append((int(layer), float(alpha) * vector[int(layer)]))
    return edits


def _generate_batch(lm, inputs: dict, edits: Edits, max_new_tokens: int, options: dict) -> torch.Tensor:
    """One steered `generate`: the edits apply to the prompt's forward and to every generated token's."""
    with torch.no_grad():
        with lm.generate(max_new_tokens=max_new_tokens, **options) as tracer:
            with tracer.invoke(**inputs):
                # A bare edit would bind to the first forward only; each step of the loop binds to the next one.
                for _ in tracer.iter[:max_new_tokens]:
                    apply_edits(lm, edits)
            # Its own invoke, so the ids are read even when every row stops early at EOS and the loop is cut short.
            with tracer.invoke():
                ids = tracer.result.save()
    return ids


def generate_ids(
    lm,
    prompts: Sequence[str],
    *,
    edits: Edits = (),
    max_new_tokens: int = 20,
    batch_size: int = 16,
    remote: Remote = False,
    **generate_options: Any,
) -> list[list[int]]:
    """The new token ids a (steered) model generates after each prompt, greedy unless told otherwise.

    Prompts are left-padded (generation continues every row from its last column) and encoded with default special
    tokens. `generate_options` go to transformers' `generate` (default `do_sample=False`).

    Returns:
        Per prompt, the generated ids (up to `max_new_tokens`, ending at EOS where the model stopped, no padding).
    """
    tokenizer = lm.tokenizer
    options = {"do_sample": False, "pad_token_id": tokenizer.pad_token_id, **generate_options}
    batches = prompt_batches(tokenizer, prompts, batch_size, side="left")
    edits = list(edits)
    work = [{"input_ids": batch.inputs["input_ids"], "attention_mask": batch.inputs["attention_mask"]}
            for batch in batches]
    with warnings.catch_warnings():
        # nnsight warns when a step loop asks for more steps than the run made: here that is an early EOS.
        warnings.filterwarnings("ignore", message=".*was never reached.*")
        if remote:
            outputs = remote_session(lm, _generate_batch, [{"inputs": inputs} for inputs in work], remote=remote,
                                     edits=edits, max_new_tokens=max_new_tokens, options=options)
        else:
            outputs = [_generate_batch(lm, inputs, edits, max_new_tokens, options) for inputs in work]
    stop = _token_ids(options.get("eos_token_id"), tokenizer.eos_token_id,
                      getattr(getattr(getattr(lm, "_module", None), "generation_config", None), "eos_token_id", None))
    generated: list[list[int]] = [[] for _ in prompts]
    for batch, ids in zip(batches, outputs):
        width = batch.inputs["input_ids"].shape[1]
        for row, prompt_index in enumerate(batch.rows):
            tokens = []
            for token in ids[row, width:].tolist():
                tokens.append(token)
                if token in stop:
                    break
            generated[prompt_index] = tokens
    return generated


def _token_ids(*values) -> set[int]:
    """The token ids among ints, lists of ints and Nones (eos_token_id comes in all three forms)."""
    ids = set()
    for value in values:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(token for token in value if isinstance(token, int))
    return ids


def generate(lm, prompts: Sequence[str], *, edits: Edits = (), max_new_tokens: int = 20, **options) -> list[str]:
    """The text a (steered) model generates after each prompt (special tokens dropped); see `generate_ids`.

    Example:
        >>> generate(model, ["한국의 긴급 전화번호는"], edits=steering_edits((v_loc, 2, 4.0)), max_new_tokens=3)
    """
    ids = generate_ids(lm, prompts, edits=edits, max_new_tokens=max_new_tokens, **options)
    return [lm.tokenizer.decode(tokens, skip_special_tokens=True) for tokens in ids]
