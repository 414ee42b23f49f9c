"""Tests of aligning real models at scale: LoRA adapters through peft, the memory estimate, and two processes through
`accelerate launch` giving the one-process result (on the CPU, gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from cla_lib.alignment import METHODS, align_model
from cla_lib.alignment.estimate import (
    GIB, TrainingWontFitError, architecture, estimate_training, preset_architecture,
)
from cla_lib.alignment.lora import LoraSettings, PROJECTIONS, add_adapters, frozen_reference
from cla_lib.model.presets import PRESETS
from test_alignment import data_files
from test_cli import cla

ADAPTERS = ("adapter_config.json", "adapter_model.safetensors", "training.json")


def lora_run(model_dir, method, tmp_path, name="out", **options):
    settings = dict(steps=4, learning_rate=1e-2, batch_size=4, sequence_length=16, progress=False, lora_rank=4,
                    dtype="bfloat16", gradient_checkpointing=True, report=lambda line: None)
    return align_model(model_dir, method, data_files(tmp_path, method), tmp_path / name, **{**settings, **options})


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_lora_adapters_in_bfloat16_and_saves_them_in_peft_format(method, tiny_llama_dir,
                                                                                       tmp_path):
    out = lora_run(tiny_llama_dir, method, tmp_path)
    assert sorted(path.name for path in out.iterdir() if path.name in ADAPTERS) == sorted(ADAPTERS)
    assert not (out / "model.safetensors").exists()  # the adapters only, not a copy of the base
    record = json.loads((out / "training.json").read_text())
    targets = ("q_proj", "k_proj", "v_proj", "o_proj") if method in ("clo", "replay_attention") else PROJECTIONS
    assert record["lora"] == {"rank": 4, "alpha": 8.0, "targets": list(targets)}
    assert record["dtype"] == "bfloat16" and record["gradient_checkpointing"] is True
    assert record["trainable_parameters"] < record["parameters"] / 5
    assert all(torch.isfinite(torch.tensor(record["losses"])))
    weights = load_file(out / "adapter_model.safetensors")
    adapted = {key.split(".lora_")[0].rsplit(".", 1)[-1] for key in weights}
    assert adapted == set(targets)
    # lora_B starts at zero: a non-zero one is what training changed
    assert any(value.abs().sum() > 0 for key, value in weights.items() if "lora_B" in key)


def test_adapters_load_merged_on_each_architecture_with_the_adapted_models_outputs(tiny_model_dir, tmp_path):
    from peft import PeftModel

    from cla_lib.plane.loading import load_model

    out = lora_run(tiny_model_dir, "midalign", tmp_path, dtype="float32", gradient_checkpointing=False)
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    expected = PeftModel.from_pretrained(base, str(out)).eval()(input_ids=ids).logits
    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()(input_ids=ids).logits
    model = load_model(str(out))
    with model.trace(input_ids=ids):
        logits = model.output.logits.save()
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert (logits - before).abs().max() > 1e-4  # the adapters were applied


def test_clo_reference_with_adapters_is_the_starting_model(tiny_llama_dir):
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    ids = torch.tensor([[1, 7, 11, 19]])
    before = base(input_ids=ids).logits
    torch.manual_seed(0)
    adapted = add_adapters(base, LoraSettings(4).resolved(()))
    with torch.no_grad():
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.normal_()
    reference = frozen_reference(adapted)
    assert not list(reference.parameters())  # no second copy of the weights
    torch.testing.assert_close(reference(input_ids=ids).logits, before)
    assert (adapted(input_ids=ids).logits - before).abs().max() > 1e-3


def test_the_estimate_counts_the_parameters_peft_trains(tiny_model_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)
    model = architecture(config)
    network = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    assert model.parameters == sum(parameter.numel() for parameter in network.parameters())
    attention = ("q_proj", "k_proj", "v_proj", "o_proj")
    in_attention = sum(parameter.numel() for name, parameter in network.named_parameters()
                       if any(part in attention for part in name.split(".")))
    adapted = add_adapters(network, LoraSettings(8).resolved(()))
    trainable = sum(parameter.numel() for parameter in adapted.parameters() if parameter.requires_grad)
    estimate = estimate_training(model, bytes_per_value=2, tokens=1000, lora_rank=8, targets=PROJECTIONS)
    assert estimate.trainable == trainable
    assert estimate.weights == 2 * model.parameters and estimate.training_state == 16 * trainable
    # full fine-tuning of the attention projections only: their weights, 3 copies for gradients and AdamW
    full = estimate_training(model, bytes_per_value=4, tokens=1000, trainable=attention, reference=True)
    assert full.trainable == in_attention and full.training_state == 12 * in_attention
    assert full.reference == full.weights  # CLO's frozen copy
    # FSDP shards weights and state; activations stay per process
    sharded = estimate_training(model, bytes_per_value=2, tokens=1000, lora_rank=8, targets=PROJECTIONS,
                                processes=4, sharding="fsdp")
    assert sharded.weights == estimate.weights / 4 and sharded.activations == estimate.activations
    checkpointed = estimate_training(model, bytes_per_value=2, tokens=1000, lora_rank=8, targets=PROJECTIONS,
                                     checkpointing=True)
    assert checkpointed.activations < estimate.activations
    # LoRA: a forward and an input-gradient pass of 2 FLOPs per parameter and token; checkpointing adds a forward
    assert estimate.flops_per_step == 2 * 2 * model.multiplying * 1000
    assert checkpointed.flops_per_step == estimate.flops_per_step * 3 / 2


def test_the_gemma_3_12b_estimate_is_its_bfloat16_weights_plus_small_adapters():
    model = preset_architecture(PRESETS["gemma-3-12b-it"])
    estimate = estimate_training(model, bytes_per_value=2, tokens=16 * 512, lora_rank=8, targets=PROJECTIONS,
                                 checkpointing=True)
    assert 10e9 < model.parameters < 13e9
    assert 20 < estimate.weights / GIB < 25 and estimate.training_state / GIB < 1
    full = estimate_training(model, bytes_per_value=4, tokens=16 * 512)
    assert full.total / GIB > 150  # the float32 full fine-tuning the issue measured at ~190 GB


def test_a_run_that_cannot_fit_is_refused_with_its_estimate_before_loading_weights(tiny_llama_dir, tmp_path,
                                                                                   monkeypatch, capsys):
    from cla_lib.alignment import estimate
    from cla_lib.cli import main

    monkeypatch.setattr(estimate, "device_memory", lambda device: 1000)
    with pytest.raises(TrainingWontFitError, match="per device"):
        lora_run(tiny_llama_dir, "mit", tmp_path)
    files = data_files(tmp_path, "mit")
    arguments = ["align", "--model", str(tiny_llama_dir), "--method", "mit", "--data", f"replay={files['replay']}",
                 "--data", f"instruction={files['instruction']}", "--out", str(tmp_path / "cli"), "--steps", "2",
                 "--learning-rate", "1e-3", "--batch-size", "2", "--sequence-length", "16", "--lora-rank", "4"]
    assert main(arguments) == 2
    estimate_line, error = capsys.readouterr().err.splitlines()
    assert estimate_line.startswith("llama, mit, LoRA rank 4 on q_proj/")
    assert "float32 on cpu: estimate:" in estimate_line
    assert error.startswith("cla: error: this run needs about") and "--gradient-checkpointing" in error
    assert not (tmp_path / "cli").exists()
    monkeypatch.undo()
    assert main([*arguments, "--estimate-only"]) == 0
    assert "estimate:" in capsys.readouterr().err and not (tmp_path / "cli").exists()


def _launch(model_dir, method, dtype, tmp_path, name, processes: int | None) -> dict:
    """`cla align` with LoRA, in this process or under `accelerate launch` (torchrun's processes; on this
    machine without GPUs they run on the CPU and talk over gloo)."""
    files = data_files(tmp_path, method)
    arguments = ["align", "--model", str(model_dir), "--method", method, "--out", str(tmp_path / name),
                 "--steps", "4", "--learning-rate", "1e-2", "--batch-size", "4", "--sequence-length", "16",
                 "--lora-rank", "8", "--dtype", dtype, *[f"--data={kind}={path}" for kind, path in files.items()]]
    if processes is None:  # `cla align` in this process (one thread, as the launched processes)
        done = cla(*arguments, check=False)
    else:
        launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                    str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m",
                    "cla_lib.cli"]
        environment = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run([*launcher, *arguments], capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [str(tmp_path / name)]  # the first process prints where it wrote, the other nothing
    return {"weights": load_file(tmp_path / name / "adapter_model.safetensors"),
            "record": json.loads((tmp_path / name / "training.json").read_text())}


# midalign: the contrastive loss's negatives gathered across processes, in bfloat16 as a real run would train (its
# rounding, which Adam's normalised steps can enlarge to ~lr/10 on weights with near-zero gradients, sets the
# tolerance); clo in float32, to the last float: DPO's mean over pairs and the NLL's mean over the global batch's
# chosen tokens (cla_lib.alignment.distributed). Design run (float32, 4 steps): clo and mit agree to 1.5e-6 on the
# weights and 1.4e-6 on the losses.
@pytest.mark.parametrize("method, dtype, tolerance", [("midalign", "bfloat16", 2e-3), ("clo", "float32", 1e-5)])
def test_two_processes_under_accelerate_launch_give_the_one_process_result(method, dtype, tolerance, tiny_llama_dir,
                                                                           tmp_path):
    alone = _launch(tiny_llama_dir, method, dtype, tmp_path, "alone", None)
    shared = _launch(tiny_llama_dir, method, dtype, tmp_path, "shared", 2)
    assert shared["record"]["processes"] == 2 and "processes" not in alone["record"]
    for key in ("losses", "replay_losses", "objective_losses"):
        torch.testing.assert_close(torch.tensor(shared["record"][key]), torch.tensor(alone["record"][key]),
                                   atol=tolerance, rtol=tolerance)
    assert alone["weights"].keys() == shared["weights"].keys()
    for key, value in alone["weights"].items():
        torch.testing.assert_close(shared["weights"][key], value, atol=tolerance, rtol=tolerance)
    # ...and training moved the adapters far more than that (lora_B starts at zero)
    assert max(alone["weights"][key].abs().max() for key in alone["weights"] if "lora_B" in key) > 10 * tolerance
