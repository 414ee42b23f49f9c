"""The steering vector as a value: `layer -> [hidden]` plus where it came from, with arithmetic and files."""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cla_lib.core.files import atomic_file


@dataclass(frozen=True, eq=False)
class SteeringVector:
    """A direction per layer, `layer -> [hidden]` float tensor, plus `source`: what it was made from.

    Arithmetic works layer by layer over the union of layers (a layer missing on one side counts as zero), so
    experiments read like the paper: `v_loc - v_en`, `-v`, `0.5 * (a + b)`.

    Example:
        >>> v = extract_vectors(model, items, kinds=["en"], languages=["ko"])["en.ko"]
        >>> v[3].shape, v.cosine(w)[3]
    """

    vectors: dict[int, torch.Tensor]
    source: dict = field(default_factory=dict)

    def __post_init__(self):
        sizes = {tuple(tensor.shape) for tensor in self.vectors.values()}
        if any(len(size) != 1 for size in sizes) or len(sizes) > 1:
            raise ValueError(f"a steering vector holds one [hidden] tensor per layer, not shapes {sorted(sizes)}")

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted(self.vectors))

    @property
    def hidden_size(self) -> int:
        return next(iter(self.vectors.values())).shape[0]

    def __getitem__(self, layer: int) -> torch.Tensor:
        if layer not in self.vectors:
            raise KeyError(f"no layer {layer} in this steering vector (layers {list(self.layers)})")
        return self.vectors[layer]

    def __contains__(self, layer: int) -> bool:
        return layer in self.vectors

    def __add__(self, other: "SteeringVector") -> "SteeringVector":
        if not isinstance(other, SteeringVector):
            return NotImplemented
        vectors = {}
        for layer in sorted(set(self.vectors) | set(other.vectors)):
            if layer in self.vectors and layer in other.vectors:
                vectors[layer] = self.vectors[layer] + other.vectors[layer].to(self.vectors[layer])
            else:
                vectors[layer] = (self.vectors.get(layer, other.vectors.get(layer))).clone()
        return SteeringVector(vectors, {"kind": "sum", "of": [self.source, other.source]})

    def __neg__(self) -> "SteeringVector":
        return self * -1.0

    def __sub__(self, other: "SteeringVector") -> "SteeringVector":
        if not isinstance(other, SteeringVector):
            return NotImplemented
        result = self + (-other)
        return SteeringVector(result.vectors, {"kind": "difference", "of": [self.source, other.source]})

    def __mul__(self, alpha: float) -> "SteeringVector":
        if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool):
            return NotImplemented
        return SteeringVector({layer: alpha * tensor for layer, tensor in self.vectors.items()},
                              {"kind": "scaled", "alpha": float(alpha), "of": self.source})

    __rmul__ = __mul__

    def cosine(self, other: "SteeringVector") -> dict[int, float]:
        """The cosine similarity with `other` at each layer both have."""
        return {layer: float(torch.nn.functional.cosine_similarity(
                    self.vectors[layer].double(), other.vectors[layer].double(), dim=0))
                for layer in self.layers if layer in other.vectors}

    def norms(self) -> dict[int, float]:
        """The Euclidean norm at each layer (to compare strengths with the residual's own norm)."""
        return {layer: float(self.vectors[layer].norm()) for layer in self.layers}

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "SteeringVector":
        return SteeringVector({layer: tensor.to(device=device, dtype=dtype) for layer, tensor in self.vectors.items()},
                              self.source)

    def __repr__(self) -> str:
        layers = self.layers
        span = f"{layers[0]}..{layers[-1]}" if len(layers) > 1 else str(layers[0]) if layers else "none"
        return f"SteeringVector({self.source.get('kind', '?')}, layers {span}, hidden {self.hidden_size if layers else 0})"


def save_vectors(vectors: Mapping[str, SteeringVector], path: str | Path) -> None:
    """Write vectors as safetensors, atomically: key `<name>.<layer>` (e.g. `en.ko.3`), float32, sources as metadata."""
    from safetensors.torch import save_file

    tensors = {f"{name}.{layer}": vector[layer].detach().to("cpu", torch.float32).contiguous()
               for name, vector in vectors.items() for layer in vector.layers}
    metadata = {"sources": json.dumps({name: vector.source for name, vector in vectors.items()}, ensure_ascii=False)}
    with atomic_file(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)


def load_vectors(path: str | Path) -> dict[str, SteeringVector]:
    """Read a `save_vectors` file back: `{"en.ko": SteeringVector, ...}`."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        sources = json.loads(metadata.get("sources", "{}"))
    except (OSError, ValueError, RuntimeError, SafetensorError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path} is not a steering-vectors file ({reason}); write one with `cla vectors` or "
                         "save_vectors") from None
    grouped: dict[str, dict[int, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        name, _, layer = key.rpartition(".")
        if not name or not layer.lstrip("-").isdigit():
            raise ValueError(f"{path}: key {key!r} is not <kind>.<language>.<layer>: not a file of `cla vectors`")
        grouped.setdefault(name, {})[int(layer)] = tensor
    try:
        return {name: SteeringVector(layers, sources.get(name, {})) for name, layers in grouped.items()}
    except ValueError as error:
        raise ValueError(f"{path}: {error}: not a file of `cla vectors`") from None
