"""Tests for cla_lib.model: loading, finding decoder layers, reading and editing the residual stream."""

from __future__ import annotations

import nnsight
import pytest
import torch
from nnsight import TransformersModel

from cla_lib.plane.loading import load_model
from cla_lib.model import (
    MissingAPIKeyError,
    ModelNotFoundError,
    RemoteNotAvailableError,
    UnsupportedArchitectureError,
    add_to_residual,
    decoder_layers,
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
    from nnsight import CONFIG

    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.setattr(CONFIG.API, "APIKEY", None)  # nor one stored by `nnsight login`
    with pytest.raises(MissingAPIKeyError, match="NDIF_API_KEY"):
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


# -- remote execution on NDIF ------------------------------------------------------------------------------------
# Nothing here reaches NDIF: the served check is pointed at addresses on this machine (a closed port, a port that
# never answers, a small status server in a thread), and remote traces run through nnsight's in-process
# serialization round trip (remote="local"), which is what NDIF would execute.

import http.server  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402

from cla_lib.model import RemoteModel, check_served, remote_skeleton  # noqa: E402

CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused at once
STATUS = {"deployments": {
    "llama-8b": {"repo_id": "meta-llama/Llama-3.1-8B-Instruct", "application_state": "RUNNING",
                 "deployment_level": "HOT"},
    "gpt2": {"repo_id": "openai-community/gpt2", "application_state": "DEPLOYING", "deployment_level": "WARM"},
}}
# NDIF's /env page for a server that runs this machine's versions
SAME_VERSIONS = {"python_version": sys.version, "packages": {"nnsight": nnsight.__version__}}


@contextmanager
def status_server(payload: dict, environment: dict | None = None):
    """A real HTTP server on this machine answering GET /status with `payload` (NDIF's /status layout), and GET
    /env with `environment` (NDIF's /env layout: the server's Python and package versions) when given."""
    routes = {"/status": payload, **({"/env": environment} if environment is not None else {})}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            body = json.dumps(routes.get(self.path, {})).encode()
            self.send_response(200 if self.path in routes else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_remote_with_api_key_but_ndif_unreachable_fails_fast_and_clearly(monkeypatch):
    monkeypatch.setenv("NDIF_API_KEY", "test-key")
    monkeypatch.setenv("NDIF_HOST", CLOSED_PORT)
    started = time.time()
    with pytest.raises(RemoteNotAvailableError, match="NDIF not reachable at http://127.0.0.1:9") as raised:
        load_model("llama-3.1-8b-instruct", remote=True)
    assert time.time() - started < 5
    assert "test-key" not in str(raised.value)


def test_served_check_times_out_on_a_host_that_never_answers():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections (the kernel does), never answers
    try:
        started = time.time()
        with pytest.raises(RemoteNotAvailableError, match="NDIF not reachable.*Timeout"):
            check_served("meta-llama/Llama-3.1-8B-Instruct", host=f"http://127.0.0.1:{silent.getsockname()[1]}",
                         timeout=0.3)
        assert time.time() - started < 3
    finally:
        silent.close()


def test_served_check_reads_ndif_status_served_deploying_and_absent_models():
    with status_server(STATUS) as host:
        record = check_served("meta-llama/llama-3.1-8b-instruct", host=host, timeout=2)
        assert record["application_state"] == "RUNNING"
        with pytest.raises(RemoteNotAvailableError, match="not running \\(state DEPLOYING\\)"):
            check_served("openai-community/gpt2", host=host, timeout=2)
        with pytest.raises(RemoteNotAvailableError, match="model not served.*google/gemma-3-12b-it.*Running now: "
                                                          "meta-llama/Llama-3.1-8B-Instruct, openai-community/gpt2"):
            check_served("google/gemma-3-12b-it", host=host, timeout=2)
        # The same words serve `cla ... --remote` and `load_model(..., remote=True)`: both ways to run locally.
        with pytest.raises(RemoteNotAvailableError, match="remote=False; on the command line, without --remote"):
            check_served("google/gemma-3-12b-it", host=host, timeout=2)


def test_remote_model_needs_its_config_from_the_hub_and_says_so_offline(monkeypatch):
    from nnsight import CONFIG

    for name in ("HOST", "APIKEY"):  # load_model hands both to nnsight's process-wide config: restore them after
        monkeypatch.setattr(CONFIG.API, name, getattr(CONFIG.API, name))
    monkeypatch.setenv("NDIF_API_KEY", "test-key")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with status_server(STATUS, SAME_VERSIONS) as host:
        monkeypatch.setenv("NDIF_HOST", host)
        with pytest.raises(RemoteNotAvailableError, match="cannot build 'meta-llama/Llama-3.1-8B-Instruct' for NDIF"):
            load_model("llama-3.1-8b-instruct", remote=True)


def test_remote_refuses_local_models_and_a_key_argument(monkeypatch, tiny_llama_dir):
    monkeypatch.setenv("NDIF_API_KEY", "test-key")
    with pytest.raises(ModelNotFoundError, match="local model"):
        load_model(str(tiny_llama_dir), remote=True)
    with pytest.raises(TypeError, match="NDIF_API_KEY"):
        load_model("llama-3.1-8b-instruct", remote=True, api_key="given")
    with pytest.raises(ValueError, match="remote must be"):
        load_model(str(tiny_llama_dir), remote="yes")


def test_remote_skeleton_is_built_on_meta_without_weights_and_never_runs_here(tiny_model_dir):
    model = remote_skeleton(str(tiny_model_dir))
    assert isinstance(model, RemoteModel) and not model.dispatched
    assert n_layers(model) == 2 and model.tokenizer.pad_token is not None
    assert {parameter.device.type for parameter in model._module.parameters()} == {"meta"}
    with pytest.raises(RemoteNotAvailableError, match="runs on NDIF"):
        with model.trace(input_ids=INPUT_IDS[:1], remote=False):
            residual(model, 0).save()
    # NDIF knows the model by nnsight's own class: the server has nnsight, not cla_lib
    assert model._remoteable_class() is TransformersModel


def test_the_key_goes_to_nnsight_in_memory_and_never_to_its_config_file(monkeypatch, tmp_path):
    from nnsight import CONFIG

    from cla_lib.model.remote import configure_nnsight

    monkeypatch.setenv("NNSIGHT_CONFIG", str(tmp_path / "nnsight.yaml"))
    monkeypatch.setenv("NDIF_API_KEY", "in-memory-only")
    monkeypatch.setattr(CONFIG.API, "APIKEY", None)
    configure_nnsight()
    assert CONFIG.API.APIKEY == "in-memory-only"
    assert not (tmp_path / "nnsight.yaml").exists()


def test_a_preset_name_loads_its_hub_id(monkeypatch):
    from cla_lib.alignment import estimate

    monkeypatch.setattr(estimate, "device_memory", lambda device: 2 ** 50)  # not what this test is about
    with pytest.raises(ModelNotFoundError, match="google/gemma-3-12b-it"):
        load_model("gemma-3-12b-it", local_files_only=True)


def test_a_model_too_large_for_where_it_would_load_is_refused_with_its_weights_before_loading(monkeypatch,
                                                                                               tiny_llama_dir):
    from cla_lib.alignment import estimate
    from cla_lib.plane.loading import ModelWontFitError

    monkeypatch.setattr(estimate, "device_memory", lambda device: 8 * 2 ** 30)
    # 11.8 billion parameters in float32 (the CPU's default): 43.8 GiB
    with pytest.raises(ModelWontFitError, match=r"gemma-3-12b-it needs 43.83 GiB for its weights alone "
                                                r"\(11,766,034,176 parameters in float32\) and the CPU has 8.00 GiB"):
        load_model("gemma-3-12b-it", local_files_only=True)
    monkeypatch.setattr(estimate, "device_memory", lambda device: 1000)
    with pytest.raises(ModelWontFitError, match="for its weights alone .* load it on a GPU \\(--device cuda"):
        load_model(str(tiny_llama_dir))


def test_a_remote_local_model_scores_and_reads_like_the_local_one(tiny_model_dir):
    local, remote = load_model(str(tiny_model_dir)), load_model(str(tiny_model_dir), remote="local")
    with local.trace(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK):
        expected = residual(local, 1).save()
    with remote.trace(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK):
        hidden = residual(remote, 1).save()
    assert torch.equal(hidden, expected)


def test_a_key_stored_by_nnsight_login_is_used_when_the_environment_has_none(monkeypatch):
    from nnsight import CONFIG

    from cla_lib.model.remote import read_api_key

    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.setattr(CONFIG.API, "APIKEY", "stored-by-login")
    assert read_api_key() == "stored-by-login"
    monkeypatch.setenv("NDIF_API_KEY", "from-the-environment")  # the environment wins, as in nnsight
    assert read_api_key() == "from-the-environment"


def test_the_compatibility_check_refuses_another_nnsight_and_names_the_one_to_install(capsys):
    import nnsight

    from cla_lib.model import check_compatible

    with status_server(STATUS, SAME_VERSIONS) as host:
        assert check_compatible(host=host, timeout=2)["packages"]["nnsight"] == nnsight.__version__
    assert capsys.readouterr().err == ""
    other = {"python_version": "3.12.1 (main)", "packages": {"nnsight": "0.5.0", "transformers": "4.0.0"}}
    with status_server(STATUS, other) as host:
        with pytest.raises(RemoteNotAvailableError, match=f"runs nnsight 0.5.0, this machine has {nnsight.__version__}"
                                                          ".*pip install nnsight==0.5.0"):
            check_compatible(host=host, timeout=2)
    same_nnsight = {**other, "packages": {**other["packages"], "nnsight": nnsight.__version__}}
    with status_server(STATUS, same_nnsight) as host:
        check_compatible(host=host, timeout=2)
    assert "python" in capsys.readouterr().err  # other versions are only reported
    with status_server(STATUS) as host:  # no /env page
        with pytest.raises(RemoteNotAvailableError, match="cannot read NDIF's versions"):
            check_compatible(host=host, timeout=2)


def test_an_unreachable_hub_is_reported_at_once_not_after_a_minute_of_retries(monkeypatch):
    import time

    import cla_lib.model.remote

    monkeypatch.setattr(cla_lib.model.remote, "hub_reachable", lambda: False)  # as on this machine, and on any offline one
    started = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="'nobody-cla/not-a-model': the Hugging Face hub cannot be reached"):
        load_model("nobody-cla/not-a-model")
    assert time.perf_counter() - started < 5
