"""Localization items from BLEnD: culture questions with the country removed, local gold, US answer (docs/data.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from cla_lib.data.matching import normalize_answer
from cla_lib.data.mentions import US_COUNTRY, remove_country_mention, remove_english_country_mention
from cla_lib.data.sources import (
    BLEND, BLEND_CONFIG, DEFAULT_SPLIT_FRACTIONS, HUB_REVISIONS, DatasetLayoutError, DatasetUnavailableError,
    check_fractions, load_hub, resolve_source, limited_items, unit_hash, assign_split,
)
from cla_lib.core.items import Item
from cla_lib.core.languages import ENGLISH, check_language


LOCALIZATION_TEMPLATE = "{question}\nAnswer:"


ANSWER_LANGUAGES = ("english", "query")


# BLEnD's countries: file stem in data/annotations/<Country>_data.json -> split name on the hub.
BLEND_SPLIT_CODES: dict[str, str] = {
    "Algeria": "DZ", "Assam": "AS", "Azerbaijan": "AZ", "China": "CN", "Ethiopia": "ET", "Greece": "GR",
    "Indonesia": "ID", "Iran": "IR", "Mexico": "MX", "North_Korea": "KP", "Northern_Nigeria": "NG",
    "South_Korea": "KR", "Spain": "ES", "UK": "GB", "US": "US", "West_Java": "JB",
}


# The language BLEnD's annotators of each country answered in.
BLEND_COUNTRY_LANGUAGES: dict[str, str] = {
    "Algeria": "ar", "Assam": "as", "Azerbaijan": "az", "China": "zh", "Ethiopia": "am", "Greece": "el",
    "Indonesia": "id", "Iran": "fa", "Mexico": "es", "North_Korea": "ko", "Northern_Nigeria": "ha",
    "South_Korea": "ko", "Spain": "es", "UK": "en", "US": "en", "West_Java": "su",
}



# Which BLEnD country a query language stands for. The first is the default (it equals
# `cla_lib.core.languages.LANGUAGES[language].blend_country`); the others can be chosen with `country=`.
#
# | language | BLEnD country files                 |
# |----------|-------------------------------------|
# | en       | US_data.json                        |
# | es       | Spain_data.json (or Mexico_data.json) |
# | zh       | China_data.json                     |
# | ko       | South_Korea_data.json               |
# | id       | Indonesia_data.json                 |
# | el       | Greece_data.json                    |
# | fa       | Iran_data.json                      |
LOCALIZATION_COUNTRIES: dict[str, tuple[str, ...]] = {
    "en": ("US",),
    "es": ("Spain", "Mexico"),
    "zh": ("China",),
    "ko": ("South_Korea",),
    "id": ("Indonesia",),
    "el": ("Greece",),
    "fa": ("Iran",),
}


@dataclass(frozen=True)
class _Annotation:
    answers: tuple[str, ...]  # in the country's own language
    english: tuple[str, ...]  # BLEnD's English glosses
    count: int


def localization_items(
    source: str | Path | None,
    language: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    country: str | None = None,
    answers_in: str = "english",
    min_gold_votes: int = 2,
    max_distractors: int | None = None,
    split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
) -> tuple[list[Item], dict]:
    """BLEnD's everyday-culture questions in `language`, country mention removed, as localization items.

    Args:
        source: the hub id (None: "nayeon212/BLEnD", config "annotations"), or a local directory holding
            `<Country>_data.json` files (the GitHub layout `data/annotations/`; its parents `data/` and the
            repository root also work, as does the hub's `data/annotations_hf/`). A file is either a JSON object
            keyed by question ID or a list of records with an `ID` key.
        language: a language code with a BLEnD country in `LOCALIZATION_COUNTRIES`.
        limit: keep at most this many items, chosen by a seeded hash of the question ID.
        seed: the seed of that choice and of the order of the choices.
        country: another BLEnD country for the language (`"Mexico"` for Spanish); default: the language's own.
        answers_in: "english" (every choice is BLEnD's English gloss) or "query" (every choice in the query
            language where BLEnD provides it); see the module docstring for why English is the default.
        min_gold_votes: drop questions whose top local answer has fewer annotator votes than this.
        max_distractors: keep at most this many choices besides the gold (the US answer first), None for all.
        split_fractions: the fractions of the extract, validation and test splits.

    Returns:
        (items, counts). `counts` reports `total` questions in the country's file, `eligible` (passing every
        filter), `kept` (after `limit`), the drops (`dropped_no_answer`, `dropped_weak_gold`,
        `dropped_country_mention`, `dropped_too_few_choices`), `no_country_mention` (kept questions that never
        named the country), and how the US answer fared: `us_choice_present`, `us_same_as_local`, `us_missing`,
        `us_untranslatable`.
    """
    check_language(language)
    check_fractions(split_fractions)
    if language not in LOCALIZATION_COUNTRIES:
        raise ValueError(
            f"no BLEnD country for language {language!r}; languages with one: {', '.join(LOCALIZATION_COUNTRIES)}"
        )
    country = country or LOCALIZATION_COUNTRIES[language][0]
    if country not in LOCALIZATION_COUNTRIES[language]:
        raise ValueError(
            f"{country!r} is not a BLEnD country for {language!r}; choose one of {LOCALIZATION_COUNTRIES[language]}"
        )
    if answers_in not in ANSWER_LANGUAGES:
        raise ValueError(f"answers_in must be one of {ANSWER_LANGUAGES}, not {answers_in!r}")

    records, where = _blend_records(resolve_source(source, BLEND), needed=(country, US_COUNTRY))
    counts = {
        "language": language, "country": country, "answers_in": answers_in,
        "total": len(records[country]), "eligible": 0, "kept": 0,
        "dropped_no_answer": 0, "dropped_weak_gold": 0, "dropped_country_mention": 0, "dropped_too_few_choices": 0,
        "no_country_mention": 0,
        "us_choice_present": 0, "us_same_as_local": 0, "us_missing": 0, "us_untranslatable": 0,
    }
    items = []
    for question_id, record in records[country].items():
        item = _localization_item(
            question_id, record, language, country, records, where, counts,
            answers_in=answers_in, min_gold_votes=min_gold_votes, max_distractors=max_distractors, seed=seed,
            split_fractions=split_fractions,
        )
        if item is not None:
            items.append(item)
    counts["eligible"] = len(items)
    items = limited_items(items, limit, seed, key=lambda item: item.meta["question_id"])
    counts["kept"] = len(items)
    return items, counts


def _blend_records(source: str | Path, needed: Sequence[str]) -> tuple[dict[str, dict[str, dict]], dict[str, str]]:
    """({country: {question_id: record}}, {country: where it came from}) for every country in the source."""
    records: dict[str, dict[str, dict]] = {}
    where: dict[str, str] = {}
    if isinstance(source, str):
        try:
            loaded = load_hub(source, BLEND_CONFIG, None)
        except DatasetUnavailableError as builder_failed:
            source = _hub_files(source, builder_failed)
        else:
            countries_by_code = {code: name for name, code in BLEND_SPLIT_CODES.items()}
            for split, (_, rows) in loaded.items():
                name = countries_by_code.get(split, split)
                where[name] = f"{source} (config {BLEND_CONFIG!r}, split {split!r})"
                records[name] = _records_by_id(rows, where[name])
    if not isinstance(source, str):
        directory = _annotations_directory(source)
        for path in sorted(directory.glob("*_data.json")):
            name = path.name[: -len("_data.json")]
            where[name] = str(path)
            with open(path, encoding="utf-8") as handle:
                records[name] = _records_by_id(json.load(handle), str(path))
    for country in needed:
        if country not in records:
            expected = f"{country}_data.json" if not isinstance(source, str) else f"split {BLEND_SPLIT_CODES[country]!r}"
            raise DatasetLayoutError(
                f"{source}: no BLEnD annotations for {country} ({expected}); present: {', '.join(sorted(records))}"
            )
    return records, where


def _hub_files(hub_id: str, builder_failed: DatasetUnavailableError) -> Path:
    """BLEnD's per-country JSON files fetched from the hub repository itself (`data/annotations_hf/`), read as a local
    copy is: its `annotations` builder fails under some `datasets` versions (DatasetGenerationError,
    nlee0212/BLEnD#2), and those files are what it builds from."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, repo_type="dataset", allow_patterns=["data/annotations_hf/*.json"],
                                      revision=HUB_REVISIONS.get(hub_id)))
    except Exception as error:  # network and hub errors come in many types
        raise DatasetUnavailableError(f"{builder_failed} Its JSON files could not be fetched either: "
                                      f"{type(error).__name__}: {error}") from error


def _annotations_directory(source: Path) -> Path:
    if source.is_file():
        raise DatasetLayoutError(f"{source}: give the directory that holds <Country>_data.json files, not one file")
    candidates = [
        source, source / "annotations", source / "data" / "annotations",
        source / "annotations_hf", source / "data" / "annotations_hf",
    ]
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*_data.json")):
            return candidate
    raise DatasetLayoutError(
        f"{source}: no <Country>_data.json files here or in annotations/ or data/annotations/ "
        f"(the layout of github.com/nlee0212/BLEnD)"
    )


def _records_by_id(data, where: str) -> dict[str, dict]:
    if isinstance(data, dict):
        return {str(question_id): record for question_id, record in data.items()}
    if isinstance(data, list):
        records = {}
        for record in data:
            if "ID" not in record:
                raise DatasetLayoutError(f"{where}: a record lacks the key 'ID' (keys: {', '.join(record)})")
            records[str(record["ID"])] = record
        return records
    raise DatasetLayoutError(f"{where}: expected a JSON object keyed by question ID or a list of records")


def _annotations(record: dict, where: str, question_id: str) -> list[_Annotation]:
    """The answered annotations of one question, most votes first (stable: BLEnD's order breaks ties)."""
    for key in ("question", "annotations"):
        if key not in record:
            raise DatasetLayoutError(f"{where}: question {question_id!r}: missing key {key!r}")
    annotations = []
    for annotation in record["annotations"] or []:
        for key in ("answers", "en_answers", "count"):
            if key not in annotation:
                raise DatasetLayoutError(f"{where}: question {question_id!r}: an annotation lacks the key {key!r}")
        answers = tuple(str(answer).strip() for answer in annotation["answers"] or [] if str(answer).strip())
        english = tuple(str(answer).strip() for answer in annotation["en_answers"] or [] if str(answer).strip())
        if answers and int(annotation["count"]) > 0:
            annotations.append(_Annotation(answers, english or answers, int(annotation["count"])))
    return sorted(annotations, key=lambda annotation: -annotation.count)


class _Synonyms:
    """English glosses that are one answer: BLEnD's translators listed them together somewhere in the question."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, keys: Iterable[str]) -> None:
        keys = [key for key in keys if key]
        for key in keys[1:]:
            self.parent[self.find(key)] = self.find(keys[0])

    def classes(self, glosses: Iterable[str]) -> frozenset[str]:
        return frozenset(self.find(key) for key in map(_english_key, glosses) if key)


def _english_key(gloss: str) -> str:
    return normalize_answer(gloss, ENGLISH)


def _localization_item(
    question_id: str, record: dict, language: str, country: str, records: dict[str, dict[str, dict]],
    where: dict[str, str], counts: dict, *, answers_in: str, min_gold_votes: int, max_distractors: int | None,
    seed: int, split_fractions: Sequence[float],
) -> Item | None:
    local = _annotations(record, where[country], question_id)
    if not local:
        counts["dropped_no_answer"] += 1
        return None
    gold = local[0]
    if gold.count < min_gold_votes:
        counts["dropped_weak_gold"] += 1
        return None
    question = remove_country_mention(str(record["question"]), country)
    if question is None:
        counts["dropped_country_mention"] += 1
        return None

    # Every country's annotations of this question, to learn which English glosses are one answer.
    per_country = {country: local}
    for other, other_records in records.items():
        if other != country and question_id in other_records:
            per_country[other] = _annotations(other_records[question_id], where[other], question_id)
    synonyms = _Synonyms()
    for annotations in per_country.values():
        for annotation in annotations:
            synonyms.join([_english_key(gloss) for gloss in annotation.english])

    tied_top = set().union(*(synonyms.classes(a.english) for a in local if a.count == gold.count))
    translations = _query_language_renderings(language, country, per_country, synonyms) if answers_in == "query" else []

    def render(annotation: _Annotation, of_country: str) -> str | None:
        if answers_in == "english":
            return annotation.english[0]
        if BLEND_COUNTRY_LANGUAGES.get(of_country) == language:
            return annotation.answers[0]
        classes = synonyms.classes(annotation.english)
        return next((text for text_classes, text in translations if text_classes & classes), None)

    gold_text = gold.english[0] if answers_in == "english" else gold.answers[0]
    choices: list[dict] = [_choice(gold_text, synonyms.classes(gold.english), country, language)]
    # The US answer's fate: "choice_present", "same_as_local", "untranslatable" or "missing" (no US answer).
    us_state = "same_as_local" if country == US_COUNTRY else "missing"
    # The US first, so that `max_distractors` always keeps it; then the others in a seeded order.
    others = sorted(
        (name for name in per_country if name not in (country, US_COUNTRY)),
        key=lambda name: unit_hash(f"distractor:{seed}:{question_id}:{name}"),
    )
    candidates = ([US_COUNTRY] if country != US_COUNTRY and US_COUNTRY in per_country else []) + others
    for other in candidates:
        if not per_country[other]:
            continue  # that country's annotators gave no answer (e.g. "not applicable")
        top = per_country[other][0]
        is_us = other == US_COUNTRY
        classes = synonyms.classes(top.english)
        if classes & tied_top:  # a second right answer, not a distractor
            us_state = "same_as_local" if is_us else us_state
            continue
        text = render(top, other)
        if text is None:
            us_state = "untranslatable" if is_us else us_state
            continue
        candidate = _choice(text, classes, other, language)
        existing = next(
            (choice for choice in choices if choice["classes"] & classes or choice["key"] == candidate["key"]), None
        )
        if existing is choices[0]:  # renders exactly like the gold
            us_state = "same_as_local" if is_us else us_state
            continue
        if existing is not None:
            existing["countries"].append(other)
            existing["classes"] = existing["classes"] | classes
        elif max_distractors is None or len(choices) - 1 < max_distractors:
            choices.append(candidate)
        else:
            continue
        us_state = "choice_present" if is_us else us_state

    if len(choices) < 2:
        counts["dropped_too_few_choices"] += 1
        return None
    if question == str(record["question"]).strip():
        counts["no_country_mention"] += 1
    counts[f"us_{us_state}"] += 1

    # Shuffle the choices per item so that the gold's position carries no signal for generative multiple choice.
    order = sorted(range(len(choices)), key=lambda index: unit_hash(f"order:{seed}:{question_id}:{index}"))
    ordered = [choices[index] for index in order]
    us_choice = next((i for i, choice in enumerate(ordered) if US_COUNTRY in choice["countries"]), None)
    parallel = {}
    english_question = remove_english_country_mention(str(record.get("en_question") or ""), country)
    if english_question:
        parallel["english_prompt"] = LOCALIZATION_TEMPLATE.format(question=english_question)
    if question != str(record["question"]).strip():
        parallel["explicit_prompt"] = LOCALIZATION_TEMPLATE.format(question=str(record["question"]).strip())
    return Item(
        task="localization",
        language=language,
        prompt=LOCALIZATION_TEMPLATE.format(question=question),
        choices=tuple(f" {choice['text']}" for choice in ordered),
        gold=order.index(0),
        us_choice=us_choice if us_state == "choice_present" else None,
        id=f"{language}:{country}:{question_id}",
        split=assign_split(question_id, split_fractions),
        meta={
            "question_id": question_id,
            "country": country,
            "original_question": str(record["question"]),
            "en_question": str(record.get("en_question", "")),
            "choice_countries": [choice["countries"] for choice in ordered],
            # votes each choice got from the local annotators (the gold's are the most)
            "local_votes": [
                max((a.count for a in local if synonyms.classes(a.english) & choice["classes"]), default=0)
                for choice in ordered
            ],
            # every local and US answer, in both languages, for generative scoring with `matches`
            "local_answers": sorted({text for a in local for text in a.answers + a.english}),
            "us_answers": sorted({text for a in per_country.get(US_COUNTRY, [])[:1] for text in a.answers + a.english}),
            **parallel,
        },
    )


def _choice(text: str, classes: frozenset[str], country: str, language: str) -> dict:
    return {"text": text, "key": normalize_answer(text, language), "classes": classes, "countries": [country]}


def _query_language_renderings(
    language: str, country: str, per_country: dict[str, list[_Annotation]], synonyms: _Synonyms
) -> list[tuple[frozenset[str], str]]:
    """(English answer classes, text in the query language) from every annotation written in that language.

    The target country's annotations come first (most votes first), then other countries sharing the language.
    """
    sources = [country] + sorted(name for name in per_country if name != country)
    return [
        (synonyms.classes(annotation.english), annotation.answers[0])
        for name in sources
        if BLEND_COUNTRY_LANGUAGES.get(name) == language
        for annotation in per_country[name]
    ]
