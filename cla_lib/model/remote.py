"""Remote execution on NDIF: a model built without weights whose traces run there, and the checks before it.

`load_model(name, remote=True)` returns a `RemoteModel`: the model's structure built on the meta device from its
config (no weights are downloaded), on which every `trace`, `generate` and `session` runs on NDIF unless told
otherwise, so the chapters and the library run remotely unchanged. `check_served` (NDIF serves the model) and
`check_compatible` (this machine's nnsight is the server's) run first, with short timeouts, so that an offline
machine, an unserved model or a wrong nnsight fails in seconds with a message, never a hang.

The API key comes from `NDIF_API_KEY`, else from nnsight's stored configuration (`nnsight login`), and is handed to
nnsight in memory: never an argument, never printed, never written by this library. `remote="local"` runs every
trace through nnsight's serialization round trip in-process, which is how the remote code path is tested offline.
Design notes: docs/design-notes.md.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import nnsight
import torch
import transformers
from huggingface_hub import constants, try_to_load_from_cache
from nnsight import CONFIG, TransformersModel
from transformers import AutoTokenizer


NDIF_API_KEY_VARIABLE = "NDIF_API_KEY"

# Where a model's traces run: False here, True on NDIF, "local" through NDIF's serialization round trip run here
# (how the remote path is tested offline). Every `remote` argument of the library is one of these.
Remote = bool | Literal["local"]
REMOTE_VALUES = "False, True (NDIF) or 'local' (NDIF's serialization round trip, run here)"


def is_remote(value: Any) -> bool:
    """Whether `value` is a `Remote` (True and False themselves: 1 and 0 are not)."""
    return value is True or value is False or value == "local"


def check_remote(value: Any) -> Remote:
    """`value` when it is a `Remote`, else a ValueError naming the values that are."""
    if not is_remote(value):
        raise ValueError(f"remote must be {REMOTE_VALUES}, not {value!r}")
    return value


# from_pretrained keywords that also concern the tokenizer; any other keyword is for the model only.
TOKENIZER_LOAD_KEYWORDS = ("revision", "local_files_only", "trust_remote_code", "cache_dir", "subfolder")


# What an error that can come from the CLI or from Python says to do instead of NDIF, in both words.
RUN_LOCALLY = "run locally (remote=False; on the command line, without --remote)"

class MissingAPIKeyError(RuntimeError):
    """Remote execution was asked for but no NDIF API key is in the environment or nnsight's configuration."""


class RemoteNotAvailableError(RuntimeError):
    """NDIF cannot run the model now: the service is unreachable, it does not serve the model, or the model's
    structure cannot be built here (its config is not readable from the hub)."""


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

    def __init__(self, *args: Any, remote: Remote = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._default_remote = remote
        self._remote_depth = 0

    def _resolve_remote(self, remote: Remote | None) -> Remote:
        if remote is not None:
            return remote
        return self._default_remote if self._remote_depth == 0 else False

    def trace(self, *inputs: Any, remote: Remote | None = None, **kwargs: Any):
        return super().trace(*inputs, remote=self._resolve_remote(remote), **kwargs)

    def session(self, *args: Any, remote: Remote | None = None, **kwargs: Any):
        return super().session(*args, remote=self._resolve_remote(remote), **kwargs)

    def _remote_backend(self, remote, blocking, job_id, verbose):
        register_library()
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


def register_library() -> None:
    """Ship this library's code by value with remote requests: the NDIF server (and the local simulation's
    deserializer) has nnsight, not cla_lib. The package is looked up by name, not held in a global: this module's
    functions travel by value, and a global module object would drag the whole package into every pickle."""
    nnsight.register(importlib.import_module("cla_lib"))


def remote_session(lm: TransformersModel, step: Callable, calls: Sequence[dict], *, remote: Remote,
                   **shared: Any) -> list:
    """`[step(model, **call, **shared) for call in calls]`, all inside one `model.session`: one request on NDIF.

    `step` is a module-level function and the model is named in the session's body itself, so that nnsight sends
    the model as a reference to the served one rather than pickling it. Everything `step` touches is built before
    the session (token tensors, edit lists) and everything it returns is saved in it; this is the one place a remote
    session is opened.
    """
    register_library()
    with lm.session(remote=remote):
        results = nnsight.save([])
        for call in calls:
            results.append(step(lm, **call, **shared))
    return list(results)


class _CountingBackend:
    """Runs a remote backend with the model marked as busy, so traces inside a remote session stay in it."""

    def __init__(self, backend: Any, lm: RemoteModel) -> None:
        self.backend = backend
        self.model = lm

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
            f"{hub_id!r}. Check the network (and $NDIF_HOST), or {RUN_LOCALLY} on a GPU."
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
            f"or {RUN_LOCALLY}."
        )
    listing = ", ".join(sorted(served)) or "none"
    raise RemoteNotAvailableError(
        f"model not served: NDIF at {host} does not run {hub_id!r}. Running now: {listing}. Which models NDIF "
        f"hosts changes; see https://nnsight.net/status, or {RUN_LOCALLY}."
    )


def known_key() -> str:
    """The NDIF key this process would use ("" for none): `$NDIF_API_KEY`, else the one `nnsight login` stored in
    nnsight's configuration."""
    return os.environ.get(NDIF_API_KEY_VARIABLE, "").strip() or (CONFIG.API.APIKEY or "").strip()


def read_api_key() -> str:
    key = known_key()
    if not key:
        raise MissingAPIKeyError(
            f"remote execution needs an NDIF API key: export it as {NDIF_API_KEY_VARIABLE}, or store it once with "
            "`nnsight login`; get one at https://login.ndif.us (keys are never taken as arguments)"
        )
    return key


def check_compatible(*, host: str | None = None, timeout: float = NDIF_STATUS_TIMEOUT_SECONDS) -> dict:
    """Check that this machine's nnsight is the version NDIF runs; return the server's environment.

    Reads NDIF's `/env` page (the one `nnsight.compare()` reads: the server's Python and package versions). A
    different nnsight is refused: requests are nnsight's serialized traces, which another version may not read.
    A different Python, torch or transformers is only reported (to stderr): traces usually survive it.

    Raises:
        RemoteNotAvailableError: NDIF does not answer, or runs another nnsight (the message says which to install).
    """
    import httpx

    host = (host or ndif_host()).rstrip("/")
    try:
        response = httpx.get(f"{host}/env", timeout=httpx.Timeout(timeout))
        response.raise_for_status()
        environment = response.json()
        packages = environment.get("packages", {})
    except (httpx.HTTPError, ValueError, AttributeError) as error:
        raise RemoteNotAvailableError(
            f"cannot read NDIF's versions at {host}/env ({type(error).__name__}: {error}); {RUN_LOCALLY}, or try "
            "again later."
        ) from None
    local = {"nnsight": nnsight.__version__, "python": sys.version.split()[0]}
    remote = {"nnsight": packages.get("nnsight"), "python": str(environment.get("python_version", "")).split(" ")[0]}
    if remote["nnsight"] and remote["nnsight"] != local["nnsight"]:
        raise RemoteNotAvailableError(
            f"NDIF at {host} runs nnsight {remote['nnsight']}, this machine has {local['nnsight']}: remote traces need "
            f"the same version (pip install nnsight=={remote['nnsight']}), or {RUN_LOCALLY}."
        )

    local.update(torch=torch.__version__.split("+")[0], transformers=transformers.__version__)
    remote.update(torch=str(packages.get("torch", "")).split("+")[0], transformers=packages.get("transformers"))
    differing = [f"{name} {local[name]} here, {remote[name]} there"
                 for name in ("python", "torch", "transformers") if remote[name] and remote[name] != local[name]]
    if differing:
        print(f"cla: note: NDIF's versions differ ({'; '.join(differing)}); traces usually run, results may differ "
              "in the last digits", file=sys.stderr)
    return environment


def configure_nnsight() -> None:
    """Hand the key (and `$NDIF_HOST`) to nnsight in memory, for this process only (a stored key is there already)."""
    # In memory only: CONFIG.set_default_api_key would also write the key into nnsight's config file.
    CONFIG.API.APIKEY = read_api_key()
    if os.environ.get("NDIF_HOST"):
        CONFIG.API.HOST = os.environ["NDIF_HOST"]


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host answers a TCP connection (HF_HUB_OFFLINE=1: never asked)."""
    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or (443 if endpoint.scheme == "https" else 80)),
                                 timeout).close()
    except OSError:
        return False
    return True


def in_hub_cache(repo_id: str) -> bool:
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repository id
        return False


def offline_keywords(source: str, keywords: dict, refusal: Exception | None) -> dict:
    """`keywords` for loading `source` (a hub id or a directory) where the hub may be unreachable: unchanged when
    `source` is a directory, `local_files_only` is set or the hub answers; offline, with ``local_files_only=True``
    when the hub cache holds `source` (transformers would retry for over a minute before failing); else `refusal` is
    raised (None: the caller does without the files, as an estimate of a preset does)."""
    if Path(source).is_dir() or keywords.get("local_files_only") or hub_reachable():
        return keywords
    if refusal is not None and not in_hub_cache(source):
        raise refusal
    return {**keywords, "local_files_only": True}


def remote_skeleton(source: str, *, remote: Remote = True, **kwargs: Any) -> RemoteModel:
    """A `RemoteModel` of `source` (a hub id, or a local directory for tests) built on the meta device: the module
    tree and tokenizer without weights. Only `config.json` and the tokenizer files are read.

    Raises:
        RemoteNotAvailableError: The config or tokenizer cannot be read (offline, or a gated model without
            access).
    """
    kwargs = offline_keywords(source, kwargs, RemoteNotAvailableError(
        f"cannot build {source!r} for NDIF: its config and tokenizer (no weights) must be read from the Hugging Face "
        "hub first, and the hub cannot be reached from this machine. Check the network."))
    tokenizer_keywords = {key: value for key, value in kwargs.items() if key in TOKENIZER_LOAD_KEYWORDS}
    try:
        # The tokenizer is loaded here and handed over: the meta pipeline cannot infer one for a prebuilt model.
        tokenizer = AutoTokenizer.from_pretrained(source, **tokenizer_keywords)
        lm = RemoteModel(source, remote=remote, task=REMOTE_TASK, tokenizer=tokenizer, **kwargs)
    except OSError as error:
        raise RemoteNotAvailableError(
            f"cannot build {source!r} for NDIF: its config and tokenizer (no weights) must be read from the hugging "
            f"face hub first, and that failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            "Check the network and, for a gated model, that you accepted its licence and set HF_TOKEN."
        ) from None
    if lm.tokenizer is not None and lm.tokenizer.pad_token is None:
        lm.tokenizer.pad_token = lm.tokenizer.eos_token
    return lm
