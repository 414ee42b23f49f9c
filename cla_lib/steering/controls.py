"""Negative controls for steering: vectors that must do nothing, made, swept and judged like the real ones.

A gain from steering means something only against what a vector *without the contrast* gains through the same
sweep, layer choice and test: the best of many layers and strengths on noisy validation questions is biased
upwards, and adding any large vector moves a small model somewhere. Two controls:

- **random**: at each layer, a random direction with the real vector's norm there: the same push, no content;
- **shuffled LOC** (`loc_shuffled` in `VECTOR_KINDS`): the LOC vector from its own prompt pairs with the cue put on
  a random side of each pair, a sign-flip permutation. The cue's direction cancels out, while the sampling noise of
  the same prompts stays. (Re-pairing the prompts would not do: a difference of means ignores the pairing.)

Both are deterministic in their seed, so a build is repeatable.
"""

from __future__ import annotations

import hashlib

import torch

from cla_lib.steering.vector import SteeringVector


def random_like(vector: SteeringVector, *, seed: object) -> SteeringVector:
    """A random direction at each layer of `vector`, with `vector`'s norm there (a Gaussian draw, normalized),
    drawn from a generator seeded by `seed` (any value with a stable repr, e.g. (organism seed, kind, language))
    and the layer."""
    directions = {}
    for layer, tensor in vector.vectors.items():
        generator = torch.Generator().manual_seed(stable_seed(seed, layer))
        direction = torch.randn(tensor.shape[0], generator=generator, dtype=torch.float64)
        directions[layer] = (direction / direction.norm() * tensor.double().norm()).to(tensor.dtype)
    return SteeringVector(directions, {"kind": "random", "norms_of": vector.source, "seed": str(seed)})


def flipped(key: str) -> bool:
    """Whether the sign-flip permutation swaps the pair of `key` (an item id): a fair coin, the same on every
    machine and in every run."""
    return stable_seed(key) % 2 == 1


def stable_seed(*parts) -> int:
    """A 63-bit seed from `parts`, independent of Python's hash randomization."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big") >> 1
