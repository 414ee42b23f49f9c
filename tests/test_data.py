"""Tests of cla_lib.data on small fixtures in the real layouts of Global-MMLU and BLEnD (tests/fixtures/)."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow
import pyarrow.parquet
import pytest

from cla_lib import data
from cla_lib.data import (
    COUNTRY_MENTIONS,
    DatasetLayoutError,
    DatasetUnavailableError,
    LOCALIZATION_COUNTRIES,
    assign_split,
    localization_items,
    matches,
    normalize_answer,
    remove_country_mention,
    transfer_items,
)
from cla_lib.core.items import SPLITS, Item, read_items, write_items
from cla_lib.core.languages import LANGUAGES, UnknownLanguageError

FIXTURES = Path(__file__).parent / "fixtures"
GLOBAL_MMLU = FIXTURES / "global_mmlu"
BLEND = FIXTURES / "blend"
BLEND_ANNOTATIONS = BLEND / "data" / "annotations"

CULTURALLY_AGNOSTIC = [
    "elementary_mathematics/test/0", "high_school_chemistry/test/1", "astronomy/test/2", "high_school_biology/test/3",
]
GOLD = {"elementary_mathematics/test/0": 1, "high_school_chemistry/test/1": 0, "astronomy/test/2": 2,
        "high_school_biology/test/3": 3}


def by_question(items: list[Item]) -> dict[str, Item]:
    return {item.meta["question_id"]: item for item in items}


# ---------------------------------------------------------------------------------------------------------------
# Transfer


def test_transfer_keeps_only_annotated_culturally_agnostic_rows():
    items = transfer_items(GLOBAL_MMLU, "ko")
    assert [item.meta["sample_id"] for item in items] == CULTURALLY_AGNOSTIC


def test_transfer_prompt_is_the_harness_mmlu_format():
    item = transfer_items(GLOBAL_MMLU, "ko")[0]
    assert item.prompt == "7 곱하기 8은 얼마입니까?\nA. 54\nB. 56\nC. 58\nD. 64\nAnswer:"
    assert item.choices == (" A", " B", " C", " D")
    assert (item.task, item.language, item.us_choice, item.id) == (
        "transfer", "ko", None, "ko:elementary_mathematics/test/0")


def test_transfer_gold_is_the_answer_letter_index():
    items = transfer_items(GLOBAL_MMLU, "es")
    assert {item.meta["sample_id"]: item.gold for item in items} == GOLD


def test_transfer_english_ceiling_shares_sample_ids_and_splits():
    english = {item.meta["sample_id"]: item for item in transfer_items(GLOBAL_MMLU, "en")}
    korean = {item.meta["sample_id"]: item for item in transfer_items(GLOBAL_MMLU, "ko")}
    assert english.keys() == korean.keys()
    assert all(english[key].split == korean[key].split for key in english)
    assert english["astronomy/test/2"].prompt.startswith("Which planet is closest to the Sun?\nA. Venus")


def test_transfer_dev_split_loads_from_dev_files():
    items = transfer_items(GLOBAL_MMLU, "en", dataset_split="dev")
    assert [item.meta["sample_id"] for item in items] == ["elementary_mathematics/dev/0"]


def test_transfer_single_csv_file_loads_with_text_booleans():
    from_csv = transfer_items(FIXTURES / "global_mmlu_ko_test.csv", "ko")
    from_parquet = transfer_items(GLOBAL_MMLU, "ko")
    assert [item.prompt for item in from_csv] == [item.prompt for item in from_parquet]
    assert [item.gold for item in from_csv] == [item.gold for item in from_parquet]


def test_transfer_jsonl_with_extra_columns_and_numbers_loads():
    items = transfer_items(FIXTURES / "global_mmlu_es_extra_columns.jsonl", "es")
    assert [item.meta["sample_id"] for item in items] == CULTURALLY_AGNOSTIC
    assert "A. 54\nB. 56" in items[0].prompt  # options stored as JSON numbers become their text


def test_transfer_single_file_with_language_column_keeps_that_language(tmp_path):
    rows = pyarrow.parquet.read_table(GLOBAL_MMLU / "ko" / "test-00000-of-00001.parquet").to_pylist()
    english = pyarrow.parquet.read_table(GLOBAL_MMLU / "en" / "test-00000-of-00001.parquet").to_pylist()
    mixed = [{**row, "language": "ko"} for row in rows] + [{**row, "language": "en"} for row in english]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in mixed), encoding="utf-8")
    assert [item.prompt for item in transfer_items(path, "ko")] == [
        item.prompt for item in transfer_items(GLOBAL_MMLU, "ko")]
    with pytest.raises(DatasetLayoutError, match="no rows with language 'es'"):
        transfer_items(path, "es")


def test_transfer_missing_column_error_names_the_column_and_the_file(tmp_path):
    table = pyarrow.parquet.read_table(GLOBAL_MMLU / "ko" / "test-00000-of-00001.parquet")
    (tmp_path / "ko").mkdir()
    broken = tmp_path / "ko" / "test-00000-of-00001.parquet"
    pyarrow.parquet.write_table(table.drop_columns(["answer", "option_c"]), broken)
    with pytest.raises(DatasetLayoutError) as raised:
        transfer_items(tmp_path, "ko")
    assert "'answer'" in str(raised.value) and "'option_c'" in str(raised.value) and str(broken) in str(raised.value)


def test_transfer_missing_label_column_in_csv_is_named(tmp_path):
    with open(FIXTURES / "global_mmlu_ko_test.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    path = tmp_path / "no_label.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        columns = [column for column in rows[0] if column != "cultural_sensitivity_label"]
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DatasetLayoutError) as raised:
        transfer_items(path, "ko")
    assert "'cultural_sensitivity_label'" in str(raised.value) and "no_label.csv" in str(raised.value)


def test_transfer_without_is_annotated_column_trusts_the_label(tmp_path):
    table = pyarrow.parquet.read_table(GLOBAL_MMLU / "ko" / "test-00000-of-00001.parquet")
    path = tmp_path / "lite_like.parquet"
    pyarrow.parquet.write_table(table.drop_columns(["is_annotated"]), path)
    sample_ids = [item.meta["sample_id"] for item in transfer_items(path, "ko")]
    assert sample_ids == CULTURALLY_AGNOSTIC + ["world_religions/test/7"]


def test_transfer_bad_answer_letter_is_reported(tmp_path):
    rows = pyarrow.parquet.read_table(GLOBAL_MMLU / "ko" / "test-00000-of-00001.parquet").to_pylist()
    rows[0]["answer"] = "E"
    path = tmp_path / "bad.parquet"
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    with pytest.raises(DatasetLayoutError, match="elementary_mathematics/test/0.*'E'"):
        transfer_items(path, "ko")


def test_transfer_missing_language_directory_names_the_expected_layout():
    with pytest.raises(DatasetLayoutError, match=r"el/test-\*\.parquet"):
        transfer_items(GLOBAL_MMLU, "el")


def test_transfer_unknown_language_is_a_clear_error():
    with pytest.raises(UnknownLanguageError, match="known languages"):
        transfer_items(GLOBAL_MMLU, "xx")


def test_transfer_limit_is_deterministic_and_picks_the_same_questions_across_languages():
    first = transfer_items(GLOBAL_MMLU, "ko", limit=2, seed=3)
    again = transfer_items(GLOBAL_MMLU, "ko", limit=2, seed=3)
    spanish = transfer_items(GLOBAL_MMLU, "es", limit=2, seed=3)
    assert len(first) == 2 and first == again
    assert [item.meta["sample_id"] for item in first] == [item.meta["sample_id"] for item in spanish]


def test_transfer_items_round_trip_through_jsonl(tmp_path):
    items = transfer_items(GLOBAL_MMLU, "ko")
    write_items(items, tmp_path / "items.jsonl")
    assert read_items(tmp_path / "items.jsonl") == items


def test_transfer_nonexistent_local_path_is_a_clear_error():
    with pytest.raises(DatasetUnavailableError, match="no such file or directory"):
        transfer_items("./no/such/directory", "ko")


def test_transfer_unreachable_hub_suggests_a_local_path(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'CohereLabs/Global-MMLU' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DatasetUnavailableError) as raised:
        transfer_items(None, "ko")
    message = str(raised.value)
    assert "CohereLabs/Global-MMLU" in message and "local directory" in message


def test_transfer_from_the_hub_reads_the_config_of_the_language(monkeypatch):
    datasets = pytest.importorskip("datasets")
    rows = pyarrow.parquet.read_table(GLOBAL_MMLU / "ko" / "test-00000-of-00001.parquet").to_pylist()
    calls = []

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    items = transfer_items(None, "ko")
    # the language's config, then the English one for the English prompts (the same sample ids)
    assert calls == [("CohereLabs/Global-MMLU", "ko", "test"), ("CohereLabs/Global-MMLU", "en", "test")]
    assert [item.prompt for item in items] == [item.prompt for item in transfer_items(GLOBAL_MMLU, "ko")]
    transfer_items(None, "ko", lite=True, english_prompts=False)
    assert calls[-1] == ("CohereLabs/Global-MMLU-Lite", "ko", "test")


# ---------------------------------------------------------------------------------------------------------------
# Splits


def test_split_is_a_pure_function_of_the_key():
    keys = [f"subject/test/{index}" for index in range(50)]
    assert [assign_split(key) for key in keys] == [assign_split(key) for key in keys]


def test_split_fractions_are_respected_on_many_keys():
    counts = Counter(assign_split(f"key-{index}") for index in range(3000))
    assert set(counts) == set(SPLITS)
    assert abs(counts["extract"] / 3000 - 0.2) < 0.03
    assert abs(counts["validation"] / 3000 - 0.2) < 0.03
    assert abs(counts["test"] / 3000 - 0.6) < 0.03


def test_split_fractions_are_parameters():
    assert {assign_split(f"key-{index}", (0, 0, 1)) for index in range(100)} == {"test"}
    items = transfer_items(GLOBAL_MMLU, "ko", split_fractions=(1, 0, 0))
    assert {item.split for item in items} == {"extract"}
    with pytest.raises(ValueError, match="sum to 1"):
        assign_split("key", (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="3 non-negative"):
        assign_split("key", (0.5, 0.5))


# ---------------------------------------------------------------------------------------------------------------
# Country-mention removal: every rule, on BLEnD's own phrasing


@pytest.mark.parametrize(
    ("country", "question", "expected"),
    [
        ("South_Korea", "대한민국에서 가장 인기 있는 과일은 무엇인가요?", "가장 인기 있는 과일은 무엇인가요?"),
        ("South_Korea", "대한민국에서는 추석에 주로 어떤 음식을 먹나요?", "추석에 주로 어떤 음식을 먹나요?"),
        ("South_Korea", "대한민국의 유치원생들이 흔히 먹는 간식은 무엇인가요?", "유치원생들이 흔히 먹는 간식은 무엇인가요?"),
        ("South_Korea", "대한민국 사람들은 새해 첫날을 어떻게 기념하나요?", "사람들은 새해 첫날을 어떻게 기념하나요?"),
        ("South_Korea", "대한민국 학교 급식에서 흔히 볼 수 있는 음식은 무엇인가요?", "학교 급식에서 흔히 볼 수 있는 음식은 무엇인가요?"),
        ("South_Korea", "한국의 고등학생들이 흔히 배우는 외국어는 무엇인가요?", "고등학생들이 흔히 배우는 외국어는 무엇인가요?"),
        ("South_Korea", "한국인들이 즐겨 먹는 간식은 무엇인가요?", "사람들이 즐겨 먹는 간식은 무엇인가요?"),
        ("Spain", "¿Cuál es la fruta más popular en España?", "¿Cuál es la fruta más popular?"),
        ("Spain", "¿Cuáles son los aperitivos más consumidos en los centros comerciales de España?",
         "¿Cuáles son los aperitivos más consumidos en los centros comerciales?"),
        ("Spain", "En España, ¿qué se come en Navidad?", "¿Qué se come en Navidad?"),
        ("Mexico", "¿Cuál es la fruta más popular en México?", "¿Cuál es la fruta más popular?"),
        ("China", "在中国，学龄前儿童常见的零食是什么？", "学龄前儿童常见的零食是什么？"),
        ("China", "在中国的学校食堂里常见的食物是什么？", "学校食堂里常见的食物是什么？"),
        ("China", "在中国最受欢迎的水果是什么？", "最受欢迎的水果是什么？"),
        ("China", "中国人为了庆祝万圣节会做什么？", "人们为了庆祝万圣节会做什么？"),
        ("China", "中国小学生通常学习什么乐器？", "小学生通常学习什么乐器？"),
        ("Greece", "Ποιο είναι το πιο δημοφιλές φρούτο στην Ελλάδα;", "Ποιο είναι το πιο δημοφιλές φρούτο;"),
        ("Greece", "Ποιο είναι ένα συνηθισμένο φαγητό στα σχολεία της Ελλάδας;",
         "Ποιο είναι ένα συνηθισμένο φαγητό στα σχολεία;"),
        ("Greece", "Τι κάνουν οι Έλληνες την Πρωτοχρονιά;", "Τι κάνουν οι άνθρωποι την Πρωτοχρονιά;"),
        ("Iran", "محبوب‌ترین میوه درایران چیست؟", "محبوب‌ترین میوه چیست؟"),
        ("Iran", "در ایران متداول‌ترین تنقلات چیست؟", "متداول‌ترین تنقلات چیست؟"),
        ("Iran", "در کشور شما در چه سنی بچه‌ها به پیش‌دبستانی می‌روند؟", "در چه سنی بچه‌ها به پیش‌دبستانی می‌روند؟"),
        ("Iran", "یک غذای معمولی کافه‌تریای مدارس‌ایران چیست؟", "یک غذای معمولی کافه‌تریای مدارس چیست؟"),
        ("Iran", "مردم ایران در نوروز چه می‌کنند؟", "مردم در نوروز چه می‌کنند؟"),
        ("Iran", "ایرانی‌ها در نوروز چه می‌کنند؟", "مردم در نوروز چه می‌کنند؟"),
        ("Iran", "غذای اصلی شکرگزاری درايران چیست؟", "غذای اصلی شکرگزاری چیست؟"),  # Arabic yeh
        ("Indonesia", "Buah apa yang paling populer di Indonesia?", "Buah apa yang paling populer?"),
        ("Indonesia", "Apa yang dilakukan orang Indonesia untuk merayakan Halloween?",
         "Apa yang dilakukan orang untuk merayakan Halloween?"),
        ("Indonesia", "Apa makanan khas Indonesia untuk Lebaran?", "Apa makanan khas untuk Lebaran?"),
        ("US", "What is the most popular fruit in the US?", "What is the most popular fruit?"),
        ("US", "What do people eat on Thanksgiving in the United States?", "What do people eat on Thanksgiving?"),
        ("US", "What do Americans do to celebrate Halloween?", "What do people do to celebrate Halloween?"),
    ],
)
def test_country_mention_rules_remove_the_country(country, question, expected):
    assert remove_country_mention(question, country) == expected


@pytest.mark.parametrize(
    ("country", "question"),
    [
        ("South_Korea", "몇 살에 유치원에 가나요? (한국식 나이로 답해 주세요.)"),  # no rule for 한국식
        ("South_Korea", "대한민국에서 한국어 다음으로 많이 배우는 언어는?"),  # removed once, named again
        ("Spain", "¿Cuál es un segundo idioma popular para los estudiantes españoles?"),
        ("Mexico", "¿Qué comen los mexicanos en Navidad?"),
        ("China", "在中华文化中，什么水果象征好运？"),
        ("Greece", "Ποια γλώσσα μαθαίνουν οι Έλληνες μαθητές στην Ελλάδα εκτός από τα ελληνικά;"),
        ("Iran", "یک زبان دوم محبوب برای دانش‌آموزان ایرانی چیست؟"),
        ("Indonesia", "Apa bahasa kedua yang populer selain bahasa Indonesia?"),
        ("US", "What is a popular American breakfast?"),
    ],
)
def test_country_mention_failures_return_none(country, question):
    assert remove_country_mention(question, country) is None


def test_country_mention_leaves_questions_without_a_mention_alone():
    assert remove_country_mention("What do people eat on their birthday?", "US") == (
        "What do people eat on their birthday?")
    assert remove_country_mention("Can you tell us a popular dish?", "US") == "Can you tell us a popular dish?"


def test_country_mention_rules_exist_for_every_localization_country():
    for countries in LOCALIZATION_COUNTRIES.values():
        assert all(country in COUNTRY_MENTIONS for country in countries)
    with pytest.raises(KeyError, match="no country-mention rules"):
        remove_country_mention("question", "Ethiopia")


def test_localization_default_country_is_the_language_table_country():
    for language, countries in LOCALIZATION_COUNTRIES.items():
        assert countries[0] == LANGUAGES[language].blend_country


# ---------------------------------------------------------------------------------------------------------------
# Localization items


def test_localization_korean_items_and_counts():
    items, counts = localization_items(BLEND, "ko")
    assert sorted(by_question(items)) == ["Al-en-04", "Al-en-06", "Al-en-09", "Al-en-17", "Al-en-19", "Al-en-33"]
    assert {key: counts[key] for key in ("total", "eligible", "kept", "dropped_country_mention",
                                         "dropped_too_few_choices", "dropped_no_answer", "dropped_weak_gold")} == {
        "total": 8, "eligible": 6, "kept": 6, "dropped_country_mention": 1, "dropped_too_few_choices": 1,
        "dropped_no_answer": 0, "dropped_weak_gold": 0}
    for item in items:
        assert item.task == "localization" and item.language == "ko"
        assert "대한민국" not in item.prompt and "한국" not in item.prompt
        assert item.prompt.endswith("\nAnswer:")
        assert all(choice.startswith(" ") for choice in item.choices)


def test_localization_prompt_template_and_gold():
    item = by_question(localization_items(BLEND, "ko")[0])["Al-en-06"]
    assert item.prompt == "학교 급식에서 흔히 볼 수 있는 음식은 무엇인가요?\nAnswer:"
    assert item.choices[item.gold] == " kimchi"
    assert item.meta["original_question"].startswith("대한민국 학교 급식에서")
    assert item.meta["local_votes"][item.gold] == 4


def test_localization_us_choice_comes_from_the_us_file(tmp_path):
    item = by_question(localization_items(BLEND, "ko")[0])["Al-en-06"]
    assert item.choices[item.us_choice] == " pizza"
    assert item.meta["choice_countries"][item.us_choice][0] == "US"
    assert item.meta["local_votes"][item.us_choice] == 1  # a Korean annotator said pizza too: kept, less local

    copy = tmp_path / "blend"
    shutil.copytree(BLEND, copy)
    us_file = copy / "data" / "annotations" / "US_data.json"
    us = json.loads(us_file.read_text(encoding="utf-8"))
    us["Al-en-06"]["annotations"][0] = {"answers": ["hamburger"], "en_answers": ["hamburger"], "count": 6}
    us_file.write_text(json.dumps(us, ensure_ascii=False), encoding="utf-8")
    changed = by_question(localization_items(copy, "ko")[0])["Al-en-06"]
    assert changed.choices[changed.us_choice] == " hamburger"


def test_localization_us_answer_equal_to_local_answer_gives_no_us_choice():
    items, counts = localization_items(BLEND, "ko")
    fruit = by_question(items)["Al-en-04"]  # apple is the top answer in both South Korea and the US
    assert fruit.choices[fruit.gold] == " apple" and fruit.us_choice is None
    assert " apple" not in [choice for index, choice in enumerate(fruit.choices) if index != fruit.gold]
    assert counts["us_same_as_local"] == 2 and counts["us_choice_present"] == 4


def test_localization_glosses_listed_together_are_one_answer():
    sport = by_question(localization_items(BLEND, "ko")[0])["Al-en-17"]
    # Iran's "football" is Korea's "soccer" (Spain lists them together): not offered as a distractor.
    assert sorted(sport.choices) == [" basketball", " soccer"]


def test_localization_answers_tied_with_the_gold_are_not_distractors():
    snack = by_question(localization_items(BLEND, "zh")[0])["Al-en-09"]
    assert snack.choices[snack.gold] == " cotton candy"
    assert " ice cream" not in snack.choices  # as many Chinese votes as the gold


def test_localization_drops_and_counts_each_failure():
    _, chinese = localization_items(BLEND, "zh")
    assert chinese["dropped_weak_gold"] == 1  # Al-en-06: every answer has one vote
    _, greek = localization_items(BLEND, "el")
    assert greek["dropped_no_answer"] == 1  # Al-en-33: not applicable in Greece
    assert greek["dropped_country_mention"] == 1  # Al-en-19: "τους Έλληνες μαθητές"
    _, spanish = localization_items(BLEND, "es")
    assert spanish["dropped_country_mention"] == 1  # Al-en-19: "españoles"
    for language in ("ko", "zh", "es", "el", "fa", "id"):
        items, counts = localization_items(BLEND, language)
        assert counts["dropped_too_few_choices"] >= 1  # Al-en-40: cake everywhere
        dropped = sum(counts[key] for key in counts if key.startswith("dropped_"))
        assert counts["total"] == counts["eligible"] + dropped == len(items) + dropped
        us_outcomes = ("us_choice_present", "us_same_as_local", "us_missing", "us_untranslatable")
        assert sum(counts[key] for key in us_outcomes) == len(items)


def test_localization_every_language_has_items_without_its_country_name():
    for language in ("ko", "zh", "es", "el", "fa", "id", "en"):
        items, _ = localization_items(BLEND, language)
        country = LOCALIZATION_COUNTRIES[language][0]
        assert items, language
        for item in items:
            assert remove_country_mention(item.prompt, country) == item.prompt.strip()


def test_localization_query_language_choices():
    items, counts = localization_items(BLEND, "ko", answers_in="query")
    cafeteria = by_question(items)["Al-en-06"]
    assert sorted(cafeteria.choices) == sorted([" 김치", " 피자"])
    assert cafeteria.choices[cafeteria.gold] == " 김치" and cafeteria.choices[cafeteria.us_choice] == " 피자"
    spanish = by_question(localization_items(BLEND, "es", answers_in="query")[0])["Al-en-04"]
    # The US "apple" is rendered by Mexico's Spanish annotation, and Mexico's own answer directly.
    assert spanish.choices[spanish.us_choice] == " manzana"
    assert " mango" in spanish.choices and spanish.choices[spanish.gold] == " naranja"
    _, greek = localization_items(BLEND, "el", answers_in="query")
    assert greek["us_untranslatable"] >= 1


def test_localization_alternative_country():
    items, counts = localization_items(BLEND, "es", country="Mexico")
    assert counts["country"] == "Mexico" and counts["total"] == 6
    fruit = by_question(items)["Al-en-04"]
    assert fruit.choices[fruit.gold] == " mango" and fruit.id == "es:Mexico:Al-en-04"
    with pytest.raises(ValueError, match="not a BLEnD country for 'es'"):
        localization_items(BLEND, "es", country="China")


def test_localization_split_is_shared_across_languages():
    korean = by_question(localization_items(BLEND, "ko")[0])
    chinese = by_question(localization_items(BLEND, "zh")[0])
    for question_id in korean.keys() & chinese.keys():
        assert korean[question_id].split == chinese[question_id].split == assign_split(question_id)


def test_localization_limit_and_max_distractors():
    items, counts = localization_items(BLEND, "ko", limit=2, seed=1)
    assert len(items) == 2 and counts["kept"] == 2 and counts["eligible"] == 6
    assert items == localization_items(BLEND, "ko", limit=2, seed=1)[0]
    narrow = by_question(localization_items(BLEND, "ko", max_distractors=1)[0])["Al-en-06"]
    assert len(narrow.choices) == 2 and narrow.choices[narrow.us_choice] == " pizza"  # the US answer is kept first


def write_hub_records(root):
    """BLEND's annotations in the hub repository's own layout, data/annotations_hf: lists of records with an ID key."""
    hub_layout = root / "data" / "annotations_hf"
    hub_layout.mkdir(parents=True)
    for path in BLEND_ANNOTATIONS.glob("*_data.json"):
        records = [{"ID": key, **value} for key, value in json.loads(path.read_text(encoding="utf-8")).items()]
        (hub_layout / path.name).write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return root


def test_localization_accepts_the_directory_its_parents_and_hub_records(tmp_path):
    reference = localization_items(BLEND, "ko")[0]
    assert localization_items(BLEND_ANNOTATIONS, "ko")[0] == reference
    assert localization_items(BLEND / "data", "ko")[0] == reference
    assert localization_items(write_hub_records(tmp_path), "ko")[0] == reference


def test_localization_from_the_hub_reads_its_json_files_when_the_builder_fails(monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    import huggingface_hub

    def builder_fails(*args, **kwargs):  # as `annotations` fails under some datasets versions (nlee0212/BLEnD#2)
        raise datasets.exceptions.DatasetGenerationError("An error occurred while generating the dataset")

    def snapshot_download(repo_id, *, repo_type, allow_patterns, revision=None, **kwargs):
        assert (repo_id, repo_type, allow_patterns) == ("nayeon212/BLEnD", "dataset", ["data/annotations_hf/*.json"])
        return str(write_hub_records(tmp_path))

    monkeypatch.setattr(datasets, "load_dataset", builder_fails)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert localization_items(None, "ko")[0] == localization_items(BLEND, "ko")[0]

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(DatasetUnavailableError, match="nayeon212/BLEnD.*local directory.*could not be fetched either"):
        localization_items(None, "ko")


def test_localization_from_the_hub_maps_split_codes_to_countries(monkeypatch):
    datasets = pytest.importorskip("datasets")
    codes = {name: code for name, code in data.BLEND_SPLIT_CODES.items()}
    splits = {}
    for path in BLEND_ANNOTATIONS.glob("*_data.json"):
        records = [{"ID": key, **value} for key, value in json.loads(path.read_text(encoding="utf-8")).items()]
        splits[codes[path.name[: -len("_data.json")]]] = datasets.Dataset.from_list(records)

    def load_dataset(path, name=None, split=None, **kwargs):
        assert (path, name, split) == ("nayeon212/BLEnD", "annotations", None)
        return datasets.DatasetDict(splits)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    hub_items = localization_items(None, "ko")[0]
    assert [item.choices for item in hub_items] == [item.choices for item in localization_items(BLEND, "ko")[0]]


def test_localization_missing_key_error_names_the_key_and_the_file(tmp_path):
    copy = tmp_path / "annotations"
    shutil.copytree(BLEND_ANNOTATIONS, copy)
    korean = copy / "South_Korea_data.json"
    records = json.loads(korean.read_text(encoding="utf-8"))
    del records["Al-en-04"]["annotations"]
    korean.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DatasetLayoutError) as raised:
        localization_items(copy, "ko")
    assert "'annotations'" in str(raised.value) and "South_Korea_data.json" in str(raised.value)
    assert "Al-en-04" in str(raised.value)


def test_localization_missing_country_file_is_named(tmp_path):
    copy = tmp_path / "annotations"
    shutil.copytree(BLEND_ANNOTATIONS, copy)
    (copy / "US_data.json").unlink()
    with pytest.raises(DatasetLayoutError, match="US_data.json"):
        localization_items(copy, "ko")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetLayoutError, match="no <Country>_data.json"):
        localization_items(empty, "ko")


def test_localization_unknown_language_is_a_clear_error():
    with pytest.raises(UnknownLanguageError):
        localization_items(BLEND, "xx")


def test_localization_items_round_trip_through_jsonl(tmp_path):
    items, _ = localization_items(BLEND, "fa")
    write_items(items, tmp_path / "items.jsonl")
    assert read_items(tmp_path / "items.jsonl") == items


# ---------------------------------------------------------------------------------------------------------------
# Normalization and matching


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("  The Apples! ", "en", "apple"),
        ("Strawberries", "en", "strawberry"),
        ("sandwiches", "en", "sandwich"),
        ("Las Patatas Bravas", "es", "patata brava"),
        ("plátano", "es", "platano"),
        ("tomates", "es", "tomat"),
        ("Ο Καφές", "el", "καφεσ"),
        ("떡국 먹기", "ko", "떡국먹기"),
        ("冰淇淋 。", "zh", "冰淇淋"),
        ("كيك", "fa", "کیک"),
        ("می‌شوند", "fa", "میشوند"),
        ("۱۲", "fa", "12"),
    ],
)
def test_normalize_answer(text, language, expected):
    assert normalize_answer(text, language) == expected


def test_plural_folding_makes_singular_and_plural_equal():
    for singular, plural in (("tomate", "tomates"), ("frijol", "frijoles"), ("papa", "papas"), ("café", "cafés")):
        assert normalize_answer(singular, "es") == normalize_answer(plural, "es")
    for singular, plural in (("potato", "potatoes"), ("box", "boxes"), ("glass", "glasses"), ("candy", "candies"),
                             ("horse", "horses"), ("sandwich", "sandwiches")):
        assert normalize_answer(singular, "en") == normalize_answer(plural, "en")


def test_matches_is_normalized_containment():
    assert matches("I think the answer is Kimchi.", ["kimchi"], "en")
    assert matches("Apples, mostly", "apple", "en")
    assert not matches("steak and chips", ["tea"], "en")  # word boundaries in spaced languages
    assert matches("김치를 많이 먹어요", ["김치"], "ko")  # a particle attached to the word
    assert matches("最受欢迎的是橘子。", ["橘子"], "zh")
    assert matches("پرتقال است", ["پرتقال"], "fa")
    assert not matches("15", ["5"], "zh") and matches("5岁", ["5"], "zh")
    assert not matches("anything", ["", "  "], "en")


# ---------------------------------------------------------------------------------------------------------------
# Parallel prompts for steering vectors: the English version and the explicit (country-named) version


def test_transfer_items_carry_the_english_row_with_the_same_sample_id_as_english_prompt():
    english = {item.meta["sample_id"]: item.prompt for item in transfer_items(GLOBAL_MMLU, "en")}
    for language in ("ko", "es"):
        items = transfer_items(GLOBAL_MMLU, language)
        assert items and all(item.meta["english_prompt"] == english[item.meta["sample_id"]] for item in items)
        assert all(item.meta["english_prompt"] != item.prompt for item in items)
    assert all(item.meta["english_prompt"] == item.prompt for item in transfer_items(GLOBAL_MMLU, "en"))


def test_transfer_english_prompt_is_omitted_where_the_source_has_no_english_rows(tmp_path):
    single = transfer_items(FIXTURES / "global_mmlu_ko_test.csv", "ko")
    assert single and not any("english_prompt" in item.meta for item in single)
    only_korean = tmp_path / "gm"
    shutil.copytree(GLOBAL_MMLU / "ko", only_korean / "ko")
    assert not any("english_prompt" in item.meta for item in transfer_items(only_korean, "ko"))
    assert not any("english_prompt" in item.meta for item in transfer_items(GLOBAL_MMLU, "ko", english_prompts=False))


def test_transfer_english_prompt_from_the_english_rows_of_a_mixed_file(tmp_path):
    rows = pyarrow.parquet.read_table(GLOBAL_MMLU / "ko" / "test-00000-of-00001.parquet").to_pylist()
    english = pyarrow.parquet.read_table(GLOBAL_MMLU / "en" / "test-00000-of-00001.parquet").to_pylist()
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in
                            [{**row, "language": "ko"} for row in rows] + [{**row, "language": "en"} for row in english]),
                    encoding="utf-8")
    expected = {item.meta["sample_id"]: item.meta["english_prompt"] for item in transfer_items(GLOBAL_MMLU, "ko")}
    assert {item.meta["sample_id"]: item.meta["english_prompt"] for item in transfer_items(path, "ko")} == expected


@pytest.mark.parametrize("country, question, expected", [
    ("China", "What is the most popular fruit in China?", "What is the most popular fruit?"),
    ("South_Korea", "What is a common school cafeteria food in South Korea?", "What is a common school cafeteria food?"),
    ("South_Korea", "What do people eat on their birthday in Korea?", "What do people eat on their birthday?"),
    ("Iran", "At what age do kids start preschool in Iran? (Provide Arabic numerals (e.g., 12) only.)",
     "At what age do kids start preschool? (Provide Arabic numerals (e.g., 12) only.)"),
    ("US", "What is the most popular sport in the US?", "What is the most popular sport?"),
    ("Spain", "What is the most popular fruit in your country?", "What is the most popular fruit?"),
    ("Greece", "What is a popular snack for kids?", "What is a popular snack for kids?"),
])
def test_english_country_mention_removal(country, question, expected):
    assert data.remove_english_country_mention(question, country) == expected


@pytest.mark.parametrize("country, question", [
    ("South_Korea", "What is a popular Korean dish?"),
    ("Spain", "What do Spaniards eat in Spain at Christmas in Spain, the land of Spain?"),
    ("China", "Which Chinese festival is the most popular in China? Name China's biggest one."),
])
def test_english_country_mention_removal_fails_when_the_country_stays_named(country, question):
    assert data.remove_english_country_mention(question, country) is None


def test_localization_items_carry_english_and_explicit_prompts():
    items = by_question(localization_items(BLEND, "ko")[0])
    item = items["Al-en-06"]
    assert item.meta["english_prompt"] == "What is a common school cafeteria food?\nAnswer:"
    assert item.meta["explicit_prompt"] == "대한민국 학교 급식에서 흔히 볼 수 있는 음식은 무엇인가요?\nAnswer:"
    assert item.prompt == "학교 급식에서 흔히 볼 수 있는 음식은 무엇인가요?\nAnswer:"
    for language in LOCALIZATION_COUNTRIES:
        for item in localization_items(BLEND, language)[0]:
            english = item.meta.get("english_prompt")
            assert english is None or (english.endswith("\nAnswer:") and " in " + LANGUAGES[language].country_name
                                       not in english)
            if "explicit_prompt" in item.meta:
                assert item.meta["explicit_prompt"] == data.LOCALIZATION_TEMPLATE.format(
                    question=item.meta["original_question"].strip())
                assert item.meta["explicit_prompt"] != item.prompt
            else:
                assert item.prompt == data.LOCALIZATION_TEMPLATE.format(question=item.meta["original_question"].strip())


def test_every_fixture_language_has_english_and_explicit_prompts_for_steering():
    for language in LOCALIZATION_COUNTRIES:
        if language == "en":
            continue
        items = localization_items(BLEND, language)[0]
        assert sum("english_prompt" in item.meta for item in items) >= len(items) - 1
        assert any("explicit_prompt" in item.meta for item in items)
