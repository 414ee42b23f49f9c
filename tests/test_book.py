"""Tests for the book's chapters: what every notebook must look like when committed, and one parameterized run of
the first chapter on the tiny organism (papermill, as the CI's smoke run does)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from cla_lib.core.languages import DEFAULT_LANGUAGES

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


def test_first_chapter_runs_on_the_tiny_organism_for_one_language(tiny_organism_environment, tmp_path, monkeypatch):
    import nbformat
    import papermill

    monkeypatch.setenv("CLA_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("TQDM_DISABLE", "1")  # as scripts/build-book.sh: no progress bars on a page
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
    assert not [output.text for output in outputs if output.get("name") == "stderr"]  # a stderr box on the page
    assert sum("image/png" in output.get("data", {}) for output in outputs) >= 2

    tables = [output.data["text/plain"] for output in outputs
              if "text/plain" in output.get("data", {}) and "n_localization" in output.data["text/plain"]]
    assert len(tables) == 1
    codes_in_table = set(re.findall(r"\b[a-z]{2}\b", tables[0])) & set(DEFAULT_LANGUAGES)
    assert codes_in_table == {"ko"}, tables[0]
    written = tmp_path / "results" / "01_organism_plane"
    assert {"plane.csv", "answers.csv", "claim.json", "provenance.json"} <= {path.name for path in written.iterdir()}
    assert json.loads((written / "provenance.json").read_text())["parameters"]["language"] == "ko"


# The later chapters on the tiny organism, for one language and one seed (chapter 4: two, the multi-seed path):
# every cell runs, the figures render, and the claims boxes' verdicts (glued from the run) are recorded. Chapter 3
# runs one seed: a second trains a second planted organism (1,000 steps, ~30 CPU-s); its
# planted organism is the one test_planted checks.
LATER_CHAPTERS = {
    "02_baseline_erasure.ipynb": ({"seeds": "0"}, "verdict"),
    "03_layer_dissociation.ipynb": ({"alphas": "1,4", "seeds": "0"}, "verdict"),
    "04_surgical_steering.ipynb": ({"alphas": "1,4", "seeds": "0,1"}, "verdict"),
    "appendix_performance.ipynb": ({"repeats": 1, "items": 32, "floor_items": 32, "floor_sweep_items": 4, "seeds": "0"},
                                   "steering_ratio"),
}


@pytest.mark.parametrize("chapter", list(LATER_CHAPTERS))
def test_later_chapter_runs_on_the_tiny_organism_for_one_language(chapter, tiny_organism_environment, tmp_path,
                                                                  monkeypatch):
    import nbformat
    import papermill

    monkeypatch.setenv("CLA_RESULTS", str(tmp_path / "results"))
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
    assert "downloads" in glued
    written = tmp_path / "results" / chapter.removesuffix(".ipynb")
    assert (written / "provenance.json").exists() and len(list(written.iterdir())) >= 3


# ----------------------------------------------------------------------------------------------------------
# The book as readers see it: figures, hidden plumbing, downloads, the claims table, citations


def code_cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text(encoding="utf-8"))["cells"] if cell["cell_type"] == "code"]


def figure_names() -> dict[str, str]:
    names = {}
    for path in CHAPTERS:
        for cell in code_cells(path):
            if "plt.show()" in "".join(cell["source"]):
                options = cell["metadata"].get("mystnb", {})
                figure, image = options.get("figure", {}), options.get("image", {})
                assert figure.get("name", "").startswith("fig-"), (path.name, "".join(cell["source"])[:80])
                assert len(figure.get("caption", "")) > 80, (path.name, figure)
                assert len(image.get("alt", "")) > 30, (path.name, image)
                assert figure["name"] not in names, figure["name"]
                # myst-nb wraps every output of the cell in the figure: a table shown beside it would be one too.
                assert not re.search(r"\b(display|print)\(", "".join(cell["source"])), figure["name"]
                names[figure["name"]] = path.name
    return names


def test_every_figure_is_a_named_captioned_figure_with_alt_text():
    assert len(figure_names()) >= 8


def glue_only(source: str) -> bool:
    """A cell of assignments and glue() calls only: what it computes is read in the prose, not in the cell."""
    body = ast.parse(source).body
    calls = [node for node in body if isinstance(node, ast.Expr)]
    return bool(calls) and all(isinstance(node, (ast.Assign, ast.Expr)) for node in body) and all(
        isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "glue" for node in calls)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.name)
def test_plumbing_cells_are_behind_a_toggle(path):
    cells = code_cells(path)
    (parameters,) = [index for index, cell in enumerate(cells) if "parameters" in cell["metadata"].get("tags", [])]
    plumbing = [cells[parameters + 1], cells[-1]] + [cell for cell in cells if glue_only("".join(cell["source"]))]
    for cell in plumbing:
        assert "hide-input" in cell["metadata"].get("tags", []), "".join(cell["source"])[:80]
    assert "hide-input" not in cells[parameters]["metadata"]["tags"]  # what a rerun can change stays in view


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.name)
def test_every_chapter_offers_its_results_for_download_with_provenance(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    last = notebook["cells"][-1]
    assert last["cell_type"] == "code" and "hide-input" in last["metadata"].get("tags", [])
    source = "".join(last["source"])
    assert f'publish("{path.stem}"' in source and "published.links" in source and "published.provenance" in source
    markdown = "".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    assert "{glue:md}`downloads:myst`" in markdown


CLAIM_CHAPTERS = ["01_organism_plane", "02_baseline_erasure", "03_layer_dissociation", "04_surgical_steering"]


def test_the_first_page_glues_each_claims_verdict_and_controls_from_its_chapter_and_names_its_figure():
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    figures = figure_names()
    rows = [line for line in intro.splitlines() if line.startswith("| ") and "{doc}" in line]
    assert len(rows) == len(CLAIM_CHAPTERS)
    for row, chapter in zip(rows, CLAIM_CHAPTERS):
        # ":s" is not optional: the role splits its format off at the last colon, which would eat the key.
        assert f"{{glue:text}}`{chapter}.ipynb::claim_status:s`" in row
        assert f"{{glue:text}}`{chapter}.ipynb::claim_evidence:s`" in row
        assert f"{{glue:text}}`{chapter}.ipynb::controls_status:s`" in row
        # ... and whether the testbed has what this claim rests on (chapter 1 glues one caveat per claim)
        assert f"{{glue:text}}`01_organism_plane.ipynb::testbed_claim_{CLAIM_CHAPTERS.index(chapter) + 1}:s`" in row
        (figure,) = re.findall(r"\{numref\}`(fig-[a-z-]+)`", row)
        assert figures[figure] == f"{chapter}.ipynb"
        sources = "".join("".join(cell["source"]) for cell in code_cells(ROOT / "book" / f"{chapter}.ipynb"))
        assert 'glue("claim_status"' in sources and 'glue("claim_evidence"' in sources
        assert 'glue("controls_status"' in sources


def test_every_reference_is_cited_and_the_references_have_their_own_page():
    keys = re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(encoding="utf-8"),
                      re.MULTILINE)
    text = "".join(path.read_text(encoding="utf-8") for path in [*CHAPTERS, ROOT / "book" / "intro.md"])
    assert keys and [key for key in keys if f"`{key}`" not in text] == []
    assert "{bibliography}" in (ROOT / "book" / "references.md").read_text(encoding="utf-8")


def test_the_table_of_contents_has_parts_and_lists_every_page():
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    captions = [part["caption"] for part in toc["parts"]]
    assert captions == ["The claims", "Running it yourself", "Appendix"]
    listed = [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    assert sorted(listed) == sorted([f"book/{path.stem}" for path in CHAPTERS] + ["book/references"])
    assert toc["parts"][0]["numbered"] is True


def test_citation_file_names_the_companion_and_the_paper():
    import yaml

    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0" and citation["title"]
    assert "2510.26024" in str(citation["preferred-citation"])
