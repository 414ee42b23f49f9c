"""Tests for cla_lib.plane.evaluation: Wilson intervals, the plane from answers, and the plane of the tiny organism
against a plain-transformers rescoring."""

from __future__ import annotations

import math

import pytest

from cla_lib.plane.evaluation import (
    answer_frame,
    plane,
    plane_from_answers,
    plane_items,
    points_frame,
    wilson_interval,
    with_explicit_cue,
)
from cla_lib.core.items import Item

# -- Wilson intervals --------------------------------------------------------------------------------------------


def wilson_textbook(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The same interval in counts rather than proportions: (x + z²/2 ± z √(x(n-x)/n + z²/4)) / (n + z²)."""
    half = z * math.sqrt(successes * (total - successes) / total + z * z / 4)
    return ((successes + z * z / 2 - half) / (total + z * z), (successes + z * z / 2 + half) / (total + z * z))


@pytest.mark.parametrize(("successes", "total", "expected"), [
    (0, 10, (0.0, 0.2775)),
    (5, 10, (0.2366, 0.7634)),
    (10, 10, (0.7225, 1.0)),
])
def test_wilson_interval_matches_published_values(successes, total, expected):
    low, high = wilson_interval(successes, total)
    assert math.isclose(low, expected[0], abs_tol=5e-5) and math.isclose(high, expected[1], abs_tol=5e-5)


@pytest.mark.parametrize(("successes", "total"), [(0, 1), (1, 3), (7, 32), (31, 32), (18, 36), (200, 216)])
def test_wilson_interval_equals_the_textbook_formula(successes, total):
    expected = wilson_textbook(successes, total)
    low, high = wilson_interval(successes, total)
    assert math.isclose(low, max(0.0, expected[0]), abs_tol=1e-12)
    assert math.isclose(high, min(1.0, expected[1]), abs_tol=1e-12)
    assert low <= successes / total <= high


def test_wilson_interval_of_no_items_is_undefined():
    assert all(math.isnan(bound) for bound in wilson_interval(0, 0))


# -- the plane from answers --------------------------------------------------------------------------------------


def transfer(language: str, gold: int, name: str) -> Item:
    return Item("transfer", language, f"question {name}?", (" a", " b", " c", " d"), gold, id=name)


def culture(language: str, gold: int, us_choice: int | None, name: str, held_out: bool = False) -> Item:
    return Item("localization", language, f"culture {name}?", (" x", " y", " z"), gold, us_choice=us_choice,
                id=name, meta={"held_out": held_out, "explicit_prompt": f"In {language}, culture {name}?"})


# English ceiling: 1 of 2. Korean: transfer 3 of 4; culture local 2 of 4, US 1 of 4. Spanish: transfer 1 of 1;
# culture local 0 of 2, US 1 of 2 (the other item has no US answer).
ITEMS_AND_ANSWERS = [
    (transfer("en", 0, "en1"), 0), (transfer("en", 1, "en2"), 3),
    (transfer("ko", 0, "ko1"), 0), (transfer("ko", 1, "ko2"), 1), (transfer("ko", 2, "ko3"), 2),
    (transfer("ko", 3, "ko4"), 0),
    (culture("ko", 0, 1, "kc1"), 0), (culture("ko", 0, 1, "kc2"), 1), (culture("ko", 2, 1, "kc3", True), 0),
    (culture("ko", 2, 0, "kc4", True), 2),
    (transfer("es", 2, "es1"), 2),
    (culture("es", 0, 2, "ec1"), 2), (culture("es", 0, None, "ec2"), 1),
]
ITEMS = [item for item, _ in ITEMS_AND_ANSWERS]
ANSWERS = [answer for _, answer in ITEMS_AND_ANSWERS]


def test_plane_from_answers_counts_transfer_localization_and_english_bias_per_language():
    korean, spanish = plane_from_answers("hand-made", ITEMS, ANSWERS)
    assert (korean.model, korean.language, spanish.language) == ("hand-made", "ko", "es")
    assert (korean.transfer, korean.localization, korean.english_bias) == (0.75, 0.5, 0.25)
    assert (korean.n_transfer, korean.n_localization) == (4, 4)
    assert (spanish.transfer, spanish.localization, spanish.english_bias) == (1.0, 0.0, 0.5)
    assert (spanish.n_transfer, spanish.n_localization) == (1, 2)
    assert korean.transfer_interval == wilson_interval(3, 4)
    assert korean.localization_interval == wilson_interval(2, 4)
    assert spanish.localization_interval == wilson_interval(0, 2)


def test_plane_from_answers_takes_the_english_ceiling_from_the_english_rows():
    points = plane_from_answers("hand-made", ITEMS, ANSWERS)
    assert [(point.english_transfer, point.n_english_transfer) for point in points] == [(0.5, 2), (0.5, 2)]
    without_english = plane_from_answers("hand-made", ITEMS[2:], ANSWERS[2:])
    assert [(point.english_transfer, point.n_english_transfer) for point in without_english] == [(None, 0)] * 2


def test_plane_from_answers_needs_one_answer_per_item():
    with pytest.raises(ValueError):
        plane_from_answers("hand-made", ITEMS, ANSWERS[:-1])


def test_a_language_without_culture_items_has_undefined_localization():
    (point,) = plane_from_answers("hand-made", [transfer("el", 0, "el1")], [0])
    assert point.transfer == 1.0 and math.isnan(point.localization) and point.n_localization == 0


def test_plane_point_json_has_lists_for_intervals_and_the_points_frame_has_extra_columns():
    points = plane_from_answers("hand-made", ITEMS, ANSWERS)
    record = points[0].to_json()
    assert record["transfer_interval"] == list(wilson_interval(3, 4))
    frame = points_frame(points, method="none", seed=0)
    assert list(frame.language) == ["ko", "es"] and set(frame.method) == {"none"} and set(frame.seed) == {0}


def test_answer_frame_has_one_row_per_item_with_what_was_chosen():
    frame = answer_frame(ITEMS, ANSWERS)
    assert list(frame.columns) == ["id", "task", "language", "split", "prompt", "answer", "gold", "correct",
                                   "us_answer", "held_out", "chance"]
    assert len(frame) == len(ITEMS)
    row = frame.set_index("id").loc["kc3"]
    assert (row.answer, row.gold, row.correct, row.us_answer, row.held_out) == ("x", "z", False, False, True)
    row = frame.set_index("id").loc["kc2"]
    assert (row.correct, row.us_answer, row.held_out) == (False, True, False)
    assert frame.set_index("id").loc["en1", "chance"] == 0.25
    assert frame.correct.sum() == 1 + 3 + 2 + 1 + 0


def test_with_explicit_cue_asks_the_culture_items_with_their_explicit_prompt():
    explicit = with_explicit_cue(ITEMS)
    culture_items = [item for item in ITEMS if item.task == "localization"]
    assert [item.prompt for item in explicit] == [item.meta["explicit_prompt"] for item in culture_items]
    assert [item.id for item in explicit] == [item.id + "/explicit" for item in culture_items]
    assert [(item.choices, item.gold, item.us_choice) for item in explicit] == \
        [(item.choices, item.gold, item.us_choice) for item in culture_items]


# -- the tiny organism -------------------------------------------------------------------------------------------


def test_plane_items_of_an_organism_are_its_world_english_ceiling_first(tiny_organism_environment, tiny_organism_dir):
    from cla_lib.organism import world_of

    world = world_of(tiny_organism_dir)
    items = plane_items("organism", ["ko", "es"])
    expected = world.transfer_items("en") + world.items("ko") + world.items("es")
    assert [item.to_json() for item in items] == [item.to_json() for item in expected]
    assert items == plane_items(str(tiny_organism_dir), ["ko", "es"])  # by directory: the same world
    test_only = plane_items("organism", ["ko"], splits=["test"])
    assert test_only and {item.split for item in test_only} == {"test"}
    with pytest.raises(ValueError, match="own world"):
        plane_items("organism", ["ko"], transfer_data="somewhere")


def test_plane_of_the_tiny_organism_equals_a_plain_transformers_rescoring(tiny_organism_dir,
                                                                          rescore_with_transformers):
    from cla_lib.plane.evaluation import answers
    from cla_lib.plane.loading import load_model

    items = plane_items(str(tiny_organism_dir), ["ko"])
    model = load_model(str(tiny_organism_dir))
    chosen = answers(model, items, batch_size=16)
    reference = rescore_with_transformers(tiny_organism_dir, items)
    assert chosen == reference
    assert len(set(reference)) > 2  # the organism does not answer everything with one index
    assert plane(model, items, model_name="tiny") == plane_from_answers("tiny", items, reference)
