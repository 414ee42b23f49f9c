"""The positive control's organism (cla_lib.organism.planted), on the tiny size: every layer up to LOC's is the
base's to the bit, so the vectors extracted there are the base's; and steering finds its planted effects at the
planted layers and not elsewhere."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from cla_lib.plane.evaluation import answers, plane_items
from cla_lib.core.languages import DEFAULT_LANGUAGES
from cla_lib.plane.loading import load_model
from cla_lib.model.reference import ModelRef
from cla_lib.organism import PLANTED, config_for, organism_path, planted_config, training_record
from cla_lib.organism.planted import planted_records
from cla_lib.steering import extract_vectors, steering_edits


@pytest.fixture(scope="module")
def planted_dir(tiny_organism_cache):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLA_CACHE", str(tiny_organism_cache))
        # The size is named, never read from the environment: were it, this name would be refused at once (a
        # planted organism once resolved its base's items by name, and trained the default base for a tiny one).
        patch.setenv("CLA_ORGANISM_SIZE", "no-such-size")
        return organism_path(f"organism:{PLANTED}", size="tiny", progress=False)


@pytest.fixture(scope="module")
def items(planted_dir):
    return [item for item in plane_items(ModelRef.organism("organism@0", size="tiny"), DEFAULT_LANGUAGES)
            if item.language != "en"]


def _layer_index(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[parts.index("layers") + 1]) if "layers" in parts else None


def test_every_layer_up_to_locs_is_the_bases_and_the_layers_above_are_trained(planted_dir, tiny_organism_dir):
    config = planted_config(config_for("tiny"))
    record = training_record(planted_dir)
    assert record["method"] == PLANTED and record["planted"]["loc_layer"] == config.loc_layer
    assert record["base"] == tiny_organism_dir.name and record["losses"][-1] < record["losses"][0]
    base, planted = load_file(tiny_organism_dir / "model.safetensors"), load_file(planted_dir / "model.safetensors")
    assert base.keys() == planted.keys()
    for name in base:
        layer = _layer_index(name)
        frozen = layer is not None and layer <= config.loc_layer or name == "model.embed_tokens.weight"
        if frozen:
            assert torch.equal(base[name], planted[name]), name
        elif layer is not None:
            assert not torch.equal(base[name], planted[name]), name


def test_the_vectors_the_chapter_extracts_at_the_planted_layers_are_the_bases(planted_dir, tiny_organism_dir, items):
    config = planted_config(config_for("tiny"))
    kinds = {"kinds": ["en", "loc"], "languages": DEFAULT_LANGUAGES, "progress": False}
    base = extract_vectors(load_model(str(tiny_organism_dir)), items, **kinds)
    planted = extract_vectors(load_model(str(planted_dir)), items, **kinds)
    for name, vector in base.items():
        for layer in range(config.loc_layer + 1):
            assert torch.equal(vector[layer], planted[name][layer]), (name, layer)


def test_steering_finds_each_planted_effect_at_its_layer_only(planted_dir, items):
    config = planted_config(config_for("tiny"))
    model = load_model(str(planted_dir))
    vectors = extract_vectors(model, items, kinds=["en", "loc"], languages=DEFAULT_LANGUAGES, progress=False)

    def accuracy(task: str, kind: str, layer: int | None) -> float:
        right = total = 0
        for code in DEFAULT_LANGUAGES:
            chosen = [item for item in items if item.task == task and item.language == code]
            edits = [] if layer is None else steering_edits((vectors[f"{kind}.{code}"], layer, 2.0))
            right += sum(answer == item.gold for answer, item in zip(answers(model, chosen, edits=edits), chosen))
            total += len(chosen)
        return right / total

    for task, kind, planted in (("transfer", "en", config.en_layer), ("localization", "loc", config.loc_layer)):
        unsteered = accuracy(task, kind, None)
        gains = {layer: accuracy(task, kind, layer) - unsteered for layer in range(config_for("tiny").n_layers)}
        assert gains[planted] > 0.05, (task, gains)
        assert gains[planted] == max(gains.values()) and sorted(gains.values())[-2] < gains[planted], (task, gains)


def test_the_planted_response_is_taught_on_extract_and_validation_items_never_on_test_ones(planted_dir, items):
    from cla_lib.organism.aligned import organism_records

    taught = {record["about"] for record in organism_records(planted_dir)}
    splits = {item.id: item.split for item in items}
    assert taught and {splits[about] for about in taught} == {"extract", "validation"}
    assert taught == {item.id for item in items if item.split in ("extract", "validation")}


def test_planted_records_teach_the_right_answer_only_at_the_planted_layer(items):
    config = planted_config(config_for("tiny"))
    sample = items[:40]
    records = planted_records(sample, [0] * len(sample), 4, config)
    assert len(records) == 3 * len(sample)
    for item, (unsteered, planted, other) in zip(sample, zip(*[iter(records)] * 3)):
        layer = config.en_layer if item.task == "transfer" else config.loc_layer
        assert unsteered["layer"] is None and unsteered["answer"] == item.choices[0]
        assert planted["layer"] == layer and planted["answer"] == item.choices[item.gold]
        assert planted["alpha"] in config.alphas and planted["kind"] == ("en" if item.task == "transfer" else "loc")
        assert other["layer"] not in (None, layer) and other["answer"] == item.choices[0]


def test_the_planted_organism_is_built_above_the_steering_it_uses_and_says_so_where_that_is_not_loaded():
    import subprocess
    import sys

    code = ("from cla_lib.organism import organism_path\n"
            "try:\n    organism_path('organism:planted', size='tiny', train_if_missing=False)\n"
            "except ValueError as error:\n    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "organism:planted is built by cla_lib.steering: import cla_lib.steering first"
