"""Tests for cla_lib.steering.controls: random directions keep the real vector's norms and nothing else; the
shuffled LOC vector is the sign-flip permutation of LOC's own pairs, and cancels a direction every pair shares."""

from __future__ import annotations

import torch

from cla_lib.core.items import Item
from cla_lib.plane.loading import load_model
from cla_lib.steering import SteeringVector, extract_vectors, random_like
from cla_lib.steering.controls import flipped
from cla_lib.steering.extraction import DEFAULT_KINDS, VECTOR_KINDS


def test_random_like_keeps_each_layers_norm_and_only_that():
    generator = torch.Generator().manual_seed(0)
    vector = SteeringVector({layer: torch.randn(128, generator=generator) * (layer + 1) for layer in range(4)})
    control = random_like(vector, seed=(0, "en", "ko"))
    for layer in vector.layers:
        assert abs(control.norms()[layer] - vector.norms()[layer]) < 1e-4 * vector.norms()[layer]
    assert max(abs(cosine) for cosine in control.cosine(vector).values()) < 0.4  # 128-d: |cos| ~ 0.09
    again = random_like(vector, seed=(0, "en", "ko"))
    assert all(torch.equal(control[layer], again[layer]) for layer in vector.layers)
    other = random_like(vector, seed=(1, "en", "ko"))
    assert not torch.equal(control[0], other[0])
    assert control.source["kind"] == "random" and control.source["norms_of"] == vector.source


def test_the_sign_flip_is_a_fair_coin_fixed_by_the_item():
    keys = [f"question{index}/ko" for index in range(2000)]
    share = sum(map(flipped, keys)) / len(keys)
    assert 0.45 < share < 0.55
    assert [flipped(key) for key in keys[:50]] == [flipped(key) for key in keys[:50]]


def culture_items(count: int) -> list[Item]:
    return [Item("localization", "ko", f"question {index} 대표 음식은", (" a", " b"), 0, us_choice=1,
                 id=f"q{index}/ko", split="extract",
                 meta={"question": f"q{index}", "explicit_prompt": f"한국에서, question {index} 대표 음식은"})
            for index in range(count)]


def test_shuffled_pairs_are_loc_pairs_with_the_cue_on_a_random_side():
    items = culture_items(40)
    loc = VECTOR_KINDS["loc"].pairs(items)
    shuffled = VECTOR_KINDS["loc_shuffled"].pairs(items)
    assert [pair if not flipped(item.id) else pair[::-1] for item, pair in zip(items, loc)] == shuffled
    assert 0 < sum(a != b for a, b in zip(loc, shuffled)) < len(loc)
    assert "loc_shuffled" in VECTOR_KINDS and "loc_shuffled" not in DEFAULT_KINDS


def test_the_shuffled_loc_vector_cancels_what_the_real_one_finds(tiny_llama_dir):
    # The cue's direction is shared by every pair: the real LOC vector is (about) it, the sign-flipped mean of the
    # same pairs keeps only what differs from pair to pair.
    model = load_model(str(tiny_llama_dir))
    items = culture_items(24)
    vectors = extract_vectors(model, items, kinds=["loc", "loc_shuffled"], languages=["ko"], batch_size=8)
    assert vectors["loc_shuffled.ko"].source["kind"] == "loc_shuffled"
    for layer in vectors["loc.ko"].layers:
        assert vectors["loc_shuffled.ko"].norms()[layer] < 0.6 * vectors["loc.ko"].norms()[layer]
