"""Model names: what a `model` parameter may say, and how to tell the forms apart.

A model is named by the embedded organism (``organism[:method][@seed]``), a preset (`cla_lib.model.presets`), a hub
id (``owner/name``) or a local Hugging Face directory.
"""

from __future__ import annotations

import re


# A hub id is `owner/name`: one slash, names of letters, digits, `-`, `_` and `.`, not starting with a dot.
HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class ModelNotFoundError(ValueError):
    """A model name that is neither the organism, an existing local directory, nor a fetchable hub id."""


def is_organism_name(name: str) -> bool:
    """Whether `name` names the embedded model organism (`"organism"` or `"organism:<variant>"`)."""
    return name == "organism" or name.startswith("organism:")


class UnknownOrganismError(ValueError):
    """A model organism name, method or size that does not exist."""


def parse_name(name: str) -> tuple[str, int]:
    """'organism:clo@2' -> ('clo', 2); 'organism' -> ('base', 0)."""
    if not (name == "organism" or name.startswith(("organism:", "organism@"))):
        raise UnknownOrganismError(f"{name!r} is not an organism name (organism[:method][@seed])")
    rest = name[len("organism"):]
    seed = 0
    if "@" in rest:
        rest, seed_text = rest.split("@", 1)
        if not seed_text.isdigit():
            raise UnknownOrganismError(f"organism seed must be a number, not {seed_text!r}")
        seed = int(seed_text)
    method = rest.lstrip(":") or "base"
    return method, seed
