"""How much of its world a base organism stores: exposures per fact and bits recovered per parameter.

Small transformers store about 2 bits of knowledge per parameter when every fact is seen ~1,000 times, and about 1
bit at ~100 exposures (Allen-Zhu & Li, *Physics of Language Models* 3.3). This module counts how often the world's
text states each kind of fact and how many bits the organism's answers recover, so that chapter 1 can set the
organism beside that scale: an organism far below it has room to spare, one near it is full.

A fact's *exposures* are the training documents that state it (a profile states all of a creature's facts; a
question-answer pair, a code-switched or a parallel document one), counted in one epoch's documents and multiplied
by the epochs trained. The *bits* a class of facts holds are what its answers recover: for k candidates answered
right at rate a, the mutual information of a k-ary symmetric channel, log2 k + a log2 a + (1 - a) log2((1 - a) /
(k - 1)) per fact (0 at or below chance): a lower bound on what the weights store, read only through the argmax.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from statistics import mean

import pandas as pd

from cla_lib.core.languages import DEFAULT_LANGUAGES, ENGLISH
from cla_lib.organism import lexicon
from cla_lib.organism.knowledge import accuracy
from cla_lib.organism.world import World, capitalize
from cla_lib.plane.evaluation import with_explicit_cue

# (class, creature group, what the row says)
CREATURE_CLASSES = (
    ("anchor creatures", "anchor", "described and quizzed in all seven languages"),
    ("bridge creatures", "bridge", "described in English, quizzed in all seven"),
    ("transfer creatures", "transfer", "described in English only, never quizzed"),
    ("pool creatures", "pool", "described in English only (their questions are alignment data)"),
)


def bits_per_fact(rate: float, candidates: float) -> float:
    """Mutual information (bits) between a fact and the answer to it, for `candidates` equally likely values
    answered right at `rate` and wrongly spread evenly over the rest; 0 at or below chance."""
    if candidates <= 1 or rate <= 1 / candidates:
        return 0.0
    wrong = 1 - rate
    return math.log2(candidates) + rate * math.log2(rate) + (
        wrong * math.log2(wrong / (candidates - 1)) if wrong > 0 else 0.0)


def fact_exposures(world: World, epoch: int = 0) -> dict[str, Counter]:
    """Documents of one epoch stating each fact: ``{"creature": Counter((name, relation)), "culture":
    Counter((question id, country))}``. A creature fact is stated where the creature is named beside its value (in
    any language); a culture fact where the question's topic appears with the country named, or without a country in
    a document of the country's own language (its implicit statements and questions)."""
    names = {creature.name for creature in world.creatures}
    values = {(creature.name, relation): set(lexicon.RELATION_VALUES[relation][creature.facts[relation]].values())
              for creature in world.creatures for relation in lexicon.ENTITY_RELATIONS}
    topics = {form: (question.id, language) for question in world.culture for language, topic in question.topic.items()
              for form in (topic, capitalize(topic))}  # a sentence may open with the topic
    topic_pattern = re.compile("|".join(map(re.escape, sorted(topics, key=len, reverse=True))))
    cues = [(cue, country) for country, by_language in lexicon.IN_COUNTRY.items() for cue in by_language.values()]
    country_of = lexicon.COUNTRY_OF
    creature_counts, culture_counts = Counter(), Counter()
    for language, text in world.tagged_documents(epoch):
        for name in {word for word in re.findall(r"\w+", text) if word in names}:
            creature_counts.update((name, relation) for relation in lexicon.ENTITY_RELATIONS
                                   if any(value in text for value in values[name, relation]))
        found = {topics[match.group(0)] for match in topic_pattern.finditer(text)}
        if not found:
            continue
        named = {country for cue, country in cues if cue in text}
        for question, topic_language in found:
            countries = named or ({country_of[language]} if language == topic_language else set())
            culture_counts.update((question, country) for country in countries)
    return {"creature": creature_counts, "culture": culture_counts}


def capacity(lm, world: World, epochs: float) -> pd.DataFrame:
    """One row per class of fact the base organism was taught: how many facts, the median exposures per fact over
    its training (`epochs` of the world), how often it answers them (asked in English; culture asked in each target
    language with its country named) and the bits that recovers."""
    exposures = fact_exposures(world)
    rows = []
    for name, group, about in CREATURE_CLASSES:
        creatures = world.creatures_in(group)
        if not creatures:
            continue
        items = world.fact_items(ENGLISH, group)
        facts = [(creature.name, relation) for creature in creatures for relation in lexicon.ENTITY_RELATIONS]
        rows.append(_row(name, about, len(facts), [exposures["creature"][fact] * epochs for fact in facts],
                         accuracy(lm, items), mean(len(item.choices) for item in items)))
    cued = with_explicit_cue([item for language in DEFAULT_LANGUAGES for item in world.localization_items(language)])
    facts = [(question.id, lexicon.COUNTRY_OF[language]) for question in world.scored_culture
             for language in DEFAULT_LANGUAGES]
    rows.append(_row("culture", "each question's answer in each target language's country", len(facts),
                     [exposures["culture"][fact] * epochs for fact in facts], accuracy(lm, cued),
                     mean(len(item.choices) for item in cued)))
    return pd.DataFrame(rows).set_index("facts of")


def _row(name: str, about: str, facts: int, exposures: list[float], accuracy: float, candidates: float) -> dict:
    per_fact = bits_per_fact(accuracy, candidates)
    return {"facts of": name, "taught": about, "facts": facts, "exposures per fact": float(pd.Series(exposures).median()),
            "answered": accuracy, "candidates": candidates, "bits per fact": per_fact, "bits": facts * per_fact}


def bits_per_parameter(table: pd.DataFrame, parameters: int) -> float:
    return float(table["bits"].sum()) / parameters


# Allen-Zhu & Li's capacity scale: bits per parameter stored by small transformers at ~1,000 exposures per fact.
CAPACITY_SCALE = 2.0


def capacity_text(table: pd.DataFrame, parameters: int, seed: int) -> str:
    """What `capacity`'s table says, for the page (the page cites the capacity scale)."""
    per_parameter = bits_per_parameter(table, parameters)
    whole = float((table["facts"] * table["candidates"].map(math.log2)).sum()) / parameters
    exposures = table["exposures per fact"]
    return (f"From its answers, seed {seed}'s base organism recovers {table['bits'].sum():,.0f} bits of its world's "
            f"{int(table['facts'].sum()):,} facts: {per_parameter:.4f} bits per parameter ({parameters:,} parameters; "
            f"every fact known would be {whole:.4f}), {CAPACITY_SCALE / per_parameter:,.0f} times below the "
            f"~{CAPACITY_SCALE:g} bits per parameter of the capacity scale. Each fact was stated "
            f"{exposures.min():.0f}–{exposures.max():.0f} times (the median of each class), so what the organism "
            "does not know is not for want of room in its weights: it is what its text gives each fact, the "
            "exposures and the phrasings.")
