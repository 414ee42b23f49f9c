"""Tests of cla_lib.model.presets: the preset table and chat-template formatting with a tiny real tokenizer."""

from __future__ import annotations

import dataclasses

from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from cla_lib.model.presets import PRESETS, ModelPreset, format_prompt, resolve_preset

# A Gemma-like template: BOS first, user turn, then the opening of the model turn as the generation prompt.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
    "{{ message['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def tiny_tokenizer(adds_bos: bool) -> PreTrainedTokenizerFast:
    vocabulary = {"<unk>": 0, "<bos>": 1, "<eos>": 2, "a": 3, "Answer:": 4}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if adds_bos:
        tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
        chat_template=CHAT_TEMPLATE,
    )


def test_presets_cover_the_paper_model_and_two_other_families():
    gemma = PRESETS["gemma-3-12b-it"]
    assert (gemma.hub_id, gemma.n_layers, gemma.hidden_size, gemma.dtype) == (
        "google/gemma-3-12b-it", 48, 3840, "bfloat16")
    assert "model.model.language_model.layers" in gemma.text_model_note
    assert "Gemma3ForConditionalGeneration" in gemma.text_model_note
    llama = PRESETS["llama-3.1-8b-instruct"]
    assert (llama.hub_id, llama.n_layers, llama.hidden_size, llama.remote) == (
        "meta-llama/Llama-3.1-8B-Instruct", 32, 4096, True)
    qwen = PRESETS["qwen2.5-7b-instruct"]
    assert (qwen.hub_id, qwen.n_layers, qwen.hidden_size) == ("Qwen/Qwen2.5-7B-Instruct", 28, 3584)
    assert (PRESETS["llama-3.1-70b-instruct"].n_layers, PRESETS["llama-3.1-70b-instruct"].hidden_size) == (80, 8192)
    assert (PRESETS["gemma-3-4b-it"].n_layers, PRESETS["gemma-3-4b-it"].hidden_size) == (34, 2560)


def test_every_preset_is_complete_and_frozen():
    for name, preset in PRESETS.items():
        assert preset.name == name
        assert preset.n_layers > 0 and preset.hidden_size > 0
        assert preset.dtype in ("bfloat16", "float16", "float32")
        assert preset.text_model_note and preset.quirks and "/" in preset.hub_id
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["gemma-3-12b-it"].n_layers = 1


def test_resolve_preset_by_name_or_hub_id():
    assert resolve_preset("gemma-3-12b-it") is PRESETS["gemma-3-12b-it"]
    assert resolve_preset("Qwen/Qwen2.5-7B-Instruct") is PRESETS["qwen2.5-7b-instruct"]
    assert resolve_preset("LLAMA-3.1-8B-INSTRUCT") is PRESETS["llama-3.1-8b-instruct"]
    assert resolve_preset("organism") is None
    assert resolve_preset("some/local-model") is None


def test_format_prompt_puts_the_question_in_the_user_turn_and_keeps_answer_last():
    preset = PRESETS["gemma-3-12b-it"]
    formatted = format_prompt(preset, tiny_tokenizer(adds_bos=True), "What is 2+2?\nA. 3\nB. 4\nAnswer:")
    # The tokenizer adds <bos> itself, so the template's copy is dropped.
    assert formatted == (
        "<start_of_turn>user\nWhat is 2+2?\nA. 3\nB. 4<end_of_turn>\n<start_of_turn>model\nAnswer:"
    )


def test_format_prompt_keeps_the_template_bos_when_the_tokenizer_adds_none():
    formatted = format_prompt(PRESETS["gemma-3-12b-it"], tiny_tokenizer(adds_bos=False), "Hello\nAnswer:")
    assert formatted.startswith("<bos><start_of_turn>user\nHello<end_of_turn>")
    assert formatted.endswith("<start_of_turn>model\nAnswer:")


def test_format_prompt_encodes_to_exactly_one_bos():
    tokenizer = tiny_tokenizer(adds_bos=True)
    formatted = format_prompt(PRESETS["gemma-3-12b-it"], tokenizer, "a\nAnswer:")
    assert tokenizer(formatted)["input_ids"].count(tokenizer.bos_token_id) == 1


def test_format_prompt_without_answer_cue_puts_everything_in_the_user_turn():
    formatted = format_prompt(PRESETS["gemma-3-12b-it"], tiny_tokenizer(adds_bos=True), "Say hello")
    assert formatted == "<start_of_turn>user\nSay hello<end_of_turn>\n<start_of_turn>model\n"


def test_format_prompt_leaves_prompts_unchanged_without_a_chat_template():
    base = ModelPreset(
        name="base", hub_id="owner/base", n_layers=2, hidden_size=8, dtype="float32", chat_template=False,
        text_model_note="model.layers", remote=False, quirks="none",
    )
    prompt = "What is 2+2?\nAnswer:"
    assert format_prompt(base, tiny_tokenizer(adds_bos=True), prompt) == prompt
    assert format_prompt(None, tiny_tokenizer(adds_bos=True), prompt) == prompt


def test_each_preset_row_builds_its_architecture_with_the_published_parameter_count():
    from cla_lib.core.compute import parameter_counts

    total, multiplying = parameter_counts(PRESETS["llama-3.1-8b-instruct"])
    assert total == 8_030_261_248  # Llama 3.1 8B's published count
    assert total - multiplying == 128256 * 4096  # the untied input embedding is a lookup, not a multiplication
    # Each text model's size in billions, as its name says (Gemma 3's vision tower is not in the text model).
    named = {"gemma-3-12b-it": 12, "gemma-3-4b-it": 4, "llama-3.1-8b-instruct": 8, "llama-3.1-70b-instruct": 70,
             "qwen2.5-7b-instruct": 7}
    for name, billions in named.items():
        total, multiplying = parameter_counts(PRESETS[name])
        assert multiplying <= total and abs(total / 1e9 - billions) < 0.7


def test_every_preset_pins_its_weights():
    # a rerun of a preset loads the same weights wherever it runs: a hub commit (provenance records it), or a package
    # pinned with its hash in configs/pretrained.txt (provenance records the file's sha256)
    pinned = (Path(__file__).resolve().parents[1] / "configs" / "pretrained.txt").read_text()
    for preset in PRESETS.values():
        if preset.package:
            assert preset.revision is None and f"{preset.package} --hash=sha256:" in pinned
        else:
            assert len(preset.revision or "") == 40 and int(preset.revision, 16) >= 0
