"""Tests of cla_lib.book.rerun and `cla rerun`: chapters executed with papermill per model and language, their glued
numbers collected into results files, the cost printed first, Ctrl-C keeping finished results, parallel languages,
gathering a runs folder, and the NDIF key never written anywhere."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from cla_lib.book import rerun
from cla_lib.plane.evaluation import MissingDataError, plane_items
# `cla` in this process (`cla_lib.cli.main`, what the console script calls), for commands that start no chapter:
# no process of their own imports the library again (~4 CPU-s each).
from test_cli import cla, run as in_process

ROOT = Path(__file__).resolve().parents[1]
SENTINEL = "ndif-sentinel-fedcba9876543210"
CLA = [sys.executable, "-m", "cla_lib.cli"]


def notebook(*sources: str, parameters: str = 'model = "organism"\nlanguage = "all"\nseed = 0\nremote = False\n'):
    """A small chapter: a parameters cell, then code cells."""
    cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    book = nbformat.v4.new_notebook(cells=cells)
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return book


FAST = notebook('from myst_nb import glue\nimport numpy as np\nglue("mean_transfer", np.float64(0.25), display=False)\n'
                'glue("mean_localization", 0.5, display=False)\nglue("mean_english_bias", 0.125, display=False)\n'
                'glue("english_ceiling", 0.75, display=False)\nglue("language_seen", language, display=False)')
SLOW = notebook("import time\ntime.sleep(120)")
FAILING = notebook('raise RuntimeError("this chapter fails")')


def write_book(directory: Path, chapters: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, book in chapters.items():
        nbformat.write(book, directory / f"{name}.ipynb")
    return directory


def environment(**extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


# -- chapters, parameters, values ---------------------------------------------------------------------------------


def test_chapters_are_selected_by_number_or_name(tmp_path):
    book = write_book(tmp_path / "book", {"01_one": FAST, "02_two": FAST, "notes": FAST})
    assert list(rerun.chapters(book)) == ["01_one", "02_two"]
    assert [path.stem for path in rerun.select_chapters("02,01_one", book)] == ["02_two", "01_one"]
    assert [path.stem for path in rerun.select_chapters(None, book)] == ["01_one", "02_two"]
    with pytest.raises(ValueError, match="no chapter '07'.*01_one, 02_two"):
        rerun.select_chapters("07", book)


def test_chapter_parameters_and_the_parameters_passed_to_each_chapter(tmp_path):
    path = write_book(tmp_path, {"01_one": FAST}) / "01_one.ipynb"
    assert rerun.chapter_parameters(path) == {"model": "organism", "language": "all", "seed": 0, "remote": False}
    passed = rerun.chapter_run_parameters(path, "m", "ko", remote=True, extra={"seed": 2, "alphas": "1"})
    assert passed == {"model": "m", "language": "ko", "remote": True, "seed": 2}  # alphas: not declared here
    no_remote = write_book(tmp_path / "b", {"01_x": notebook("1", parameters='model = "a"\nlanguage = "ko"\n')})
    with pytest.raises(ValueError, match="no `remote` parameter"):
        rerun.chapter_run_parameters(no_remote / "01_x.ipynb", "m", "ko", remote=True)


@pytest.mark.parametrize("text, value", [("None", None), ("True", True), ("false", False), ("3", 3), ("0.5", 0.5),
                                         ("ko", "ko"), ("runs/a", "runs/a")])
def test_parameter_values_are_read_as_papermill_reads_them(text, value):
    assert rerun.parse_value(text) == value


def test_model_slugs(tmp_path):
    assert rerun.model_slug("gemma-3-12b-it") == "gemma-3-12b-it"
    assert rerun.model_slug("google/gemma-3-12b-it") == "google--gemma-3-12b-it"
    assert rerun.model_slug("organism:midalign@1") == "organism-midalign@1"
    (tmp_path / "my model").mkdir()
    assert rerun.model_slug(str(tmp_path / "my model")) == "my-model"


def test_glued_values_are_read_back_as_python_values():
    executed = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "display_data", "metadata": {"scrapbook": {"name": "x", "mime_prefix":
                                                                   "application/papermill.record/"}},
         "data": {"application/papermill.record/text/plain": "np.float64(0.4375)"}},
        {"output_type": "display_data", "metadata": {"scrapbook": {"name": "n", "mime_prefix":
                                                                   "application/papermill.record/"}},
         "data": {"application/papermill.record/text/plain": "7"}},
        {"output_type": "display_data", "metadata": {"scrapbook": {"name": "verdict", "mime_prefix":
                                                                   "application/papermill.record/"}},
         "data": {"application/papermill.record/text/markdown": "**holds**",
                  "application/papermill.record/text/plain": "<IPython.core.display.Markdown object>"}},
        {"output_type": "display_data", "metadata": {"scrapbook": {"name": "shown", "mime_prefix": ""}},
         "data": {"text/plain": "'ko'"}},
        {"output_type": "stream", "text": "not glued"},
    ]}]}
    assert rerun.glued_values(executed) == {"x": 0.4375, "n": 7, "verdict": "**holds**", "shown": "ko"}


# -- the cost ------------------------------------------------------------------------------------------------------


def test_the_cost_counts_the_scored_choices_their_tokens_and_the_scorers_forwards(tiny_llama_dir):
    from transformers import AutoTokenizer

    from cla_lib.plane.loading import load_model
    from cla_lib.scoring import encode_item, forwards_of

    chapter = ROOT / "book" / "01_organism_plane.ipynb"
    frame = rerun.estimate(str(tiny_llama_dir), "ko", [chapter], batch_size=64)
    items = plane_items(str(tiny_llama_dir), ["ko"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    sequences = sum(len(item.choices) for item in items)
    encoded = [encode_item(tokenizer, item) for item in items]
    # Each prompt once, and each choice's tokens after its first (the first is read off the prompt's last logits).
    tokens = sum(len(item.context) + sum(max(len(c) - 1, 0) for c in item.continuations) for item in encoded)
    harness = sum(len(tokenizer(item.prompt + choice)["input_ids"]) for item in items for choice in item.choices)
    (row,) = frame.itertuples()
    assert (row.sequences, row.tokens) == (sequences, tokens) and tokens < harness / 2
    assert row.batches == forwards_of(load_model(str(tiny_llama_dir)), [(items, [])], batch_size=64)
    assert frame.attrs["harness_tokens"] == harness
    assert row.remote_requests == 1  # chapter 01 scores all its batches in one session
    text = rerun.describe_cost(frame)
    assert f"{sequences:,} choices" in text and "tokenizer of" in text and "01_organism_plane" in text


def test_a_sweep_costs_its_steered_configurations_at_the_suffix_share():
    from cla_lib.book.costs import CONTROL_SHARE, chapter_costs, suffix_share

    workload = {"items": 10, "sequences": 40, "tokens": 1000, "head_positions": 10, "forwards": 1, "read_prompts": 0,
                "read_tokens": 0, "extract": 0.2, "validation": 0.2, "test": 0.6}
    (row,) = chapter_costs(workload, ["03_chapter"], layers=8, strengths=3).itertuples()
    assert suffix_share(8) == 7 / 16
    # EN, LOC and LOC (language) swept on the whole validation split, the three negative controls on their target's
    # share of it, and the answer-language sweep's one strength; nine configurations on test.
    assert row.swept_passes == round(0.2 * ((3 + 3 * CONTROL_SHARE) * 8 * 3 + 8), 2)
    assert row.scoring_passes == round(0.2 * (4 + 3 * CONTROL_SHARE) + 0.6 * 9, 2)
    assert math.isclose(row.tokens, (row.scoring_passes + row.swept_passes * 7 / 16) * 1000, rel_tol=1e-6)


def test_the_cost_of_a_preset_is_estimated_offline_and_says_how():
    frame = rerun.estimate("gemma-3-12b-it", "ko", [ROOT / "book" / "01_organism_plane.ipynb"])
    assert frame.attrs["layers"] == 48 and frame.sequences.iloc[0] > 0
    assert "approximation" in frame.attrs["tokens_counted_with"] or "tokenizer" in frame.attrs["tokens_counted_with"]


# -- running ---------------------------------------------------------------------------------------------------


def test_rerun_of_the_first_chapter_writes_the_notebook_and_its_results_and_gathers(tiny_llama_dir, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setenv("NDIF_API_KEY", SENTINEL)
    lines = []
    with pytest.raises(MissingDataError, match="--transfer-data"):  # refused before anything runs
        rerun.rerun(str(tiny_llama_dir), "ko", chapters_spec="01", out=tmp_path / "runs", log=lines.append)
    assert not lines and not (tmp_path / "runs").exists()
    monkeypatch.chdir(tmp_path)  # a relative --out: notebooks and the chapter's results both land under it
    records = rerun.rerun(str(tiny_llama_dir), "ko", chapters_spec="01", out="runs", log=lines.append,
                          extra={"embedded_world": True})
    directory = tmp_path / "runs" / "llama" / "ko"
    assert [record["status"] for record in records] == ["ok"]
    assert (directory / "01_organism_plane.ipynb").exists()
    results = json.loads((directory / "01_organism_plane.results.json").read_text())
    assert results["language"] == "ko" and results["model"] == str(tiny_llama_dir)
    assert 0 <= results["values"]["mean_transfer"] <= 1 and results["values"]["n_languages"] == 1
    assert lines[0].startswith("Estimated cost")  # printed before anything runs
    published = directory / "results" / "01_organism_plane"  # the chapter's files, beside its notebook
    assert (published / "plane.csv").exists() and (published / "provenance.json").exists()
    gathered = rerun.gather(tmp_path / "runs")
    assert set(gathered.name) >= set(rerun.PLANE_VALUES.values())
    plane = rerun.plane_frame(gathered)
    assert list(plane.language) == ["ko"] and plane.transfer.iloc[0] == results["values"]["mean_transfer"]
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert SENTINEL not in path.read_text(encoding="utf-8"), path


def test_a_failing_chapter_keeps_its_traceback_and_is_reported(tmp_path, capfd):
    book = write_book(tmp_path / "book", {"01_ok": FAST, "02_fails": FAILING})
    records = rerun.rerun("some-model", "ko", out=tmp_path / "runs", book=book, show_cost=False, log=lambda line: None)
    assert [record["status"] for record in records] == ["ok", "failed"]
    directory = tmp_path / "runs" / "some-model" / "ko"
    # The kernels' own diagnostics go to a log beside the notebook, not to the caller's stderr (chapter 5's page).
    assert capfd.readouterr().err == "" and (directory / "01_ok.kernel.log").exists()
    assert (directory / "02_fails.failed.ipynb").exists() and not (directory / "02_fails.ipynb").exists()
    assert "this chapter fails" in (directory / "02_fails.failed.ipynb").read_text()
    assert json.loads((directory / "02_fails.results.json").read_text())["status"] == "failed"
    assert rerun.gather(tmp_path / "runs").groupby("chapter").status.first().to_dict() == {
        "01_ok": "ok", "02_fails": "failed"}


def test_ctrl_c_stops_cleanly_and_keeps_the_finished_chapters(tmp_path):
    book = write_book(tmp_path / "book", {"01_fast": FAST, "02_slow": SLOW, "03_never": FAST})
    directory = tmp_path / "runs" / "some-model" / "ko"
    process = subprocess.Popen(CLA + ["rerun", "--model", "some-model", "--language", "ko", "--book", str(book),
                                      "--out", str(tmp_path / "runs")],
                               cwd=tmp_path, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True,
                               # As in a terminal's foreground: a shell's background job (as CI may be) inherits
                               # SIGINT ignored, and Python then never raises KeyboardInterrupt.
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 300  # generous: CI machines are shared
        while not (directory / "01_fast.results.json").exists() or not (directory / ".02_slow.running.ipynb").exists():
            assert process.poll() is None and time.time() < deadline, process.communicate()
            time.sleep(0.2)
        time.sleep(2)  # the slow chapter's kernel is inside its sleep
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        _, stderr = process.communicate(timeout=240)  # kernel shutdown is slow under load
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert "interrupted during 02_slow" in stderr and "Traceback" not in stderr  # the kernel's goes to its log
    assert json.loads((directory / "01_fast.results.json").read_text())["status"] == "ok"
    assert (directory / "02_slow.interrupted.ipynb").exists()
    assert not (directory / "02_slow.results.json").exists() and not (directory / "03_never.ipynb").exists()


def test_languages_run_as_parallel_processes(tmp_path):
    book = write_book(tmp_path / "book", {"01_fast": FAST})
    processes = [subprocess.Popen(CLA + ["rerun", "--model", "m", "--language", language, "--book", str(book),
                                         "--out", str(tmp_path / "runs")], cwd=tmp_path, env=environment(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for language in ("ko", "es")]
    for process in processes:
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
    gathered = rerun.gather(tmp_path / "runs")
    seen = gathered[gathered.name == "language_seen"].set_index("language").value.to_dict()
    assert seen == {"es": "es", "ko": "ko"}
    assert sorted(rerun.plane_frame(gathered, chapter="01_fast").language) == ["es", "ko"]


def test_the_command_line_refuses_keys_as_parameters_and_remote_without_a_key(tmp_path, capsys, monkeypatch):
    from nnsight import CONFIG

    book = write_book(tmp_path / "book", {"01_fast": FAST})
    common = ["rerun", "--model", "llama-3.1-8b-instruct", "--language", "ko", "--book", str(book), "--out",
              str(tmp_path / "runs")]
    code, out, err = in_process(capsys, *common, "-p", f"api_key={SENTINEL}")
    assert code == 2 and "keys are never parameters" in err
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.setattr(CONFIG.API, "APIKEY", None)  # nor a key stored by `nnsight login`
    monkeypatch.setattr(CONFIG.API, "HOST", CONFIG.API.HOST)  # restored, should anything hand nnsight another
    code, out, err = in_process(capsys, *common, "--remote")
    assert code == 2 and "NDIF_API_KEY" in err
    monkeypatch.setenv("NDIF_API_KEY", SENTINEL)
    monkeypatch.setenv("NDIF_HOST", "http://127.0.0.1:9")
    code, out, err = in_process(capsys, *common, "--remote")
    assert code == 2 and "NDIF not reachable" in err
    assert SENTINEL not in err + out
    assert not (tmp_path / "runs").exists()  # nothing ran


def test_the_command_line_refuses_a_real_model_without_its_data_before_any_chapter_runs(tmp_path, tiny_llama_dir,
                                                                                         capsys):
    code, out, err = in_process(capsys, "rerun", "--model", str(tiny_llama_dir), "--language", "ko", "--chapters",
                                "01", "--out", str(tmp_path / "runs"))
    assert code == 2 and "give --transfer-data" in err and "--embedded-world" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_estimate_only_prints_the_cost_and_runs_nothing(tmp_path, tiny_llama_dir, capsys):
    # A real model without its data is refused by the estimate as by the run: it would count the organism's items.
    code, out, err = in_process(capsys, "rerun", "--model", str(tiny_llama_dir), "--language", "ko", "--chapters",
                                "01", "--estimate-only", "--out", str(tmp_path / "runs"))
    assert code == 2 and "give --transfer-data" in err and not out
    code, out, err = in_process(capsys, "rerun", "--model", str(tiny_llama_dir), "--language", "ko", "--chapters",
                                "01", "--estimate-only", "--embedded-world", "--out", str(tmp_path / "runs"))
    assert code == 0, err
    assert "Estimated cost" in out and "01_organism_plane" in out
    assert not (tmp_path / "runs").exists()
    code, out, err = in_process(capsys, "rerun", "--model", str(tiny_llama_dir), "--language", "ko,es", "--chapters",
                                "01", "--estimate-only", "--embedded-world", "--json", "--out", str(tmp_path / "runs"))
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(row["language"], row["chapter"]) for row in rows] == [("ko", "01_organism_plane"),
                                                                    ("es", "01_organism_plane")]
    assert rows[0]["tokens"] > 0 and rows[0]["batch_size"] == 64 and rows[0]["model"] == str(tiny_llama_dir)


def test_the_command_line_shows_each_chapters_cells_as_they_run_and_quiet_hides_them(tmp_path, monkeypatch):
    book = write_book(tmp_path / "book", {"01_fast": notebook('print("cell output as it runs")')})
    common = ["rerun", "--model", "some-model", "--language", "ko", "--book", str(book)]
    monkeypatch.chdir(tmp_path)
    shown = cla(*common, "--out", str(tmp_path / "a"))
    assert "Executing" in shown.stderr and "cell output as it runs" in shown.stderr  # papermill's bar, the output
    assert "01_fast: ok" in shown.stdout
    quiet = cla(*common, "--out", str(tmp_path / "b"), "--quiet")
    assert "Executing" not in quiet.stderr and "01_fast: ok" in quiet.stdout
