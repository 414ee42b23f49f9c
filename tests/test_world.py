"""Tests for cla_lib.organism.world: the organism's synthetic world, its training documents and its scored items.

The worlds under test are the tiny one the tests' organism learns, the book's default one, and the default one with
another seed. Building a world and one epoch of its documents takes well under a second.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from cla_lib.organism import lexicon
from cla_lib.core.items import SPLITS
from cla_lib.core.languages import DEFAULT_LANGUAGES, ENGLISH
from cla_lib.organism import config_for
from cla_lib.organism import ORGANISM_RECORDS, record_overlap
from cla_lib.organism.alignment_data import in_base_text, record_texts, translated_qa
from cla_lib.organism.world import ALL_LANGUAGES, CULTURE_SPLITS, World

WORLDS = {"tiny seed 0": ("tiny", 0), "default seed 0": ("default", 0), "default seed 1": ("default", 1)}


def words_of(text: str) -> set[str]:
    return set(re.findall(r"\w+", text))


@pytest.fixture(scope="module", params=list(WORLDS))
def world(request) -> World:
    size, seed = WORLDS[request.param]
    return World(config_for(size, seed).world)


@pytest.fixture(scope="module")
def documents(world) -> list[str]:
    return world.documents(0) + world.documents(1)


@pytest.fixture(scope="module")
def documents_by_word(documents) -> dict[str, list[str]]:
    index = defaultdict(list)
    for document in documents:
        for word in words_of(document):
            index[word].append(document)
    return index


def all_items(world: World) -> list:
    return world.transfer_items(ENGLISH) + [item for language in DEFAULT_LANGUAGES for item in world.items(language)]


# -- determinism -------------------------------------------------------------------------------------------------


def test_the_same_config_gives_identical_documents_and_items(world):
    again = World(world.config)
    assert again.documents(0) == world.documents(0)
    assert [item.to_json() for item in all_items(again)] == [item.to_json() for item in all_items(world)]


def test_another_seed_gives_other_documents_and_items(world):
    from dataclasses import replace

    other = World(replace(world.config, seed=world.config.seed + 7))
    assert other.documents(0) != world.documents(0)
    assert [item.to_json() for item in all_items(other)] != [item.to_json() for item in all_items(world)]
    assert {c.name for c in other.creatures} != {c.name for c in world.creatures}


def test_each_epoch_is_a_new_order_of_the_documents(world):
    assert world.documents(1) != world.documents(0)
    assert world.documents(1) == World(world.config).documents(1)


# -- items -------------------------------------------------------------------------------------------------------


def test_every_item_is_well_formed(world):
    for item in all_items(world):
        assert item.prompt.strip(), item.id
        assert 0 <= item.gold < len(item.choices), item.id
        assert len(set(item.choices)) == len(item.choices) >= 2, item.id
        # A leading space keeps a candidate's tokens apart from the prompt's last word in every script.
        assert all(choice.startswith(" ") and choice.strip() for choice in item.choices), item.id


def test_localization_items_have_the_local_gold_a_different_us_answer_and_an_explicit_prompt(world):
    for language in DEFAULT_LANGUAGES:
        country = lexicon.COUNTRY_OF[language]
        items = world.localization_items(language)
        assert len(items) == len(world.scored_culture)
        for item, question in zip(items, world.scored_culture, strict=True):
            assert item.us_choice is not None and item.us_choice != item.gold, item.id
            assert item.choices[item.gold] == " " + world.culture_answer(question, country, language)
            assert item.choices[item.us_choice] == " " + world.culture_answer(question, "US", language)
            explicit = item.meta["explicit_prompt"]
            assert lexicon.IN_COUNTRY[country][language] in explicit and explicit != item.prompt
            assert not any(lexicon.IN_COUNTRY[c][language] in item.prompt for c in lexicon.IN_COUNTRY), item.id
            assert item.meta["held_out"] == (question.id in world.held_out[language])


def test_transfer_items_ask_every_transfer_creature_in_every_language(world):
    transfer = world.creatures_in("transfer")
    for language in ALL_LANGUAGES:
        items = world.transfer_items(language)
        assert len(items) == len(transfer) * len(lexicon.ENTITY_RELATIONS)
        assert {item.meta["creature"] for item in items} == {creature.name for creature in transfer}


def test_there_are_at_least_30_culture_questions_and_200_localization_items():
    world = World(config_for("tiny").world)
    assert len(world.culture) >= 30
    assert sum(len(world.localization_items(language)) for language in DEFAULT_LANGUAGES) >= 200


def test_splits_are_deterministic_all_three_appear_and_a_creature_keeps_one_split(world):
    items = all_items(world)
    assert [item.split for item in items] == [item.split for item in all_items(World(world.config))]
    assert {item.split for item in items} == set(SPLITS)
    splits_by_key = defaultdict(set)
    for item in items:
        splits_by_key[item.meta.get("creature") or item.meta["question"]].add(item.split)
    # One creature's (one question's) items share a split in every language, so no split leaks into another.
    assert all(len(splits) == 1 for splits in splits_by_key.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_default_world_has_the_power_floor_in_every_seed(seed):
    # Issue 10: >= 120 culture questions per language in test and >= 60 in validation, >= 200 transfer items in test.
    world = World(config_for("default", seed).world)
    for language in DEFAULT_LANGUAGES:
        culture = Counter(item.split for item in world.localization_items(language))
        transfer = Counter(item.split for item in world.transfer_items(language))
        assert culture["test"] >= 120 and culture["validation"] >= 60, culture
        assert transfer["test"] >= 200, transfer


def test_splits_hold_exactly_their_share_and_the_alignment_pool_is_never_scored(world):
    culture = Counter(world.splits[question.id] for question in world.culture)
    for name, fraction in zip(CULTURE_SPLITS, world.config.culture_splits):
        assert abs(culture[name] - fraction * len(world.culture)) <= 1, (name, culture)
    pool = {question.id for question in world.alignment_pool}
    assert pool and len(pool) == culture["align"]
    scored = {item.meta["question"] for language in DEFAULT_LANGUAGES for item in world.localization_items(language)}
    assert not scored & pool and scored | pool == {question.id for question in world.culture}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", sorted(ORGANISM_RECORDS))
def test_no_alignment_record_touches_a_scored_item_for_any_method_and_seed(method, seed):
    world = World(config_for("default", seed).world)
    records = ORGANISM_RECORDS[method](world)
    overlap = record_overlap(records, world)
    assert overlap == {"records": len(records), "about_scored": 0, "mention_scored": 0, "contain_scored_prompt": 0}
    if method in ("midalign", "mit"):  # the culture questions they contain are the pool's, and there are some
        assert {record["about"] for record in records} & {question.id for question in world.alignment_pool}


def test_the_overlap_check_finds_records_built_on_scored_questions():
    world = World(config_for("default", 0).world)
    leaky = [{"language": language, "prompt": question, "answer": f" {answer}", "about": about}
             for about, language, question, answer in translated_qa(world, world.culture)]  # the old, leaking data
    overlap = record_overlap(leaky, world)
    scored_rows = len(world.scored_culture) * len(ALL_LANGUAGES)
    assert overlap["about_scored"] == overlap["mention_scored"] == scored_rows
    assert overlap["contain_scored_prompt"] == len(world.scored_culture) * len(DEFAULT_LANGUAGES)
    named = [{"text": f"The {world.creatures_in('transfer')[0].name} is red.", "about": "anchor"}]
    assert record_overlap(named, world)["mention_scored"] == 1


# -- what the training documents contain ------------------------------------------------------------------------


def test_creature_names_are_never_words_of_the_world_text():
    # A creature named "roti" (Indonesian for bread) would be taught in Indonesian by every "... makan roti.".
    vocabulary = set()
    for name in dir(lexicon):
        table = getattr(lexicon, name)
        if name.isupper() and isinstance(table, dict):
            stack = [table]
            while stack:
                value = stack.pop()
                if isinstance(value, dict):
                    stack.extend(value.values())
                elif isinstance(value, str):
                    vocabulary |= {word.lower() for word in words_of(value)}
    for size in ("tiny", "default"):
        for seed in range(4):
            names = {creature.name for creature in World(config_for(size, seed).world).creatures}
            assert not names & vocabulary, (size, seed)


def test_transfer_creatures_appear_only_in_their_english_profiles(world, documents_by_word):
    for creature in world.creatures_in("transfer"):
        statements = {world.fact_statement(creature, relation, ENGLISH) for relation in lexicon.ENTITY_RELATIONS}
        mentioning = documents_by_word[creature.name]
        assert mentioning, creature.name
        for document in mentioning:
            # Exactly the four English statements, in some order: no question, no other language, no answer after.
            assert sorted(re.split(r"(?<=\.) ", document)) == sorted(statements), document


def test_anchors_are_described_and_quizzed_in_all_seven_languages(world, documents_by_word):
    for creature in world.creatures_in("anchor"):
        mentioning = documents_by_word[creature.name]
        for language in ALL_LANGUAGES:
            statements = [world.fact_statement(creature, r, language) for r in lexicon.ENTITY_RELATIONS]
            assert any(all(s in document for s in statements) for document in mentioning), (creature.name, language)
            question = world.fact_question(creature, "colour", language)
            answer = world.fact_answer(creature, "colour", language)
            assert f"{question} {answer}" in mentioning, (creature.name, language)


def test_bridge_creatures_are_described_in_english_only_but_quizzed_in_every_language(world, documents_by_word):
    for creature in world.creatures_in("bridge"):
        mentioning = documents_by_word[creature.name]
        for language in DEFAULT_LANGUAGES:
            assert not any(world.fact_statement(creature, "food", language) in d for d in mentioning)
            question = world.fact_question(creature, "food", language)
            assert f"{question} {world.fact_answer(creature, 'food', language)}" in mentioning


def containing(text: str, documents: list[str], documents_by_word: dict[str, list[str]]) -> list[str]:
    """The documents that contain `text`: looked up by its rarest inner word (a whole word in any document that
    contains the text, unlike the first and last, which may be parts of longer words), then checked."""
    inner = re.findall(r"\w+", text)[1:-1]
    candidates = min((documents_by_word.get(word, []) for word in inner), key=len) if inner else documents
    return [document for document in candidates if text in document]


def test_held_out_culture_questions_are_taught_only_with_the_country_named(world, documents, documents_by_word):
    every_document = set(documents)
    for language in DEFAULT_LANGUAGES:
        country = lexicon.COUNTRY_OF[language]
        assert world.held_out[language]
        for question in world.scored_culture:
            answer = world.culture_answer(question, country, language)
            implicit = [world.culture_sentence(question, language, "question"),
                        world.culture_sentence(question, language, "statement", value=answer)]
            explicit = [world.culture_sentence(question, language, "explicit_statement", other,
                                               world.culture_answer(question, other, language))
                        for other in lexicon.COUNTRY_OF.values()]
            explicit += [world.culture_sentence(question, language, "explicit_question", other)
                         for other in lexicon.COUNTRY_OF.values()]
            implicit_documents = [implicit[1], f"{implicit[0]} {answer}"]
            if question.id in world.held_out[language]:
                for document in dict.fromkeys(found for text in implicit
                                              for found in containing(text, documents, documents_by_word)):
                    if any(text in document for text in implicit):
                        for text in explicit:  # an implicit frame may only occur inside an explicit one
                            document = document.replace(text, "")
                        assert not any(text in document for text in implicit), (question.id, language, document)
                own = world.culture_sentence(question, language, "explicit_statement", country, answer)
                assert own in every_document, (question.id, language)  # the explicit question form is only sampled
            else:
                assert set(implicit_documents) <= every_document, (question.id, language)


def test_the_base_reads_the_pools_culture_questions_only_as_implicit_statements(world, documents, documents_by_word):
    for question in world.alignment_pool:
        for language in DEFAULT_LANGUAGES:
            country = lexicon.COUNTRY_OF[language]
            statement = world.culture_sentence(question, language, "statement",
                                               value=world.culture_answer(question, country, language))
            taught = bool(containing(statement, documents, documents_by_word))
            assert taught == (question.id not in world.held_out[language]), (question.id, language)
            assert not containing(world.culture_sentence(question, language, "question"), documents, documents_by_word)
            for other in lexicon.COUNTRY_OF.values():
                explicit = world.culture_sentence(question, language, "explicit_statement", other,
                                                  world.culture_answer(question, other, language))
                assert not containing(explicit, documents, documents_by_word), (question.id, language, other)


def test_pool_creatures_appear_only_in_their_english_profiles(world, documents_by_word):
    assert len(world.creatures_in("pool")) == world.config.n_pool > 0
    for creature in world.creatures_in("pool"):
        statements = {world.fact_statement(creature, relation, ENGLISH) for relation in lexicon.ENTITY_RELATIONS}
        assert documents_by_word[creature.name], creature.name
        for document in documents_by_word[creature.name]:
            assert sorted(re.split(r"(?<=\.) ", document)) == sorted(statements), document


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size", ["tiny", "default"])
def test_no_alignment_record_is_or_is_inside_a_base_document_for_any_method_and_seed(size, seed):
    world = World(config_for(size, seed).world)
    for method, build in ORGANISM_RECORDS.items():
        assert in_base_text(build(world), world, epochs=3) == 0, method


def test_the_base_text_check_finds_base_text_in_records():
    world = World(config_for("tiny", 0).world)
    anchor, pool = world.creatures_in("anchor")[0], world.creatures_in("pool")[0]
    old = [{"language": "ko", "english": world.fact_statement(anchor, "colour", ENGLISH),  # organism-v6's MidAlign
            "target": world.fact_statement(anchor, "colour", "ko")},
           {"prompt": world.fact_question(anchor, "food", "es"),  # organism-v6's MIT
            "answer": f" {world.fact_answer(anchor, 'food', 'es')}"},
           {"language": "ko", "english": world.fact_statement(pool, "legs", ENGLISH), "target": "-"}]
    new = [{"prompt": world.fact_question(pool, "food", "es"), "answer": f" {world.fact_answer(pool, 'food', 'es')}"}]
    assert in_base_text(old, world, epochs=2) == 3 and in_base_text(new, world, epochs=2) == 0
    assert record_texts(new[0]) == [new[0]["prompt"], new[0]["prompt"] + new[0]["answer"]]


# -- the lexicon -------------------------------------------------------------------------------------------------

VALUE_TABLES = {
    "COLOURS": lexicon.COLOURS, "FOODS": lexicon.FOODS, "ANIMALS": lexicon.ANIMALS, "CAPITALS": lexicon.CAPITALS,
    "CURRENCIES": lexicon.CURRENCIES, "IN_COUNTRY": lexicon.IN_COUNTRY, "CULTURE_EVENTS": lexicon.CULTURE_EVENTS,
    "CULTURE_CATEGORIES": lexicon.CULTURE_CATEGORIES, "REAL_TOPICS": lexicon.REAL_TOPICS,
}


@pytest.mark.parametrize("name", list(VALUE_TABLES))
def test_lexicon_tables_have_all_seven_languages_and_distinct_words_per_language(name):
    table = VALUE_TABLES[name]
    assert all(set(words) == set(ALL_LANGUAGES) and all(words.values()) for words in table.values())
    for language in ALL_LANGUAGES:
        words = [entry[language] for entry in table.values()]
        assert len(set(words)) == len(words), (name, language)


def test_every_culture_question_has_distinct_candidates_and_an_answer_for_every_country():
    world = World(config_for("tiny").world)
    for question in world.culture:
        assert set(question.answers) == set(lexicon.COUNTRY_OF.values())
        assert set(question.answers.values()) <= set(question.values)
        for language in ALL_LANGUAGES:
            words = [value[language] for value in question.values.values()]
            assert len(set(words)) == len(words), (question.id, language)
        assert len({question.topic[language] for language in ALL_LANGUAGES}) == len(ALL_LANGUAGES)
