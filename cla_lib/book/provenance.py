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
from cla_lib.model.reference import ModelRef, known_reference
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


def model_key(reference: str | Path | ModelRef) -> str:
    """An organism directory's cache key (its folder name, e.g. ``base-1a2b3c4d5e6f``); any other model's name."""
    return Path(str(reference)).name if is_organism_directory(str(reference)) else str(reference)


def model_revision(reference: str | Path | ModelRef) -> str | None:
    """Which weights a real model name stood for: a preset's pinned hub commit (or ``unpinned``), a hub snapshot's
    commit, a local directory's fingerprint (its files' names and sizes), LoRA adapters with their base's; None for
    an organism (its key says it all) or a name nothing loads."""
    parsed = known_reference(reference)
    if parsed is None or parsed.is_organism or is_organism_directory(str(reference)):
        return None
    if parsed.kind == "gguf" or (parsed.preset is not None and parsed.preset.package):
        checkpoint = parsed.gguf_path
        shipped = f" from {parsed.preset.package}" if parsed.preset is not None else ""
        return f"GGUF file {checkpoint.name}{shipped}, sha256 {gguf.digest(checkpoint)}"
    if parsed.preset is not None:
        return f"{parsed.hub_id}@{parsed.preset.revision or 'unpinned (the hub main when loaded)'}"
    if parsed.kind == "hub":
        return f"{parsed.hub_id} (unpinned: the hub's main when loaded)"
    path = Path(parsed.path)
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
    for name in models:
        if is_organism_directory(name) and (Path(name) / "model.safetensors").exists():
            found[model_key(name)] = sha256(Path(name) / "model.safetensors")
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
        "models": list(dict.fromkeys(model_key(reference) for reference in models)),
    }
    if weights(models):
        record["weights"] = weights(models)
    revisions = {model_key(reference): model_revision(reference) for reference in models}
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
             "- **models** " + (", ".join(f"`{key}`" for key in record["models"]) or "none")
             + f", loaded on {record['placement']['device']} in {record['placement']['dtype']}"]
    if "machine" in record:  # records written before it was kept lack it
        found = record["machine"]
        lines.append(f"- **machine** {found['cpu']} ({found['instruction_set']}), {found['torch_threads']} torch "
                     f"thread(s), MKL {found['mkl']}, oneDNN {found['onednn']}"
                     + "".join(f", {name}={value}" for name, value in found.get("numerics", {}).items()))
    lines += [f"- **weights of** `{key}`: sha256 `{digest[:16]}…`" for key, digest in record.get("weights", {}).items()]
    lines += [f"- **revision of** `{key}`: {revision}" for key, revision in record.get("revisions", {}).items()]
    lines += [f"- **data** `{name}`: {revision}" for name, revision in record.get("data", {}).items()]
    if record.get("parameters"):
        lines.append("- **parameters** " + ", ".join(f"`{name}={value!r}`"
                                                      for name, value in record["parameters"].items()))
    return "\n".join(lines)


def footer_html(record: dict) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in record["versions"].items())
    return html.escape(f"Built {record['built']} from commit {record['commit']} with {packages}.")
