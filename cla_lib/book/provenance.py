"""What a page or a results file was made from: the commit, the build date, the package versions, the models (with
their revisions), the data (with theirs), and where the models ran (device, dtype).

A reader who downloads a chapter's numbers, or looks at a page a year from now, must be able to tell which code and
which organisms produced them. The same record goes into every chapter's results folder (`provenance.json`), into a
short section at the end of every chapter, and (`cla_lib.book.sphinx_ext`) into the footer of every page of the book. Nothing from the environment is recorded beyond package
versions, the commit, the machine (CPU, threads, math libraries, the numerics pins), the organisms' weight hashes
and the device and dtype models load with: no other variables (keys live there).
"""

from __future__ import annotations

import datetime
import html
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Iterable

import hashlib

from cla_lib.alignment.lora import adapter_base, is_adapter_directory
from cla_lib.data import data_revision
from cla_lib.core.files import sha256
from cla_lib.model import gguf
from cla_lib.plane.loading import default_placement
from cla_lib.core.performance import machine
from cla_lib.model.reference import known_reference
from cla_lib.organism import is_organism_directory

PACKAGES = ("cla-lib", "torch", "nnsight", "transformers", "gguf", "peft", "accelerate", "datasets", "papermill",
            "jupyter-book", "myst-nb")
DATA_PARAMETERS = ("transfer_data", "localization_data")
REPOSITORY = Path(__file__).resolve().parents[2]


def _git(*arguments: str) -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(REPOSITORY), *arguments], capture_output=True, text=True,
                                timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def commit() -> str:
    """The checkout's commit (``+ uncommitted changes`` when the tree differs from it), or ``unknown`` outside git."""
    head = _git("rev-parse", "--short=12", "HEAD")
    if not head:
        return "unknown (not a git checkout)"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{head} + uncommitted changes" if dirty else head


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def model_key(model: str | Path) -> str:
    """An organism directory's cache key (its folder name, e.g. ``base-1a2b3c4d5e6f``); any other model's name."""
    return Path(model).name if is_organism_directory(model) else str(model)


def model_revision(model: str | Path) -> str | None:
    """Which weights a real model name stood for: a preset's pinned hub commit (or ``unpinned``), a hub snapshot's
    commit, a local directory's fingerprint (its files' names and sizes), LoRA adapters with their base's; None for
    an organism (its key says it all) or a name nothing loads."""
    reference = known_reference(model)
    if reference is None or reference.is_organism or is_organism_directory(model):
        return None
    if reference.kind == "gguf" or (reference.preset is not None and reference.preset.package):
        checkpoint = reference.gguf_path
        shipped = f" from {reference.preset.package}" if reference.preset is not None else ""
        return f"GGUF file {checkpoint.name}{shipped}, sha256 {gguf.digest(checkpoint)}"
    if reference.preset is not None:
        return f"{reference.hub_id}@{reference.preset.revision or 'unpinned (the hub main when loaded)'}"
    if reference.kind == "hub":
        return f"{reference.hub_id} (unpinned: the hub's main when loaded)"
    path = Path(reference.path)
    if is_adapter_directory(path):
        return f"LoRA adapters {_fingerprint(path)} on {model_revision(adapter_base(path)) or adapter_base(path)}"
    if "snapshots" in path.resolve().parts:  # a Hugging Face cache snapshot: the folder is the commit
        return f"hub commit {path.resolve().name}"
    return f"local directory {_fingerprint(path)}"


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.is_file() and file.name != "training.json":
            digest.update(f"{file.name}:{file.stat().st_size};".encode())
    return f"files:{digest.hexdigest()[:12]}"


def weights(models: Iterable[str | Path]) -> dict[str, str]:
    """Each organism's key -> the sha256 of its weights (what the key's configuration trained on this machine)."""
    found = {}
    for model in models:
        if is_organism_directory(model) and (Path(model) / "model.safetensors").exists():
            found[model_key(model)] = sha256(Path(model) / "model.safetensors")
    return found


def provenance(models: Iterable[str | Path] = (), parameters: dict | None = None) -> dict:
    """The record: commit, UTC build date, package versions, where models load (device, dtype), the models' keys
    and real models' revisions, the data's revisions, and (optionally) the parameters (the seed among them)."""
    models = list(models)
    record = {
        "commit": commit(),
        "built": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": versions(),
        "placement": default_placement(),
        "machine": machine(),
        "models": list(dict.fromkeys(model_key(model) for model in models)),
    }
    if weights(models):
        record["weights"] = weights(models)
    revisions = {model_key(model): model_revision(model) for model in models}
    revisions = {name: revision for name, revision in revisions.items() if revision}
    if revisions:
        record["revisions"] = revisions
    data = {name: data_revision(parameters[name]) for name in DATA_PARAMETERS if (parameters or {}).get(name)}
    if data:
        record["data"] = data
    if parameters is not None:
        record["parameters"] = parameters
    return record


def markdown(record: dict) -> str:
    """The record as a few Markdown lines, for the end of a chapter."""
    packages = ", ".join(f"{name} {version}" for name, version in record["versions"].items())
    lines = [f"- **commit** `{record['commit']}`, built {record['built']}",
             f"- **packages** {packages}",
             "- **models** " + (", ".join(f"`{model}`" for model in record["models"]) or "none")
             + f", loaded on {record['placement']['device']} in {record['placement']['dtype']}"]
    if "machine" in record:  # records written before it was kept lack it
        found = record["machine"]
        lines.append(f"- **machine** {found['cpu']} ({found['instruction_set']}), {found['torch_threads']} torch "
                     f"thread(s), MKL {found['mkl']}, oneDNN {found['onednn']}"
                     + "".join(f", {name}={value}" for name, value in found.get("numerics", {}).items()))
    lines += [f"- **weights of** `{model}`: sha256 `{digest[:16]}…`" for model, digest in record.get("weights", {}).items()]
    lines += [f"- **revision of** `{model}`: {revision}" for model, revision in record.get("revisions", {}).items()]
    lines += [f"- **data** `{name}`: {revision}" for name, revision in record.get("data", {}).items()]
    if record.get("parameters"):
        lines.append("- **parameters** " + ", ".join(f"`{name}={value!r}`"
                                                      for name, value in record["parameters"].items()))
    return "\n".join(lines)


def footer_html(record: dict) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in record["versions"].items())
    return html.escape(f"Built {record['built']} from commit {record['commit']} with {packages}.")
