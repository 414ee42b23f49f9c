"""Models and their residual stream: one way to get a model, one name for "the residual after layer L".

A decoder-only transformer is a stack of decoder layers, each of which reads a running vector per token — the
*residual stream* — and adds its own contribution to it. Everything this companion measures or changes lives
there: alignment is measured between residual vectors of parallel sentences, and a steering vector is a vector
added to the residual after one layer. So the library needs exactly two things from a model:

1. a way to load it, the same way wherever it comes from (`load_model`): the embedded model organism
   (`"organism"`, `"organism:<variant>"`), a local Hugging Face directory or a hub id, or — once remote execution
   lands — a model served by NDIF; and
2. one stable name for "the residual stream after decoder layer L" (`residual`, `add_to_residual`), whatever
   each architecture calls its layers (TransformerLens's `blocks.{L}.hook_resid_post`). `decoder_layers` is the
   one small adapter from that name to each module tree.

Models are wrapped in nnsight's `TransformersModel`, so reading and editing happen inside a trace:

    model = load_model("organism")
    with model.trace(input_ids=ids, attention_mask=mask):
        hidden = residual(model, 3).save()          # [batch, seq, hidden]
        add_to_residual(model, 5, steering_vector)  # changes only this forward

Layer indices are 0-based: `residual(model, L)` is the output of decoder layer `L`, which Hugging Face reports as
`output_hidden_states[L + 1]` (index 0 is the embeddings) — except after the *last* layer, where transformers 5
reports the hidden state *after* the final norm, while `residual` returns it before, as the layer produced it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from nnsight import TransformersModel

NDIF_API_KEY_VARIABLE = "NDIF_API_KEY"

# Where each supported architecture keeps its decoder layers, tried in order. Llama, Qwen2, Gemma, Gemma 2,
# Gemma 3 text (and most Hugging Face decoders: Mistral, Phi-3, OLMo...) keep them at `model.layers`; the
# multimodal Gemma 3 wraps its text decoder in `model.language_model`; GPT-2 style models use `transformer.h`.
LAYER_PATHS: tuple[tuple[str, ...], ...] = (
    ("model", "language_model", "layers"),
    ("model", "layers"),
    ("transformer", "h"),
)

# A hub id is `owner/name`: one slash, names of letters, digits, `-`, `_` and `.`, not starting with a dot.
HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*$")

# from_pretrained keywords that also concern the tokenizer; any other keyword is for the model only.
TOKENIZER_LOAD_KEYWORDS = ("revision", "local_files_only", "trust_remote_code", "cache_dir", "subfolder")


class ModelNotFoundError(ValueError):
    """A model name that is neither the organism, an existing local directory, nor a fetchable hub id."""


class MissingAPIKeyError(RuntimeError):
    """Remote execution was asked for but the NDIF API key is not in the environment."""


class RemoteNotAvailableError(NotImplementedError):
    """Remote execution is part of the interface but not wired yet."""


class UnsupportedArchitectureError(ValueError):
    """A model whose decoder layers this library does not know how to find."""


def is_organism_name(name: str) -> bool:
    """Whether `name` names the embedded model organism (`"organism"` or `"organism:<variant>"`)."""
    return name == "organism" or name.startswith("organism:")


def load_model(
    name: str,
    *,
    remote: bool = False,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    **kwargs: Any,
) -> TransformersModel:
    """Load a causal language model, wrapped for tracing with nnsight.

    Args:
        name: `"organism"` or `"organism:<variant>"` for the embedded model organism (trained on first use);
            a local directory in Hugging Face format; or a hub id such as `"google/gemma-3-1b-it"`.
        remote: Run on NDIF instead of locally. The API key is read only from the `NDIF_API_KEY` environment
            variable, never passed as an argument.
        device: `None` or `"cpu"` for the CPU; `"cuda"` or `"auto"` to spread the model over the available GPUs
            (`device_map="auto"`); any other torch device string (`"cuda:1"`) to put it all there.
        dtype: A torch dtype or its name (`"bfloat16"`, `"float32"`, `"auto"` for the checkpoint's own). Defaults
            to float32 on the CPU and bfloat16 on a GPU.
        **kwargs: Passed to `from_pretrained` (`revision`, `local_files_only`, `attn_implementation`, ...).

    Returns:
        The model as an nnsight `TransformersModel`, its tokenizer at `model.tokenizer` (with a pad token).

    Raises:
        ModelNotFoundError: `name` is not something this function can load, or a hub id could not be fetched.
        MissingAPIKeyError: `remote=True` without `NDIF_API_KEY` in the environment.
        RemoteNotAvailableError: `remote=True` with a key: remote execution is not wired yet.

    Example:
        >>> model = load_model("organism:midalign")
        >>> n_layers(model)
    """
    if remote:
        return _remote_model(name)
    if is_organism_name(name):
        # Imported here: the organism module trains the organism, which needs this module to load it.
        from cla_lib.organism import organism_path

        source = str(organism_path(name))
    elif Path(name).expanduser().is_dir():
        source = str(Path(name).expanduser())
    elif HUB_ID_PATTERN.match(name):
        source = name
    else:
        raise ModelNotFoundError(
            f"cannot load a model from {name!r}: it is not an existing directory, a hub id, or the organism. "
            "Accepted: 'organism' or 'organism:<variant>' (the embedded model organism), a local directory in "
            "Hugging Face format (config.json, weights, tokenizer), or a hub id 'owner/name'."
        )
    return _local_model(source, device=device, dtype=dtype, **kwargs)


def _local_model(
    source: str, *, device: str | None, dtype: str | torch.dtype | None, **kwargs: Any
) -> TransformersModel:
    """Load a Hugging Face directory or hub id with transformers and wrap it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    on_accelerator = device is not None and device != "cpu"
    if dtype is None:
        dtype = torch.bfloat16 if on_accelerator else torch.float32
    elif isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    model_keywords: dict[str, Any] = {"dtype": dtype, **kwargs}
    if device in ("cuda", "auto"):
        model_keywords["device_map"] = "auto"
    elif on_accelerator:
        model_keywords["device_map"] = device
    tokenizer_keywords = {key: value for key, value in kwargs.items() if key in TOKENIZER_LOAD_KEYWORDS}

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **tokenizer_keywords)
        # A multimodal Gemma 3 checkpoint (Gemma3ForConditionalGeneration) comes back as that class, whose text
        # decoder sits at `model.language_model`; `decoder_layers` knows that path, and text-only forwards
        # (input_ids, attention_mask) run through it unchanged, so nothing else is special-cased.
        language_model = AutoModelForCausalLM.from_pretrained(source, **model_keywords)
    except OSError as error:
        if Path(source).is_dir():
            raise
        raise ModelNotFoundError(
            f"could not fetch {source!r} from the Hugging Face hub ({error.__class__.__name__}: "
            f"{str(error).splitlines()[0] if str(error) else error!r}). If you are offline, download the model "
            "once and pass its local directory instead (set HF_HUB_OFFLINE=1 to skip network retries)."
        ) from error
    language_model.eval()
    if tokenizer.pad_token is None:
        # Scoring pads its own batches with an attention mask, so which token pads does not matter, only that
        # one exists.
        tokenizer.pad_token = tokenizer.eos_token
    return TransformersModel(language_model, tokenizer=tokenizer)


def _remote_model(name: str) -> TransformersModel:
    """The model `name` served by NDIF, for traces that run remotely.

    The one place remote execution plugs in: it checks the key now; wiring nnsight's remote backend
    (`TransformersModel(name)` unloaded, traces with `remote=True`) lands with the real-models work.
    """
    if not os.environ.get(NDIF_API_KEY_VARIABLE):
        raise MissingAPIKeyError(
            f"remote execution needs an NDIF API key in the environment variable {NDIF_API_KEY_VARIABLE}; "
            "get one at https://login.ndif.us and export it (keys are never taken as arguments)"
        )
    raise RemoteNotAvailableError(
        f"remote NDIF execution of {name!r} is not available yet: it lands with the real-models work. "
        "Run locally for now (remote=False)."
    )


def decoder_layers(model: Any) -> Any:
    """The list of decoder layers of a model, whatever its architecture calls it.

    Args:
        model: An nnsight model (then the layers come back as envoys, to read and edit in a trace) or a plain
            transformers model (then as a `torch.nn.ModuleList`, for example to register hooks).

    Returns:
        The decoder layers in order: `model.model.layers` (Llama, Qwen2, Gemma 1/2/3 text),
        `model.model.language_model.layers` (multimodal Gemma 3), or `model.transformer.h` (GPT-2 style).

    Raises:
        UnsupportedArchitectureError: None of those paths exists; the message names the model class.
    """
    for path in LAYER_PATHS:
        node = model
        for attribute in path:
            # hasattr is safe on envoys: a missing name raises AttributeError after checking the wrapped module.
            if not hasattr(node, attribute):
                break
            node = getattr(node, attribute)
        else:
            return node
    module = getattr(model, "_module", model)
    raise UnsupportedArchitectureError(
        f"cannot find the decoder layers of {type(module).__name__}: looked for "
        + ", ".join(".".join(path) for path in LAYER_PATHS)
        + ". Supported: Llama, Qwen2, Gemma/Gemma2/Gemma3 (text and multimodal), GPT-2 style."
    )


def n_layers(model: Any) -> int:
    """The number of decoder layers of an nnsight or plain transformers model."""
    return len(decoder_layers(model))


def residual(model: TransformersModel, layer: int) -> torch.Tensor:
    """The residual stream after decoder layer `layer`; call inside a trace.

    Args:
        model: An nnsight model, inside `with model.trace(...)` or `model.generate(...)`.
        layer: 0-based decoder layer index.

    Returns:
        The layer's output hidden states, `[batch, seq, hidden]` (save it with `.save()` to use after the trace).
    """
    return _hidden_states(decoder_layers(model)[layer].output)


def add_to_residual(model: TransformersModel, layer: int, delta: torch.Tensor) -> None:
    """Add `delta` to the residual stream after decoder layer `layer`; call inside a trace.

    The layer's output is replaced by output + delta for this forward only (the weights are untouched), for
    every batch row and position. Inside `for _ in tracer.iter[:n]` during `generate`, it applies at each step.
    Several edits must come in increasing layer order, as nnsight reads layers in execution order.

    Args:
        model: An nnsight model, inside a trace.
        layer: 0-based decoder layer index.
        delta: A `[hidden]` vector (any device or dtype: it is moved to the residual's).
    """
    envoy = decoder_layers(model)[layer]
    output = envoy.output
    hidden = _hidden_states(output)
    shifted = hidden + delta.to(device=hidden.device, dtype=hidden.dtype)
    # Assignment swaps the value the next layer receives without writing into a tensor the model may still
    # hold; it works the same for a tensor output (transformers 5) and a tuple one (older versions).
    envoy.output = (shifted, *output[1:]) if isinstance(output, tuple) else shifted


def _hidden_states(layer_output: Any) -> torch.Tensor:
    """The hidden states in a decoder layer's output: the tensor itself (transformers 5) or a tuple's first item."""
    return layer_output[0] if isinstance(layer_output, tuple) else layer_output
