"""Tests for cla_lib.model.reference: one parser for every way of naming a model, and the entry points that use it."""

from __future__ import annotations

import json

import pytest

from cla_lib.book import rerun
from cla_lib.cli import main
from cla_lib.plane.loading import load_model
from cla_lib.model import ModelNotFoundError, ModelRef, UnknownOrganismError, n_layers
from cla_lib.organism import World, config_for, organism_path, world_of

CHAPTER_01 = rerun.BOOK / "01_organism_plane.ipynb"


@pytest.mark.parametrize("text, method, seed", [
    ("organism", "base", 0), ("organism@1", "base", 1), ("organism:clo", "clo", 0), ("organism:clo@2", "clo", 2),
])
def test_organism_names_parse_into_method_and_seed(text, method, seed):
    reference = ModelRef.parse(text, size="tiny")
    assert (reference.kind, reference.method, reference.seed, reference.size) == ("organism", method, seed, "tiny")
    assert reference.is_local and str(reference) == text


def test_presets_hub_ids_and_directories_parse_into_their_fields(tiny_llama_dir):
    preset = ModelRef.parse("gemma-3-12b-it")
    assert (preset.kind, preset.hub_id, preset.layers) == ("preset", "google/gemma-3-12b-it", 48)
    assert ModelRef.parse("google/gemma-3-12b-it").kind == "preset"  # a preset's hub id is the preset
    hub = ModelRef.parse("some-owner/some-model")
    assert (hub.kind, hub.hub_id, hub.layers, hub.is_local) == ("hub", "some-owner/some-model", None, False)
    directory = ModelRef.parse(str(tiny_llama_dir))
    assert (directory.kind, directory.path, directory.layers) == ("directory", tiny_llama_dir, 2)
    assert ModelRef.parse(directory) is directory  # parsing a reference again changes nothing


def test_bad_names_are_refused_with_the_accepted_forms():
    with pytest.raises(ModelNotFoundError, match=r"organism\[:method\]\[@seed\]"):
        ModelRef.parse("no such model")
    with pytest.raises(UnknownOrganismError, match="seed must be a number"):
        ModelRef.parse("organism@x")


# -- the three entry points that disagreed before there was one parser ------------------------------------------


def test_load_model_takes_an_organism_seed_and_size(tiny_organism_environment):
    model = load_model("organism@1", size="tiny")
    assert n_layers(model) == config_for("tiny").n_layers
    assert model._module.name_or_path == str(organism_path("organism@1", size="tiny"))
    assert world_of(model._module.name_or_path).config.seed == 1


def test_cla_plane_runs_an_aligned_organism_of_another_seed(tiny_organism_environment, capsys):
    assert main(["plane", "--model", "organism:clo@2", "--language", "ko", "--json", "--organism-size", "tiny"]) == 0
    (point,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert point["model"] == "organism:clo@2" and point["language"] == "ko" and 0 <= point["transfer"] <= 1


def test_the_cost_of_an_organism_seed_counts_the_organisms_own_layers_and_world(tiny_organism_environment):
    frame = rerun.estimate("organism@1", "ko", [CHAPTER_01], organism_size="tiny")
    config = config_for("tiny", seed=1)
    assert frame.attrs["layers"] == config.n_layers != 32
    world = World(config.world)
    items = world.transfer_items("en") + world.items("ko")
    assert frame.attrs["items"] == len(items)
