"""Tests for cla_lib.cli: `cla plane`, `cla items` and `cla organism path` on the tiny organism.

The acceptance check: rescoring the JSONL that `cla items` writes with plain transformers, on the directory that
`cla organism path` prints, gives exactly the numbers that `cla plane` prints.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cla_lib.cli import main
from cla_lib.plane.evaluation import plane_from_answers
from cla_lib.core.items import read_items
from cla_lib.core.languages import DEFAULT_LANGUAGES

TINY = ["--organism-size", "tiny"]
FIXTURES = Path(__file__).parent / "fixtures"
GLOBAL_MMLU, BLEND = FIXTURES / "global_mmlu", FIXTURES / "blend"
PLANE_KEYS = {"model", "language", "transfer", "localization", "english_bias", "n_transfer", "n_localization"}


def run(capsys, *arguments: str) -> tuple[int, str, str]:
    code = main(list(arguments))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cla(*arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    """The `cla` command as a user runs it, in this process: its `main`, which the console script calls (the test
    process runs on one thread, as `OMP_NUM_THREADS=1` would; the chapters `cla rerun` starts run in their own
    kernels). A start-up of the library saved per command; what it prints is captured as a process's would be, and
    what it sets in the environment (`--device`, `--dtype`) ends with it, as a process's would."""
    out, err, environment = io.StringIO(), io.StringIO(), dict(os.environ)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(arguments))
        except SystemExit as exited:  # argparse's refusals
            code = exited.code
        finally:
            os.environ.clear()
            os.environ.update(environment)
    result = subprocess.CompletedProcess(["cla", *arguments], code, out.getvalue(), err.getvalue())
    if check and result.returncode != 0:
        raise AssertionError(f"cla {' '.join(arguments)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_plane_json_prints_one_object_for_the_language(tiny_organism_environment, capsys):
    code, out, _ = run(capsys, "plane", "--model", "organism", "--language", "ko", "--json", *TINY)
    assert code == 0
    (point,) = json_lines(out)
    assert PLANE_KEYS <= set(point)
    assert (point["model"], point["language"]) == ("organism", "ko")
    assert 0 <= point["transfer"] <= 1 and 0 <= point["localization"] <= 1 and 0 <= point["english_bias"] <= 1
    assert point["n_transfer"] == 32 and point["n_localization"] == 37


def test_plane_for_all_languages_prints_six_objects_in_order(tiny_organism_environment, capsys):
    code, out, _ = run(capsys, "plane", "--model", "organism", "--language", "all", "--json", *TINY)
    assert code == 0
    assert [point["language"] for point in json_lines(out)] == list(DEFAULT_LANGUAGES)


def test_plane_without_json_prints_one_readable_line_per_language(tiny_organism_environment, capsys):
    code, out, _ = run(capsys, "plane", "--model", "organism", "--language", "ko,el", *TINY)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("organism  ko: transfer ") and "English ceiling" in lines[1]


def test_items_writes_the_scored_items_as_jsonl(tiny_organism_environment, tmp_path, capsys):
    out_file = tmp_path / "f.jsonl"
    code, _, err = run(capsys, "items", "--model", "organism", "--language", "ko", "--out", str(out_file), *TINY)
    assert code == 0
    records = json_lines(out_file.read_text(encoding="utf-8"))
    assert f"wrote {len(records)} items to {out_file}" in err
    assert all({"task", "language", "prompt", "choices", "gold", "us_choice"} <= set(record) for record in records)
    assert {record["language"] for record in records} == {"en", "ko"}  # English: the ceiling
    assert {record["task"] for record in records if record["language"] == "ko"} == {"transfer", "localization"}


def test_rescoring_the_items_with_plain_transformers_gives_exactly_the_plane(tiny_organism_environment, tmp_path,
                                                                             capsys, rescore_with_transformers):
    code, out, _ = run(capsys, "organism", "path", *TINY)
    assert code == 0
    directory = Path(out.strip())
    out_file = tmp_path / "items.jsonl"
    assert run(capsys, "items", "--model", "organism", "--language", "ko,fa", "--out", str(out_file), *TINY)[0] == 0
    code, out, _ = run(capsys, "plane", "--model", "organism", "--language", "ko,fa", "--json", *TINY)
    assert code == 0
    printed = json_lines(out)

    items = read_items(out_file)
    rescored = plane_from_answers("organism", items, rescore_with_transformers(directory, items))
    identity = {"explicit_cue": False, "organism_size": "tiny", "organism_key": directory.name}  # what --json adds
    assert printed == [{**point.to_json(), **identity} for point in rescored]


def test_organism_path_prints_an_existing_organism_directory(tiny_organism_environment, tiny_organism_dir, capsys):
    code, out, _ = run(capsys, "organism", "path", *TINY)
    assert code == 0
    path = Path(out.strip())
    assert path == tiny_organism_dir and (path / "model.safetensors").is_file()


def assert_clear_error(code: int, err: str, *phrases: str) -> None:
    assert code == 2
    assert err.startswith("cla: error: ") and "Traceback" not in err
    assert all(phrase in err for phrase in phrases), err


def test_an_unknown_language_exits_2_naming_the_known_languages(tiny_organism_environment, capsys):
    code, out, err = run(capsys, "plane", "--model", "organism", "--language", "xx", *TINY)
    assert out == ""
    assert_clear_error(code, err, "unknown language 'xx'", "es, zh, ko, id, el, fa")


def test_a_bad_organism_name_exits_2_with_the_name_syntax(tiny_organism_environment, capsys):
    code, out, err = run(capsys, "plane", "--model", "organismx", "--language", "ko", *TINY)
    assert out == ""
    assert_clear_error(code, err, "'organismx'", "organism[:method][@seed]")


def test_a_model_that_cannot_exist_exits_2_naming_it_before_any_data_is_fetched(tiny_organism_environment, capsys):
    # Not a directory, not a hub id: the model is refused at once, before Global-MMLU or BLEnD would be loaded.
    code, out, err = run(capsys, "plane", "--model", "no such model", "--language", "ko")
    assert out == ""
    assert_clear_error(code, err, "cannot load a model from 'no such model'")


def test_remote_without_an_api_key_exits_2_saying_where_the_key_comes_from(tiny_organism_environment, monkeypatch,
                                                                          capsys):
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    code, out, err = run(capsys, "plane", "--model", "organism", "--language", "ko", "--remote", *TINY)
    assert out == ""
    assert_clear_error(code, err, "NDIF_API_KEY")


def test_the_installed_cla_command_exists_and_lists_its_commands():
    executable = Path(sys.executable).parent / "cla"
    result = subprocess.run([str(executable), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert all(command in result.stdout for command in ("plane", "items", "organism"))


def test_a_real_model_without_its_data_is_refused_unless_the_embedded_world_is_asked_for_and_says_where_it_loaded(tiny_llama_dir, capsys):
    code, out, err = run(capsys, "plane", "--model", str(tiny_llama_dir), "--language", "ko", "--json")
    assert out == ""
    assert_clear_error(code, err, "is a real model: give --transfer-data (Global-MMLU) and --localization-data")
    code, out, err = run(capsys, "plane", "--model", str(tiny_llama_dir), "--language", "ko", "--json",
                         "--embedded-world", "--device", "cpu", "--dtype", "bfloat16")
    assert code == 0 and [point["language"] for point in json_lines(out)] == ["ko"]
    assert f"{tiny_llama_dir}: 44,192 parameters on cpu in bfloat16" in err  # where it went, and how


def test_remote_json_output_is_json_lines_only_while_nnsights_status_display_writes(tiny_llama_dir, monkeypatch,
                                                                                   capsys):
    from nnsight.intervention.backends.display import StatusDisplay
    from nnsight.schema.response import ResponseModel, Status

    import cla_lib.cli
    import cla_lib.plane.evaluation
    from cla_lib.plane.loading import load_model

    real_plane = cla_lib.plane.evaluation.plane

    def plane_with_a_status_display(*args, **kwargs):
        # nnsight's own display, as a remote request drives it: it writes to sys.stdout
        display = StatusDisplay(enabled=True, verbose=True)
        for status in (Status.RECEIVED, Status.QUEUED, Status.RUNNING, Status.COMPLETED):
            display.update(ResponseModel(id="job-1", status=status))
        return real_plane(*args, **kwargs)

    # --remote through nnsight's serialization round trip (no NDIF here), with the status display a request shows
    monkeypatch.setattr(cla_lib.cli, "_model", lambda arguments, reference: load_model(reference, remote="local"))
    monkeypatch.setattr(cla_lib.plane.evaluation, "plane", plane_with_a_status_display)
    code, out, err = run(capsys, "plane", "--model", str(tiny_llama_dir), "--language", "ko,es", "--json", "--remote",
                         "--embedded-world")
    assert code == 0
    assert [point["language"] for point in json_lines(out)] == ["ko", "es"]  # every stdout line is JSON
    assert "COMPLETED" in err and "job-1" in err and "COMPLETED" not in out


# -- values refused where they enter: one line on stderr, exit 2, before anything loads --------------------------

ALIGN = ["align", "--model", "m", "--method", "midalign", "--data", "parallel=p.jsonl", "--out", "o"]
REFUSED = {
    "steps 0": (ALIGN + ["--steps", "0", "--learning-rate", "1e-4", "--batch-size", "2"], "--steps: 0 is not positive"),
    "steps -3": (ALIGN + ["--steps", "-3", "--learning-rate", "1e-4", "--batch-size", "2"], "--steps: -3 is not"),
    "batch 0": (ALIGN + ["--steps", "2", "--learning-rate", "1e-4", "--batch-size", "0"], "--batch-size: 0 is not"),
    "lora rank 0": (ALIGN + ["--steps", "2", "--learning-rate", "1e-4", "--batch-size", "2", "--lora-rank", "0"],
                    "--lora-rank: 0 is not positive"),
    "learning rate nan": (ALIGN + ["--steps", "2", "--learning-rate", "nan", "--batch-size", "2"],
                          "--learning-rate: nan is not a finite positive number"),
    "steps text": (ALIGN + ["--steps", "many", "--learning-rate", "1e-4", "--batch-size", "2"],
                   "--steps: 'many' is not a whole number"),
    "plane batch 0": (["plane", "--batch-size", "0"], "--batch-size: 0 is not positive"),
    "rerun batch -1": (["rerun", "--model", "organism", "--language", "ko", "--batch-size", "-1"],
                       "--batch-size: -1 is not positive"),
    "align dtype": (ALIGN + ["--steps", "2", "--learning-rate", "1e-4", "--batch-size", "2", "--dtype", "nonsense"],
                    "--dtype: unknown dtype 'nonsense'; dtypes: float32, bfloat16"),
    "plane dtype": (["plane", "--dtype", "float8"], "--dtype: unknown dtype 'float8'"),
    "rerun dtype": (["rerun", "--model", "organism", "--language", "ko", "--dtype", "int4"], "unknown dtype 'int4'"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_value_that_cannot_mean_anything_is_refused_in_one_line(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arguments, message = REFUSED[case]
    with pytest.raises(SystemExit) as exit:
        main(arguments)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and message in err and "--help" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())  # nothing written


# Refused after parsing but before anything trains or loads: an organism given data, an organism to `cla align`, a
# real model without data, a file that is not UTF-8 (each would have trained the default organism first, or
# fetched a model).
BEFORE_LOADING = {
    "plane: organism with data": (["plane", "--model", "organism", "--language", "ko", "--transfer-data", "x.csv"],
                                  "an organism is scored on its own world"),
    "items: organism with data": (["items", "--model", "organism@1", "--language", "ko", "--localization-data", "b",
                                   "--out", "items.jsonl"], "an organism is scored on its own world"),
    "vectors: organism with data": (["vectors", "--model", "organism", "--transfer-data", "x", "--localization-data",
                                     "y", "--out", "v.safetensors"], "an organism is scored on its own world"),
    "align: an organism": (["align", "--model", "organism:clo", "--method", "midalign", "--data", "parallel=p.jsonl",
                            "--data", "replay=r.jsonl", "--out", "o", "--steps", "2", "--learning-rate", "1e-4",
                            "--batch-size", "2"], "is an organism: its aligned variants are built in"),
    "align: data not UTF-8": (["align", "--model", "organism", "--method", "midalign", "--data", "parallel=bad.jsonl",
                               "--data", "replay=r.jsonl", "--out", "o", "--steps", "2", "--learning-rate", "1e-4",
                               "--batch-size", "2"], "bad.jsonl:1: not UTF-8 text"),
    "plane: real model without data": (["plane", "--model", "some-org/some-model", "--language", "ko"],
                                       "is a real model: give --transfer-data"),
    "rerun estimate: real model without data": (["rerun", "--model", "gemma-3-12b-it", "--language", "ko",
                                                 "--estimate-only", "--out", "runs"], "give --transfer-data"),
}


@pytest.mark.parametrize("case", list(BEFORE_LOADING))
def test_bad_input_is_refused_in_one_line_before_anything_trains_or_loads(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLA_CACHE", str(tmp_path / "cache"))
    (tmp_path / "p.jsonl").write_text('{"language": "ko", "english": "a", "target": "b"}\n', encoding="utf-8")
    (tmp_path / "r.jsonl").write_text('{"text": "Some replayed text."}\n', encoding="utf-8")
    (tmp_path / "bad.jsonl").write_bytes(b'\xff\xfe{"language": "ko"}\n')
    before = set(tmp_path.iterdir())
    arguments, message = BEFORE_LOADING[case]
    code, out, err = run(capsys, *arguments)
    assert code == 2 and message in err and not out, err
    assert len(err.strip().splitlines()) == 1, err
    assert set(tmp_path.iterdir()) == before  # no organism trained (no cache), nothing written


# Each chapter parameter refused by `cla rerun -p` before the first kernel starts (`chapters.check_parameters`; the
# chapters' own first cell runs the same checks).
CHAPTER_PARAMETERS = {
    "seed below 0": ("01", "seed=-1", "-p seed=-1: -1 is below 0"),
    "seed not a number": ("03", "seed=first", "-p seed='first': not a whole number"),
    "seeds with a word": ("04", "seeds=0,a", "-p seeds='0,a': not a whole number"),
    "no seeds": ("02", "seeds=", "-p seeds='': no seed given"),
    "strength 0": ("04", "alphas=1,0", "-p alphas='1,0': 0 is not a finite nonzero strength"),
    "strength not a number": ("03", "alphas=1,x", "-p alphas='1,x': 'x' is not a number"),
    "unknown aligned method": ("03", "aligned=midalign,foo", "unknown method(s) foo; methods: midalign"),
    "unknown method": ("02", "methods=mit,xyz", "-p methods='mit,xyz': unknown method(s) xyz"),
    "unknown size": ("01", "organism_size=huge", "unknown organism size; sizes: default, tiny"),
    "remote not a flag": ("01", "remote=yes", "-p remote='yes': not True, False or 'local'"),
    "replay not a flag": ("02", "include_replay=maybe", "-p include_replay='maybe': not True or False"),
    "batch size 0": ("04", "batch_size=0", "-p batch_size=0: 0 is below 1"),
    "layer stride 0": ("03", "layer_stride=0", "-p layer_stride=0: 0 is below 1"),
    "dtype": ("03", "dtype=int4", "-p dtype='int4': unknown dtype 'int4'"),
    "no such GPU": ("01", "device=cuda:7", "-p device='cuda:7'"),
}


@pytest.mark.parametrize("case", list(CHAPTER_PARAMETERS))
def test_a_chapter_parameter_that_cannot_mean_anything_is_refused_before_a_kernel_starts(case, capsys, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setenv("CLA_CACHE", str(tmp_path / "cache"))
    chapters, parameter, message = CHAPTER_PARAMETERS[case]
    code, out, err = run(capsys, "rerun", "--model", "organism", "--language", "ko", "--chapters", chapters,
                         "-p", parameter, "--out", str(tmp_path / "runs"))
    assert code == 2 and message in err and not out, err
    assert len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


def test_cla_version_prints_the_package_version(capsys):
    from cla_lib import __version__

    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out.strip() == f"cla {__version__}"


def test_rerun_refuses_a_parameter_no_chosen_chapter_has_before_anything_runs(capsys, tmp_path):
    code, _, err = run(capsys, "rerun", "--model", "organism", "--language", "ko", "--chapters", "01,02",
                       "-p", "colour=red", "-p", "seed=1", "--out", str(tmp_path / "runs"))
    assert code == 2 and "-p colour: no chapter run here has that parameter" in err and "seed" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", [
    ["plane", "--organism-size", "tiny", "--device", "cuda"],
    ["plane", "--organism-size", "tiny", "--device", "cuda:3"],
    ["plane", "--organism-size", "tiny", "--device", "gpu0"],
    ALIGN + ["--data", "replay=r.jsonl", "--steps", "2", "--learning-rate", "1e-4", "--batch-size", "2", "--device",
             "cuda"],
    ["rerun", "--model", "organism", "--language", "ko", "--chapters", "01", "--device", "cuda"],
])
def test_a_device_this_machine_lacks_is_refused_before_anything_loads_or_trains(command, capsys, tmp_path,
                                                                              monkeypatch):
    import torch

    if torch.cuda.device_count() > 3:
        pytest.skip("this machine has the GPUs asked for")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLA_CACHE", str(tmp_path / "cache"))  # an organism would train here: none may
    code, _, err = run(capsys, *command)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert ("CUDA GPU" in err and "--device cpu" in err) or "unknown device 'gpu0'" in err
    assert not list(tmp_path.iterdir())


BAD_LINES = {
    "a list, not an object": (b'{"language": "es", "english": "a", "target": "b"}\n[1, 2]\n',
                              ":2: each line must be a JSON object, not a list"),
    "malformed JSON": (b'{"language": "es", "english": "a", "target": "b"}\n\n{"language": \n',
                       ":3: not a JSON line (Expecting value, column 13)"),
    "not UTF-8": (b'{"language": "es", "english": "a", "target": "b"}\n{"language": "\xe9s"}\n',
                  ":2: not UTF-8 text (byte 15 of the line); save the file as UTF-8"),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_a_bad_data_line_is_refused_naming_its_file_and_line(case, capsys, tmp_path, tiny_llama_dir):
    content, message = BAD_LINES[case]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(content)
    (tmp_path / "replay.jsonl").write_text('{"text": "some text"}\n')
    code, _, err = run(capsys, "align", "--model", str(tiny_llama_dir), "--method", "midalign", "--data",
                       f"parallel={pairs}", "--data", f"replay={tmp_path / 'replay.jsonl'}", "--out",
                       str(tmp_path / "out"), "--steps", "2", "--learning-rate", "1e-4", "--batch-size", "2")
    assert code == 2 and f"{pairs}{message}" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_explicit_cue_asks_the_culture_questions_with_the_country_named_and_json_names_the_organism(
        tiny_organism_environment, capsys):
    from cla_lib.organism import organism_path

    code, out, _ = run(capsys, "plane", "--model", "organism", "--language", "ko", "--json", "--explicit-cue", *TINY)
    assert code == 0
    (point,) = json_lines(out)
    assert point["explicit_cue"] is True and point["n_localization"] == 37
    assert point["organism_size"] == "tiny"
    assert point["organism_key"] == organism_path("organism", size="tiny", train_if_missing=False).name


def test_explicit_cue_on_blend_asks_blends_own_questions(tiny_llama_dir, capsys):
    from cla_lib.data.blend import localization_items
    from cla_lib.plane.evaluation import explicit_cue

    plain, _ = localization_items(BLEND, "ko")
    cued = [item for item in explicit_cue(plain) if item.task == "localization"]
    assert [item.prompt for item in cued] == [item.meta["explicit_prompt"] for item in plain]  # BLEnD's own wording
    assert all(item.prompt != original.prompt for item, original in zip(cued, plain))
    code, out, err = run(capsys, "plane", "--model", str(tiny_llama_dir), "--language", "ko", "--json",
                         "--explicit-cue", "--transfer-data", str(GLOBAL_MMLU), "--localization-data", str(BLEND))
    assert code == 0, err
    (point,) = json_lines(out)
    assert point["explicit_cue"] is True and point["n_localization"] == len(plain) and "organism_key" not in point


def test_ctrl_c_is_one_line_and_exit_130(tiny_organism_environment, capsys, monkeypatch):
    import cla_lib.plane.evaluation

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cla_lib.plane.evaluation, "plane", interrupted)
    code, out, err = run(capsys, "plane", "--model", "organism", "--language", "ko", *TINY)
    assert code == 130 and out == ""
    assert err.strip().splitlines()[-1] == "cla: interrupted; nothing half-written was left behind"
    assert "Traceback" not in err


def test_a_cached_organism_with_truncated_weights_is_named_with_what_to_do(tiny_organism_environment, capsys,
                                                                           tmp_path):
    import shutil

    from cla_lib.organism import organism_path

    broken = tmp_path / "broken"
    shutil.copytree(organism_path("organism", size="tiny"), broken)
    with open(broken / "model.safetensors", "r+b") as weights:
        weights.truncate(1000)
    code, out, err = run(capsys, "plane", "--model", str(broken), "--language", "ko", "--embedded-world")
    assert_clear_error(code, err, f"the weights in {broken} cannot be read (SafetensorError")
    assert "remove that folder" in err


def test_align_estimate_only_for_a_preset_works_offline_and_training_it_is_refused_at_once(tmp_path, capsys,
                                                                                        monkeypatch):
    import cla_lib.model.remote

    monkeypatch.setattr(cla_lib.model.remote, "hub_reachable", lambda: False)  # as on any machine offline
    pairs, replay = tmp_path / "pairs.jsonl", tmp_path / "replay.jsonl"
    pairs.write_text('{"language": "ko", "english": "The cat sleeps.", "target": "고양이가 잔다."}\n', encoding="utf-8")
    replay.write_text('{"text": "Some replayed text."}\n', encoding="utf-8")
    arguments = ["align", "--model", "gemma-3-12b-it", "--method", "midalign", "--data", f"parallel={pairs}",
                 "--data", f"replay={replay}", "--out", str(tmp_path / "out"), "--steps", "10", "--learning-rate",
                 "1e-5", "--batch-size", "2", "--lora-rank", "8", "--dtype", "bfloat16"]
    code, out, err = run(capsys, *arguments, "--estimate-only")
    assert code == 0 and out == "", err
    assert "gemma-3-12b-it, midalign, LoRA rank 8" in err and "bounded by the records' bytes" in err
    code, out, err = run(capsys, *arguments)
    assert_clear_error(code, err, "could not fetch 'google/gemma-3-12b-it': the Hugging Face hub cannot be reached")
    assert not (tmp_path / "out").exists()


def test_the_help_lists_every_method_a_command_takes(capsys):
    import re

    from cla_lib.alignment.recipes import METHODS
    from cla_lib.organism.planted import PLANTED

    def help_text(*command: str) -> str:
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        return re.sub(r"\s+", " ", capsys.readouterr().out)

    align, organism = help_text("align"), help_text("organism")
    for method in METHODS:
        assert method in align and method in organism, method
    assert PLANTED in organism and "organism prepare" in help_text()
