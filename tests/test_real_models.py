"""Real-model code paths on tiny random Llama, Qwen2 and Gemma 3 text models built from configs (conftest): every
step a chapter takes (load, score, extract vectors, steer, sweep, align) per architecture, the remote path through
nnsight's serialization round trip, the plane's items for non-organism models (the embedded world, real data, chat
templates), what a chapter's set-up adds (placement, adapters as a model), and chapters 1 and 5 run with papermill on
the tiny models (chapters 1-4 run end to end on the pretrained model: tests/test_pretrained.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from cla_lib import steering
from cla_lib.model import presets
from cla_lib.plane.evaluation import answers, plane_from_answers, plane_items
from cla_lib.core.items import Item
from cla_lib.plane.loading import load_model
from cla_lib.model import RemoteModel, n_layers
from cla_lib.scoring import choice_logprobs
from cla_lib.organism.world import World, WorldConfig

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
SENTINEL = "ndif-sentinel-0123456789abcdef"

REPLAY = [{"text": text} for text in (
    "The capital of France is Paris. The capital of Spain is Madrid.",
    "La capital de España es Madrid. El río más largo es el Amazonas.",
    "한국의 수도는 서울입니다. 대표 음식은 김치입니다.",
    "中国的首都是北京。最长的河流是长江。",
)]
PARALLEL = [
    {"language": "es", "english": "The capital of Spain is Madrid.", "target": "La capital de España es Madrid."},
    {"language": "ko", "english": "The capital is Seoul.", "target": "한국의 수도는 서울입니다."},
    {"language": "zh", "english": "The capital is Beijing.", "target": "中国的首都是北京。"},
    {"language": "el", "english": "The capital is Athens.", "target": "Η πρωτεύουσα της Ελλάδας είναι η Αθήνα."},
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


def small_items(language: str = "ko", per_task: int = 6) -> list[Item]:
    """A few world items of both tasks and every split, English ceiling first (kept small: the tests are fast)."""
    items = plane_items("tiny-test-model", [language])
    english = [item for item in items if item.language == "en"][:per_task]
    chosen = []
    for task in ("transfer", "localization"):
        for split in ("extract", "validation", "test"):
            chosen += [item for item in items if item.language == language and item.task == task
                       and item.split == split][:per_task]
    return english + chosen


# -- every chapter's code path, per architecture -------------------------------------------------------------------


def test_every_step_of_the_chapters_runs_on_each_architecture(tiny_model_dir, tmp_path):
    model = load_model(str(tiny_model_dir))
    layers = n_layers(model)
    items = small_items()
    # score
    scores = choice_logprobs(model, items, batch_size=16)
    assert all(len(row) == len(item.choices) and all(torch.isfinite(torch.tensor(row))) for row, item in
               zip(scores, items))
    points = plane_from_answers("tiny", items, answers(model, items))
    assert [point.language for point in points] == ["ko"] and points[0].n_localization > 0
    # extract vectors
    vectors = steering.extract_vectors(model, items, kinds=["en", "loc", "loclang"], batch_size=8)
    assert set(vectors) == {"en.ko", "loc.ko", "loclang.ko"}
    assert vectors["en.ko"].layers == tuple(range(layers)) and vectors["en.ko"].hidden_size == 32
    # steer: a strong vector changes the scores, and alpha 0 changes nothing
    evaluation = [item for item in items if item.split != "extract"]
    edits = steering.steering_edits((vectors["en.ko"], 0, 8.0))
    steered = choice_logprobs(model, evaluation, edits=edits)
    assert steered != choice_logprobs(model, evaluation)
    assert choice_logprobs(model, evaluation, edits=steering.steering_edits((vectors["en.ko"], 0, 0.0))) == \
        choice_logprobs(model, evaluation)
    # sweep a couple of layers
    frame = steering.sweep(model, [item for item in items if item.split == "validation"], vectors["loc.ko"],
                           [0, layers - 1], [0.0, 2.0])
    assert len(frame) == 4 and set(frame.layer) == {0, layers - 1} and frame.transfer.notna().all()
    # align a few steps, then load and score the aligned model
    data = {"replay": write_jsonl(tmp_path / "replay.jsonl", REPLAY),
            "parallel": write_jsonl(tmp_path / "parallel.jsonl", PARALLEL)}
    from cla_lib.alignment import align_model

    aligned = align_model(tiny_model_dir, "midalign", data, tmp_path / "aligned", steps=2, learning_rate=1e-2,
                          batch_size=2, sequence_length=16, progress=False)
    aligned_scores = choice_logprobs(load_model(str(aligned)), evaluation)
    assert aligned_scores != choice_logprobs(model, evaluation)


def test_the_remote_round_trip_scores_exactly_as_the_local_pass(tiny_model_dir):
    local = load_model(str(tiny_model_dir))
    remote = load_model(str(tiny_model_dir), remote="local")
    assert isinstance(remote, RemoteModel)
    items = small_items(per_task=3)
    assert choice_logprobs(remote, items, batch_size=8) == choice_logprobs(local, items, batch_size=8)
    vectors = steering.extract_vectors(local, items, kinds=["en"])
    edits = steering.steering_edits((vectors["en.ko"], 1, 3.0))
    assert choice_logprobs(remote, items, edits=edits) == choice_logprobs(local, items, edits=edits)


def test_a_remote_session_is_one_round_trip_and_its_traces_stay_inside(tiny_llama_dir, monkeypatch):
    from nnsight.intervention.backends.local import LocalSimulationBackend

    shipped = []
    original = LocalSimulationBackend.__call__

    def counting(self, tracer):
        shipped.append(type(tracer).__name__)
        return original(self, tracer)

    monkeypatch.setattr(LocalSimulationBackend, "__call__", counting)
    remote = load_model(str(tiny_llama_dir), remote="local")
    local = load_model(str(tiny_llama_dir))
    prompts = ["The capital of Spain is", "한국의 수도는", "中国的首都是"]
    in_session = steering.last_token_activations(remote, prompts, batch_size=1, remote="local")
    assert len(shipped) == 1  # three batches, one request
    shipped.clear()
    per_trace = steering.last_token_activations(remote, prompts, batch_size=1)
    assert len(shipped) == 3  # no session: every trace is its own request
    assert torch.equal(in_session, per_trace)
    assert torch.equal(in_session, steering.last_token_activations(local, prompts, batch_size=1))


# -- the plane's items for models that are not the organism ------------------------------------------------------


def test_plane_items_of_a_real_model_without_data_are_the_embedded_world():
    world = World(WorldConfig(seed=0))
    items = plane_items("some/hub-model", ["ko", "es"])
    expected = world.transfer_items("en") + world.items("ko") + world.items("es")
    assert [item.to_json() for item in items] == [item.to_json() for item in expected]


def test_plane_items_take_each_axis_from_its_real_data_when_given():
    items = plane_items("some/hub-model", ["ko"], transfer_data=str(FIXTURES / "global_mmlu"),
                        localization_data=str(FIXTURES / "blend"))
    transfer = [item for item in items if item.task == "transfer"]
    assert {item.language for item in transfer} == {"en", "ko"}
    assert all("sample_id" in item.meta for item in transfer)
    assert all("question_id" in item.meta for item in items if item.task == "localization")
    mixed = plane_items("some/hub-model", ["ko"], localization_data=str(FIXTURES / "blend"))
    assert all("creature" in item.meta for item in mixed if item.task == "transfer")
    assert all("question_id" in item.meta for item in mixed if item.task == "localization")


def test_real_data_items_carry_the_parallel_prompts_that_steering_vectors_need(tiny_llama_dir):
    items = plane_items("some/hub-model", ["ko"], transfer_data=str(FIXTURES / "global_mmlu"),
                        localization_data=str(FIXTURES / "blend"))
    model = load_model(str(tiny_llama_dir))
    vectors = steering.extract_vectors(model, items, kinds=["en", "loc", "loclang"], split=None)
    assert set(vectors) == {"en.ko", "loc.ko", "loclang.ko"}


CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}"
                 "<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_plane_items_of_a_chat_preset_go_through_the_chat_template_prompts_and_parallel_prompts(tiny_tokenizer):
    import copy

    tokenizer = copy.deepcopy(tiny_tokenizer)  # the fixture is shared by the session: add the template to a copy
    tokenizer.chat_template = CHAT_TEMPLATE
    plain = plane_items("some/hub-model", ["ko"])
    chat = plane_items("some/hub-model", ["ko"], tokenizer=tokenizer, preset="gemma-3-12b-it")
    assert len(chat) == len(plain)
    for before, after in zip(plain, chat):
        assert after.prompt == presets.format_prompt(presets.PRESETS["gemma-3-12b-it"], tokenizer, before.prompt)
        assert after.prompt.startswith("<|user|>") and "<|assistant|>" in after.prompt
        assert after.choices == before.choices and after.gold == before.gold
        for key in ("english_prompt", "explicit_prompt"):
            if key in before.meta:
                assert after.meta[key] == presets.format_prompt(presets.PRESETS["gemma-3-12b-it"], tokenizer,
                                                                before.meta[key])
    # a preset without a chat template, or no preset, leaves the prompts alone
    assert plane_items("some/hub-model", ["ko"], tokenizer=tokenizer, preset=None) == plain
    with pytest.raises(ValueError, match="unknown preset"):
        plane_items("some/hub-model", ["ko"], tokenizer=tokenizer, preset="no-such-preset")


# -- the chapters, run with papermill on the tiny models ---------------------------------------------------------

# Each chapter runs end to end once on a real model's path: chapters 1-4 on the pretrained model with its LoRA
# adapters and real-layout data (tests/test_pretrained.py, `cla rerun`), chapter 1 below on tiny Llama with the
# Global-MMLU and BLEnD fixtures, locally and through the remote round trip, chapter 5 below; every step the chapters
# take runs on each architecture above. What a chapter's set-up adds to those steps is checked here in-process.


def _aligned_checkpoint(model_dir: Path, tmp_path: Path) -> Path:
    from cla_lib.alignment import align_model

    data = {"replay": write_jsonl(tmp_path / "replay.jsonl", REPLAY),
            "parallel": write_jsonl(tmp_path / "parallel.jsonl", PARALLEL)}
    # LoRA adapters, as a real model is aligned (cla_lib.alignment.lora): the chapters load them merged into the base
    return align_model(model_dir, "midalign", data, tmp_path / "midalign", steps=2, learning_rate=1e-2, batch_size=2,
                       sequence_length=16, progress=False, lora_rank=4, report=lambda line: None)


def run_chapter(chapter: str, parameters: dict, output: Path):
    """Execute a chapter; a tiny model has no real data, so chapters that score it are told to use the embedded world
    (`embedded_world`; `test_a_chapter_refuses_a_real_model_without_its_data` sets one up without)."""
    import nbformat
    import papermill

    if chapter != "05_real_models":
        parameters = {"embedded_world": True, **parameters}
    papermill.execute_notebook(str(ROOT / "book" / f"{chapter}.ipynb"), str(output), parameters=parameters,
                               kernel_name="python3", cwd=str(ROOT), progress_bar=False)
    return nbformat.read(output, as_version=4)


def test_a_chapter_places_a_real_model_where_its_parameters_say_and_loads_adapters_as_a_model(tiny_model_dirs,
                                                                                                tmp_path, capsys,
                                                                                                monkeypatch):
    from cla_lib.book.chapters import chapter_setup
    from cla_lib.plane import loading

    # The placement parameters reach the model (chapter 1's `device` and `dtype`), and it says where it went. They
    # are this process's defaults from then on (a kernel's): unset again after the test.
    for variable in (loading.DEVICE_VARIABLE, loading.DTYPE_VARIABLE):
        monkeypatch.setenv(variable, "")  # recorded, so that the test's end restores it (unset)
        monkeypatch.delenv(variable)
    setup = chapter_setup(str(tiny_model_dirs["gemma3"]), "ko", device="cpu", dtype="bfloat16", embedded_world=True)
    lm = setup.load()
    printed = capsys.readouterr().out
    assert f"{tiny_model_dirs['gemma3']}: " in printed and "parameters on cpu in bfloat16" in printed
    assert next(lm.parameters()).dtype == torch.bfloat16
    # An aligned real model given as its LoRA adapters (chapter 3's `model`) loads merged into its base and scores
    # the chapter's items differently from the base.
    adapters = _aligned_checkpoint(tiny_model_dirs["llama"], tmp_path)
    assert (adapters / "adapter_config.json").exists() and not (adapters / "config.json").exists()
    setup = chapter_setup(str(adapters), "ko", embedded_world=True)
    items = [item for item in setup.items() if item.split == "test"][:8]
    base = load_model(str(tiny_model_dirs["llama"]))
    assert choice_logprobs(setup.load(), items) != choice_logprobs(base, items)


def test_a_chapter_refuses_a_real_model_without_its_data(tiny_llama_dir):
    from cla_lib.book.chapters import chapter_setup

    # Every chapter's set-up cell, before anything loads (a kernel would show this error in the chapter's first cell)
    with pytest.raises(ValueError, match="is a real model: give -p transfer_data"):
        chapter_setup(str(tiny_llama_dir), "ko", embedded_world=False)


@pytest.fixture(scope="module")
def first_chapter_on_data(tiny_llama_dir, tmp_path_factory):
    """Chapter 1 on tiny Llama with the Global-MMLU and BLEnD fixtures, run locally and through the remote round
    trip; the remote run with a sentinel NDIF key in the environment (it must land in no notebook)."""
    directory = tmp_path_factory.mktemp("first_chapter")
    parameters = {"model": str(tiny_llama_dir), "language": "ko", "embedded_world": False,
                  "transfer_data": str(FIXTURES / "global_mmlu"), "localization_data": str(FIXTURES / "blend")}
    local = run_chapter("01_organism_plane", parameters, directory / "local.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NDIF_API_KEY", SENTINEL)
        patch.setenv("NDIF_HOST", "http://127.0.0.1:9")  # nothing listens there: the served check fails at once
        remote = run_chapter("01_organism_plane", {**parameters, "remote": "local"}, directory / "remote.ipynb")
    return directory, parameters, local, remote


def test_a_chapter_scores_the_real_data_it_is_given(first_chapter_on_data):
    from cla_lib.book.rerun import glued_values

    _, parameters, local, _ = first_chapter_on_data
    items = plane_items(parameters["model"], ["ko"], transfer_data=parameters["transfer_data"],
                        localization_data=parameters["localization_data"])
    chance = {task: [1 / len(item.choices) for item in items if item.task == task]
              for task in ("transfer", "localization")}
    glued = glued_values(local)
    assert glued["transfer_chance"] == pytest.approx(0.25)  # Global-MMLU's four letters, not the world's 8 names
    assert glued["localization_chance"] == pytest.approx(sum(chance["localization"]) / len(chance["localization"]))


def test_first_chapter_gives_the_same_numbers_through_the_remote_round_trip(first_chapter_on_data):
    from cla_lib.book.rerun import glued_values

    _, _, local, remote = first_chapter_on_data
    assert glued_values(remote) == glued_values(local)


def test_the_ndif_key_never_appears_in_an_executed_chapter(first_chapter_on_data, tmp_path, monkeypatch):
    import papermill

    directory, _, _, remote = first_chapter_on_data
    assert remote.cells
    monkeypatch.setenv("NDIF_API_KEY", SENTINEL)
    monkeypatch.setenv("NDIF_HOST", "http://127.0.0.1:9")  # nothing listens there: the served check fails at once
    with pytest.raises(papermill.PapermillExecutionError, match="NDIF not reachable"):
        run_chapter("01_organism_plane", {"model": "llama-3.1-8b-instruct", "language": "ko", "remote": True},
                    tmp_path / "remote.ipynb")
    for path in [*directory.glob("*.ipynb"), *tmp_path.glob("*.ipynb")]:
        assert SENTINEL not in path.read_text(encoding="utf-8"), path.name
    assert "NDIF not reachable" in (tmp_path / "remote.ipynb").read_text(encoding="utf-8")


def test_a_key_stored_by_nnsight_login_never_appears_in_an_executed_chapter(tmp_path, monkeypatch):
    import papermill

    # nnsight's own stored configuration, as `nnsight login` writes it; the kernel reads it, no variable is set
    (tmp_path / "nnsight.yaml").write_text(f"API:\n  APIKEY: {SENTINEL}\n")
    monkeypatch.setenv("NNSIGHT_CONFIG", str(tmp_path / "nnsight.yaml"))
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.setenv("NDIF_HOST", "http://127.0.0.1:9")  # nothing listens there: the served check fails at once
    with pytest.raises(papermill.PapermillExecutionError, match="NDIF not reachable"):  # the key was found
        run_chapter("01_organism_plane", {"model": "llama-3.1-8b-instruct", "language": "ko", "remote": True},
                    tmp_path / "remote.ipynb")
    assert SENTINEL not in (tmp_path / "remote.ipynb").read_text(encoding="utf-8")


def test_the_architectures_are_the_ones_the_presets_name(tiny_model_dirs):
    classes = {json.loads((directory / "config.json").read_text())["architectures"][0]
               for directory in tiny_model_dirs.values()}
    assert classes == {"LlamaForCausalLM", "Qwen2ForCausalLM", "Gemma3ForCausalLM"}
    for preset in presets.PRESETS.values():
        assert re.match(r"^(google/gemma-3|meta-llama/Llama-3|Qwen/Qwen2|HuggingFaceTB/SmolLM2)", preset.hub_id)


def test_the_real_models_chapter_runs_and_glues_the_compute_estimate(tiny_organism_environment, tmp_path):
    # Its worked example scores the organism: the tiny one here (the kernel inherits CLA_ORGANISM_SIZE), never a
    # default-size organism trained inside the test.
    from cla_lib.book.rerun import glued_values

    # The pretrained model's section runs in tests/test_pretrained.py's rerun of every chapter on it.
    notebook = run_chapter("05_real_models", {"example_languages": "ko", "pretrained": ""}, tmp_path / "05.ipynb")
    values = glued_values(notebook)
    assert values["model"] == "gemma-3-12b-it" and values["n_languages"] == 6
    assert 11.5 < values["parameters_billions"] < 12.2  # Gemma 3 12B's text model, counted on the meta device
    assert values["total_gpu_hours"] > 0 and values["total_pflop"] > 0
    assert values["requests_03"] == 16 and values["requests_04"] == 6 and values["requests_02"] == 0
    assert values["round_trip_identical"] == "identical" and values["example_ok"] == values["example_runs"] == 1
