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
