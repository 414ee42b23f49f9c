"""Models and their residual stream: one way to get a model, one name for "the residual after layer L".

A decoder-only transformer is a stack of decoder layers, each of which reads a running vector per token — the
*residual stream* — and adds its own contribution to it. Everything this companion measures or changes lives
there: alignment is measured between residual vectors of parallel sentences, and a steering vector is a vector
added to the residual after one layer. So the library needs exactly two things from a model:

1. a way to load it, the same way wherever it comes from (`load_model`): the embedded model organism
   (`"organism"`, `"organism:<variant>"`), a local Hugging Face directory, a hub id or a preset name
   (`cla_lib.presets`), locally or served by NDIF (`remote=True`); and
2. one stable name for "the residual stream after decoder layer L" (`residual`, `add_to_residual`), whatever
   each architecture calls its layers (TransformerLens's `blocks.{L}.hook_resid_post`). `decoder_layers` is the
   one small adapter from that name to each module tree.

Models are wrapped in nnsight's `TransformersModel`, so reading and editing happen inside a trace:

    model = load_model("organism")
    with model.trace(input_ids=ids, attention_mask=mask):
        hidden = residual(model, 3).save()          # [batch, seq, hidden]
        add_to_residual(model, 5, steering_vector)  # changes only this forward

Remote execution (NDIF)
-----------------------
`load_model(name, remote=True)` returns a `RemoteModel`: the model's structure built on the meta device from its
config (no weights are downloaded), on which every `trace`, `generate` and `session` runs on NDIF unless told
otherwise. The chapters and the library therefore run remotely unchanged: a plain `model.trace(...)` becomes one
request, and a `model.session(...)` (how `cla_lib.steering` runs a sweep) becomes one request for all its traces.
Before building anything it checks that NDIF is reachable and serves the model (`check_served`), with a short
timeout, so that an offline machine or an unserved model fails in seconds with a message, never a hang.

The API key comes only from the environment variable `NDIF_API_KEY`, read when `load_model` is called, and is handed
to nnsight in memory (`nnsight.CONFIG.API.APIKEY`). It is never an argument, never printed, and never written: not
`CONFIG.set_default_api_key`, which would persist it to nnsight's config file. `remote="local"` loads the weights
here and runs every trace through nnsight's serialization round trip in-process (what NDIF would execute), which is
how the remote code path is tested offline.

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
# The device `load_model` uses when none is given: how a chapter run by papermill (whose cells call
# `load_model(name)`) is put on a GPU without a parameter of its own: `CLA_DEVICE=cuda cla rerun ...`.
DEVICE_VARIABLE = "CLA_DEVICE"

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


class RemoteNotAvailableError(RuntimeError):
    """NDIF cannot run the model now: the service is unreachable, it does not serve the model, or the model's
    structure cannot be built here (its config is not readable from the hub)."""


class UnsupportedArchitectureError(ValueError):
    """A model whose decoder layers this library does not know how to find."""


def is_organism_name(name: str) -> bool:
    """Whether `name` names the embedded model organism (`"organism"` or `"organism:<variant>"`)."""
    return name == "organism" or name.startswith("organism:")


def load_model(
    name: str,
    *,
    remote: bool | str = False,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    **kwargs: Any,
) -> TransformersModel:
    """Load a causal language model, wrapped for tracing with nnsight.

    Args:
        name: `"organism"` or `"organism:<variant>"` for the embedded model organism (trained on first use);
            a local directory in Hugging Face format; a hub id such as `"google/gemma-3-1b-it"`; or a preset name
            of `cla_lib.presets` (`"gemma-3-12b-it"`), which stands for its hub id and dtype.
        remote: `False` to run here; `True` to run on NDIF (a `RemoteModel` built without weights; the API key is
            read only from the `NDIF_API_KEY` environment variable, never passed as an argument); `"local"` to load
            the weights here but run every trace through nnsight's remote serialization round trip (a `RemoteModel`
            too; no key needed), to test the remote path offline.
        device: `"cpu"` for the CPU; `"cuda"` or `"auto"` to spread the model over the available GPUs
            (`device_map="auto"`); any other torch device string (`"cuda:1"`) to put it all there. `None`: the
            environment variable `CLA_DEVICE` if set, else the CPU.
        dtype: A torch dtype or its name (`"bfloat16"`, `"float32"`, `"auto"` for the checkpoint's own). Defaults
            to the preset's dtype on a GPU, float32 on the CPU, bfloat16 on a GPU without a preset.
        **kwargs: Passed to `from_pretrained` (`revision`, `local_files_only`, `attn_implementation`, ...).

    Returns:
        The model as an nnsight `TransformersModel`, its tokenizer at `model.tokenizer` (with a pad token).

    Raises:
        ModelNotFoundError: `name` is not something this function can load, or a hub id could not be fetched.
        MissingAPIKeyError: `remote=True` without `NDIF_API_KEY` in the environment.
        RemoteNotAvailableError: `remote=True` and NDIF is unreachable, does not serve the model, or the model's
            config cannot be read from the hub.

    Example:
        >>> model = load_model("organism:midalign")
        >>> n_layers(model)
    """
    if remote not in (False, True, "local"):
        raise ValueError(f"remote must be False, True (NDIF) or 'local' (serialization round trip), not {remote!r}")
    if any("api_key" in keyword.lower() for keyword in kwargs):
        raise TypeError(f"load_model takes no API key: NDIF's is read only from ${NDIF_API_KEY_VARIABLE}, so that it is "
                        "never written into a notebook, a log or a results file")
    if remote is True:
        return _remote_model(name, **kwargs)
    from cla_lib.presets import resolve_preset

    device = device if device is not None else (os.environ.get(DEVICE_VARIABLE) or None)
    preset = resolve_preset(name)
    if is_organism_name(name):
        # Imported here: the organism module trains the organism, which needs this module to load it.
        from cla_lib.organism import organism_path

        source = str(organism_path(name))
    elif Path(name).expanduser().is_dir():
        source = str(Path(name).expanduser())
    elif preset is not None:
        source = preset.hub_id
        on_accelerator = device is not None and device != "cpu"
        dtype = dtype if dtype is not None else (preset.dtype if on_accelerator else None)
    elif HUB_ID_PATTERN.match(name):
        source = name
    else:
        raise ModelNotFoundError(
            f"cannot load a model from {name!r}: it is not an existing directory, a hub id, a preset, or the "
            "organism. Accepted: 'organism' or 'organism:<variant>' (the embedded model organism), a local "
            "directory in Hugging Face format (config.json, weights, tokenizer), a hub id 'owner/name', or a "
            "preset (" + ", ".join(_preset_names()) + ")."
        )
    return _local_model(source, device=device, dtype=dtype, remote=remote, **kwargs)


def _preset_names() -> list[str]:
    from cla_lib.presets import PRESETS

    return list(PRESETS)


def _local_model(
    source: str, *, device: str | None, dtype: str | torch.dtype | None, remote: bool | str = False, **kwargs: Any
) -> TransformersModel:
    """Load a Hugging Face directory or hub id with transformers and wrap it (in a `RemoteModel` for
    `remote="local"`)."""
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
    if remote == "local":
        return RemoteModel(language_model, tokenizer=tokenizer, remote="local")
    return TransformersModel(language_model, tokenizer=tokenizer)


# How long the served check waits for NDIF's status page. Seconds, not minutes: the check exists so that an
# offline machine fails at once with a message rather than when the first trace times out.
NDIF_STATUS_TIMEOUT_SECONDS = 10.0
# The task nnsight builds remote language models for (it is part of NDIF's model key).
REMOTE_TASK = "text-generation"


class RemoteModel(TransformersModel):
    """A `TransformersModel` whose traces, generations and sessions run remotely unless told otherwise.

    `load_model(name, remote=True)` builds one on the meta device (NDIF holds the weights); `remote="local"` wraps
    a local model, each trace then going through nnsight's in-process serialization round trip. Passing
    `remote=...` to `trace` or `session` explicitly still wins.

    Traces opened while a remote session runs stay inside it (the session is the one request), and the copy of
    this object that travels with a request never defaults to remote, so the server runs what it receives.
    NDIF knows the model as a plain `TransformersModel` (`_remoteable_class`): this class exists only here.
    """

    def __init__(self, *args: Any, remote: bool | str = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._default_remote = remote
        self._remote_depth = 0

    def _resolve_remote(self, remote: bool | str | None) -> bool | str:
        if remote is not None:
            return remote
        return self._default_remote if self._remote_depth == 0 else False

    def trace(self, *inputs: Any, remote: bool | str | None = None, **kwargs: Any):
        return super().trace(*inputs, remote=self._resolve_remote(remote), **kwargs)

    def session(self, *args: Any, remote: bool | str | None = None, **kwargs: Any):
        return super().session(*args, remote=self._resolve_remote(remote), **kwargs)

    def _remote_backend(self, remote, blocking, job_id, verbose):
        # The server (and the local simulation's deserializer) has nnsight, not cla_lib: ship its code by value.
        import nnsight

        import cla_lib

        nnsight.register(cla_lib)
        return _CountingBackend(super()._remote_backend(remote, blocking, job_id, verbose), self)

    def _remoteable_class(self) -> type:
        return TransformersModel

    def dispatch(self) -> None:
        if not self.dispatched and self._default_remote is True:
            raise RemoteNotAvailableError(
                f"{self.repo_id or 'this model'} runs on NDIF: its weights are not loaded here, so it cannot run "
                "locally (remote=False). Load it with load_model(name) to run it on this machine."
            )
        super().dispatch()

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_default_remote"] = False
        state["_remote_depth"] = 0
        return state


class _CountingBackend:
    """Runs a remote backend with the model marked as busy, so traces inside a remote session stay in it."""

    def __init__(self, backend: Any, model: RemoteModel) -> None:
        self.backend = backend
        self.model = model

    def __call__(self, tracer: Any = None) -> Any:
        self.model._remote_depth += 1
        try:
            return self.backend(tracer)
        finally:
            self.model._remote_depth -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


def ndif_host() -> str:
    """The NDIF address remote requests go to: `$NDIF_HOST` when set, else nnsight's configured host."""
    from nnsight import CONFIG

    return os.environ.get("NDIF_HOST") or CONFIG.API.HOST


def check_served(hub_id: str, *, host: str | None = None, timeout: float = NDIF_STATUS_TIMEOUT_SECONDS) -> dict:
    """Check that NDIF is reachable and runs `hub_id` now; return its deployment record.

    Reads NDIF's `/status` page (the one nnsight's `nnsight.status()` reads; it needs no key) with a `timeout` in
    seconds. nnsight's own `is_model_running` is not used: it answers False for an unreachable service, which
    would hide why, and it asks the hub to canonicalize the id.

    Raises:
        RemoteNotAvailableError: NDIF is not reachable within the timeout, answers with an error, or does not run
            `hub_id` (the message lists what it runs).
    """
    import httpx

    host = (host or ndif_host()).rstrip("/")
    try:
        response = httpx.get(f"{host}/status", timeout=httpx.Timeout(timeout))
        response.raise_for_status()
        status = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise RemoteNotAvailableError(
            f"NDIF not reachable at {host} ({type(error).__name__}: {error}); cannot check whether it serves "
            f"{hub_id!r}. Check the network (and $NDIF_HOST), or run locally (remote=False) on a GPU."
        ) from None
    deployments = status.get("deployments", {}) if isinstance(status, dict) else {}
    served = {}
    for name, record in deployments.items():
        if isinstance(record, dict):
            served.setdefault(str(record.get("repo_id", name)), []).append(record)
    for repo_id, records in served.items():
        if repo_id.lower() != hub_id.lower():
            continue
        running = [record for record in records if record.get("application_state") == "RUNNING"]
        if running:
            return running[0]
        states = ", ".join(sorted({str(record.get("application_state")) for record in records}))
        raise RemoteNotAvailableError(
            f"model not served: NDIF at {host} has {hub_id!r} but not running (state {states}); try again later "
            "or run locally (remote=False)."
        )
    listing = ", ".join(sorted(served)) or "none"
    raise RemoteNotAvailableError(
        f"model not served: NDIF at {host} does not run {hub_id!r}. Running now: {listing}. Which models NDIF "
        "hosts changes; see https://nnsight.net/status, or run locally (remote=False)."
    )


def _api_key() -> str:
    key = os.environ.get(NDIF_API_KEY_VARIABLE, "").strip()
    if not key:
        raise MissingAPIKeyError(
            f"remote execution needs an NDIF API key in the environment variable {NDIF_API_KEY_VARIABLE}; "
            "get one at https://login.ndif.us and export it (keys are never taken as arguments)"
        )
    return key


def _configure_nnsight() -> None:
    """Hand the key (and `$NDIF_HOST`) to nnsight in memory, for this process only."""
    from nnsight import CONFIG

    # In memory only: CONFIG.set_default_api_key would also write the key into nnsight's config file.
    CONFIG.API.APIKEY = _api_key()
    if os.environ.get("NDIF_HOST"):
        CONFIG.API.HOST = os.environ["NDIF_HOST"]


def _remote_model(name: str, *, status_timeout: float = NDIF_STATUS_TIMEOUT_SECONDS, **kwargs: Any) -> RemoteModel:
    """The model `name` (a preset or hub id) served by NDIF, built on the meta device, for traces that run there."""
    from cla_lib.presets import resolve_preset

    _api_key()  # the missing key is the first thing to say, before any network
    preset = resolve_preset(name)
    if preset is not None:
        hub_id = preset.hub_id
    elif is_organism_name(name) or Path(name).expanduser().exists():
        raise ModelNotFoundError(
            f"{name!r} is a local model: NDIF runs only models it hosts, named by preset or hub id. Run it locally "
            "(remote=False), or remotely through the serialization round trip (remote='local')."
        )
    elif HUB_ID_PATTERN.match(name):
        hub_id = name
    else:
        raise ModelNotFoundError(
            f"cannot run {name!r} on NDIF: name a preset ({', '.join(_preset_names())}) or a hub id 'owner/name'"
        )
    check_served(hub_id, timeout=status_timeout)
    _configure_nnsight()
    return remote_skeleton(hub_id, **kwargs)


def remote_skeleton(source: str, *, remote: bool | str = True, **kwargs: Any) -> RemoteModel:
    """A `RemoteModel` of `source` (a hub id, or a local directory for tests) built on the meta device: the module
    tree and tokenizer without weights. Only `config.json` and the tokenizer files are read.

    Raises:
        RemoteNotAvailableError: The config or tokenizer cannot be read (offline, or a gated model without
            access).
    """
    from transformers import AutoTokenizer

    tokenizer_keywords = {key: value for key, value in kwargs.items() if key in TOKENIZER_LOAD_KEYWORDS}
    try:
        # The tokenizer is loaded here and handed over: the meta pipeline cannot infer one for a prebuilt model.
        tokenizer = AutoTokenizer.from_pretrained(source, **tokenizer_keywords)
        model = RemoteModel(source, remote=remote, task=REMOTE_TASK, tokenizer=tokenizer, **kwargs)
    except OSError as error:
        raise RemoteNotAvailableError(
            f"cannot build {source!r} for NDIF: its config and tokenizer (no weights) must be read from the hugging "
            f"face hub first, and that failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            "Check the network and, for a gated model, that you accepted its licence and set HF_TOKEN."
        ) from None
    if model.tokenizer is not None and model.tokenizer.pad_token is None:
        model.tokenizer.pad_token = model.tokenizer.eos_token
    return model


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
