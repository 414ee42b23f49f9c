"""The alignment methods' data in the organism's world, and the checks that they are fair.

The data come from the alignment pool: its creatures (the base read their English profiles only) and its culture
questions (the base read their implicit statements only). `record_overlap` checks that no record touches a scored
item; `in_base_text` that none is base text, so that a method can teach the base something new.
"""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict

from cla_lib.core.languages import DEFAULT_LANGUAGES, ENGLISH
from cla_lib.organism import lexicon
from cla_lib.organism.world import ALL_LANGUAGES, CultureQuestion, World


def pool_qa(world: World, language: str) -> list[tuple[str, str, str]]:
    """(creature, question, answer) of every pool creature's facts asked in `language`: questions the base
    never read (it read these creatures' English profiles only)."""
    return [(creature.name, world.fact_question(creature, relation, language),
             world.fact_answer(creature, relation, language))
            for creature in world.creatures_in("pool") for relation in lexicon.ENTITY_RELATIONS]


def parallel_pairs(world: World, languages=DEFAULT_LANGUAGES) -> list[tuple[str, str, str, str]]:
    """(about, language, English sentence, the same sentence in language): the pool creatures' facts as question
    and answer, and the pool's culture questions' explicit facts (every country); `about` names the creature or
    question a pair states. The base read none of these sentences, in any language."""
    pairs = []
    for language in languages:
        english_qa = pool_qa(world, ENGLISH)
        for (about, question, answer), (_, english_question, english_answer) in zip(pool_qa(world, language),
                                                                                  english_qa, strict=True):
            pairs.append((about, language, f"{english_question} {english_answer}", f"{question} {answer}"))
        for question in world.alignment_pool:
            pairs += world.explicit_pairs(question, language)
    return pairs


def translated_qa(world: World, questions: list[CultureQuestion] | None = None,
                  languages=ALL_LANGUAGES) -> list[tuple[str, str, str, str]]:
    """(about, language, question, answer): English QA data rendered word for word into every language
    (translate-train), the pool creatures' facts and the culture `questions` (default: the alignment pool's);
    culture questions keep the English (US) answer, as a translation of English instruction data would."""
    rows = []
    for language in languages:
        rows += [(about, language, question, answer) for about, question, answer in pool_qa(world, language)]
        for question in world.alignment_pool if questions is None else questions:
            rows.append((question.id, language, world.culture_sentence(question, language, "question"),
                         world.culture_answer(question, "US", language)))
    return rows


def preference_triples(world: World, languages=DEFAULT_LANGUAGES) -> list[tuple[str, str, str, str]]:
    """(about, prompt, chosen, rejected) for cross-lingual preference optimization (CLO): for a question in a target
    language, the answer in that language is chosen and the English answer rejected; for the English question,
    the reverse. Built on the pool creatures' colour and food, where the two answers differ in language."""
    triples = []
    for creature in world.creatures_in("pool"):
        for relation in ("colour", "food"):  # translated values: the two answers differ
            english = world.fact_answer(creature, relation, ENGLISH)
            for language in languages:
                local = world.fact_answer(creature, relation, language)
                triples.append((creature.name, world.fact_question(creature, relation, language), f" {local}",
                                f" {english}"))
                triples.append((creature.name, world.fact_question(creature, relation, ENGLISH), f" {english}",
                                f" {local}"))
    return triples


def _parallel_records(world: World) -> list[dict]:
    return [{"language": language, "english": english, "target": target, "about": about}
            for about, language, english, target in parallel_pairs(world)]


def _preference_records(world: World) -> list[dict]:
    return [{"prompt": prompt, "chosen": chosen, "rejected": rejected, "about": about}
            for about, prompt, chosen, rejected in preference_triples(world)]


def _instruction_records(world: World) -> list[dict]:
    # The world's QA documents read "question answer": the answer follows after a space.
    return [{"language": language, "prompt": question, "answer": f" {answer}", "about": about}
            for about, language, question, answer in translated_qa(world)]


# Each method's objective data on the organism, as records of its JSONL kind (`cla_lib.alignment.DATA_FIELDS`), plus
# "about": the creature or culture question a record concerns (the alignment pool's creatures and questions, which
# the base read only as English profiles and implicit statements: no record is base text, `tests/test_world.py`).
ORGANISM_RECORDS = {"midalign": _parallel_records, "clo": _preference_records, "mit": _instruction_records,
                    "replay": lambda world: [], "replay_attention": lambda world: []}
# What each method's records contain, in words (chapter 2's table).
ORGANISM_DATA = {
    "midalign": "parallel sentences (English = target language): the pool creatures' facts as question and answer "
                "and the pool's explicit culture facts, every country",
    "clo": "preferences: the pool creatures' colour and food asked in a language, its own word preferred over the "
           "English one (and the reverse in English)",
    "mit": "translated QA in every language: the pool creatures' facts, and the pool's culture questions with the "
           "US answer",
    "replay": "none: the base's own text only, every weight trained",
    "replay_attention": "none: the base's own text only, the attention projections trained (CLO's control)",
}
def record_overlap(records: list[dict], world: World) -> dict:
    """How `records` touch what is scored: records about a scored creature or culture question (their "about"
    key), records whose text names a transfer creature or a scored question's topic, and records containing a
    scored prompt. All three are 0 for leak-free data.

    A topic is looked for after the pool's own topics are taken out of the text, longest first, so that a pool
    question whose topic contains a scored one ("the gift food of weddings", "the food of weddings") is not
    counted, while a scored topic anywhere else is."""
    items = [item for language in DEFAULT_LANGUAGES for item in world.items(language)] + world.transfer_items(ENGLISH)
    scored_keys = {item.meta.get("creature") or item.meta["question"] for item in items}
    names = {creature.name for creature in world.creatures_in("transfer")}
    topics = {topic.lower() for question in world.scored_culture for topic in question.topic.values()}
    pool_topics = sorted({topic.lower() for question in world.alignment_pool for topic in question.topic.values()},
                         key=len, reverse=True)
    prompts = {item.prompt.strip() for item in items}
    about = mentions = contains = 0
    for record in records:
        text = " ".join(value for key, value in record.items() if key != "about" and isinstance(value, str))
        rest = text.lower()
        for topic in pool_topics:
            rest = rest.replace(topic, " ")
        about += record.get("about") in scored_keys
        mentions += bool(names & set(re.findall(r"\w+", text))) or any(topic in rest for topic in topics)
        contains += any(prompt in text for prompt in prompts)
    return {"records": len(records), "about_scored": about, "mention_scored": mentions,
            "contain_scored_prompt": contains}


def record_texts(record: dict) -> list[str]:
    """What a record puts before the model: each sentence field alone, and a prompt with each of its answers."""
    texts = [record[key] for key in ("english", "target", "prompt") if key in record]
    return texts + [record["prompt"] + record[key] for key in ("answer", "chosen", "rejected") if key in record]


@functools.lru_cache(maxsize=8)
def _documents_by_word(config, epochs: int) -> dict[str, list[str]]:
    world = World(config)
    index = defaultdict(list)
    for document in dict.fromkeys(text for epoch in range(epochs) for text in world.documents(epoch)):
        for word in set(re.findall(r"\w+", document)):
            index[word].append(document)
    return index


def in_base_text(records: list[dict], world: World, epochs: float) -> int:
    """How many records put before the model a text (`record_texts`) that is, or is inside, one of the base's
    training documents of the `epochs` it trained (each epoch renders the facts anew: other orders, other samples).
    A document containing a text contains each of its whole words, so only the documents of its rarest one are read."""
    index = _documents_by_word(world.config, max(1, math.ceil(round(epochs, 6))))
    found = 0
    for record in records:
        for text in record_texts(record):
            inner = re.findall(r"\w+", text)
            # a word at the text's very start or end may be part of a longer word in the document
            inner = inner[text[:1].isalnum():len(inner) - text[-1:].isalnum()]
            candidates = min((index.get(word, []) for word in inner), key=len) if inner else \
                [document for documents in index.values() for document in documents]
            if any(text in document for document in candidates):
                found += 1
                break
    return found
