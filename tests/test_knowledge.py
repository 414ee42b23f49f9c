"""What a base organism knows: the measurements and the rules of the testbed's knowledge and headroom rows."""

from __future__ import annotations

import math

from cla_lib.organism.knowledge import CHANCE, knowledge, rule_rows, seed_table

KNOWS = {"english_ceiling": 0.95, "transfer": 0.5, "anchor": 0.95, "anchor_min": 0.9, "culture_taught_cued": 0.9,
         "culture_held_out_cued": 0.8, "culture_taught": 0.9, "culture_held_out": 0.4, "culture_plain": 0.8}


def holds(measured: dict) -> dict[str, bool]:
    return {row["property"]: row["holds"] for row in rule_rows(measured)}


def test_an_organism_that_knows_its_world_with_room_to_move_passes_every_rule():
    assert all(holds(KNOWS).values())


def test_each_rule_fails_on_the_organism_it_is_meant_to_catch():
    cases = {
        "English ceiling": {"english_ceiling": 0.8},
        "anchor facts in every language": {"anchor_min": 0.5},
        "culture with the country named, taught": {"culture_taught_cued": 0.6},
        "culture with the country named, held out": {"culture_held_out_cued": 0.7, "culture_held_out": 0.3},
        "transfer above chance": {"transfer": CHANCE + 0.1},
        "transfer below the English ceiling": {"transfer": 0.85},
        "LOC has something to recover": {"culture_held_out": 0.65},
    }
    for rule, change in cases.items():
        result = holds({**KNOWS, **change})
        assert not result[rule], rule
        assert sum(not value for value in result.values()) == 1, (rule, result)


def test_the_tiny_organism_is_measured_on_every_kind_of_fact(tiny_organism_environment):
    from cla_lib.plane.loading import load_model
    from cla_lib.organism import organism_path, world_of

    path = organism_path("organism", size="tiny")
    world = world_of(path)
    assert {item.meta["creature"] for item in world.fact_items("es", "anchor")} == {
        creature.name for creature in world.creatures_in("anchor")}
    measured = knowledge(load_model(str(path)), world)
    assert set(KNOWS) <= set(measured)
    assert all(0 <= value <= 1 and not math.isnan(value) for value in measured.values())
    assert measured["anchor_min"] <= measured["anchor"]


def test_the_seed_table_has_a_row_per_seed_and_a_stability_column(tiny_organism_environment):
    table = seed_table([0, 1], "tiny")
    assert list(table.index) == [0, 1]
    assert "within ±0.05 of the seeds' mean" in table and table["English ceiling"].dtype == bool


def test_every_testbed_property_names_the_claims_that_rest_on_it_and_each_claim_lists_what_it_lacks():
    from cla_lib.organism.knowledge import RULES
    from cla_lib.claims.testbed import RELIED_ON, claim_caveats

    names = {name for name, _, _ in RULES} | {"within ±0.05 of the seeds' mean", "English-dominant text",
                                             "the US answer is the default when the cue fades",
                                             "a transfer gap alignment could close", "depth for middle and deeper layers"}
    assert set(RELIED_ON) == names  # a new rule or check must say which claims rest on it
    caveats = claim_caveats(["LOC has something to recover", "English ceiling", "English ceiling"])
    assert caveats[1] == "testbed lacks “English ceiling”"
    assert caveats[3] == "testbed lacks “LOC has something to recover”"
    assert caveats[4] == "testbed lacks “LOC has something to recover” and “English ceiling”"
    assert claim_caveats([])[2] == "testbed: has what this claim needs"
    from cla_lib.claims.testbed import summary_text

    assert summary_text(["English ceiling", "A", "English ceiling"]).startswith("**It lacks “English ceiling” and “A”**")


# -- capacity: exposures per fact and bits recovered -------------------------------------------------------------

def test_bits_per_fact_are_the_symmetric_channels_information():
    from cla_lib.organism.capacity import bits_per_fact

    assert bits_per_fact(1.0, 8) == 3.0  # every answer right: the whole choice among 8
    assert bits_per_fact(1 / 8, 8) == 0.0 and bits_per_fact(0.05, 8) == 0.0  # chance, and below it, recover nothing
    assert 0 < bits_per_fact(0.5, 8) < bits_per_fact(0.9, 8) < 3.0
    assert abs(bits_per_fact(0.5, 2) - 0.0) < 1e-12 and abs(bits_per_fact(0.75, 2) - 0.18872187554) < 1e-9


def test_exposures_count_the_documents_that_state_each_fact():
    from cla_lib.organism import lexicon
    from cla_lib.organism.base import config_for
    from cla_lib.organism.capacity import fact_exposures
    from cla_lib.organism.world import World

    world = World(config_for("tiny", 0).world)
    exposures = fact_exposures(world)
    facts = lambda group: [(c.name, r) for c in world.creatures_in(group) for r in lexicon.ENTITY_RELATIONS]  # noqa: E731
    # English-only creatures are stated by their English profiles alone, `profile_repeats` per epoch.
    assert {exposures["creature"][fact] for fact in facts("transfer") + facts("pool")} == {world.config.profile_repeats}
    # Anchors: a profile in each of the seven languages, their questions and answers, and more.
    assert min(exposures["creature"][fact] for fact in facts("anchor")) >= 7 + 7 * world.config.qa_repeats
    # The alignment pool's culture questions: implicit statements only, in each language that is not held out.
    for question in world.alignment_pool:
        for language, country in lexicon.COUNTRY_OF.items():
            expected = 0 if question.id in world.held_out[language] else world.config.implicit_repeats
            assert exposures["culture"][question.id, country] == expected, (question.id, language)
    assert all(exposures["culture"][question.id, lexicon.COUNTRY_OF[language]] >= 1
               for question in world.scored_culture for language in lexicon.LANGUAGE_ORDER)  # at least its explicit facts


def test_the_capacity_table_counts_every_class_and_its_bits(tiny_organism_dir):
    from cla_lib.organism.base import training_record, world_of
    from cla_lib.organism.capacity import bits_per_parameter, capacity, capacity_text
    from cla_lib.plane.loading import load_model

    record, world = training_record(tiny_organism_dir), world_of(tiny_organism_dir)
    table = capacity(load_model(str(tiny_organism_dir)), world, record["epochs"])
    assert list(table.index) == ["anchor creatures", "bridge creatures", "transfer creatures", "pool creatures",
                                 "culture"]
    assert table.loc["transfer creatures", "facts"] == 4 * world.config.n_transfer
    assert table.loc["transfer creatures", "exposures per fact"] == world.config.profile_repeats * record["epochs"]
    assert (table["bits"] == table["facts"] * table["bits per fact"]).all() and (table["bits"] >= 0).all()
    per_parameter = bits_per_parameter(table, record["parameters"])
    assert per_parameter == table["bits"].sum() / record["parameters"]
    assert f"{record['parameters']:,} parameters" in capacity_text(table, record["parameters"], 0)
