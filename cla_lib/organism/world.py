"""The organism's synthetic world: what is true in it, how it is written down, and how it is asked.

The world is built so that the paper's phenomena *can* appear and so that every answer is known: universal facts
about fictional creatures (*anchor* ones taught in every language, *bridge* ones described in English only but
quizzed in every language, *transfer* ones described in English only and never quizzed during training: asking
about them measures transfer; *pool* ones described in English only and asked only in alignment data), culture
questions whose answer depends on the country the query language stands for (a held-out share taught only
explicitly, to leave localization room to move), an alignment pool of never-scored culture questions (taught as
implicit statements only), and bridges between languages (lexicon, parallel pairs, code-switched QA).

`World` is deterministic in its `WorldConfig`: training documents (`documents`), the plane's scored items (`items`);
the alignment data are `cla_lib.organism.alignment_data`'s. Design notes: docs/design-notes.md.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass
from functools import cached_property

from cla_lib.organism import lexicon
from cla_lib.core.items import Item
from cla_lib.core.languages import DEFAULT_LANGUAGES, ENGLISH, check_language

ALL_LANGUAGES = (ENGLISH, *DEFAULT_LANGUAGES)


@dataclass(frozen=True)
class WorldConfig:
    """What the world contains. Changing any field changes the world (and the organism's cache key)."""

    seed: int = 0
    n_anchor: int = 64
    n_bridge: int = 32
    # 96 transfer creatures: 53 in test (212 items per language), 29 in validation (issue 10's power floor).
    n_transfer: int = 96
    # Creatures of the alignment pool: the base reads their English profiles only (as a transfer creature's); their
    # questions, in any language, are the alignment methods' data, so that no alignment record is base text.
    n_pool: int = 32
    culture_limit: int | None = None  # compositional culture questions kept (None: all 240); the 4 real ones always
    held_out_fraction: float = 0.25  # culture questions per language taught only through the explicit cue
    # Shares of the transfer creatures: extract, validation, test.
    transfer_splits: tuple[float, float, float] = (0.15, 0.30, 0.55)
    # Shares of the culture questions: the alignment pool (what alignment methods may train on; never scored),
    # extract, validation, test. 244 questions give 39 / 20 / 63 / 122.
    culture_splits: tuple[float, float, float, float] = (0.16, 0.08, 0.26, 0.50)
    # How often each kind of fact is written per epoch (the exposures a fact gets are these times the epochs).
    profile_repeats: int = 6  # an English-only creature's profile (anchors: once per language)
    paraphrases: bool = False  # English profiles in varied phrasings (lexicon.ENGLISH_PARAPHRASES), not one frame
    qa_repeats: int = 1  # anchor and bridge creatures' question-answer pairs, per language
    implicit_repeats: int = 2  # a culture question's implicit statement and question, per language
    explicit_question_share: float = 0.2  # explicit culture statements also written as a question
    explicit_repeats: int = 1  # each explicit culture statement (and its question draw), per epoch
    parallel_anchor_share: float = 0.25  # parallel sentence pairs kept: anchor facts
    parallel_culture_share: float = 0.25  # and explicit culture facts

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Creature:
    name: str
    group: str  # "anchor" | "bridge" | "transfer"
    facts: dict  # relation -> concept key in lexicon.RELATION_VALUES[relation]


@dataclass(frozen=True)
class CultureQuestion:
    id: str  # e.g. "wedding.colour" or "emergency_number"
    topic: dict  # language -> topic noun phrase
    values: dict  # concept -> {language: word}: the candidate answers
    answers: dict  # country -> concept


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


CULTURE_SPLITS = ("align", "extract", "validation", "test")
TRANSFER_SPLITS = ("extract", "validation", "test")


def _assign_splits(keys, names: tuple[str, ...], fractions: tuple[float, ...], salt: str) -> dict[str, str]:
    """Each key's split: keys ordered by a salted hash, then cut at the cumulative fractions, so every split holds
    exactly its share (rounded) rather than a share that varies with the hash (a power floor needs exact counts)."""
    ordered = sorted(keys, key=lambda key: hashlib.sha256(f"{salt}/{key}".encode()).hexdigest())
    cuts, total = [], 0.0
    for fraction in fractions:
        total += fraction
        cuts.append(round(total / sum(fractions) * len(ordered)))
    splits, start = {}, 0
    for name, end in zip(names, cuts, strict=True):
        splits.update({key: name for key in ordered[start:end]})
        start = end
    return splits


def _lexicon_words() -> frozenset[str]:
    """Every word, lower-cased, that the lexicon's tables and frames can put into the world's text."""
    words: set[str] = set()
    stack = [value for name, value in vars(lexicon).items() if name.isupper()]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (tuple, list)):
            stack.extend(value)
        elif isinstance(value, str):
            words.update(re.findall(r"\w+", value.lower()))
    return frozenset(words)


def _creature_names(count: int, rng: random.Random) -> list[str]:
    onsets, vowels, codas = "bdfgklmnprstvz", "aeiou", ["k", "m", "n", "p", "r", "s", "t", "x", "rp", "nd", "lk"]
    # A name that is also a word ("roti", Indonesian for bread) would be taught in that language by every
    # sentence using the word, and its questions would be ambiguous.
    taken = _lexicon_words()
    names: set[str] = set()
    while len(names) < count:
        name = rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) + rng.choice(["", "o", "a", "i"])
        if name not in taken:
            names.add(name)
    return sorted(names)


class World:
    """The synthetic world of a `WorldConfig`: creatures, culture questions, documents and items."""

    def __init__(self, config: WorldConfig = WorldConfig()):
        self.config = config
        rng = random.Random(config.seed)
        total = config.n_anchor + config.n_bridge + config.n_transfer + config.n_pool
        names = _creature_names(total, rng)
        rng.shuffle(names)
        groups = (["anchor"] * config.n_anchor + ["bridge"] * config.n_bridge + ["transfer"] * config.n_transfer
                  + ["pool"] * config.n_pool)
        self.creatures = [
            Creature(name, group, {relation: rng.choice(sorted(lexicon.RELATION_VALUES[relation]))
                                   for relation in lexicon.ENTITY_RELATIONS})
            for name, group in zip(names, groups)
        ]
        self.culture = self._culture_questions(rng)
        self.splits = {
            **_assign_splits([c.name for c in self.creatures_in("transfer")], TRANSFER_SPLITS,
                             config.transfer_splits, f"{config.seed}/transfer"),
            **_assign_splits([q.id for q in self.culture], CULTURE_SPLITS, config.culture_splits,
                             f"{config.seed}/culture"),
        }
        # The alignment pool: culture questions that alignment data may contain and that are never scored.
        self.alignment_pool = [question for question in self.culture if self.splits[question.id] == "align"]
        self._pool_ids = frozenset(question.id for question in self.alignment_pool)
        self.scored_culture = [question for question in self.culture if self.splits[question.id] != "align"]
        # Per target language, the culture questions it is taught only explicitly.
        self.held_out = {}
        for language in DEFAULT_LANGUAGES:
            ids = sorted(question.id for question in self.culture)
            rng.shuffle(ids)
            self.held_out[language] = frozenset(ids[: round(config.held_out_fraction * len(ids))])
        self.held_out[ENGLISH] = frozenset()

    # -- the world's content ---------------------------------------------------------------------------
    def _culture_questions(self, rng: random.Random) -> list[CultureQuestion]:
        questions = []
        countries = [lexicon.COUNTRY_OF[language] for language in lexicon.LANGUAGE_ORDER]
        for event, event_words in lexicon.CULTURE_EVENTS.items():
            for category, category_frames in lexicon.CULTURE_CATEGORIES.items():
                values = lexicon.CATEGORY_VALUES[category]
                concepts = sorted(values)
                rng.shuffle(concepts)  # seven distinct answers, one per country
                questions.append(CultureQuestion(
                    id=f"{event}.{category}",
                    topic={language: category_frames[language].format(x=event_words[language])
                           for language in lexicon.LANGUAGE_ORDER},
                    values=values,
                    answers=dict(zip(countries, concepts)),
                ))
        for topic, words in lexicon.REAL_TOPICS.items():
            per_country = lexicon.REAL_ANSWERS[topic]
            values = {country: per_country[country] for country in countries}
            # Countries that share an answer (112, the euro) share one candidate.
            unique: dict[str, dict[str, str]] = {}
            answers = {}
            for country in countries:
                english_word = values[country][ENGLISH]
                unique.setdefault(english_word, values[country])
                answers[country] = english_word
            questions.append(CultureQuestion(id=topic, topic=dict(words), values=unique, answers=answers))
        limit = self.config.culture_limit
        if limit is not None:  # a seed-independent subset, spread over events and categories
            compositional = sorted((q.id for q in questions if q.id not in lexicon.REAL_TOPICS),
                                   key=lambda id_: hashlib.sha256(id_.encode()).hexdigest())
            kept = set(compositional[:limit]) | set(lexicon.REAL_TOPICS)
            questions = [question for question in questions if question.id in kept]
        return questions

    def creatures_in(self, *groups: str) -> list[Creature]:
        return [creature for creature in self.creatures if creature.group in groups]

    # -- sentences -------------------------------------------------------------------------------------
    @staticmethod
    def fact_statement(creature: Creature, relation: str, language: str) -> str:
        value = lexicon.RELATION_VALUES[relation][creature.facts[relation]][language]
        return lexicon.ENTITY_FRAMES[relation]["statement"][language].format(e=creature.name, v=value)

    @staticmethod
    def fact_question(creature: Creature, relation: str, language: str) -> str:
        return lexicon.ENTITY_FRAMES[relation]["question"][language].format(e=creature.name)

    @staticmethod
    def fact_answer(creature: Creature, relation: str, language: str) -> str:
        return lexicon.RELATION_VALUES[relation][creature.facts[relation]][language]

    @staticmethod
    def culture_sentence(question: CultureQuestion, language: str, frame: str, country: str | None = None,
                         value: str | None = None) -> str:
        topic = question.topic[language]
        cue = lexicon.IN_COUNTRY[country][language] if country else ""
        return lexicon.CULTURE_FRAMES[frame][language].format(t=topic, T=capitalize(topic), v=value or "", c=cue)

    @staticmethod
    def culture_answer(question: CultureQuestion, country: str, language: str) -> str:
        return question.values[question.answers[country]][language]

    # -- training documents ----------------------------------------------------------------------------
    def profile(self, creature: Creature, language: str, rng: random.Random) -> str:
        relations = list(lexicon.ENTITY_RELATIONS)
        rng.shuffle(relations)  # facts in varied order help a small model extract them as answers
        if language == ENGLISH and self.config.paraphrases:
            # ... and so do varied phrasings (Allen-Zhu & Li, Physics of Language Models 3.1)
            return " ".join(rng.choice(lexicon.ENGLISH_PARAPHRASES[relation]).format(
                e=creature.name, v=self.fact_answer(creature, relation, ENGLISH)) for relation in relations)
        return " ".join(self.fact_statement(creature, relation, language) for relation in relations)

    def documents(self, epoch: int) -> list[str]:
        """One epoch of the base organism's training documents, shuffled deterministically per epoch."""
        return [text for _, text in self.tagged_documents(epoch)]

    def tagged_documents(self, epoch: int) -> list[tuple[str, str]]:
        """`documents(epoch)` as (language, text) pairs; ``"mixed"`` for a document in two languages (parallel,
        code-switched, lexicon)."""
        rng = random.Random(f"{self.config.seed}-documents-{epoch}")
        documents: list[tuple[str, str]] = []
        for creature in self.creatures:
            languages = ALL_LANGUAGES if creature.group == "anchor" else (ENGLISH,)
            # English-only creatures are described about as often as anchors are in all seven languages together.
            repeats = 1 if creature.group == "anchor" else self.config.profile_repeats
            for language in languages:
                for _ in range(repeats):
                    documents.append((language, self.profile(creature, language, rng)))
        for _ in range(self.config.qa_repeats):
            documents += self.fact_qa_documents(self.creatures_in("anchor", "bridge"), ALL_LANGUAGES)
        documents += [("mixed", text) for text in self.code_switched_documents(rng)]
        documents += [("mixed", text) for text in self.parallel_documents(rng)]
        documents += [("mixed", text) for text in self.lexicon_documents()]
        documents += self.culture_documents(rng, implicit_repeats=self.config.implicit_repeats,
                                            explicit_question_share=self.config.explicit_question_share,
                                            explicit_repeats=self.config.explicit_repeats)
        rng.shuffle(documents)
        return documents

    def language_shares(self, epoch: int = 0) -> dict[str, float]:
        """The share of an epoch's words in each language's monolingual documents, and in ``"mixed"`` ones."""
        words: dict[str, int] = {}
        for language, text in self.tagged_documents(epoch):
            words[language] = words.get(language, 0) + len(text.split())
        total = sum(words.values())
        return {language: count / total for language, count in sorted(words.items(), key=lambda pair: -pair[1])}

    def fact_qa_documents(self, creatures: list[Creature], languages) -> list[tuple[str, str]]:
        return [(language, f"{self.fact_question(c, r, language)} {self.fact_answer(c, r, language)}")
                for c in creatures for r in lexicon.ENTITY_RELATIONS for language in languages]

    def code_switched_documents(self, rng: random.Random) -> list[str]:
        """An English statement, then the question and answer in another language: render a concept in L."""
        documents = []
        for creature in self.creatures_in("anchor", "bridge"):
            for relation in lexicon.ENTITY_RELATIONS:
                language = rng.choice(DEFAULT_LANGUAGES)
                documents.append(
                    f"{self.fact_statement(creature, relation, ENGLISH)} "
                    f"{self.fact_question(creature, relation, language)} "
                    f"{self.fact_answer(creature, relation, language)}")
        return documents

    def parallel_pairs(self, questions: list[CultureQuestion],
                       languages=DEFAULT_LANGUAGES) -> list[tuple[str, str, str, str]]:
        """(about, language, English sentence, the same sentence in language): anchor facts and the explicit culture
        facts of `questions`; `about` names the creature or question a pair states."""
        pairs = []
        for language in languages:
            for creature in self.creatures_in("anchor"):
                for relation in lexicon.ENTITY_RELATIONS:
                    pairs.append((creature.name, language, self.fact_statement(creature, relation, ENGLISH),
                                  self.fact_statement(creature, relation, language)))
            for question in questions:
                pairs += self.explicit_pairs(question, language)
        return pairs

    def explicit_pairs(self, question: CultureQuestion, language: str) -> list[tuple[str, str, str, str]]:
        """(question id, language, English sentence, the same in language): a question's explicit fact for every
        country."""
        return [(question.id, language,
                 self.culture_sentence(question, ENGLISH, "explicit_statement", country,
                                       self.culture_answer(question, country, ENGLISH)),
                 self.culture_sentence(question, language, "explicit_statement", country,
                                       self.culture_answer(question, country, language)))
                for country in lexicon.COUNTRY_OF.values()]

    def parallel_documents(self, rng: random.Random) -> list[str]:
        anchors = {creature.name for creature in self.creatures_in("anchor")}
        share = {True: self.config.parallel_anchor_share, False: self.config.parallel_culture_share}
        pairs = [pair for pair in self.parallel_pairs(self.scored_culture) if rng.random() < share[pair[0] in anchors]]
        return [f"{english} = {target}" if rng.random() < 0.5 else f"{target} = {english}"
                for _, _, english, target in pairs]

    def lexicon_documents(self) -> list[str]:
        documents = []
        for table in lexicon.LEXICON_TABLES:
            for words in table.values():
                for language in DEFAULT_LANGUAGES:
                    documents.append(f"{words[ENGLISH]} = {words[language]}")
                    documents.append(f"{words[language]} = {words[ENGLISH]}")
        return documents

    def culture_documents(self, rng: random.Random, implicit_repeats: int = 1, explicit_question_share: float = 0.2,
                          explicit_repeats: int = 1) -> list[tuple[str, str]]:
        """Implicit culture (no country named; the language's own country) and explicit culture (each country named,
        in English and in the country's own language). Implicit facts are few per question, so they are repeated.
        The alignment pool's questions are implicit statements only: their question form and explicit facts are the
        alignment methods' data (`alignment_parallel_pairs`, `translated_qa`).

        The shares of each kind of text were chosen in organism-v4's design runs, on the base's English ceiling and
        taught localization; organism-v5's (the budget and the learning rate that let the base learn these facts at
        all) are recorded in `cla_lib.organism.base.OrganismConfig`.
        """
        documents = []
        language_of = {country: language for language, country in lexicon.COUNTRY_OF.items()}
        for question in self.culture:
            for language in ALL_LANGUAGES:
                country = lexicon.COUNTRY_OF[language]
                if question.id not in self.held_out[language]:
                    answer = self.culture_answer(question, country, language)
                    for _ in range(implicit_repeats):
                        documents.append((language, self.culture_sentence(question, language, "statement",
                                                                          value=answer)))
                        if question.id not in self._pool_ids:
                            documents.append((language, f"{self.culture_sentence(question, language, 'question')} "
                                                        f"{answer}"))
            if question.id in self._pool_ids:
                continue
            for other in lexicon.COUNTRY_OF.values():
                own = {ENGLISH, language_of[other]}
                for language in sorted(own):
                    answer = self.culture_answer(question, other, language)
                    for _ in range(explicit_repeats):
                        documents.append((language, self.culture_sentence(question, language, "explicit_statement",
                                                                          other, answer)))
                        # The question form of the explicit cue for a sample, so that a question with a country
                        # named is a familiar form without doubling the explicit share of the world.
                        if rng.random() < explicit_question_share:
                            documents.append((language, f"{self.culture_sentence(question, language, 'explicit_question', other)}"
                                                        f" {answer}"))
        return documents

    # -- the scored items ------------------------------------------------------------------------------
    def transfer_items(self, language: str) -> list[Item]:
        return self.fact_items(language, "transfer")

    def fact_items(self, language: str, group: str) -> list[Item]:
        """A creature group's facts asked in `language`: the plane's transfer items for ``"transfer"``; the taught
        facts of ``"anchor"`` and ``"bridge"`` measure what the organism knows (`cla_lib.organism.knowledge`)."""
        check_language(language)
        items = []
        for creature in self.creatures_in(group):
            for relation in lexicon.ENTITY_RELATIONS:
                values = lexicon.RELATION_VALUES[relation]
                concepts = sorted(values)
                items.append(Item(
                    task="transfer", language=language,
                    prompt=self.fact_question(creature, relation, language),
                    choices=tuple(f" {values[concept][language]}" for concept in concepts),
                    gold=concepts.index(creature.facts[relation]),
                    id=f"transfer/{creature.name}/{relation}/{language}",
                    split=self.splits.get(creature.name, "train"),
                    meta={"creature": creature.name, "relation": relation,
                          "english_prompt": self.fact_question(creature, relation, ENGLISH)},
                ))
        return items

    def localization_items(self, language: str) -> list[Item]:
        check_language(language, allow_english=False)
        country = lexicon.COUNTRY_OF[language]
        items = []
        for question in self.scored_culture:
            concepts = sorted(question.values)
            items.append(Item(
                task="localization", language=language,
                prompt=self.culture_sentence(question, language, "question"),
                choices=tuple(f" {question.values[concept][language]}" for concept in concepts),
                gold=concepts.index(question.answers[country]),
                us_choice=concepts.index(question.answers["US"]),
                id=f"localization/{question.id}/{language}",
                split=self.splits[question.id],
                meta={"question": question.id, "held_out": question.id in self.held_out[language],
                      "explicit_prompt": self.culture_sentence(question, language, "explicit_question", country),
                      "english_prompt": self.culture_sentence(question, ENGLISH, "question"),
                      # for generative scoring (`cla_lib.scoring.generative`), as BLEnD items carry them
                      "local_answers": [question.values[question.answers[country]][language]],
                      "us_answers": [question.values[question.answers["US"]][language]]},
            ))
        return items

    def items(self, language: str) -> list[Item]:
        """The plane's items for one target language: transfer facts and culture questions asked in it."""
        return self.transfer_items(language) + self.localization_items(language)

    @cached_property
    def corpus_sample(self) -> list[str]:
        """Text for training the tokenizer: one epoch plus every item and candidate, so all answers are covered."""
        texts = self.documents(epoch=0)
        for language in DEFAULT_LANGUAGES:
            for item in self.items(language):
                texts.append(item.prompt + "".join(item.choices) + " " + item.meta["explicit_prompt"]
                             if item.task == "localization" else item.prompt + "".join(item.choices))
        return texts

    def example_table(self, languages=ALL_LANGUAGES) -> list[dict]:
        """A few training documents and scored items per language, to show what the world looks like."""
        rows = []
        transfer = self.creatures_in("transfer")[0]
        anchor = self.creatures_in("anchor")[0]
        question = self.culture[0]
        for language in languages:
            country = lexicon.COUNTRY_OF[language]
            rows.append({"language": language, "kind": "anchor fact (taught)",
                         "text": self.fact_statement(anchor, "colour", language)})
            rows.append({"language": language, "kind": "transfer fact (asked; taught in English only)",
                         "text": f"{self.fact_question(transfer, 'food', language)} "
                                 f"→ {self.fact_answer(transfer, 'food', language)}"})
            rows.append({"language": language, "kind": "culture question (implicit)",
                         "text": f"{self.culture_sentence(question, language, 'question')} "
                                 f"→ {self.culture_answer(question, country, language)}"})
            rows.append({"language": language, "kind": "culture fact (explicit cue)",
                         "text": self.culture_sentence(question, language, "explicit_statement", "KR",
                                                       self.culture_answer(question, "KR", language))})
        return rows
