"""The residual stream: one stable name for "the residual after decoder layer L", whatever the architecture.

Everything this companion measures or changes lives in the residual stream: alignment compares residual vectors of
parallel sentences, and a steering vector is added to the residual after one layer. `decoder_layers` is the one
small adapter from that name to each module tree; `residual` and `add_to_residual` read and edit it in a trace:

    with model.trace(input_ids=ids, attention_mask=mask):
        hidden = residual(model, 3).save()          # [batch, seq, hidden]
        add_to_residual(model, 5, steering_vector)  # changes only this forward

Layer indices are 0-based: `residual(model, L)` is the output of decoder layer `L`, Hugging Face's
`output_hidden_states[L + 1]` except after the last layer (before the final norm). Design notes: docs/design-notes.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from nnsight import TransformersModel

from cla_lib.core.batching import combine_edits


# Where each supported architecture keeps its decoder layers, tried in order. Llama, Qwen2, Gemma, Gemma 2,
# Gemma 3 text (and most Hugging Face decoders: Mistral, Phi-3, OLMo...) keep them at `model.layers`; the
# multimodal Gemma 3 wraps its text decoder in `model.language_model`; GPT-2 style models use `transformer.h`.
LAYER_PATHS: tuple[tuple[str, ...], ...] = (
    ("model", "language_model", "layers"),
    ("model", "layers"),
    ("transformer", "h"),
)


class UnsupportedArchitectureError(ValueError):
    """A model whose decoder layers this library does not know how to find."""


def decoder_layers(lm: Any) -> Any:
    """The list of decoder layers of a model, whatever its architecture calls it.

    Args:
        lm: An nnsight model (then the layers come back as envoys, to read and edit in a trace) or a plain
            transformers model (then as a `torch.nn.ModuleList`, for example to register hooks).

    Returns:
        The decoder layers in order: `model.model.layers` (Llama, Qwen2, Gemma 1/2/3 text),
        `model.model.language_model.layers` (multimodal Gemma 3), or `model.transformer.h` (GPT-2 style).

    Raises:
        UnsupportedArchitectureError: None of those paths exists; the message names the model class.
    """
    lm = unwrapped(lm)
    for path in LAYER_PATHS:
        node = lm
        for attribute in path:
            # hasattr is safe on envoys: a missing name raises AttributeError after checking the wrapped module.
            if not hasattr(node, attribute):
                break
            node = getattr(node, attribute)
        else:
            return node
    module = getattr(lm, "_module", lm)
    raise UnsupportedArchitectureError(
        f"cannot find the decoder layers of {type(module).__name__}: looked for "
        + ", ".join(".".join(path) for path in LAYER_PATHS)
        + ". Supported: Llama, Qwen2, Gemma/Gemma2/Gemma3 (text and multimodal), GPT-2 style."
    )


def unwrapped(lm: Any) -> Any:
    """The transformers model inside the wrappers training puts around it: a distributed one (DDP's and FSDP's
    `module`) and a peft adapter model (`get_base_model`); anything else (an nnsight model) unchanged."""
    while isinstance(lm, torch.nn.Module):
        if isinstance(lm, torch.nn.parallel.DistributedDataParallel) \
                or type(lm).__name__ == "FullyShardedDataParallel":
            lm = lm.module
        elif callable(getattr(type(lm), "get_base_model", None)):
            lm = lm.get_base_model()
        else:
            break
    return lm


def n_layers(lm: Any) -> int:
    """The number of decoder layers of an nnsight or plain transformers model."""
    return len(decoder_layers(lm))


def residual(lm: TransformersModel, layer: int) -> torch.Tensor:
    """The residual stream after decoder layer `layer`; call inside a trace.

    Args:
        lm: An nnsight model, inside `with model.trace(...)` or `model.generate(...)`.
        layer: 0-based decoder layer index.

    Returns:
        The layer's output hidden states, `[batch, seq, hidden]` (save it with `.save()` to use after the trace).
    """
    return _hidden_states(decoder_layers(lm)[layer].output)


def add_to_residual(lm: TransformersModel, layer: int, delta: torch.Tensor) -> None:
    """Add `delta` to the residual stream after decoder layer `layer`; call inside a trace.

    The layer's output is replaced by output + delta for this forward only (the weights are untouched), for
    every batch row and position. Inside `for _ in tracer.iter[:n]` during `generate`, it applies at each step.
    Several edits must come in increasing layer order, as nnsight reads layers in execution order.

    Args:
        lm: An nnsight model, inside a trace.
        layer: 0-based decoder layer index.
        delta: A `[hidden]` vector (any device or dtype: it is moved to the residual's).
    """
    envoy = decoder_layers(lm)[layer]
    output = envoy.output
    hidden = _hidden_states(output)
    shifted = hidden + delta.to(device=hidden.device, dtype=hidden.dtype)
    # Assignment swaps the value the next layer receives without writing into a tensor the model may still
    # hold; it works the same for a tensor output (transformers 5) and a tuple one (older versions).
    envoy.output = (shifted, *output[1:]) if isinstance(output, tuple) else shifted


def apply_edits(lm: TransformersModel, edits: Sequence[tuple[int, torch.Tensor]]) -> None:
    """Add each `(layer, delta)` edit to the residual after its layer; call inside a trace (or a generation step).

    Deltas for the same layer add up (`cla_lib.core.batching.combine_edits`); layers are visited in the order the
    forward reaches them.
    """
    for layer, delta in combine_edits(edits):
        add_to_residual(lm, layer, delta)


def _hidden_states(layer_output: Any) -> torch.Tensor:
    """The hidden states in a decoder layer's output: the tensor itself (transformers 5) or a tuple's first item."""
    return layer_output[0] if isinstance(layer_output, tuple) else layer_output
