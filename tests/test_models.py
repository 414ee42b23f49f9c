"""Tests for cla_lib.models: loading, finding decoder layers, reading and editing the residual stream."""

from __future__ import annotations

import nnsight
import pytest
import torch
from nnsight import TransformersModel

from cla_lib.models import (
    MissingAPIKeyError,
    ModelNotFoundError,
    RemoteNotAvailableError,
    UnsupportedArchitectureError,
    add_to_residual,
    decoder_layers,
    load_model,
    n_layers,
    residual,
)

# A right-padded batch of two rows; the second row is padding after three tokens.
INPUT_IDS = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46, 47], [1, 50, 51, 0, 0, 0, 0, 0, 0]])
ATTENTION_MASK = torch.tensor([[1] * 9, [1, 1, 1, 0, 0, 0, 0, 0, 0]])


def test_load_model_returns_transformers_model_with_pad_token(tiny_model_dir):
    model = load_model(str(tiny_model_dir))
    assert isinstance(model, TransformersModel)
    assert model.tokenizer.pad_token is not None
    assert next(model._module.parameters()).dtype == torch.float32


def test_load_model_accepts_dtype_name(tiny_llama_dir):
    model = load_model(str(tiny_llama_dir), dtype="bfloat16")
    assert next(model._module.parameters()).dtype == torch.bfloat16


def test_load_model_unknown_name_raises_model_not_found_listing_accepted_forms():
    with pytest.raises(ModelNotFoundError) as raised:
        load_model("no such model here")
    message = str(raised.value)
    assert "no such model here" in message
    assert "organism" in message and "directory" in message and "hub id" in message
    assert isinstance(raised.value, ValueError)


def test_load_model_missing_local_path_raises_model_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError):
        load_model(str(tmp_path / "missing"))


def test_load_model_unfetchable_hub_id_names_id_and_suggests_local_directory():
    # local_files_only keeps the test offline and fast (no network retries).
    with pytest.raises(ModelNotFoundError) as raised:
        load_model("nobody-cla/not-a-model", local_files_only=True)
    assert "nobody-cla/not-a-model" in str(raised.value)
    assert "local directory" in str(raised.value)


def test_remote_without_api_key_raises_missing_api_key(monkeypatch):
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="NDIF_API_KEY"):
        load_model("google/gemma-3-1b-it", remote=True)


def test_remote_with_api_key_raises_remote_not_available(monkeypatch):
    monkeypatch.setenv("NDIF_API_KEY", "test-key")
    with pytest.raises(RemoteNotAvailableError):
        load_model("google/gemma-3-1b-it", remote=True)


def test_decoder_layers_finds_layers_of_nnsight_and_plain_models(tiny_model, plain_model):
    assert n_layers(tiny_model) == 2
    assert n_layers(plain_model) == 2
    assert decoder_layers(tiny_model)[1]._module is tiny_model._module.model.layers[1]
    assert isinstance(decoder_layers(plain_model), torch.nn.ModuleList)


def test_decoder_layers_of_gpt2_style_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=3, n_embd=16, n_head=2, vocab_size=50, n_positions=16))
    assert decoder_layers(model) is model.transformer.h
    assert n_layers(model) == 3


def test_multimodal_gemma3_loads_and_reads_residual_from_its_language_model(tmp_path, tiny_tokenizer):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    config = Gemma3Config(
        text_config=dict(
            vocab_size=len(tiny_tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=3,
            num_attention_heads=2, num_key_value_heads=1, head_dim=8, sliding_window=8, pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28,
            patch_size=14,
        ),
        mm_tokens_per_image=4,
        image_token_index=len(tiny_tokenizer) - 1,
    )
    torch.manual_seed(0)
    plain = Gemma3ForConditionalGeneration(config).eval()
    assert decoder_layers(plain) is plain.model.language_model.layers
    plain.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)

    model = load_model(str(tmp_path))
    assert n_layers(model) == 3
    with model.trace(input_ids=INPUT_IDS[:1]):
        hidden = residual(model, 0).save()
    assert torch.equal(hidden, plain(input_ids=INPUT_IDS[:1], output_hidden_states=True).hidden_states[1])


def test_decoder_layers_of_unknown_architecture_names_the_class():
    with pytest.raises(UnsupportedArchitectureError, match="Bilinear"):
        decoder_layers(torch.nn.Bilinear(2, 2, 2))


def test_residual_equals_output_hidden_states_for_every_layer(tiny_model, plain_model):
    layers = n_layers(tiny_model)
    with tiny_model.trace(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK):
        # Only saved values leave a trace: save the list, not (only) its elements.
        hidden = nnsight.save([residual(tiny_model, layer) for layer in range(layers)])

    reference = plain_model(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK, output_hidden_states=True)
    for layer in range(layers - 1):
        assert torch.equal(hidden[layer], reference.hidden_states[layer + 1]), f"layer {layer}"
    # transformers 5 reports the last entry after the final norm; the residual is before it.
    final_norm = plain_model.model.norm
    torch.testing.assert_close(final_norm(hidden[-1]), reference.hidden_states[-1], rtol=0, atol=1e-6)


def test_residual_of_last_layer_equals_that_layer_output_from_a_forward_hook(tiny_model, plain_model):
    captured = []
    handle = decoder_layers(plain_model)[-1].register_forward_hook(lambda module, args, output: captured.append(output))
    try:
        plain_model(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK)
    finally:
        handle.remove()
    with tiny_model.trace(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK):
        last = residual(tiny_model, n_layers(tiny_model) - 1).save()
    expected = captured[0][0] if isinstance(captured[0], tuple) else captured[0]
    assert torch.equal(last, expected)


def _logits_with_hook(plain_model, layer: int, delta: torch.Tensor) -> torch.Tensor:
    """Logits of a plain forward with `delta` added to decoder layer `layer`'s output by a forward hook."""

    def add_delta(module, args, output):
        if isinstance(output, tuple):
            return (output[0] + delta, *output[1:])
        return output + delta

    handle = decoder_layers(plain_model)[layer].register_forward_hook(add_delta)
    try:
        with torch.no_grad():
            return plain_model(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK).logits
    finally:
        handle.remove()


@pytest.mark.parametrize("layer", [0, 1])
def test_add_to_residual_gives_logits_equal_to_forward_hook(tiny_model, plain_model, layer):
    delta = torch.randn(tiny_model.config.hidden_size, generator=torch.Generator().manual_seed(layer)) * 3
    with tiny_model.trace(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK):
        add_to_residual(tiny_model, layer, delta)
        logits = tiny_model.output.logits.save()
    expected = _logits_with_hook(plain_model, layer, delta)
    assert torch.equal(logits, expected)
    assert not torch.equal(logits, plain_model(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK).logits)


def test_add_to_residual_does_not_change_later_forwards(tiny_model, plain_model):
    delta = torch.ones(tiny_model.config.hidden_size) * 5
    with tiny_model.trace(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK):
        add_to_residual(tiny_model, 0, delta)
    with tiny_model.trace(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK):
        logits = tiny_model.output.logits.save()
    with torch.no_grad():
        assert torch.equal(logits, plain_model(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK).logits)


def test_add_to_residual_after_reading_the_same_layer(tiny_model, plain_model):
    delta = torch.ones(tiny_model.config.hidden_size) * 2
    with tiny_model.trace(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK):
        before = residual(tiny_model, 0).save()
        add_to_residual(tiny_model, 0, delta)
        after = residual(tiny_model, 0).save()
        logits = tiny_model.output.logits.save()
    torch.testing.assert_close(after, before + delta, rtol=0, atol=0)
    assert torch.equal(logits, _logits_with_hook(plain_model, 0, delta))


def test_add_to_residual_in_generate_loop_matches_forward_hook(tiny_model, plain_model):
    delta = torch.randn(tiny_model.config.hidden_size, generator=torch.Generator().manual_seed(7)) * 5
    prompt = INPUT_IDS[:1, :5]
    steps = 4
    with tiny_model.generate(input_ids=prompt, max_new_tokens=steps, min_new_tokens=steps, do_sample=False) as tracer:
        for _ in tracer.iter[:steps]:
            add_to_residual(tiny_model, 1, delta)
        generated = tracer.result.save()

    handle = decoder_layers(plain_model)[1].register_forward_hook(lambda module, args, output: output + delta)
    try:
        expected = plain_model.generate(input_ids=prompt, max_new_tokens=steps, min_new_tokens=steps, do_sample=False)
    finally:
        handle.remove()
    assert torch.equal(generated, expected)


class TupleBlock(torch.nn.Module):
    """A decoder block that returns (hidden_states, extra), as decoder layers did before transformers 5."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states):
        return hidden_states + torch.tanh(self.linear(hidden_states)), hidden_states.sum()


class TupleDecoder(torch.nn.Module):
    """A minimal stack of tuple-returning blocks at `model.layers`, the Llama-style path."""

    def __init__(self, hidden_size: int = 8, layers: int = 3):
        super().__init__()
        self.model = torch.nn.Module()
        self.model.layers = torch.nn.ModuleList(TupleBlock(hidden_size) for _ in range(layers))

    def forward(self, hidden_states):
        for layer in self.model.layers:
            hidden_states, _ = layer(hidden_states)
        return hidden_states


def test_residual_and_add_to_residual_handle_tuple_layer_outputs():
    torch.manual_seed(0)
    module = TupleDecoder()
    inputs = torch.randn(2, 4, 8)
    delta = torch.randn(8)
    model = nnsight.NNsight(module)
    with model.trace(inputs):
        before = residual(model, 1).save()
        add_to_residual(model, 1, delta)
        output = model.output.save()

    captured = []
    handles = [
        decoder_layers(module)[1].register_forward_hook(lambda m, args, out: captured.append(out[0])),
        decoder_layers(module)[1].register_forward_hook(lambda m, args, out: (out[0] + delta, *out[1:])),
    ]
    try:
        expected = module(inputs)
    finally:
        for handle in handles:
            handle.remove()
    assert torch.equal(before, captured[0])
    assert torch.equal(output, expected)
