"""Model references: what a `model` parameter may say, parsed once into a value that is passed down.

A model is named by the embedded organism (``organism[:method][@seed]``, at a size), a preset
(`cla_lib.model.presets`), a hub id (``owner/name``), a local Hugging Face directory or a GGUF file (or a folder
holding one, `cla_lib.model.gguf`). Every entry point (the CLI, `load_model`, `plane_items`, a rerun, a comparison)
calls `ModelRef.parse` once; nothing below it looks at the name's text again. `ModelRef.parse` accepts a `ModelRef` too, so a function can take either.

    >>> ModelRef.parse("organism:clo@2")
    ModelRef(kind='organism', name='organism:clo@2', method='clo', seed=2, ...)
    >>> ModelRef.parse("gemma-3-12b-it").hub_id
    'google/gemma-3-12b-it'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from cla_lib.model import gguf
from cla_lib.model.presets import PRESETS, ModelPreset, resolve_preset

# A hub id is `owner/name`: one slash, names of letters, digits, `-`, `_` and `.`, not starting with a dot.
HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*$")
ORGANISM = "organism"
BASE_METHOD = "base"


class ModelNotFoundError(ValueError):
    """A model name that is neither the organism, an existing local directory, a preset nor a hub id, or a hub id
    that could not be fetched."""


class UnknownOrganismError(ValueError):
    """A model organism name, method or size that does not exist."""


@dataclass(frozen=True)
class ModelRef:
    """One model, named: its kind and the fields that kind needs.

    Attributes:
        kind: ``"organism"``, ``"directory"``, ``"gguf"``, ``"preset"`` or ``"hub"``.
        name: the text it was parsed from (what results and runs are labelled with).
        method, seed, size: the organism's alignment method (``"base"`` for none), seed and size (None: the
            environment's ``CLA_ORGANISM_SIZE``, else ``default``).
        hub_id: where the weights live on the Hugging Face hub (presets and hub ids).
        path: the local directory, or the GGUF file.
        preset: the preset's row, for a preset (or a hub id that is one).
    """

    kind: str
    name: str
    method: str = BASE_METHOD
    seed: int = 0
    size: str | None = None
    hub_id: str | None = None
    path: Path | None = None
    preset: ModelPreset | None = None

    @classmethod
    def parse(cls, reference: str | Path | ModelRef, *, size: str | None = None) -> ModelRef:
        """The reference `model` names; `size` sets an organism's size (kept from a `ModelRef` when None).

        Raises:
            UnknownOrganismError: an organism name with a malformed method or seed.
            ModelNotFoundError: the name is none of the accepted forms (the message lists them).
        """
        if isinstance(reference, ModelRef):
            return reference if size is None or not reference.is_organism else replace(reference, size=size)
        text = str(reference)
        if _looks_like_organism(text) and not Path(text).expanduser().exists():
            return cls.organism(text, size=size)
        try:
            checkpoint = gguf.gguf_file(text)
        except ValueError as error:
            raise ModelNotFoundError(str(error)) from None
        if checkpoint is not None:
            return cls("gguf", text, path=checkpoint)
        if Path(text).expanduser().is_dir():
            return cls("directory", text, path=Path(text).expanduser())
        preset = resolve_preset(text)
        if preset is not None:
            return cls("preset", text, hub_id=preset.hub_id, preset=preset)
        if HUB_ID_PATTERN.match(text):
            return cls("hub", text, hub_id=text)
        raise ModelNotFoundError(
            f"cannot load a model from {text!r}: it is not an existing directory, a hub id, a preset, or the "
            "organism. Accepted: 'organism[:method][@seed]' (the embedded model organism), a local "
            "directory in Hugging Face format (config.json, weights, tokenizer), a GGUF file, a hub id "
            "'owner/name', or a preset (" + ", ".join(PRESETS) + ")."
        )

    @classmethod
    def organism(cls, text: str, *, size: str | None = None) -> ModelRef:
        """An organism's reference from ``organism[:method][@seed]``.

        Raises:
            UnknownOrganismError: `text` is not of that form.
        """
        if not _looks_like_organism(text):
            raise UnknownOrganismError(f"{text!r} is not an organism name (organism[:method][@seed])")
        rest = text[len(ORGANISM):]
        seed = 0
        if "@" in rest:
            rest, seed_text = rest.split("@", 1)
            if not seed_text.isdigit():
                raise UnknownOrganismError(f"organism seed must be a number, not {seed_text!r}")
            seed = int(seed_text)
        return cls(ORGANISM, text, method=rest.lstrip(":") or BASE_METHOD, seed=seed, size=size)

    @classmethod
    def of_organism(cls, method: str = BASE_METHOD, seed: int = 0, *, size: str | None = None) -> ModelRef:
        """The organism of `method` (``base`` or an alignment method) and `seed`, named as `organism` parses it:
        ``organism@1``, ``organism:clo@1``."""
        method_part = "" if method == BASE_METHOD else f":{method}"
        return cls.organism(f"{ORGANISM}{method_part}@{seed}", size=size)

    @property
    def is_organism(self) -> bool:
        return self.kind == ORGANISM

    @property
    def is_local(self) -> bool:
        """Whether only this machine has the weights (NDIF runs only models it hosts)."""
        return self.kind in (ORGANISM, "directory", "gguf")

    @property
    def layers(self) -> int | None:
        """The decoder layers, when known without loading: a preset's, or a directory's `config.json`'s (an
        organism's come from its size, `cla_lib.organism.config_for`)."""
        if self.preset is not None:
            return self.preset.n_layers
        if self.kind == "gguf":  # known once converted (its first load)
            return ModelRef.parse(self.source).layers if self.checkpoint_converted else None
        config_path = self.path / "config.json" if self.path is not None else None
        adapter_path = self.path / "adapter_config.json" if self.path is not None else None
        if config_path is not None and not config_path.exists() and adapter_path.exists():
            # LoRA adapters: the depth is their base model's
            base = json.loads(adapter_path.read_text()).get("base_model_name_or_path")
            reference = known_reference(base) if base else None
            return reference.layers if reference is not None and not reference.is_organism else None
        if config_path is not None and config_path.exists():
            config = json.loads(config_path.read_text())
            config = config.get("text_config", config)
            if "num_hidden_layers" in config:
                return int(config["num_hidden_layers"])
        return None

    @property
    def gguf_path(self) -> Path | None:
        """The GGUF file the weights come from (a GGUF file named, or a preset shipped in a pip package), else None.

        Raises:
            ModelNotFoundError: a preset whose package is not installed (the message says how to install it).
        """
        if self.kind == "gguf":
            return self.path
        if self.preset is not None and self.preset.packaged_gguf:
            module, file_name = self.preset.packaged_gguf.split("/", 1)
            try:
                return gguf.packaged_file(self.preset.package, module, file_name)
            except FileNotFoundError as error:
                raise ModelNotFoundError(f"cannot load {self.name}: {error}") from None
        return None

    @property
    def checkpoint_converted(self) -> bool:
        """Whether a GGUF model's conversion is already cached (what its `source` would otherwise make first)."""
        path = self.gguf_path
        return path is None or gguf.is_converted(path)

    @property
    def source(self) -> str | None:
        """What `from_pretrained` reads: the directory; a GGUF model's converted directory (converted on first use,
        `cla_lib.model.gguf`); else the hub id (None for an organism: see its registry)."""
        checkpoint = self.gguf_path
        if checkpoint is not None:
            return str(gguf.converted(checkpoint))
        return str(self.path) if self.path is not None else self.hub_id

    @property
    def base_name(self) -> str | None:
        """What LoRA adapters trained on this model record as their base, so that they load again anywhere this
        library does: a local directory's or file's absolute path, a packaged preset's name; None where the loaded
        model's own name (a hub id) already does."""
        if self.path is not None:
            return str(self.path.resolve())
        if self.preset is not None and self.preset.package:
            return self.preset.name
        return None

    def __str__(self) -> str:
        return self.name


def known_reference(reference: str | Path | ModelRef, *, size: str | None = None) -> ModelRef | None:
    """`ModelRef.parse(model)`, or None for a name no loader knows: such a name still labels a real model where
    nothing is loaded (its items, a cost estimate, a runs folder)."""
    try:
        return ModelRef.parse(reference, size=size)
    except ModelNotFoundError:
        return None


def _looks_like_organism(text: str) -> bool:
    return text == ORGANISM or text.startswith((f"{ORGANISM}:", f"{ORGANISM}@"))


def parse_name(name: str) -> tuple[str, int]:
    """'organism:clo@2' -> ('clo', 2); 'organism' -> ('base', 0)."""
    reference = ModelRef.organism(name)
    return reference.method, reference.seed
