"""What a page or a results file was made from: the commit, the build date, the package versions, the models.

A reader who downloads a chapter's numbers, or looks at a page a year from now, must be able to tell which code and
which organisms produced them. The same record goes into every chapter's results folder (`provenance.json`), into a
short section at the end of every chapter, and (`cla_lib.sphinx_ext`) into the footer of every page of the book. Nothing from the environment is recorded beyond package
versions and the commit: no paths outside the repository, no variables (keys live there).
"""

from __future__ import annotations

import datetime
import html
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Iterable

from cla_lib.organism import is_organism_directory

PACKAGES = ("cla-lib", "torch", "nnsight", "transformers", "jupyter-book", "myst-nb")
REPOSITORY = Path(__file__).resolve().parents[1]


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


def provenance(models: Iterable[str | Path] = (), parameters: dict | None = None) -> dict:
    """The record: commit, UTC build date, package versions, the models' keys and (optionally) the parameters."""
    record = {
        "commit": commit(),
        "built": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": versions(),
        "models": list(dict.fromkeys(model_key(model) for model in models)),
    }
    if parameters is not None:
        record["parameters"] = parameters
    return record


def markdown(record: dict) -> str:
    """The record as a few Markdown lines, for the end of a chapter."""
    packages = ", ".join(f"{name} {version}" for name, version in record["versions"].items())
    lines = [f"- **commit** `{record['commit']}`, built {record['built']}",
             f"- **packages** {packages}",
             "- **models** " + (", ".join(f"`{model}`" for model in record["models"]) or "none")]
    if record.get("parameters"):
        lines.append("- **parameters** " + ", ".join(f"`{name}={value!r}`"
                                                      for name, value in record["parameters"].items()))
    return "\n".join(lines)


def footer_html(record: dict) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in record["versions"].items())
    return html.escape(f"Built {record['built']} from commit {record['commit']} with {packages}.")
