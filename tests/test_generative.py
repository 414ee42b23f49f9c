"""Tests of generative scoring (BLEnD's way): greedy short answers through nnsight, matched against annotators'."""

from __future__ import annotations

import math

import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cla_lib.plane.evaluation import answer_frame, answers, plane_items
from cla_lib.plane.loading import load_model
from cla_lib.organism import world_of
from cla_lib.scoring.generative import agreement, generate_answers, generative_localization


def test_answers_are_greedy_continuations_as_plain_transformers_generates_them_one_prompt_at_a_time(
        tiny_organism_dir):
    model = load_model(str(tiny_organism_dir))
    items = [item for item in world_of(tiny_organism_dir).localization_items("ko")][:6]
    prompts = [item.prompt for item in items]
    batched = generate_answers(model, prompts, max_new_tokens=6, batch_size=4)  # left-padded batches of 4 and 2
    tokenizer = AutoTokenizer.from_pretrained(tiny_organism_dir)
    plain = AutoModelForCausalLM.from_pretrained(tiny_organism_dir, dtype=torch.float32).eval()
    for prompt, answer in zip(prompts, batched):
        ids = torch.tensor([tokenizer(prompt)["input_ids"]])
        alone = plain.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                               pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        expected = tokenizer.decode(alone[0, ids.shape[1]:], skip_special_tokens=True).strip().split("\n")[0].strip()
        assert answer == expected


def test_an_organism_item_carries_its_local_and_us_answers_and_a_generated_answer_is_matched_against_both(
        tiny_organism_dir):
    items = world_of(tiny_organism_dir).localization_items("es")
    for item in items:
        assert item.meta["local_answers"] == [item.choices[item.gold].strip()]
        assert item.meta["us_answers"] == [item.choices[item.us_choice].strip()]
    frame = generative_localization(load_model(str(tiny_organism_dir)), items[:8], max_new_tokens=4)
    assert list(frame.columns) == ["id", "language", "split", "answer", "local", "us"] and len(frame) == 8
    for row, item in zip(frame.itertuples(), items[:8]):
        gold, us = item.choices[item.gold].strip(), item.choices[item.us_choice].strip()
        assert row.local == (gold.casefold() in row.answer.casefold()) or gold == us
        if gold == us:
            assert row.local == row.us


def test_agreement_counts_matches_and_kappa_by_hand():
    generated = pd.DataFrame({"id": list("abcd"), "language": ["ko"] * 4, "local": [True, True, False, False],
                              "us": [False, False, True, False]})
    likelihood = pd.DataFrame({"id": list("abcd"), "correct": [True, False, False, False]})
    (row,) = agreement(generated, likelihood).to_dict("records")
    # observed 3/4; expected .5 * .25 + .5 * .75 = .5; kappa (.75 - .5) / .5 = .5
    assert (row["items"], row["agree"], row["generative_local"], row["likelihood_local"]) == (4, 0.75, 0.5, 0.25)
    assert math.isclose(row["kappa"], 0.5) and row["generative_us"] == 0.25


def test_the_agreement_of_the_two_ways_is_measured_per_language_on_the_organisms_items(tiny_organism_environment):
    # What the book reports on the default organism (chapter 05); the tiny one is too small to answer in words, so
    # this checks the measurement, not its outcome.
    model = load_model("organism")
    items = [item for item in plane_items("organism", ["ko", "es"]) if item.task == "localization"]
    generated = generative_localization(model, items, max_new_tokens=4)
    frame = agreement(generated, answer_frame(items, answers(model, items)))
    assert list(frame["language"]) == ["ko", "es"] and frame["items"].sum() == len(items) == len(generated)
    assert ((0 <= frame["agree"]) & (frame["agree"] <= 1)).all()
