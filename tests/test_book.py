"""Tests for the book's chapters: what every notebook must look like when committed, and one parameterized run of
the first chapter on the tiny organism (papermill, as the CI's smoke run does)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from cla_lib.languages import DEFAULT_LANGUAGES

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
SECRET_NAME = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)


def parameters_cell(notebook: dict) -> dict:
    (cell,) = [cell for cell in notebook["cells"] if "parameters" in cell.get("metadata", {}).get("tags", [])]
    return cell


def assigned_names(source: str) -> set[str]:
    return {target.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def test_there_are_chapters():
    assert CHAPTERS


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.name)
def test_chapter_has_one_parameters_cell_with_model_language_and_seed(path):
    cell = parameters_cell(json.loads(path.read_text(encoding="utf-8")))
    assert cell["cell_type"] == "code"
    assert {"model", "language", "seed"} <= assigned_names("".join(cell["source"]))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.name)
def test_chapter_takes_no_secret_as_a_parameter(path):
    # Keys come from the environment (NDIF_API_KEY), never from a parameter that papermill would write into the
    # output notebook.
    names = assigned_names("".join(parameters_cell(json.loads(path.read_text(encoding="utf-8")))["source"]))
    assert not [name for name in names if SECRET_NAME.search(name)]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.name)
def test_chapter_runs_on_the_python3_kernel_and_is_committed_without_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "".join(cell["source"])[:80]


def test_first_chapter_runs_on_the_tiny_organism_for_one_language(tiny_organism_environment, tmp_path):
    import nbformat
    import papermill

    output = tmp_path / "01_organism_plane.ipynb"
    papermill.execute_notebook(str(ROOT / "book" / "01_organism_plane.ipynb"), str(output),
                               parameters={"organism_size": "tiny", "language": "ko"}, kernel_name="python3",
                               cwd=str(ROOT), progress_bar=False)
    notebook = nbformat.read(output, as_version=4)

    injected = [cell for cell in notebook.cells if "injected-parameters" in cell.metadata.get("tags", [])]
    assert len(injected) == 1
    assert {"language", "organism_size"} <= assigned_names(injected[0].source)
    assert 'language = "ko"' in injected[0].source and 'organism_size = "tiny"' in injected[0].source

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert sum("image/png" in output.get("data", {}) for output in outputs) >= 2

    tables = [output.data["text/plain"] for output in outputs
              if "text/plain" in output.get("data", {}) and "n_localization" in output.data["text/plain"]]
    assert len(tables) == 1
    codes_in_table = set(re.findall(r"\b[a-z]{2}\b", tables[0])) & set(DEFAULT_LANGUAGES)
    assert codes_in_table == {"ko"}, tables[0]


# The later chapters on the tiny organism, for one language and one seed: every cell runs, the figures render, and
# the claims boxes' verdicts (glued from the run) are recorded.
LATER_CHAPTERS = {
    "02_baseline_erasure.ipynb": ({"seeds": "0"}, "verdict"),
    "03_layer_dissociation.ipynb": ({"alphas": "1,4"}, None),
    "04_surgical_steering.ipynb": ({"alphas": "1,4"}, None),
    "appendix_performance.ipynb": ({"repeats": 1, "items": 32}, "steering_ratio"),
}


@pytest.mark.parametrize("chapter", list(LATER_CHAPTERS))
def test_later_chapter_runs_on_the_tiny_organism_for_one_language(chapter, tiny_organism_environment, tmp_path):
    import nbformat
    import papermill

    extra, glued_key = LATER_CHAPTERS[chapter]
    output = tmp_path / chapter
    papermill.execute_notebook(str(ROOT / "book" / chapter), str(output),
                               parameters={"organism_size": "tiny", "language": "ko", **extra},
                               kernel_name="python3", cwd=str(ROOT / "book"), progress_bar=False)
    notebook = nbformat.read(output, as_version=4)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    if chapter != "appendix_performance.ipynb":
        assert sum("image/png" in output.get("data", {}) for output in outputs) >= 1
    glued = {output["metadata"]["scrapbook"]["name"] for output in outputs
             if "scrapbook" in output.get("metadata", {})}
    assert glued and (glued_key is None or glued_key in glued), sorted(glued)
