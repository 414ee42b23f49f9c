"""A chapter's results files and their provenance (cla_lib.book.publish, cla_lib.book.provenance)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cla_lib.book import provenance
from cla_lib.book.publish import flat, publish, verdict_record
from cla_lib.claims.verdicts import plane_claims


@pytest.fixture
def plane():
    return pd.DataFrame({"language": ["ko", "fa"], "transfer": [0.5, 0.2], "localization": [0.6, 0.1],
                         "transfer_interval": [[0.4, 0.6], [0.1, 0.3]],
                         "localization_interval": [[0.5, 0.7], [0.05, 0.2]]})


def test_interval_columns_become_low_and_high_numbers(plane):
    table = flat(plane)
    assert list(table.columns) == ["language", "transfer", "localization", "transfer_interval_low",
                                   "transfer_interval_high", "localization_interval_low",
                                   "localization_interval_high"]
    assert table.transfer_interval_high.tolist() == [0.6, 0.3]


def test_publish_writes_csv_json_and_provenance_and_links_every_file(tmp_path, plane):
    verdict = plane_claims(plane, chance={"transfer": 0.125, "localization": 0.15})
    published = publish("01_x", directory=tmp_path, models=["gpt2"], parameters={"language": "ko"},
                        plane=plane.set_index("language"), claim=verdict_record(verdict))
    folder = tmp_path / "01_x"
    assert sorted(path.name for path in folder.iterdir()) == ["claim.json", "plane.csv", "provenance.json"]
    reread = pd.read_csv(folder / "plane.csv")
    assert reread.language.tolist() == ["ko", "fa"] and reread.localization_interval_low.tolist() == [0.5, 0.05]
    claim = json.loads((folder / "claim.json").read_text())
    assert claim["status"] == "partly holds" and len(claim["rows"]) == 4
    record = json.loads((folder / "provenance.json").read_text())
    assert record["models"] == ["gpt2"] and record["parameters"] == {"language": "ko"}
    assert set(provenance.PACKAGES) <= set(record["versions"])
    for path in published.files.values():
        assert f"<{path.as_posix()}>" in published.links
    assert "`gpt2`" in published.provenance and "commit" in published.provenance


def test_results_go_where_CLA_RESULTS_says(tmp_path, monkeypatch, plane):
    monkeypatch.setenv("CLA_RESULTS", str(tmp_path / "elsewhere"))
    publish("02_y", plane=plane)
    assert (tmp_path / "elsewhere" / "02_y" / "plane.csv").exists()


def test_provenance_names_the_commit_and_an_organism_by_its_cache_key(tmp_path):
    organism = tmp_path / "base-0123456789ab"
    organism.mkdir()
    # an organism's training record names its world (a model aligned by `cla align` has a record without one)
    (organism / "training.json").write_text('{"config": {"world": {"seed": 0}}}')
    record = provenance.provenance([organism, "gpt2", organism])
    assert record["models"] == ["base-0123456789ab", "gpt2"]
    assert record["commit"] and record["built"].endswith("UTC")
    assert "base-0123456789ab" in provenance.markdown(record)


def test_provenance_records_the_machine_the_numerics_pins_and_each_organisms_weight_hash(tmp_path, monkeypatch):
    import hashlib

    organism = tmp_path / "base-0123456789ab"
    organism.mkdir()
    (organism / "training.json").write_text('{"config": {"world": {"seed": 0}}}')
    (organism / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.setenv("NDIF_API_KEY", "secret-value-123")
    record = provenance.provenance([organism])
    assert record["weights"] == {"base-0123456789ab": hashlib.sha256(b"weights").hexdigest()}
    machine = record["machine"]
    assert machine["instruction_set"] and machine["torch_threads"] >= 1 and machine["cpu"]
    assert machine["numerics"] == {"MKL_CBWR": "COMPATIBLE"}  # the pins only: no other variable
    text = provenance.markdown(record)
    assert "MKL_CBWR=COMPATIBLE" in text and hashlib.sha256(b"weights").hexdigest()[:16] in text
    assert "secret-value-123" not in json.dumps(record)
    monkeypatch.delenv("MKL_CBWR")
    assert "numerics" not in provenance.provenance()["machine"]


def test_the_footer_carries_no_environment_values(monkeypatch):
    monkeypatch.setenv("NDIF_API_KEY", "secret-value-123")
    footer = provenance.footer_html(provenance.provenance())
    assert "secret-value-123" not in footer and "nnsight" in footer


def test_plane_claim_holds_only_when_every_interval_clears_chance(plane):
    chance = {"transfer": 0.125, "localization": 0.15}
    assert plane_claims(plane.iloc[:1], chance=chance).status == "holds"
    assert plane_claims(plane, chance=chance).status == "partly holds"
    assert plane_claims(plane, chance={"transfer": 0.9, "localization": 0.9}).status == "fails"


def test_provenance_records_where_models_loaded_real_models_revisions_and_the_datas(tmp_path, monkeypatch,
                                                                                  tiny_llama_dir):
    from cla_lib.plane.loading import use_placement

    for name in ("CLA_DEVICE", "CLA_DTYPE"):
        # set first, so that monkeypatch restores them after use_placement writes them below (a bare delenv of an
        # absent variable records nothing to undo)
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    data = tmp_path / "blend"
    data.mkdir()
    (data / "questions.csv").write_text("ID,Question\n1,q\n")
    parameters = {"seed": 2, "localization_data": str(data), "transfer_data": "CohereLabs/Global-MMLU"}
    record = provenance.provenance(["llama-3.1-8b-instruct", str(tiny_llama_dir)], parameters)
    assert record["placement"] == {"device": "cpu", "dtype": "float32"}
    assert {"peft", "accelerate", "datasets", "torch", "nnsight", "transformers"} <= set(record["versions"])
    assert record["revisions"]["llama-3.1-8b-instruct"] == \
        "meta-llama/Llama-3.1-8B-Instruct@0e9e39f249a16976918f6564b8830bc894c89659"
    assert record["revisions"][str(tiny_llama_dir)].startswith("local directory files:")
    assert record["data"]["localization_data"].startswith("local copy, sha256:")
    assert record["data"]["transfer_data"] == "CohereLabs/Global-MMLU (unpinned: the hub's main when loaded)"
    assert record["parameters"]["seed"] == 2
    before = record["data"]["localization_data"]
    (data / "questions.csv").write_text("ID,Question\n1,changed\n")
    assert provenance.provenance([], parameters)["data"]["localization_data"] != before  # the content, not the path
    use_placement("auto", "bfloat16")  # a device this machine has (a missing one is refused: test_cli)
    assert provenance.provenance()["placement"] == {"device": "auto", "dtype": "bfloat16"}
    text = provenance.markdown(record)
    assert "loaded on cpu in float32" in text and "0e9e39f249a1" in text
