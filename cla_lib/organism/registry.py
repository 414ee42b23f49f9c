"""From an organism's name to its directory, training it (and its base) first if it is not cached."""

from __future__ import annotations

from pathlib import Path

from cla_lib.model.reference import parse_name
from cla_lib.organism.aligned import aligned_organism
from cla_lib.organism.base import base_organism, config_for


def organism_path(name: str = "organism", *, size: str | None = None, train_if_missing: bool = True,
                  progress: bool = True) -> Path:
    """The Hugging Face directory of a named organism, training it (and its base) first if it is not cached."""
    method, seed = parse_name(name)
    config = config_for(size, seed)
    if method == "base":
        return base_organism(config, train_if_missing=train_if_missing, progress=progress)
    return aligned_organism(method, config, train_if_missing=train_if_missing, progress=progress)
