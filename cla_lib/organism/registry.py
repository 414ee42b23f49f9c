"""From an organism's reference to its directory, training it (and its base) first if it is not cached."""

from __future__ import annotations

from pathlib import Path

from cla_lib.model.reference import ModelRef, UnknownOrganismError
from cla_lib.organism.aligned import aligned_organism
from cla_lib.organism.base import base_organism, config_for


def organism_path(model: str | ModelRef = "organism", *, size: str | None = None, train_if_missing: bool = True,
                  progress: bool = True) -> Path:
    """The Hugging Face directory of an organism, training it (and its base) first if it is not cached.

    Args:
        model: ``organism[:method][@seed]`` or its `ModelRef`.
        size: the organism's size (default: the reference's, else ``$CLA_ORGANISM_SIZE``, else ``default``).

    Raises:
        UnknownOrganismError: not an organism, or an unknown size or method (the message lists them).
    """
    reference = ModelRef.parse(model, size=size) if isinstance(model, ModelRef) else ModelRef.organism(model, size=size)
    if not reference.is_organism:
        raise UnknownOrganismError(f"{reference.name!r} is not an organism name (organism[:method][@seed])")
    config = config_for(reference.size, reference.seed)
    if reference.method == "base":
        return base_organism(config, train_if_missing=train_if_missing, progress=progress)
    return aligned_organism(reference.method, config, train_if_missing=train_if_missing, progress=progress)
