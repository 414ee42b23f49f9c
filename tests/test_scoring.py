"""Tests for cla_lib.scoring: choice log-likelihoods against a plain-transformers reference."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch

from cla_lib.core.items import Item
from cla_lib.model import decoder_layers
from cla_lib.scoring import (
    check_single_token_choices,
    choice_logprobs,
    choice_logprobs_passes,
    encode_choice,
    encode_item,
    forwards_of,
    predictions,
)

# Prompts and choices of different lengths in each script; several run past the Gemma 3 model's sliding window.
ITEMS = [
    Item("transfer", "en", "The capital of France is", (" Paris", " Madrid", " Jakarta"), 0, id="en-capital"),
    Item("transfer", "ko", "한국의 수도는", (" 서울입니다", " 북경"), 0, id="ko-capital"),
    Item("transfer", "zh", "中国的首都是", ("北京", "上海市"), 0, id="zh-capital"),
    Item("transfer", "el", "Η πρωτεύουσα της Ελλάδας είναι η", (" Αθήνα", " Θεσσαλονίκη"), 0, id="el-capital"),
    Item("transfer", "fa", "پایتخت ایران", (" تهران است", " اصفهان"), 0, id="fa-capital"),
    Item(
        "localization", "es", "El río más largo es el", (" Amazonas", " Nilo", " Tajo"), 2, us_choice=1, id="es-river"
    ),
    Item("localization", "id", "Makanan khas adalah", (" nasi goreng", " hamburger"), 0, us_choice=1, id="id-food"),
]


def reference_logprobs(plain_model, tokenizer, items, hook=None) -> list[list[float]]:
    """Score each (prompt, choice) with its own unbatched forward: the straightforward lm-eval computation."""
    handle = decoder_layers(plain_model)[hook[0]].register_forward_hook(hook[1]) if hook else None
    scores = []
    try:
        for item in items:
            item_scores = []
            for choice in item.choices:
                context = tokenizer(item.prompt)["input_ids"]
                whole = tokenizer(item.prompt + choice)["input_ids"]
                continuation = whole[len(context) :]
                with torch.no_grad():
                    logits = plain_model(input_ids=torch.tensor([whole])).logits[0]
                logprobs = torch.log_softmax(logits, dim=-1)
                item_scores.append(
                    sum(float(logprobs[len(context) - 1 + i, token]) for i, token in enumerate(continuation))
                )
            scores.append(item_scores)
    finally:
        if handle is not None:
            handle.remove()
    return scores


@contextlib.contextmanager
def counting_forwards(model):
    """The batch size of every forward of the model's module while the block runs."""
    forwards = []
    handle = model._module.register_forward_pre_hook(lambda module, args, kwargs: forwards.append(
        kwargs["input_ids"].shape[0]), with_kwargs=True)
    try:
        yield forwards
    finally:
        handle.remove()


def assert_scores_close(actual, expected, tolerance=1e-5):
    """Equal to float32 rounding: sums of around -20 differ by a few 1e-6 between batch shapes."""
    assert [len(row) for row in actual] == [len(row) for row in expected]
    for actual_row, expected_row in zip(actual, expected):
        for actual_score, expected_score in zip(actual_row, expected_row):
            assert math.isclose(actual_score, expected_score, rel_tol=1e-6, abs_tol=tolerance), (actual_row, expected_row)


def test_choice_logprobs_equals_unbatched_plain_transformers(tiny_model, plain_model):
    scores = choice_logprobs(tiny_model, ITEMS)
    expected = reference_logprobs(plain_model, tiny_model.tokenizer, ITEMS)
    assert_scores_close(scores, expected)
    # Random weights still give distinct, negative scores: the comparison is not vacuous.
    assert all(score < 0 for row in scores for score in row)
    assert len({round(score, 4) for row in scores for score in row}) > len(ITEMS)


def test_choice_logprobs_is_the_same_for_any_batch_size(tiny_model):
    one_at_a_time = choice_logprobs(tiny_model, ITEMS, batch_size=1)
    all_at_once = choice_logprobs(tiny_model, ITEMS, batch_size=64)
    three = choice_logprobs(tiny_model, ITEMS, batch_size=3)
    assert_scores_close(all_at_once, one_at_a_time)
    assert_scores_close(three, one_at_a_time)


def test_the_full_sequence_path_runs_one_forward_per_batch(tiny_model):
    n_sequences = sum(len(item.choices) for item in ITEMS)
    with counting_forwards(tiny_model) as forwards:
        choice_logprobs(tiny_model, ITEMS, batch_size=4, shared_prompts=False)
    assert len(forwards) == math.ceil(n_sequences / 4)
    assert sum(forwards) == n_sequences


def test_choice_logprobs_with_edit_equals_plain_forward_hook(tiny_model, plain_model):
    delta = torch.randn(tiny_model.config.hidden_size, generator=torch.Generator().manual_seed(3)) * 4
    steered = choice_logprobs(tiny_model, ITEMS, edits=[(0, delta)])
    expected = reference_logprobs(plain_model, tiny_model.tokenizer, ITEMS, hook=(0, lambda m, a, output: output + delta))
    assert_scores_close(steered, expected)
    assert_scores_close(steered, choice_logprobs(tiny_model, ITEMS, edits=[(0, delta)], batch_size=1))
    unsteered = choice_logprobs(tiny_model, ITEMS)
    assert max(abs(s - u) for srow, urow in zip(steered, unsteered) for s, u in zip(srow, urow)) > 1e-3


def test_edits_on_one_layer_add_up_and_may_come_in_any_order(tiny_model):
    generator = torch.Generator().manual_seed(5)
    first, second, third = (torch.randn(tiny_model.config.hidden_size, generator=generator) for _ in range(3))
    separate = choice_logprobs(tiny_model, ITEMS, edits=[(1, third), (0, first), (0, second)])
    combined = choice_logprobs(tiny_model, ITEMS, edits=[(0, first + second), (1, third)])
    assert separate == combined


def test_edits_leave_later_scores_unchanged(tiny_model):
    before = choice_logprobs(tiny_model, ITEMS)
    choice_logprobs(tiny_model, ITEMS, edits=[(0, torch.ones(tiny_model.config.hidden_size) * 10)])
    assert choice_logprobs(tiny_model, ITEMS) == before


def test_choice_logprobs_shows_progress_when_asked(tiny_llama_dir, capsys):
    from cla_lib.plane.loading import load_model

    model = load_model(str(tiny_llama_dir))
    # Two batch shapes: equal to float32 rounding, not bitwise (padding width changes the kernels' reduction order).
    assert_scores_close(choice_logprobs(model, ITEMS[:2], batch_size=2, progress=True), choice_logprobs(model, ITEMS[:2]))
    assert "scoring" in capsys.readouterr().err


def test_empty_choice_scores_zero_like_the_harness(tiny_llama_dir):
    from cla_lib.plane.loading import load_model

    model = load_model(str(tiny_llama_dir))
    item = Item("transfer", "en", "The capital of France is", ("", " Paris"), 1)
    assert choice_logprobs(model, [item])[0][0] == 0.0


def test_batch_size_below_one_raises(tiny_llama_dir):
    from cla_lib.plane.loading import load_model

    with pytest.raises(ValueError, match="batch_size"):
        choice_logprobs(load_model(str(tiny_llama_dir)), ITEMS, batch_size=0)


def test_encode_choice_cuts_continuation_from_encoding_of_prompt_and_choice(tiny_tokenizer):
    context, continuation = encode_choice(tiny_tokenizer, "The capital of France is", " Paris")
    assert context == tiny_tokenizer("The capital of France is")["input_ids"]
    assert context[0] == tiny_tokenizer.bos_token_id
    assert context + continuation == tiny_tokenizer("The capital of France is Paris")["input_ids"]


def test_predictions_take_argmax_with_ties_to_lowest_index():
    assert predictions([[-3.0, -1.0, -2.0], [-1.0, -1.0], [-0.5]]) == [1, 0, 0]


def test_check_single_token_choices_passes_for_letters(tiny_tokenizer):
    check_single_token_choices(tiny_tokenizer, [" A", " B", " C", " D"])


def test_check_single_token_choices_names_tokenizer_and_offending_choice(tiny_tokenizer, tiny_llama_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    with pytest.raises(ValueError) as raised:
        check_single_token_choices(tokenizer, [" A", " Paris"])
    assert "' Paris'" in str(raised.value)
    assert str(tiny_llama_dir) in str(raised.value)
    with pytest.raises(ValueError, match="PreTrainedTokenizerFast|TokenizersBackend"):
        check_single_token_choices(tiny_tokenizer, [""])


# --- the shared-prompt path (cla_lib.scoring.shared) against the full-sequence path and the reference -----------


def test_shared_prompts_equal_the_full_sequences_and_the_reference_with_and_without_edits(tiny_model, plain_model):
    delta = torch.randn(tiny_model.config.hidden_size, generator=torch.Generator().manual_seed(7)) * 4
    for edits, hook in (([], None), ([(1, delta)], (1, lambda m, a, output: output + delta))):
        for batch_size in (1, 3, 64):
            shared = choice_logprobs(tiny_model, ITEMS, edits=edits, batch_size=batch_size)
            full = choice_logprobs(tiny_model, ITEMS, edits=edits, batch_size=batch_size, shared_prompts=False)
            assert_scores_close(shared, full)
            assert predictions(shared) == predictions(full)
        assert_scores_close(shared, reference_logprobs(plain_model, tiny_model.tokenizer, ITEMS, hook=hook))


def test_shared_prompts_compute_each_prompt_once(tiny_model):
    # One prompt batch (every prompt once, left-padded), then the multi-token choices on its cache in one chunk.
    encoded = [encode_item(tiny_model.tokenizer, item) for item in ITEMS]
    multi_token = sum(len(continuation) > 1 for item in encoded for continuation in item.continuations)
    assert multi_token > 0
    with counting_forwards(tiny_model) as forwards:
        choice_logprobs(tiny_model, ITEMS, batch_size=64)
    assert forwards == [len(ITEMS), multi_token]
    assert forwards_of(tiny_model, [(ITEMS, [])]) == 2


def test_single_token_choices_take_one_forward_per_prompt_batch(tiny_model, plain_model):
    letters = [Item("transfer", "en", f"Question {n}: which letter? Answer:", (" A", " B", " C", " D"), n % 4,
                    id=f"q{n}") for n in range(5)]
    check_single_token_choices(tiny_model.tokenizer, [" A", " B", " C", " D"])
    with counting_forwards(tiny_model) as forwards:
        scores = choice_logprobs(tiny_model, letters, batch_size=64)
    assert forwards == [5]  # prompts of several lengths, padded: no second pass needs their cache
    assert_scores_close(scores, reference_logprobs(plain_model, tiny_model.tokenizer, letters))


def test_passes_over_the_same_items_share_the_layers_below_their_edits(tiny_model):
    hidden = tiny_model.config.hidden_size
    generator = torch.Generator().manual_seed(11)
    deltas = [torch.randn(hidden, generator=generator) * 3 for _ in range(3)]
    passes = [(ITEMS, []), (ITEMS, [(1, deltas[0])]), (ITEMS, [(0, deltas[1])]), (ITEMS, [(1, deltas[2])])]
    layer_calls = [0, 0]
    # A skipped layer still passes its own hooks (nnsight skips its forward); its MLP is not called.
    handles = [layer.mlp.register_forward_pre_hook(lambda module, args, number=number: layer_calls.__setitem__(
        number, layer_calls[number] + 1)) for number, layer in enumerate(decoder_layers(tiny_model._module))]
    try:
        with counting_forwards(tiny_model) as forwards:
            together = choice_logprobs_passes(tiny_model, passes)
    finally:
        for handle in handles:
            handle.remove()
    one_run = forwards_of(tiny_model, [(ITEMS, [])])
    assert len(forwards) == forwards_of(tiny_model, passes) == 4 * one_run  # base + three steered runs
    # Layers up to an edit run only in the unsteered base: a layer-0 edit skips layer 0, a layer-1 edit both.
    assert layer_calls == [one_run, 2 * one_run]
    for (items, edits), scores in zip(passes, together):
        assert_scores_close(scores, choice_logprobs(tiny_model, items, edits=edits, shared_prompts=False))


def test_items_are_tokenized_once_per_tokenizer_across_calls(tiny_model, monkeypatch):
    import cla_lib.scoring.shared as shared

    first = choice_logprobs(tiny_model, ITEMS)
    calls = []
    monkeypatch.setattr(shared, "encode_item", lambda *args: calls.append(args) or encode_item(*args))
    again = choice_logprobs_passes(tiny_model, [(ITEMS, []), (list(reversed(ITEMS)), [])])
    assert calls == []  # the same prompts and choices: their tokens from the first call
    assert again[0] == first
    assert_scores_close(again[1], first[::-1])
    # A prompt no other test asks (the tiny models share one tokenizer, so one table: `tokenizer_state`).
    prompt = f"The capital of Spain ({tiny_model.config.model_type}) is"
    changed = [Item("transfer", "en", prompt, (" Paris", " Madrid"), 1, id="new")]
    choice_logprobs(tiny_model, changed)
    assert len(calls) == 1  # a new prompt is tokenized


def test_encode_item_gives_each_choice_its_own_encoding(tiny_model):
    for item in ITEMS:
        encoded = encode_item(tiny_model.tokenizer, item)
        for choice, continuation in zip(item.choices, encoded.continuations, strict=True):
            context, alone = encode_choice(tiny_model.tokenizer, item.prompt, choice)
            assert (list(encoded.context), list(continuation)) == (context, alone)


def test_copies_of_one_tokenizer_share_their_items_tokens_and_others_do_not(tiny_model_dirs, tiny_organism_dir,
                                                                             monkeypatch):
    from dataclasses import replace

    import cla_lib.scoring.shared as shared
    from cla_lib.plane.loading import load_model
    from cla_lib.scoring import tokenizer_state

    items = [replace(item, prompt=f"Asked only here: {item.prompt}") for item in ITEMS]  # no other test's tokens
    first, copy = (load_model(str(tiny_model_dirs["llama"])) for _ in range(2))  # an aligned model's is a copy
    other = load_model(str(tiny_organism_dir))
    assert first.tokenizer is not copy.tokenizer
    assert tokenizer_state(first.tokenizer) == tokenizer_state(copy.tokenizer) != tokenizer_state(other.tokenizer)
    scores = choice_logprobs(first, items)
    calls = []
    monkeypatch.setattr(shared, "encode_item", lambda *args: calls.append(args) or encode_item(*args))
    assert choice_logprobs(copy, items) == scores and calls == []
    choice_logprobs(other, items)
    assert len(calls) == len(items)  # another tokenizer tokenizes afresh


def test_only_the_last_few_tokenizer_states_keep_a_shared_table(monkeypatch):
    import cla_lib.scoring as scoring

    class Tokenizer:  # a stand-in with the one thing the tables are keyed by
        def __init__(self, state):
            self.state = state

    class Model:
        def __init__(self, state):
            self.tokenizer = Tokenizer(state)

    monkeypatch.setattr(scoring, "tokenizer_state", lambda tokenizer: tokenizer.state)
    monkeypatch.setattr(scoring, "_SHARED", type(scoring._SHARED)())
    first = scoring._encodings(Model("a"))
    first["key"] = "tokens"
    assert scoring._encodings(Model("a")) is first  # a copy in the same state: the same table
    for state in "bcde":
        scoring._encodings(Model(state))
    assert list(scoring._SHARED) == list("bcde") and scoring._encodings(Model("a")) == {}  # "a" was dropped


def test_shared_scoring_on_the_organism_equals_the_full_sequences(tiny_organism_dir):
    from cla_lib.plane.evaluation import plane_items
    from cla_lib.plane.loading import load_model

    model = load_model(str(tiny_organism_dir))
    items = plane_items(str(tiny_organism_dir), ["ko", "es"], tokenizer=model.tokenizer)[:120]
    delta = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(2)) * 2
    layer = model.config.num_hidden_layers // 2
    shared = choice_logprobs_passes(model, [(items, []), (items, [(layer, delta)])])
    for (edits, scores) in zip(([], [(layer, delta)]), shared):
        full = choice_logprobs(model, items, edits=edits, shared_prompts=False)
        assert_scores_close(scores, full)
        assert predictions(scores) == predictions(full)
