"""Tests of cla_lib.alignment: the losses by hand and against independent code, the recipes on tiny real models,
and the aligned organisms (tiny size, a temporary cache)."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from cla_lib import organism
from cla_lib.alignment import (
    METHODS,
    align_model,
    answer_loss,
    clo_loss,
    contrastive_loss,
    dpo_loss,
    encode_continuations,
    encode_texts,
    mean_pooled,
    midalign_loss,
    parallel_batch,
    preference_batch,
    RecordBatches,
    read_records,
    residual_after,
)
from cla_lib.model.reference import UnknownOrganismError
from cla_lib.organism import config_for, organism_path, training_record, world_of
from cla_lib.scoring import encode_choice
from cla_lib.core.training import Schedule, train

PARALLEL = [
    {"language": "es", "english": "The capital of Spain is Madrid.", "target": "La capital de España es Madrid."},
    {"language": "id", "english": "The capital is Jakarta.", "target": "Ibu kota Indonesia adalah Jakarta."},
    {"language": "el", "english": "The capital is Athens.", "target": "Η πρωτεύουσα της Ελλάδας είναι η Αθήνα."},
    {"language": "ko", "english": "The capital is Seoul.", "target": "한국의 수도는 서울입니다."},
]
PREFERENCE = [
    {"prompt": "La capital de España es", "chosen": " Madrid", "rejected": " Paris"},
    {"prompt": "Ibu kota Indonesia adalah", "chosen": " Jakarta", "rejected": " Madrid"},
    {"prompt": "The capital of France is", "chosen": " Paris", "rejected": " Jakarta"},
    {"prompt": "한국의 수도는", "chosen": " 서울입니다", "rejected": " Seoul"},
]
INSTRUCTION = [
    {"language": "es", "prompt": "La capital de España es", "answer": " Madrid."},
    {"language": "en", "prompt": "The capital of France is", "answer": " Paris."},
    {"language": "zh", "prompt": "中国的首都是", "answer": "北京。"},
    {"language": "fa", "prompt": "پایتخت ایران", "answer": " تهران است."},
]
REPLAY = [{"text": text} for text in (
    "The capital of France is Paris. The capital of Spain is Madrid.",
    "La capital de España es Madrid. El río más largo es el Amazonas.",
    "Ibu kota Indonesia adalah Jakarta. Makanan khas adalah nasi goreng.",
    "한국의 수도는 서울입니다. 대표 음식은 김치입니다.",
)]
DATA = {"midalign": ("parallel", PARALLEL), "clo": ("preference", PREFERENCE), "mit": ("instruction", INSTRUCTION),
        "replay": (None, None), "replay_attention": (None, None)}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


def data_files(tmp_path, method):
    kind, records = DATA[method]
    files = {"replay": write_jsonl(tmp_path / "replay.jsonl", REPLAY)}
    if kind:
        files[kind] = write_jsonl(tmp_path / f"{kind}.jsonl", records)
    return files


def plain(directory):
    return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()


# -- the losses ------------------------------------------------------------------------------------------------


def test_contrastive_loss_equals_an_independent_infonce():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    losses = []
    for i in range(len(a)):
        logits = torch.stack([torch.dot(a[i], b[j]) / (a[i].norm() * b[j].norm()) / 0.1 for j in range(len(b))])
        losses.append(-(logits[i].exp() / logits.exp().sum()).log())
    assert torch.allclose(contrastive_loss(a, b, temperature=0.1), torch.stack(losses).mean(), atol=1e-5)


def test_contrastive_loss_on_a_two_by_two_case_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # cosines: a0 (1, 1/√2), a1 (0, 1/√2)
    row_0 = math.log(1 + math.exp(10 / math.sqrt(2) - 10))  # logits 10 (positive) and 7.07
    row_1 = math.log(1 + math.exp(-10 / math.sqrt(2)))  # logits 0 and 7.07 (positive)
    assert contrastive_loss(a, b) == pytest.approx((row_0 + row_1) / 2, abs=1e-5)


def test_dpo_loss_by_hand():
    # margin = (-1 - -2) - (-3 - -2) = 2; beta 0.5 -> -log sigmoid(1)
    value = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]), 0.5)
    assert value.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    zeros = torch.zeros(3)
    assert dpo_loss(zeros, zeros, zeros, zeros).item() == pytest.approx(math.log(2), abs=1e-6)


def test_residual_after_equals_output_hidden_states(tiny_model_dir, tiny_tokenizer):
    model = plain(tiny_model_dir)
    batch = encode_texts(tiny_tokenizer, [record["target"] for record in PARALLEL])
    with torch.no_grad():
        reference = model(**batch, output_hidden_states=True).hidden_states[1]
        assert torch.allclose(residual_after(model, 0, **batch), reference, atol=1e-6)


def test_midalign_loss_is_infonce_on_mean_pooled_middle_layer_states(tiny_llama_dir, tiny_tokenizer):
    model = plain(tiny_llama_dir)
    batch = parallel_batch(tiny_tokenizer, PARALLEL)
    with torch.no_grad():
        pooled = {}
        for side in ("target", "english"):
            hidden = model(**batch[side], output_hidden_states=True).hidden_states[1]
            mask = batch[side]["attention_mask"]
            pooled[side] = torch.stack([hidden[row, mask[row].bool()].mean(0) for row in range(len(hidden))])
        expected = contrastive_loss(pooled["target"], pooled["english"], 0.1)
        assert torch.allclose(midalign_loss(model, batch, layer=0, temperature=0.1), expected, atol=1e-5)
    assert torch.equal(mean_pooled(torch.ones(1, 3, 2), torch.tensor([[1, 1, 0]])), torch.ones(1, 2))


def test_answer_loss_counts_only_answer_tokens(tiny_llama_dir, tiny_tokenizer):
    model = plain(tiny_llama_dir)
    records = INSTRUCTION[:2]
    batch = encode_continuations(tiny_tokenizer, [r["prompt"] for r in records], [r["answer"] for r in records])
    logprobs, count = [], 0
    with torch.no_grad():
        for record in records:
            context, answer = encode_choice(tiny_tokenizer, record["prompt"], record["answer"])
            tokens = torch.tensor([context + answer])
            token_logprobs = model(input_ids=tokens).logits[0].log_softmax(-1)
            for position in range(len(context), len(context) + len(answer)):
                logprobs.append(token_logprobs[position - 1, tokens[0, position]])
            count += len(answer)
        assert batch["continuation_mask"].sum().item() == count
        expected = -torch.stack(logprobs).mean()
        assert torch.allclose(answer_loss(model, batch), expected, atol=1e-5)
        # The same value as transformers' own loss with the prompt and the padding labelled -100.
        labels = batch["input_ids"].masked_fill(batch["continuation_mask"] == 0, -100)
        hf_loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        assert torch.allclose(hf_loss, expected, atol=1e-5)


def test_clo_reference_model_stays_frozen_while_the_policy_learns(tiny_llama_dir, tiny_tokenizer):
    model = plain(tiny_llama_dir)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    before = {name: parameter.clone() for name, parameter in reference.named_parameters()}
    policy_before = model.model.layers[0].self_attn.q_proj.weight.clone()
    batch = preference_batch(tiny_tokenizer, PREFERENCE)
    train(model, lambda m, b: clo_loss(m, b, reference=reference), lambda step: batch, Schedule(3, 1e-2),
          progress=False)
    for name, parameter in reference.named_parameters():
        assert parameter.grad is None and not parameter.requires_grad
        assert torch.equal(parameter, before[name]), name
    assert not reference.training
    assert not torch.equal(model.model.layers[0].self_attn.q_proj.weight, policy_before)


def test_clo_changes_only_attention_projection_weights(tiny_llama_dir, tmp_path):
    out = align_model(tiny_llama_dir, "clo", data_files(tmp_path, "clo"), tmp_path / "out", steps=3,
                      learning_rate=1e-2, batch_size=4, sequence_length=16, progress=False)
    before, after = load_file(tiny_llama_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert before.keys() == after.keys()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    projections = {name for name in before if name.split(".")[-2] in ("q_proj", "k_proj", "v_proj", "o_proj")}
    assert changed == projections


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_loss_decreases_on_a_tiny_model(method, tiny_llama_dir, tmp_path):
    # One batch of data, so every step sees the same examples (in a new order) and the loss must fall.
    out = align_model(tiny_llama_dir, method, data_files(tmp_path, method), tmp_path / "out", steps=6,
                      learning_rate=1e-2, batch_size=4, sequence_length=16, progress=False)
    record = json.loads((out / "training.json").read_text())
    losses = record["replay_losses"] if method in ("replay", "replay_attention") else record["objective_losses"]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert len(record["losses"]) == 6 and record["method"] == method


def test_align_model_names_missing_data_and_unknown_options(tiny_llama_dir, tmp_path):
    files = data_files(tmp_path, "mit")
    with pytest.raises(ValueError, match="parallel"):
        align_model(tiny_llama_dir, "midalign", files, tmp_path / "a", steps=1, learning_rate=1e-3, batch_size=2)
    with pytest.raises(ValueError, match="no option beta"):
        align_model(tiny_llama_dir, "mit", files, tmp_path / "b", steps=1, learning_rate=1e-3, batch_size=2,
                    beta=0.1)


def test_cli_align_fine_tunes_a_local_model(tiny_llama_dir, tmp_path, capsys):
    from cla_lib.cli import main

    files = data_files(tmp_path, "mit")
    arguments = ["align", "--model", str(tiny_llama_dir), "--method", "mit", "--data", f"replay={files['replay']}",
                 "--data", f"instruction={files['instruction']}", "--out", str(tmp_path / "out"), "--steps", "2",
                 "--learning-rate", "1e-3", "--batch-size", "2", "--sequence-length", "16"]
    assert main(arguments) == 0
    assert Path(capsys.readouterr().out.strip()) == tmp_path / "out"
    assert json.loads((tmp_path / "out" / "training.json").read_text())["method_config"]["steps"] == 2
    assert main(arguments) == 2  # the output exists now: a clear error, not a traceback
    assert "exists already" in capsys.readouterr().err


def test_read_records_names_the_line_and_the_missing_field(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [PARALLEL[0], {"language": "ko", "english": "x"}])
    with pytest.raises(ValueError, match=r"pairs.jsonl:2: .*target"):
        read_records(path, "parallel")


def test_record_batches_are_a_pure_function_of_the_step_and_never_repeat_a_group():
    records = [{"english": f"e{i % 5}", "target": f"t{i}"} for i in range(30)]  # 5 English sentences, 6 each
    batches = RecordBatches(records, 4, seed=1, group=lambda record: record["english"])
    again = RecordBatches(records, 4, seed=1, group=lambda record: record["english"])
    for step in range(12):
        batch = batches(step)
        assert len(batch) == 4 and len({record["english"] for record in batch}) == 4
        assert batch == again(step)


# -- aligned organisms -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """A temporary cache with the tiny base organism (trained once, a few seconds)."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("cla_cache")
        patch.setenv("CLA_CACHE", str(root))
        patch.setenv("CLA_ORGANISM_SIZE", "tiny")
        organism_path("organism", progress=False)
        yield root


def test_replay_continues_the_base_stream_at_the_first_epoch_it_did_not_reach(tiny_cache):
    from transformers import AutoTokenizer

    from cla_lib.core.batching import pack_documents

    config = config_for("tiny")
    base = organism_path("organism", progress=False)
    tokenizer = AutoTokenizer.from_pretrained(base)
    world = world_of(base)
    rows = organism.organism_replay(world, tokenizer, config, 2.3, 10)
    assert torch.equal(rows, pack_documents(tokenizer, world.documents(3), config.sequence_length)[:10])
    epochs = training_record(base)["epochs"]
    assert 0 < epochs < 3  # the tiny base sees part of its data a few times


def test_aligned_organism_is_bitwise_deterministic_and_loads(tiny_cache):
    from cla_lib.plane.loading import load_model
    from cla_lib.model import n_layers

    first = organism_path("organism:midalign", progress=False)
    weights = load_file(first / "model.safetensors")
    shutil.rmtree(first)
    second = organism_path("organism:midalign", progress=False)
    assert second == first
    again = load_file(second / "model.safetensors")
    assert weights.keys() == again.keys() and all(torch.equal(weights[name], again[name]) for name in weights)

    record = training_record(second)
    assert record["method"] == "midalign" and record["method_config"]["layer"] == config_for("tiny").n_layers // 2
    assert record["method_config"]["steps"] == 10 and len(record["objective_losses"]) == 10
    assert world_of(second).config == world_of(organism_path("organism", progress=False)).config
    assert n_layers(load_model(str(second))) == config_for("tiny").n_layers
    assert load_model("organism:midalign").tokenizer is not None


def test_aligned_organism_keeps_a_checkpoint_at_each_dose(tiny_cache):
    from cla_lib.plane.loading import load_model

    final = organism_path("organism:mit", progress=False)
    doses = organism.dose_directories(final)
    assert sorted(doses) == [*organism.DOSES, 1.0] and doses[1.0] == final
    base = load_file(organism_path("organism", progress=False) / "model.safetensors")
    weights = {dose: load_file(path / "model.safetensors") for dose, path in doses.items()}
    steps = {dose: training_record(path)["steps_done"] for dose, path in doses.items()}
    assert steps == {0.25: 2, 0.5: 5, 1.0: 10}  # of the tiny method's 10 steps
    name = "model.layers.0.self_attn.q_proj.weight"
    values = [base[name], *(weights[dose][name] for dose in sorted(weights))]
    assert all(not torch.equal(a, b) for a, b in zip(values, values[1:]))  # each dose trained further
    for dose, path in doses.items():
        assert training_record(path)["dose"] == dose and world_of(path).config == world_of(final).config
    assert load_model(str(doses[0.25])).tokenizer is not None


def test_cli_prints_the_clo_organism_directory(tiny_cache, capsys):
    from cla_lib.cli import main

    assert main(["organism", "path", "--method", "clo", "--organism-size", "tiny"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == tiny_cache / "organisms" and (path / "model.safetensors").exists()
    assert training_record(path)["method"] == "clo"


def test_unknown_method_is_a_clear_error(capsys):
    with pytest.raises(UnknownOrganismError, match="methods: midalign, clo, mit, replay"):
        organism.aligned_organism("nope", config_for("tiny"))
    with pytest.raises(UnknownOrganismError, match="unknown alignment method 'nope'"):
        organism_path("organism:nope", size="tiny")
    from cla_lib.cli import main

    assert main(["organism", "path", "--method", "nope", "--organism-size", "tiny"]) == 2
    assert "unknown alignment method" in capsys.readouterr().err
