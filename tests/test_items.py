"""Tests for cla_lib.core.items: the scored-item format, its JSONL files and atomic writes."""

from __future__ import annotations

import json

import pytest

from cla_lib.core.items import Item, read_items, write_atomic, write_items

TRANSFER = Item("transfer", "ko", "nandi 의 색은 무엇입니까?", (" 빨간색", " 파란색"), 1, id="t1", split="extract",
                meta={"creature": "nandi"})
LOCALIZATION = Item("localization", "fa", "رنگ عروسی چیست؟", (" قرمز", " آبی", " سبز"), 2, us_choice=0, id="l1",
                    meta={"held_out": True, "explicit_prompt": "در ایران، رنگ عروسی چیست؟"})


@pytest.mark.parametrize("gold", [-1, 2, 5])
def test_gold_outside_the_choices_is_rejected(gold):
    with pytest.raises(ValueError, match=f"gold index {gold} outside 2 choices"):
        Item("transfer", "es", "¿Qué?", (" a", " b"), gold, id="x")


def test_us_choice_outside_the_choices_is_rejected():
    with pytest.raises(ValueError, match="us_choice 3 outside"):
        Item("localization", "es", "¿Qué?", (" a", " b"), 0, us_choice=3)


def test_repeated_choices_are_rejected():
    with pytest.raises(ValueError, match="choices repeat"):
        Item("transfer", "es", "¿Qué?", (" a", " b", " a"), 0)


def test_an_unknown_task_is_rejected_naming_the_tasks():
    with pytest.raises(ValueError, match="task must be one of .*'transfer'.*'localization'"):
        Item("translation", "es", "¿Qué?", (" a", " b"), 0)


def test_jsonl_round_trip_keeps_every_field_including_meta(tmp_path):
    path = tmp_path / "items.jsonl"
    write_items([TRANSFER, LOCALIZATION], path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert json.loads(lines[1])["choices"] == [" قرمز", " آبی", " سبز"]  # a list in JSON, unescaped script
    assert "رنگ" in lines[1]
    again = read_items(path)
    assert again == [TRANSFER, LOCALIZATION]
    assert [item.meta for item in again] == [TRANSFER.meta, LOCALIZATION.meta]  # meta is not part of ==
    assert isinstance(again[0].choices, tuple)


def test_write_atomic_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "out" / "items.jsonl"
    write_atomic(path, "old\n")
    write_atomic(path, "new\n")
    assert path.read_text(encoding="utf-8") == "new\n"
    assert [entry.name for entry in path.parent.iterdir()] == ["items.jsonl"]


def test_write_atomic_failing_mid_write_keeps_the_old_file_whole(tmp_path):
    path = tmp_path / "items.jsonl"
    write_atomic(path, "old\n")
    # A lone surrogate cannot be encoded as UTF-8: the write fails after a long valid prefix.
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "new line\n" * 100_000 + "\ud800")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["items.jsonl"]


def test_write_items_failing_while_items_are_produced_keeps_the_old_file(tmp_path):
    path = tmp_path / "items.jsonl"
    write_items([TRANSFER], path)

    def items():
        yield LOCALIZATION
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        write_items(items(), path)
    assert read_items(path) == [TRANSFER]
    assert [entry.name for entry in tmp_path.iterdir()] == ["items.jsonl"]
