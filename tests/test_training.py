"""Tests for cla_lib.core.training: the learning-rate schedule and the one training loop."""

from __future__ import annotations

import math

import pytest
import torch

from cla_lib.core.training import Schedule, language_model_loss, train


def test_warmup_rises_linearly_to_the_full_rate():
    schedule = Schedule(steps=10, learning_rate=1e-3, warmup=4)
    assert [schedule.factor(step) for step in range(4)] == [0.25, 0.5, 0.75, 1.0]


def test_after_warmup_the_rate_follows_a_cosine_down_to_zero():
    schedule = Schedule(steps=10, learning_rate=1e-3, warmup=4)
    assert schedule.factor(4) == 1.0
    assert math.isclose(schedule.factor(7), 0.5 * (1 + math.cos(math.pi * 3 / 6)))  # 0.5, half-way down
    assert math.isclose(schedule.factor(9), 0.5 * (1 + math.cos(math.pi * 5 / 6)))
    assert math.isclose(schedule.factor(10), 0.0, abs_tol=1e-12)
    factors = [schedule.factor(step) for step in range(4, 11)]
    assert factors == sorted(factors, reverse=True)


def test_without_warmup_the_first_step_has_the_full_rate():
    assert Schedule(steps=5, learning_rate=1e-3).factor(0) == 1.0


def load_llama(directory):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)


@pytest.fixture
def memorizable_batch(tiny_tokenizer) -> dict:
    ids = tiny_tokenizer(["The capital of Spain is Madrid.", "한국의 수도는 서울입니다."], padding=True,
                         return_tensors="pt")
    labels = ids["input_ids"].masked_fill(ids["attention_mask"] == 0, -100)
    return {"input_ids": ids["input_ids"], "attention_mask": ids["attention_mask"], "labels": labels}


def test_train_memorizes_one_batch_and_logs_a_loss_per_step(tiny_llama_dir, memorizable_batch):
    model = load_llama(tiny_llama_dir)
    log = train(model, language_model_loss, lambda step: memorizable_batch,
                Schedule(steps=30, learning_rate=1e-2, warmup=3), tokens_per_batch=10, progress=False)
    assert len(log.losses) == 30 and log.tokens == 300 and log.seconds > 0
    assert log.losses[-1] < 0.2 * log.losses[0]
    assert not model.training  # handed back in eval mode
    with torch.no_grad():
        assert language_model_loss(model, memorizable_batch).item() < 0.2 * log.losses[0]


def test_train_is_deterministic_for_the_same_start_and_batches(tiny_llama_dir, memorizable_batch):
    schedule = Schedule(steps=5, learning_rate=1e-2, warmup=1)
    first = train(load_llama(tiny_llama_dir), language_model_loss, lambda step: memorizable_batch, schedule,
                  progress=False)
    second = train(load_llama(tiny_llama_dir), language_model_loss, lambda step: memorizable_batch, schedule,
                   progress=False)
    assert first.losses == second.losses


def test_stop_runs_a_prefix_of_the_same_training(tiny_llama_dir, memorizable_batch):
    schedule = Schedule(steps=6, learning_rate=1e-2, warmup=2)
    whole = train(load_llama(tiny_llama_dir), language_model_loss, lambda step: memorizable_batch, schedule,
                  tokens_per_batch=10, progress=False)
    prefix = train(load_llama(tiny_llama_dir), language_model_loss, lambda step: memorizable_batch, schedule,
                   tokens_per_batch=10, progress=False, stop=3)
    assert prefix.losses == whole.losses[:3] and prefix.tokens == 30  # the full schedule's rates, cut short


def test_only_the_given_parameters_train(tiny_llama_dir, memorizable_batch):
    model = load_llama(tiny_llama_dir)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    chosen = "model.layers.1.self_attn.q_proj.weight"
    train(model, language_model_loss, lambda step: memorizable_batch, Schedule(steps=3, learning_rate=1e-2),
          parameters=[model.get_parameter(chosen)], progress=False)
    changed = {name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])}
    assert changed == {chosen}

