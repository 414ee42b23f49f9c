"""Loading a model: one way, wherever it comes from, wrapped for tracing with nnsight.

`load_model` takes the embedded model organism (``organism``, ``organism:<method>``, trained on first use), a local
Hugging Face directory, a hub id or a preset name (`cla_lib.model.presets`), to run here (CPU or GPU) or on NDIF
(`remote=True`, `cla_lib.model.remote`). It sits above `cla_lib.organism`: loading an organism may first train it.

    model = load_model("organism")
    with model.trace(input_ids=ids, attention_mask=mask):
        hidden = residual(model, 3).save()
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from nnsight import TransformersModel

from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from cla_lib.alignment import estimate
from cla_lib.alignment.lora import adapter_base, is_adapter_directory, load_merged
from cla_lib.model.presets import PRESETS
from cla_lib.model.reference import ModelNotFoundError, ModelRef, known_reference
from cla_lib.model.remote import (
    NDIF_API_KEY_VARIABLE, NDIF_STATUS_TIMEOUT_SECONDS, RemoteModel, TOKENIZER_LOAD_KEYWORDS, read_api_key,
    configure_nnsight, check_compatible, RUN_LOCALLY, check_served, offline_keywords, remote_skeleton,
)
from cla_lib.organism.registry import organism_path
from cla_lib.model.remote import Remote, check_remote


# The device `load_model` uses when none is given: how a chapter run by papermill (whose cells call
# `load_model(name)`) is put on a GPU without a parameter of its own: `CLA_DEVICE=cuda cla rerun ...`.
DEVICE_VARIABLE = "CLA_DEVICE"
# The same for the dtype: `cla rerun --dtype`, a chapter's `dtype` parameter.
DTYPE_VARIABLE = "CLA_DTYPE"


def use_placement(device: str | None = None, dtype: str | None = None) -> None:
    """Make `device` and `dtype` the defaults of every `load_model` of this process (and its children) that names
    none: how a chapter's `device` and `dtype` parameters reach every model it loads. None leaves a default as is."""
    if device:
        estimate.check_device(device)
        os.environ[DEVICE_VARIABLE] = str(device)
    if dtype:
        _resolved_dtype(dtype, device)  # an unknown dtype fails here, at the parameter, not at the first load
        os.environ[DTYPE_VARIABLE] = str(dtype)


def load_model(
    reference: str | ModelRef,
    *,
    size: str | None = None,
    remote: Remote = False,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    **kwargs: Any,
) -> TransformersModel:
    """Load a causal language model, wrapped for tracing with nnsight.

    Args:
        reference: A `ModelRef` or what `ModelRef.parse` reads: `"organism[:method][@seed]"` for the embedded model
            organism (trained on first use); a local directory in Hugging Face format; a hub id such as
            `"google/gemma-3-1b-it"`; or a preset name of `cla_lib.model.presets` (`"gemma-3-12b-it"`), which
            stands for its hub id and dtype.
        size: The organism's size (`"tiny"`, `"default"`; None: `$CLA_ORGANISM_SIZE`, else default).
        remote: `False` to run here; `True` to run on NDIF (a `RemoteModel` built without weights; the API key is
            read from the `NDIF_API_KEY` environment variable or nnsight's stored configuration, `nnsight login`,
            never passed as an argument); `"local"` to load
            the weights here but run every trace through nnsight's remote serialization round trip (a `RemoteModel`
            too; no key needed), to test the remote path offline.
        device: `"cpu"` for the CPU; `"cuda"` or `"auto"` to spread the model over the available GPUs
            (`device_map="auto"`); any other torch device string (`"cuda:1"`) to put it all there. `None`: the
            environment variable `CLA_DEVICE` if set, else the CPU.
        dtype: A torch dtype or its name (`"bfloat16"`, `"float32"`, `"auto"` for the checkpoint's own). Defaults
            to `$CLA_DTYPE` if set (`use_placement`), else the preset's dtype on a GPU, float32 on the CPU, bfloat16
            on a GPU without a preset.
        **kwargs: Passed to `from_pretrained` (`revision`, `local_files_only`, `attn_implementation`, ...).

    Returns:
        The model as an nnsight `TransformersModel`, its tokenizer at `model.tokenizer` (with a pad token).

    Raises:
        ModelNotFoundError: `reference` is not something this function can load, or a hub id could not be fetched.
        MissingAPIKeyError: `remote=True` without `NDIF_API_KEY` in the environment or a key from `nnsight login`.
        RemoteNotAvailableError: `remote=True` and NDIF is unreachable, does not serve the model, or the model's
            config cannot be read from the hub.

    Example:
        >>> model = load_model("organism:midalign")
        >>> n_layers(model)
    """
    check_remote(remote)
    if any("api_key" in keyword.lower() for keyword in kwargs):
        raise TypeError(f"load_model takes no API key: NDIF's is read from ${NDIF_API_KEY_VARIABLE} (or `nnsight login`), so that it is "
                        "never written into a notebook, a log or a results file")
    if remote is True:
        return _remote_model(reference, **kwargs)
    parsed = ModelRef.parse(reference, size=size)
    device = device if device is not None else (os.environ.get(DEVICE_VARIABLE) or None)
    dtype = dtype if dtype is not None else (os.environ.get(DTYPE_VARIABLE) or None)
    estimate.check_device(device)  # before an organism trains or a checkpoint loads
    if parsed.is_organism:
        source = str(organism_path(parsed))
    else:
        source = parsed.source
        on_accelerator = device is not None and device != "cpu"
        if parsed.kind == "preset" and dtype is None and on_accelerator:
            dtype = parsed.preset.dtype
        if parsed.preset is not None and parsed.preset.revision:
            kwargs.setdefault("revision", parsed.preset.revision)
        if parsed.preset is not None:  # counted from the preset's own row before the hub is asked
            check_memory(parsed, _resolved_dtype(dtype, device), device)
        kwargs = offline_keywords(source, kwargs, ModelNotFoundError(
            f"could not fetch {source!r}: the Hugging Face hub cannot be reached from this machine. Download the "
            "model once where it can be, and pass its local directory instead."))
        if parsed.preset is None:
            check_memory(parsed, _resolved_dtype(dtype, device), device,
                         local_files_only=kwargs.get("local_files_only", False))
    return _local_model(source, device=device, dtype=dtype, remote=remote, **kwargs)


class ModelWontFitError(ValueError):
    """A model whose weights alone exceed the memory of the device it would be loaded on."""


def _resolved_dtype(dtype: str | torch.dtype | None, device: str | None) -> torch.dtype | str:
    """The dtype a model loads in: bfloat16 on an accelerator and float32 on the CPU by default; "auto" stays."""
    if dtype is None:
        return torch.bfloat16 if device is not None and device != "cpu" else torch.float32
    if isinstance(dtype, str) and dtype != "auto":
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; for example bfloat16, float16 or float32")
        return resolved
    return dtype


def check_memory(reference: ModelRef, dtype: torch.dtype | str, device: str | None, *,
                 local_files_only: bool = False) -> None:
    """Refuse to load a real model whose weights exceed the memory of where it would go (the CPU's available RAM,
    one GPU's, or all GPUs' for ``cuda``/``auto``), with the numbers, instead of swapping for an hour.

    Counted from the config (a preset's row, a directory's or an adapter base's `config.json`); a hub id whose config
    cannot be read here is not checked (loading it will say why)."""
    if not isinstance(dtype, torch.dtype):
        return
    try:
        counted = reference
        if counted.preset is None and counted.source and is_adapter_directory(counted.source):
            # Adapters are counted as their base, found as loading finds it (a preset name is not a hub id).
            counted = known_reference(adapter_base(counted.source))
        if counted.preset is not None:
            arch = estimate.preset_architecture(counted.preset)
        else:
            keywords = offline_keywords(counted.source, {"local_files_only": local_files_only}, None)
            arch = estimate.architecture(AutoConfig.from_pretrained(counted.source, **keywords))
    except Exception:  # noqa: BLE001 - an unreadable config is loading's to report, not this estimate's
        return
    if device in ("cuda", "auto"):
        memory = sum(estimate.device_memory(f"cuda:{index}") for index in range(torch.cuda.device_count())) or None
        where = f"{torch.cuda.device_count()} GPU(s)"
    else:
        memory, where = estimate.device_memory(device or "cpu"), device or "the CPU"
    weights = arch.parameters * dtype.itemsize
    if memory is not None and weights > memory:
        raise ModelWontFitError(
            f"{reference.name} needs {estimate.size(weights)} for its weights alone ({arch.parameters:,} parameters in "
            f"{str(dtype).removeprefix('torch.')}) and {where} has {estimate.size(memory)} free: load it on a GPU "
            "(--device cuda, -p device cuda), in a smaller dtype (--dtype bfloat16), or run it on NDIF (--remote)")


def default_placement() -> dict:
    """Where `load_model` puts a model that names no device or dtype in this process, for provenance."""
    device = os.environ.get(DEVICE_VARIABLE) or "cpu"
    dtype = os.environ.get(DTYPE_VARIABLE) or ("float32" if device == "cpu" else "the preset's (bfloat16 without one)")
    return {"device": device, "dtype": dtype}


def placement(lm) -> str:
    """Where a loaded model's weights are, and in which dtype (what a command reports after loading)."""
    module = getattr(lm, "_module", lm)
    device_map = getattr(module, "hf_device_map", None)
    devices = sorted({str(value) for value in device_map.values()}) if device_map else sorted(
        {str(parameter.device) for parameter in module.parameters()})
    dtypes = sorted({str(parameter.dtype).removeprefix("torch.") for parameter in module.parameters()})
    parameters = sum(parameter.numel() for parameter in module.parameters())
    return f"{parameters:,} parameters on {', '.join(devices)} in {', '.join(dtypes)}"


def _local_model(
    source: str, *, device: str | None, dtype: str | torch.dtype | None, remote: Remote = False, **kwargs: Any
) -> TransformersModel:
    """Load a Hugging Face directory or hub id with transformers and wrap it (in a `RemoteModel` for
    `remote="local"`)."""
    from safetensors import SafetensorError

    on_accelerator = device is not None and device != "cpu"
    dtype = _resolved_dtype(dtype, device)
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
        if is_adapter_directory(source):
            language_model = load_merged(source, lambda base: _base_of_adapters(source, base, model_keywords))
        else:
            language_model = AutoModelForCausalLM.from_pretrained(source, **model_keywords)
    except (OSError, SafetensorError) as error:
        if Path(source).is_dir():
            raise ValueError(f"the weights in {source} cannot be read ({error.__class__.__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else 'damaged'}): the files are damaged or "
                             f"incomplete; remove that folder (a cached organism is trained again on next use) or "
                             "copy the model again") from None
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
    if remote == "local":
        return RemoteModel(language_model, tokenizer=tokenizer, remote="local")
    return TransformersModel(language_model, tokenizer=tokenizer)


def _base_of_adapters(adapters: str, base: str, model_keywords: dict):
    """The base model of LoRA adapters (`cla align --lora-rank`), as their `adapter_config.json` names it."""
    reference = known_reference(base)
    if reference is None or reference.is_organism:
        raise ModelNotFoundError(f"the adapters in {adapters} were trained on {base}, which is not there: put the base "
                                 "model back, or set base_model_name_or_path in their adapter_config.json")
    return AutoModelForCausalLM.from_pretrained(reference.source, **model_keywords)


def _remote_model(reference: str | ModelRef, *, status_timeout: float = NDIF_STATUS_TIMEOUT_SECONDS,
                  **kwargs: Any) -> RemoteModel:
    """The model (a preset or hub id) served by NDIF, built on the meta device, for traces that run there."""
    read_api_key()  # the missing key is the first thing to say, before any network
    try:
        parsed = ModelRef.parse(reference)
    except ModelNotFoundError:
        raise ModelNotFoundError(
            f"cannot run {str(reference)!r} on NDIF: name a preset ({', '.join(PRESETS)}) or a hub id 'owner/name'"
        ) from None
    if parsed.is_local:
        raise ModelNotFoundError(
            f"{parsed.name!r} is a local model: NDIF runs only models it hosts, named by preset or hub id: "
            f"{RUN_LOCALLY} (in Python, remote='local' runs it through NDIF's serialization round trip here)."
        )
    hub_id = parsed.hub_id  # no pinned revision: NDIF serves the revision it deployed, which nnsight's key names
    check_served(hub_id, timeout=status_timeout)
    check_compatible(timeout=status_timeout)
    configure_nnsight()
    return remote_skeleton(hub_id, **kwargs)
