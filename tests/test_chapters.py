"""Tests for the helpers the chapters call: their set-up, and the analysis they once defined in cells."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from cla_lib.claims.analysis import cross_layer_cosine, mean_abs_cosine, vector_cosines
from cla_lib.book.chapters import by_split, chapter_setup
from cla_lib.claims.comparison import configuration_gain
from cla_lib.plane.evaluation import MissingDataError
from cla_lib.steering import SteeringVector, sweep_means

ROOT = Path(__file__).resolve().parents[1]


def test_a_chapter_setup_applies_the_seed_to_an_organism_and_reads_the_lists():
    setup = chapter_setup("organism", "ko,es", seed=2, organism_size="tiny", aligned="midalign, clo", alphas="1,4")
    assert (setup.name, setup.reference.seed, setup.reference.size) == ("organism@2", 2, "tiny")
    assert setup.languages == ["ko", "es"] and setup.languages_text == "ko, es"
    assert setup.aligned == ["midalign", "clo"] and setup.grid == [0.0, 1.0, 4.0]
    assert setup.label == "the tiny model organism (seed 2)"
    assert setup.aligned_reference("clo").name == "organism:clo@2"
    assert chapter_setup("organism@1", "ko", seed=2).reference.seed == 1  # a seed in the name wins


def test_a_real_model_has_no_aligned_organisms(tiny_llama_dir):
    setup = chapter_setup(str(tiny_llama_dir), "ko", aligned="midalign", embedded_world=True)
    assert not setup.is_organism and setup.aligned == [] and setup.label == str(tiny_llama_dir)
    assert setup.directory() == str(tiny_llama_dir)


def test_a_real_model_without_its_data_is_refused_by_the_chapter_in_its_parameters_words(tiny_llama_dir):
    with pytest.raises(MissingDataError, match="give -p transfer_data .* and -p localization_data .* or -p "
                                               "embedded_world True"):
        chapter_setup(str(tiny_llama_dir), "ko")
    with pytest.raises(MissingDataError):  # one axis is not enough: the other would silently be the fictional one
        chapter_setup(str(tiny_llama_dir), "ko", transfer_data="CohereForAI/Global-MMLU")
    given = chapter_setup(str(tiny_llama_dir), "ko", transfer_data="t", localization_data="l")
    assert (given.transfer_data, given.localization_data) == ("t", "l")  # what setup.items() reads
    assert chapter_setup("organism", "ko").transfer_data is None  # an organism needs none


def test_a_chapter_refuses_a_parameter_that_cannot_mean_anything_before_anything_loads():
    for parameters, message in ((dict(alphas="1,0"), "-p alphas='1,0': 0 is not a finite nonzero strength"),
                                (dict(seed=-2), "-p seed=-2: -2 is below 0"),
                                (dict(aligned="clo,xyz"), "-p aligned='clo,xyz': unknown method(s) xyz"),
                                (dict(organism_size="huge"), "-p organism_size='huge': unknown organism size")):
        with pytest.raises(ValueError, match=re.escape(message)):
            chapter_setup("organism", "ko", **parameters)


def test_the_sweeps_try_every_kth_layer_from_the_first():
    assert chapter_setup("organism", "ko").swept_layers(8) == list(range(8))
    assert chapter_setup("organism", "ko", layer_stride=3).swept_layers(8) == [0, 3, 6]
    with pytest.raises(ValueError, match="-p layer_stride='two': not a whole number"):
        chapter_setup("organism", "ko", layer_stride="two")


def test_a_rerun_estimate_counts_the_layers_and_strengths_its_parameters_set():
    from cla_lib.book.costs import chapter_costs

    workload = {"items": 10, "sequences": 40, "tokens": 400, "head_positions": 10, "forwards": 1, "read_prompts": 5,
                "read_tokens": 50, "extract": 0.2, "validation": 0.2, "test": 0.6}
    chapter = ROOT / "book" / "03_layer_dissociation.ipynb"
    full = chapter_costs(workload, [chapter], layers=30).iloc[0]
    strided = chapter_costs(workload, [chapter], layers=30, parameters={"layer_stride": 15, "alphas": "2"}).iloc[0]
    # (4.5 x layers x strengths + layers) swept configurations (costs.CHAPTER_WORK): 435 for 30 layers at three
    # strengths, 11 for 2 layers (0 and 15) at one
    assert strided.swept_passes == pytest.approx(full.swept_passes * 11 / 435, abs=0.01)
    assert strided.scoring_passes == full.scoring_passes


def test_by_split_groups_items_and_refuses_a_question_in_two_splits(tiny_llama_dir):
    items = chapter_setup(str(tiny_llama_dir), "ko", embedded_world=True).items()
    split = by_split(items)
    assert sum(len(part) for part in split.values()) == len(items)
    leaked = split["extract"][0]
    with pytest.raises(ValueError, match="overlap"):
        by_split(items + [type(leaked)(**{**leaked.__dict__, "split": "test", "id": leaked.id + "/again"})])


def vector(values: dict[int, list[float]], **source) -> SteeringVector:
    return SteeringVector({layer: torch.tensor(v, dtype=torch.float32) for layer, v in values.items()}, source)


def test_the_cross_layer_cosine_compares_each_vector_at_its_own_layer():
    vectors = {"en.ko": vector({0: [1, 0], 1: [0, 1]}), "loc.ko": vector({0: [0, 1], 1: [-1, 0]}),
               "en.es": vector({0: [1, 1], 1: [1, 0]}), "loc.es": vector({0: [1, 0], 1: [0, 1]})}
    # ko: en@0 = (1, 0), loc@1 = (-1, 0): |cos| 1; es: en@0 = (1, 1), loc@1 = (0, 1): |cos| 1/sqrt(2)
    assert cross_layer_cosine(vectors, ["ko", "es"], 0, 1) == pytest.approx((1 + 2 ** -0.5) / 2)
    cosines = vector_cosines(vectors, [("en", "loc")], ["ko", "es"])
    assert mean_abs_cosine(cosines, "en", "loc", 0) == pytest.approx((0 + 2 ** -0.5) / 2)


def test_a_configuration_gain_is_the_difference_from_the_unsteered_row():
    means = pd.DataFrame({"transfer": [0.25, 0.5], "localization": [0.5, 0.25]},
                         index=pd.MultiIndex.from_tuples([("base", "unsteered"), ("base", "EN")]))
    assert configuration_gain(means, "base", "EN", "transfer") == 0.25
    assert configuration_gain(means, "base", "EN", "localization") == -0.25


def test_sweep_means_average_the_matching_rows():
    frame = pd.DataFrame({"layer": [0, 0, 1], "alpha": [0.0, 2.0, 2.0], "transfer": [0.1, 0.3, 0.5],
                          "localization": [0.2, 0.4, 0.6]})
    means = sweep_means(frame, alpha=2.0)
    assert means.transfer == pytest.approx(0.4) and means.localization == pytest.approx(0.5)
    assert sweep_means(frame, layer=0, alpha=0.0).transfer == pytest.approx(0.1)


def test_the_books_tables_show_counts_as_integers_three_decimals_and_whole_cells():
    import pandas as pd

    from cla_lib.book.chapters import table_style

    with pd.option_context("display.float_format", None, "display.max_colwidth", 50):  # restored afterwards
        table_style()
        html = pd.DataFrame({"records": [3174.0, 2304.0], "accuracy": [0.1234567, 0.5],
                             "interval": ["[0.101, 0.202] " * 10, "x"]})._repr_html_()
    assert "<td>3174</td>" in html and "<td>0.123</td>" in html and "<td>0.500</td>" in html
    assert "…" not in html and "..." not in html
