"""Tests for cla_lib.steering: vectors read exactly, applied exactly (against raw PyTorch hooks), at every generated
token, without touching the model; the same numbers through nnsight's remote serialization; and `cla vectors` /
`cla steer` against plain transformers."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pandas as pd
import pytest
import torch

from cla_lib.core.items import Item, read_items
from cla_lib.plane.loading import load_model
from cla_lib.model import decoder_layers, n_layers
from cla_lib.scoring import choice_logprobs
from cla_lib.claims.analysis import cross_lingual_similarity, language_probe_accuracy, _derangement
from cla_lib.steering import (
    SteeringVector,
    SurgicalStudy,
    apply_edits,
    best_layer,
    check_disjoint,
    extract_vectors,
    generate,
    generate_ids,
    last_token_activations,
    load_vectors,
    save_vectors,
    select_surgical,
    steered_plane,
    steering_edits,
    surgical_sweep,
    sweep,
)

PROMPTS = [
    "The capital of France is",
    "한국의 수도는",
    "La capital de España es Madrid. El río más largo es el",
    "中国的首都是",
    "Η πρωτεύουσα",
    "پایتخت ایران",
    "Ibu kota",
]

# Parallel items (English prompt in meta), of two target languages and both tasks, in every split.
ITEMS = [
    Item("transfer", "es", "La capital de España es", (" Madrid", " París"), 0, id="t1/es", split="extract",
         meta={"creature": "t1", "english_prompt": "The capital of Spain is"}),
    Item("localization", "es", "El río más largo es el", (" Amazonas", " Nilo", " Tajo"), 2, us_choice=1,
         id="l1/es", split="extract", meta={"question": "l1", "english_prompt": "The longest river is the",
                                            "explicit_prompt": "En España, el río más largo es el"}),
    Item("transfer", "ko", "한국의 수도는", (" 서울입니다", " 북경"), 0, id="t1/ko", split="extract",
         meta={"creature": "t1", "english_prompt": "The capital of Spain is"}),
    Item("localization", "ko", "대표 음식은", (" 김치입니다", " 북경"), 0, us_choice=1, id="l1/ko", split="extract",
         meta={"question": "l1", "english_prompt": "The longest river is the",
               "explicit_prompt": "한국의 대표 음식은"}),
    Item("transfer", "es", "Ibu kota Indonesia adalah", (" Jakarta", " Madrid", " Paris"), 0, id="t2/es",
         split="validation", meta={"creature": "t2", "english_prompt": "The capital of Indonesia is"}),
    Item("localization", "es", "El plato típico es", (" paella", " hamburguesa"), 0, us_choice=1, id="l2/es",
         split="validation", meta={"question": "l2", "english_prompt": "The typical dish is"}),
    Item("transfer", "ko", "中国的首都是", ("北京", "上海市"), 0, id="t2/ko", split="validation",
         meta={"creature": "t2", "english_prompt": "The capital of Indonesia is"}),
    Item("localization", "ko", "한국의 수도는", (" 서울입니다", " 북경"), 0, us_choice=1, id="l2/ko",
         split="validation", meta={"question": "l2", "english_prompt": "The typical dish is"}),
    Item("transfer", "en", "The capital of Indonesia is", (" Jakarta", " Madrid", " Paris"), 0, id="t2/en",
         split="validation", meta={"creature": "t2", "english_prompt": "The capital of Indonesia is"}),
]


def random_vector(hidden: int, layers: int, seed: int, scale: float = 1.0, language: str | None = None):
    generator = torch.Generator().manual_seed(seed)
    return SteeringVector({layer: scale * torch.randn(hidden, generator=generator) for layer in range(layers)},
                          {"kind": "random", "language": language} if language else {"kind": "random"})


def hidden_size(model) -> int:
    return model._module.config.get_text_config().hidden_size


def add_hooks(plain_model, edits):
    """Raw PyTorch forward hooks adding the (layer, delta) edits to those decoder layers' outputs (one summed delta
    per layer, as steering adds them)."""
    by_layer = {}
    for layer, delta in edits:
        by_layer[layer] = by_layer[layer] + delta if layer in by_layer else delta

    def hook_for(delta):
        def hook(module, inputs, output):
            if isinstance(output, tuple):
                return (output[0] + delta.to(output[0].dtype), *output[1:])
            return output + delta.to(output.dtype)
        return hook

    return [decoder_layers(plain_model)[layer].register_forward_hook(hook_for(delta))
            for layer, delta in by_layer.items()]


def remove(handles):
    for handle in handles:
        handle.remove()


# -- the value -------------------------------------------------------------------------------------------------


def test_vector_arithmetic_is_layerwise_and_keeps_a_record():
    a = SteeringVector({0: torch.tensor([1.0, 0.0]), 1: torch.tensor([0.0, 2.0])}, {"kind": "en", "language": "ko"})
    b = SteeringVector({1: torch.tensor([1.0, 1.0]), 2: torch.tensor([3.0, 0.0])}, {"kind": "loc", "language": "ko"})
    total = a + b
    assert total.layers == (0, 1, 2)  # a layer missing on one side counts as zero
    assert torch.equal(total[1], torch.tensor([1.0, 3.0])) and torch.equal(total[2], torch.tensor([3.0, 0.0]))
    assert torch.equal((a - b)[2], torch.tensor([-3.0, 0.0])) and torch.equal((a - b)[0], a[0])
    assert torch.equal((-a)[1], torch.tensor([0.0, -2.0]))
    assert torch.equal((2 * a)[1], (a * 2.0)[1]) and torch.equal((0.5 * a)[1], torch.tensor([0.0, 1.0]))
    assert (a - b).source == {"kind": "difference", "of": [a.source, b.source]}
    assert (2 * a).source["alpha"] == 2.0 and (2 * a).source["of"] == a.source
    assert a.cosine(b) == {1: pytest.approx(1 / math.sqrt(2))}
    assert a.norms() == {0: 1.0, 1: 2.0}
    assert a.to(dtype=torch.float64)[0].dtype == torch.float64 and a[0].dtype == torch.float32
    assert 1 in a and 2 not in a
    with pytest.raises(KeyError, match="no layer 5"):
        a[5]
    with pytest.raises(TypeError):
        a * a
    with pytest.raises(ValueError, match="one \\[hidden\\] tensor per layer"):
        SteeringVector({0: torch.zeros(2), 1: torch.zeros(3)})


def test_steering_edits_scale_each_term_at_its_layer():
    a, b = random_vector(4, 3, seed=1), random_vector(4, 3, seed=2)
    edits = steering_edits((a, 1, 2.0), (b, 2, -0.5))
    assert [layer for layer, _ in edits] == [1, 2]
    assert torch.equal(edits[0][1], 2.0 * a[1]) and torch.equal(edits[1][1], -0.5 * b[2])
    with pytest.raises(ValueError, match="\\(SteeringVector, layer, alpha\\)"):
        steering_edits((a, 1))


def test_vectors_round_trip_through_safetensors(tmp_path):
    vectors = {"en.ko": random_vector(8, 3, seed=0, language="ko"), "loc.ko": random_vector(8, 3, seed=1)}
    save_vectors(vectors, tmp_path / "v.safetensors")
    loaded = load_vectors(tmp_path / "v.safetensors")
    assert set(loaded) == set(vectors) and loaded["en.ko"].source == vectors["en.ko"].source
    assert all(torch.equal(loaded[name][layer], vectors[name][layer]) for name in vectors for layer in range(3))
    assert [path.name for path in tmp_path.iterdir()] == ["v.safetensors"]  # no temporary file left behind


# -- applying: exact against raw hooks, the model untouched ------------------------------------------------------


def test_steered_logits_equal_a_plain_forward_hook_exactly(tiny_model, plain_model):
    size, count = hidden_size(tiny_model), n_layers(tiny_model)
    vector, other = random_vector(size, count, seed=3), random_vector(size, count, seed=4)
    edits = steering_edits((vector, 1, 3.0), (other, 0, -2.0), (other, 1, 0.5))
    # Right padding: on a left-padded batch nnsight supplies position ids that a bare forward would not get.
    tiny_model.tokenizer.padding_side = "right"
    encoded = tiny_model.tokenizer(PROMPTS[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        with tiny_model.trace(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]):
            apply_edits(tiny_model, edits)
            steered = tiny_model.output.logits.save()
        handles = add_hooks(plain_model, edits)
        try:
            expected = plain_model(**encoded).logits
        finally:
            remove(handles)
        unsteered = plain_model(**encoded).logits
    assert torch.equal(steered, expected)
    assert not torch.allclose(steered, unsteered, atol=1e-3)  # the edits do something


def test_steered_choice_scores_equal_scores_under_a_raw_hook(tiny_model, plain_model):
    size = hidden_size(tiny_model)
    edits = steering_edits((random_vector(size, 2, seed=5), 0, 2.0))
    steered = choice_logprobs(tiny_model, ITEMS, edits=edits, batch_size=4)
    handles = add_hooks(tiny_model._module, edits)
    try:
        hooked = choice_logprobs(tiny_model, ITEMS, batch_size=4)
    finally:
        remove(handles)
    assert steered == hooked  # the same batches, the same float32 arithmetic
    assert steered != choice_logprobs(tiny_model, ITEMS, batch_size=4)


def test_steering_never_mutates_the_model(tiny_llama_dir):
    model = load_model(str(tiny_llama_dir))
    weights = {name: tensor.clone() for name, tensor in model._module.state_dict().items()}
    encoded = model.tokenizer(PROMPTS[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model._module(**encoded).logits
    vector = random_vector(hidden_size(model), 2, seed=6)
    edits = steering_edits((vector, 0, 5.0), (vector, 1, -5.0))
    choice_logprobs(model, ITEMS, edits=edits)
    generate_ids(model, PROMPTS[:2], edits=edits, max_new_tokens=3)
    sweep(model, [item for item in ITEMS if item.language in ("en", "es")], vector, [0, 1], [0.0, 4.0],
          progress=False)
    with torch.no_grad():
        after = model._module(**encoded).logits
    assert torch.equal(before, after)
    assert all(torch.equal(weights[name], tensor) for name, tensor in model._module.state_dict().items())


def test_generation_steering_touches_every_generated_token(tiny_llama_dir):
    model = load_model(str(tiny_llama_dir))
    plain = model._module
    tokenizer = model.tokenizer
    steps = 6
    edits = steering_edits((random_vector(hidden_size(model), 2, seed=11, scale=0.5), 1, 2.0))
    prompts = ["The capital of France is", "한국의 수도는 서울입니다. 대표"]
    options = {"min_new_tokens": steps}  # no early EOS: every row runs all steps

    steered = generate_ids(model, prompts, edits=edits, max_new_tokens=steps, **options)

    # Plain transformers on the same left-padded batch, with a hook that counts and edits every forward.
    token_lists = [tokenizer(prompt)["input_ids"] for prompt in prompts]
    width = max(map(len, token_lists))
    input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(t)) + t for t in token_lists])
    attention_mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in token_lists])
    calls = []

    def hook(module, inputs, output, every_step=True):
        calls.append(output.shape[1])
        if not every_step and len(calls) > 1:
            return output
        return output + edits[0][1]

    def reference(every_step):
        calls.clear()
        handle = decoder_layers(plain)[1].register_forward_hook(
            lambda module, inputs, output: hook(module, inputs, output, every_step))
        try:
            with torch.no_grad():
                ids = plain.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=steps,
                                     do_sample=False, pad_token_id=tokenizer.pad_token_id, **options)
        finally:
            handle.remove()
        return ids[:, width:].tolist()

    assert steered == reference(every_step=True)
    assert calls == [width] + [1] * (steps - 1)  # one prompt pass, then one forward per further token
    # Not vacuous: steering only the prompt pass, or not at all, generates something else.
    assert steered != reference(every_step=False)
    assert steered != generate_ids(model, prompts, max_new_tokens=steps, **options)
    assert generate(model, prompts, edits=edits, max_new_tokens=steps, **options) == [
        tokenizer.decode(ids, skip_special_tokens=True) for ids in steered]


# -- reading activations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["right", "left"])
def test_last_token_activations_equal_output_hidden_states(tiny_model, plain_model, side):
    tiny_model.tokenizer.padding_side = side
    states = last_token_activations(tiny_model, PROMPTS, batch_size=3)
    count = n_layers(tiny_model)
    assert states.shape == (count, len(PROMPTS), hidden_size(tiny_model)) and states.dtype == torch.float32
    last_layer = []
    handle = decoder_layers(plain_model)[count - 1].register_forward_hook(
        lambda module, inputs, output: last_layer.append(output[0] if isinstance(output, tuple) else output))
    try:
        for index, prompt in enumerate(PROMPTS):
            with torch.no_grad():
                hidden = plain_model(**tiny_model.tokenizer(prompt, return_tensors="pt"),
                                     output_hidden_states=True).hidden_states
            for layer in range(count - 1):  # hidden_states[L + 1] is the output of layer L, except after the last
                torch.testing.assert_close(states[layer, index], hidden[layer + 1][0, -1], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(states[count - 1, index], last_layer[-1][0, -1], rtol=1e-5, atol=1e-5)
    finally:
        handle.remove()


def test_extracted_vectors_are_differences_of_output_hidden_states_means(tiny_model, plain_model):
    vectors = extract_vectors(tiny_model, ITEMS, batch_size=2, model_name="tiny")
    assert set(vectors) == {"en.es", "loc.es", "loclang.es", "en.ko", "loc.ko", "loclang.ko"}

    def mean_state(prompts, layer):
        with torch.no_grad():
            return torch.stack([plain_model(**tiny_model.tokenizer(p, return_tensors="pt"),
                                            output_hidden_states=True).hidden_states[layer + 1][0, -1]
                                for p in prompts]).mean(dim=0)

    extract_ko = [item for item in ITEMS if item.language == "ko" and item.split == "extract"]
    english = [item.meta["english_prompt"] for item in extract_ko]
    korean = [item.prompt for item in extract_ko]
    culture = [item for item in extract_ko if item.task == "localization"]
    for layer in range(n_layers(tiny_model) - 1):
        torch.testing.assert_close(vectors["en.ko"][layer], mean_state(english, layer) - mean_state(korean, layer),
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            vectors["loc.ko"][layer],
            mean_state([i.meta["explicit_prompt"] for i in culture], layer) - mean_state([i.prompt for i in culture],
                                                                                          layer),
            rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            vectors["loclang.ko"][layer],
            mean_state([i.prompt for i in culture], layer) - mean_state([i.meta["english_prompt"] for i in culture],
                                                                        layer),
            rtol=1e-5, atol=1e-5)
    assert vectors["en.ko"].source == {"kind": "en", "language": "ko", "model": "tiny", "n_prompts": 2,
                                       "split": "extract", "definition": vectors["en.ko"].source["definition"]}
    assert vectors["loc.ko"].source["n_prompts"] == 1  # culture items only


def test_vectors_need_items_of_the_extract_split_and_the_parallel_prompts(tiny_llama_dir):
    model = load_model(str(tiny_llama_dir))
    with pytest.raises(ValueError, match="no target-language items in the 'test' split"):
        extract_vectors(model, ITEMS, split="test")
    with pytest.raises(ValueError, match="no 'loc' prompt pairs for 'es'"):
        extract_vectors(model, [item for item in ITEMS if item.task == "transfer"], kinds=["loc"])
    bare = [Item("transfer", "ko", "한국의 수도는", (" a", " b"), 0, id="x", split="extract")]
    with pytest.raises(ValueError, match="no meta\\['english_prompt'\\]"):
        extract_vectors(model, bare, kinds=["en"])
    with pytest.raises(ValueError, match="unknown vector kind"):
        extract_vectors(model, ITEMS, kinds=["nope"])


# -- splits ----------------------------------------------------------------------------------------------------


def test_check_disjoint_refuses_shared_items_and_shared_questions():
    extract = [item for item in ITEMS if item.split == "extract"]
    evaluation = [item for item in ITEMS if item.split == "validation"]
    check_disjoint(extract, evaluation)
    with pytest.raises(ValueError, match="t1/es"):
        check_disjoint(extract, evaluation + extract[:1])
    # The same question asked in another language is the same question.
    renamed = Item("transfer", "zh", "...", (" a", " b"), 0, id="t1/zh", split="test", meta={"creature": "t1"})
    with pytest.raises(ValueError, match="1 shared questions"):
        check_disjoint(extract, [renamed])


def test_the_organism_world_keeps_extract_and_evaluation_questions_apart():
    from cla_lib.organism.world import World, WorldConfig

    world = World(WorldConfig(n_anchor=4, n_bridge=2, n_transfer=24))
    items = [item for language in ("es", "ko", "fa") for item in world.items(language)]
    extract = [item for item in items if item.split == "extract"]
    assert extract and len(extract) < len(items)
    check_disjoint(extract, [item for item in items if item.split != "extract"])


# -- sweeps and selection --------------------------------------------------------------------------------------


def test_sweep_gives_the_same_numbers_through_nnsight_remote_serialization(tiny_llama_dir):
    model = load_model(str(tiny_llama_dir))
    vectors = {language: random_vector(hidden_size(model), 2, seed=seed, scale=3.0, language=language)
               for seed, language in enumerate(("es", "ko"))}
    evaluation = [item for item in ITEMS if item.split == "validation"]
    local = sweep(model, evaluation, vectors, [0, 1], [0.0, 2.0], progress=False)
    remote = sweep(model, evaluation, vectors, [0, 1], [0.0, 2.0], remote="local")
    pd.testing.assert_frame_equal(local, remote)
    assert len(local) == 2 * 2 * 2 and set(local["language"]) == {"es", "ko"}
    assert set(local.columns) >= {"layer", "alpha", "language", "transfer", "localization", "english_bias",
                                  "n_transfer", "n_localization", "english_transfer", "split"}
    # The rest of the module's model calls also survive the round trip unchanged.
    assert torch.equal(last_token_activations(model, PROMPTS, batch_size=3),
                       last_token_activations(model, PROMPTS, batch_size=3, remote="local"))
    edits = steering_edits((vectors["ko"], 1, 2.0))
    assert (generate_ids(model, PROMPTS[:2], edits=edits, max_new_tokens=3)
            == generate_ids(model, PROMPTS[:2], edits=edits, max_new_tokens=3, remote="local"))


def test_sweep_rows_equal_the_steered_plane_of_each_configuration(tiny_llama_dir):
    model = load_model(str(tiny_llama_dir))
    vector = random_vector(hidden_size(model), 2, seed=8, scale=4.0)
    evaluation = [item for item in ITEMS if item.split == "validation"]
    frame = sweep(model, evaluation, vector, [1], [0.0, 3.0], progress=False)
    for alpha in (0.0, 3.0):
        points = steered_plane(model, evaluation, steering_edits((vector, 1, alpha)))
        rows = frame[frame["alpha"] == alpha].set_index("language")
        for point in points:
            assert rows.loc[point.language, "transfer"] == point.transfer
            assert rows.loc[point.language, "localization"] == point.localization
    # The English ceiling is scored unsteered, so it is the same in every row.
    assert frame["english_transfer"].nunique() == 1
    extracted = SteeringVector(vector.vectors, {"kind": "en", "split": "extract"})
    with pytest.raises(ValueError, match="extracted on the extract split"):
        sweep(model, ITEMS, extracted, [0], [1.0])
    with pytest.raises(ValueError, match="a 'ko' steering vector on 'es' items"):
        sweep(model, evaluation, random_vector(hidden_size(model), 2, seed=0, language="ko"), [0], [1.0])


def test_surgical_sweep_steers_two_layers_at_once(tiny_llama_dir):
    model = load_model(str(tiny_llama_dir))
    en, loc = (random_vector(hidden_size(model), 2, seed=seed, scale=3.0) for seed in (9, 10))
    evaluation = [item for item in ITEMS if item.split == "validation"]
    frame = surgical_sweep(model, evaluation, en, loc, en_layers=[0], en_alphas=[0.0, 2.0], loc_layers=[1],
                           loc_alphas=[0.0, -2.0], progress=False)
    assert len(frame) == 4 * 2
    both = frame[(frame["en_alpha"] == 2.0) & (frame["loc_alpha"] == -2.0)].set_index("language")
    points = steered_plane(model, evaluation, steering_edits((en, 0, 2.0), (loc, 1, -2.0)))
    assert [both.loc[point.language, "transfer"] for point in points] == [point.transfer for point in points]


def selection_frame(rows):
    return pd.DataFrame([{**row, "split": "validation"} for row in rows])


def test_best_layer_maximizes_the_language_average_and_prefers_small_alphas():
    frame = selection_frame([
        {"layer": 0, "alpha": 0.0, "language": "ko", "transfer": 0.2, "localization": 0.5},
        {"layer": 0, "alpha": 0.0, "language": "es", "transfer": 0.2, "localization": 0.5},
        {"layer": 1, "alpha": 4.0, "language": "ko", "transfer": 0.6, "localization": 0.1},
        {"layer": 1, "alpha": 4.0, "language": "es", "transfer": 0.2, "localization": 0.1},
        {"layer": 2, "alpha": 2.0, "language": "ko", "transfer": 0.5, "localization": 0.4},
        {"layer": 2, "alpha": 2.0, "language": "es", "transfer": 0.3, "localization": 0.4},
        {"layer": 3, "alpha": -1.0, "language": "ko", "transfer": 0.4, "localization": 0.2},
        {"layer": 3, "alpha": -1.0, "language": "es", "transfer": 0.4, "localization": 0.2},
    ])
    assert best_layer(frame, "transfer") == (3, -1.0, pytest.approx(0.4))  # ties 1/4.0 and 2/2.0: smallest |alpha|
    assert best_layer(frame, "localization").layer == 0
    assert best_layer(frame, ["transfer", "localization"]).layer == 2
    assert best_layer(frame, "localization", minimize=True).layer == 1
    with pytest.raises(ValueError, match="validation split"):
        best_layer(frame.assign(split="test"), "transfer")
    assert best_layer(frame.assign(split="test"), "transfer", allow_test=True).layer == 3


def test_ties_between_layers_favour_neither_early_nor_late_layers():
    # A flat curve: every layer scores the same. Taking the first layer would always say "early".
    chosen = []
    for trial in range(300):
        layers = sorted(random.Random(trial).sample(range(12), 4))
        frame = selection_frame([{"layer": layer, "alpha": 1.0, "language": "ko", "transfer": 0.5,
                                  "localization": 0.5} for layer in layers])
        choice = best_layer(frame, "transfer")
        assert choice.layer in layers and best_layer(frame, "transfer") == choice  # repeatable
        chosen.append(layers.index(choice.layer))
    counts = [chosen.count(position) for position in range(4)]
    assert all(50 <= count <= 100 for count in counts), counts  # ~75 each: uniform over the tied positions


def test_select_surgical_maximizes_transfer_plus_localization():
    base = {"language": "ko", "en_layer": 1, "loc_layer": 3}
    frame = selection_frame([
        {**base, "en_alpha": 0.0, "loc_alpha": 0.0, "transfer": 0.2, "localization": 0.5},
        {**base, "en_alpha": 4.0, "loc_alpha": 0.0, "transfer": 0.5, "localization": 0.3},
        {**base, "en_alpha": 4.0, "loc_alpha": 2.0, "transfer": 0.5, "localization": 0.5},
        {**base, "en_alpha": 8.0, "loc_alpha": 2.0, "transfer": 0.6, "localization": 0.4},
        {**base, "en_layer": 2, "en_alpha": 4.0, "loc_alpha": 2.0, "transfer": 0.5, "localization": 0.5},
    ])
    choice = select_surgical(frame)
    # Tied with 8/2 on the sum (the smaller strengths win), and with EN at layer 2 (drawn, seeded by the tied set).
    assert choice in [(1, 4.0, 3, 2.0, pytest.approx(1.0)), (2, 4.0, 3, 2.0, pytest.approx(1.0))]
    assert select_surgical(frame) == choice
    with pytest.raises(ValueError, match="validation split"):
        select_surgical(frame.assign(split="validation,test"))


def test_surgical_grid_can_fall_back_to_one_vector_and_says_so():
    base = {"language": "ko", "en_layer": 1, "loc_layer": 3}
    frame = selection_frame([
        {**base, "en_alpha": 0.0, "loc_alpha": 0.0, "transfer": 0.2, "localization": 0.5},
        {**base, "en_alpha": 0.0, "loc_alpha": 2.0, "transfer": 0.2, "localization": 0.9},
        {**base, "en_alpha": 4.0, "loc_alpha": 2.0, "transfer": 0.3, "localization": 0.6},
    ])
    choice = select_surgical(frame)
    assert (choice.en_alpha, choice.loc_alpha) == (0.0, 2.0)
    grid = frame.assign(en_layer=1)
    study = SurgicalStudy(0, grid, grid, grid, None, None, choice, [1, 2], [3], {}, [], grid)
    assert study.surgical_text() == "LOC at layer 3 (α = 2) alone, no EN"
    assert study.n_candidates == (2 * 1 + 1) * (1 * 1 + 1)  # each component off or at one of its layers
    both = study.__class__(**{**study.__dict__, "surgical": choice._replace(en_alpha=4.0)})
    assert both.surgical_text() == "EN at layer 1 (α = 4) with LOC at layer 3 (α = 2)"
    neither = study.__class__(**{**study.__dict__, "surgical": choice._replace(loc_alpha=0.0)})
    assert neither.surgical_text() == "no steering at all"


def test_a_term_at_strength_zero_is_no_edit():
    vector = random_vector(8, 2, seed=1)
    assert steering_edits((vector, 1, 0.0)) == []
    assert [layer for layer, _ in steering_edits((vector, 0, 0.0), (vector, 1, 2.0))] == [1]


# -- the representation, layer by layer ------------------------------------------------------------------------


def test_cross_lingual_similarity_compares_parallel_pairs_with_shuffled_ones(tiny_llama_dir):
    model = load_model(str(tiny_llama_dir))
    frame = cross_lingual_similarity(model, ITEMS)
    assert set(frame["language"]) == {"es", "ko"} and len(frame) == 2 * n_layers(model)
    assert ((frame["similarity"] <= 1) & (frame["similarity"] >= -1)).all()
    assert (frame["gap"] == frame["similarity"] - frame["shuffled"]).all()
    assert set(frame["n"]) == {4}
    permutation = _derangement(7, seed=3)
    assert sorted(permutation) == list(range(7)) and all(index != target for index, target in enumerate(permutation))


def test_language_probe_reads_the_language_off_the_residual(tiny_llama_dir):
    model = load_model(str(tiny_llama_dir))
    # A random model knows no languages; prompts of a language that end alike are what it can tell apart.
    prompts = {"en": [f"{start} The capital is" for start in ("A", "B", "Paris.", "Madrid.", "The river.")],
               "ko": [f"{start} 한국의 수도는" for start in ("A", "B", "서울.", "김치.", "대표.")]}
    for probe in ("centroid", "logistic"):
        frame = language_probe_accuracy(model, prompts, probe=probe, folds=5)
        assert list(frame["layer"]) == list(range(n_layers(model))) and (frame["chance"] == 0.5).all()
        assert frame["accuracy"].max() >= 0.9, frame
    with pytest.raises(ValueError, match="at least 5 prompts"):
        language_probe_accuracy(model, {"en": ["a"], "ko": ["b"]})


# -- the command line ------------------------------------------------------------------------------------------


def plain_scores(plain_model, tokenizer, item) -> list[float]:
    """The lm-evaluation-harness log-likelihood of each choice, one unbatched forward each."""
    scores = []
    for choice in item.choices:
        context = tokenizer(item.prompt)["input_ids"]
        whole = tokenizer(item.prompt + choice)["input_ids"]
        with torch.no_grad():
            logprobs = torch.log_softmax(plain_model(input_ids=torch.tensor([whole])).logits[0], dim=-1)
        scores.append(sum(float(logprobs[len(context) - 1 + i, token]) for i, token in enumerate(whole[len(context):])))
    return scores


def test_cla_steer_prints_what_plain_transformers_with_a_hook_computes(tiny_organism_environment, tmp_path, capsys):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cla_lib.cli import main
    from cla_lib.organism import organism_path

    vectors_path, items_path = tmp_path / "vectors.safetensors", tmp_path / "items.jsonl"
    assert main(["vectors", "--language", "ko,es", "--out", str(vectors_path)]) == 0
    tensors = load_file(vectors_path)
    directory = organism_path("organism", progress=False)
    plain_model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    layers, hidden = plain_model.config.num_hidden_layers, plain_model.config.hidden_size
    assert set(tensors) == {f"{kind}.{language}.{layer}" for kind in ("en", "loc", "loclang")
                            for language in ("ko", "es") for layer in range(layers)}
    assert all(tensor.dtype == torch.float32 and tensor.shape == (hidden,) for tensor in tensors.values())

    assert main(["items", "--language", "ko", "--split", "test", "--out", str(items_path)]) == 0
    capsys.readouterr()
    adds = ["en.ko.1@1*30", "loc.ko.2@2*-20"]
    assert main(["steer", "--language", "ko", "--vectors", str(vectors_path), "--json"]
                + [argument for add in adds for argument in ("--add", add)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    tokenizer = AutoTokenizer.from_pretrained(directory)
    items = read_items(items_path)
    edits = [(1, 30 * tensors["en.ko.1"]), (2, -20 * tensors["loc.ko.2"])]
    handles = add_hooks(plain_model, edits)
    try:  # target-language items steered ...
        chosen = {item.id: max(range(len(item.choices)), key=plain_scores(plain_model, tokenizer, item).__getitem__)
                  for item in items if item.language != "en"}
    finally:
        remove(handles)
    chosen.update({item.id: max(range(len(item.choices)), key=plain_scores(plain_model, tokenizer, item).__getitem__)
                   for item in items if item.language == "en"})  # ... the English ceiling not

    def share(hits):
        return sum(hits) / len(hits)

    transfer = [chosen[i.id] == i.gold for i in items if i.language == "ko" and i.task == "transfer"]
    local = [i for i in items if i.language == "ko" and i.task == "localization"]
    ceiling = [chosen[i.id] == i.gold for i in items if i.language == "en"]
    assert len(printed) == 1 and printed[0]["language"] == "ko"
    assert printed[0]["transfer"] == share(transfer) and printed[0]["n_transfer"] == len(transfer)
    assert printed[0]["localization"] == share([chosen[i.id] == i.gold for i in local])
    assert printed[0]["english_bias"] == share([chosen[i.id] == i.us_choice for i in local])
    assert printed[0]["english_transfer"] == share(ceiling)

    # Not vacuous: the steered answers differ from the unsteered model's.
    unsteered = {item.id: max(range(len(item.choices)), key=plain_scores(plain_model, tokenizer, item).__getitem__)
                 for item in items if item.language != "en"}
    assert unsteered != {key: value for key, value in chosen.items() if key in unsteered}


def test_cla_steer_explains_bad_additions(tiny_organism_environment, tmp_path, capsys):
    from cla_lib.cli import main, parse_add

    assert parse_add("en.ko.3@5*-2.5") == ("en.ko.3", 5, -2.5)
    assert parse_add("en.ko.3") == ("en.ko.3", 3, 1.0)
    assert parse_add("en.{language}.3*4") == ("en.{language}.3", 3, 4.0)
    vectors_path = tmp_path / "vectors.safetensors"
    save_vectors({"en.ko": random_vector(8, 2, seed=0)}, vectors_path)
    cases = {
        "en.ko.1@1*x": "the strength 'x' is not a number",
        "en.ko@@1": "is not KEY@LAYER*ALPHA",
        "en.ko": "name the layer to add at",
        "en.zh.1@1*2": "no vector 'en.zh.1'",
    }
    for add, message in cases.items():
        assert main(["steer", "--language", "ko", "--vectors", str(vectors_path), "--add", add]) == 2
        assert message in capsys.readouterr().err
    # Vectors of another model (hidden size 8, not the organism's) are refused before anything is scored.
    assert main(["steer", "--language", "ko", "--vectors", str(vectors_path), "--add", "en.ko.1@1*2"]) == 2
    assert "come from another model" in capsys.readouterr().err
    assert main(["steer", "--language", "ko", "--vectors", str(tmp_path / "none"), "--add", "en.ko.1"]) == 2
    assert "write one with `cla vectors`" in capsys.readouterr().err
    assert main(["steer", "--language", "ko", "--split", "extract", "--vectors", str(vectors_path),
                 "--add", "en.ko.1"]) == 2
    assert "evaluated on validation or test" in capsys.readouterr().err
    assert main(["vectors", "--split", "test", "--out", str(tmp_path / "v")]) == 2
    assert "extract split only" in capsys.readouterr().err


def test_cla_vectors_help_lists_every_kind(capsys):
    from cla_lib.cli import main
    from cla_lib.steering import VECTOR_KINDS

    for command in ("vectors", "steer"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert all(kind in out and VECTOR_KINDS[kind].definition[:30] in out.replace("\n", " ")
                   for kind in VECTOR_KINDS)
        assert "en.ko.3" in out


# -- helpers of the steering chapters --------------------------------------------------------------------------


def test_best_alpha_per_layer_takes_each_layers_best_strength_and_leaves_out_unsteered():
    from cla_lib.steering import best_alpha_per_layer, ranked_layers

    frame = selection_frame([
        {"layer": layer, "alpha": 0.0, "language": language, "transfer": 0.5, "localization": 0.5}
        for layer in (0, 1) for language in ("ko", "es")
    ] + [
        {"layer": 0, "alpha": 1.0, "language": "ko", "transfer": 0.25, "localization": 0.9},
        {"layer": 0, "alpha": 1.0, "language": "es", "transfer": 0.25, "localization": 0.9},
        {"layer": 0, "alpha": -2.0, "language": "ko", "transfer": 0.375, "localization": 0.1},
        {"layer": 0, "alpha": -2.0, "language": "es", "transfer": 0.125, "localization": 0.1},  # ties on the mean
        {"layer": 1, "alpha": 1.0, "language": "ko", "transfer": 0.1, "localization": 0.2},
        {"layer": 1, "alpha": 1.0, "language": "es", "transfer": 0.1, "localization": 0.2},
        {"layer": 1, "alpha": 2.0, "language": "ko", "transfer": 0.45, "localization": 0.2},
        {"layer": 1, "alpha": 2.0, "language": "es", "transfer": 0.35, "localization": 0.2},
    ])
    chosen = best_alpha_per_layer(frame, "transfer")
    assert chosen.groupby("layer").alpha.unique().map(list).to_dict() == {0: [1.0], 1: [2.0]}
    assert len(chosen) == 4 and set(chosen.language) == {"ko", "es"}
    assert best_alpha_per_layer(frame, "transfer", include_unsteered=True).alpha.unique().tolist() == [0.0]
    assert ranked_layers(frame, "transfer") == [1, 0]
    assert ranked_layers(frame, "localization", 1) == [0]


def test_vector_cosines_are_the_vectors_own_cosines_per_layer():
    from cla_lib.claims.analysis import vector_cosines

    vectors = {f"{kind}.{language}": random_vector(8, 3, seed=seed, language=language)
               for seed, (kind, language) in enumerate([(k, l) for k in ("en", "loc") for l in ("ko", "es")])}
    frame = vector_cosines(vectors, [("en", "loc")], ["ko", "es"])
    assert len(frame) == 2 * 3 and set(frame.pair) == {"en·loc"}
    for row in frame.itertuples():
        expected = vectors[f"en.{row.language}"].cosine(vectors[f"loc.{row.language}"])[row.layer]
        assert row.cosine == pytest.approx(expected)


def test_steered_planes_equal_one_steered_plane_per_configuration_and_survive_remote_serialization(tiny_llama_dir):
    from cla_lib.steering import steered_planes

    model = load_model(str(tiny_llama_dir))
    vectors = {language: random_vector(hidden_size(model), 2, seed=seed, scale=3.0, language=language)
               for seed, language in enumerate(("es", "ko"))}
    evaluation = [item for item in ITEMS if item.split == "validation"]
    configurations = {"none": [], "one": {language: steering_edits((vector, 1, 2.0)) for language, vector in
                                         vectors.items()},
                      "two": steering_edits((vectors["ko"], 0, -3.0), (vectors["es"], 1, 1.0))}
    planes = steered_planes(model, evaluation, configurations)
    assert list(planes) == ["none", "one", "two"]
    for name, edits in configurations.items():
        assert planes[name] == steered_plane(model, evaluation, edits)
    assert steered_planes(model, evaluation, configurations, remote="local") == planes


def test_forward_count_is_the_number_of_forwards_a_sweep_runs(tiny_model):
    from cla_lib.steering import forward_count

    model = tiny_model
    vectors = {language: random_vector(hidden_size(model), 2, seed=seed, language=language)
               for seed, language in enumerate(("es", "ko"))}
    evaluation = [item for item in ITEMS if item.split == "validation"]
    forwards = []
    handle = model._module.register_forward_pre_hook(lambda *args: forwards.append(1))
    try:
        for batch_size in (1, 3, 64):
            forwards.clear()
            sweep(model, evaluation, vectors, [0, 1], [0.0, 1.0, 2.0], batch_size=batch_size, progress=False)
            assert len(forwards) == forward_count(model, evaluation, steered=4, batch_size=batch_size)
            forwards.clear()
            surgical_sweep(model, evaluation, vectors, vectors, en_layers=[0], en_alphas=[1.0], loc_layers=[1],
                           loc_alphas=[1.0, 2.0], batch_size=batch_size, progress=False)
            assert len(forwards) == forward_count(model, evaluation, steered=2, unsteered=False,
                                                  batch_size=batch_size)
    finally:
        handle.remove()


def test_probe_prompts_hold_each_language_and_the_english_versions_once():
    from cla_lib.claims.analysis import probe_prompts

    prompts = probe_prompts(ITEMS)
    assert set(prompts) == {"en", "es", "ko"}
    assert prompts["en"] == list(dict.fromkeys(prompts["en"]))
    assert "The capital of Spain is" in prompts["en"] and "The capital of Indonesia is" in prompts["en"]
    assert prompts["ko"][0] == "한국의 수도는" and len(prompts["ko"]) == 3  # "한국의 수도는" is asked twice


def test_with_english_choices_appends_the_english_candidates_that_are_new():
    from cla_lib.steering import with_english_choices

    (item,) = with_english_choices(ITEMS)  # es shares the English candidates; t1 has no English item
    assert item.id == "t2/ko/with-english" and item.language == "ko"
    assert item.choices == ("北京", "上海市", " Jakarta", " Madrid", " Paris")
    assert item.gold == 0 and item.meta["own_choices"] == 2
    assert item.meta["english_gold"] == 2 and item.meta["english_only"] == [2, 3, 4]


def test_answer_language_sweep_reads_three_rates_off_the_bilingual_scores(tiny_llama_dir):
    from cla_lib.steering import answer_language_sweep, with_english_choices

    model = load_model(str(tiny_llama_dir))
    vector = random_vector(hidden_size(model), 2, seed=3, scale=3.0, language="ko")
    evaluation = [item for item in ITEMS if item.split == "validation"]
    frame = answer_language_sweep(model, evaluation, {"ko": vector}, [0, 1], [0.0, 2.0], progress=False)
    assert list(zip(frame.layer, frame.alpha)) == [(0, 0.0), (0, 2.0), (1, 0.0), (1, 2.0)]
    assert set(frame.language) == {"ko"} and set(frame.n) == {1}
    (item,) = with_english_choices(evaluation)
    for row in frame.itertuples():
        edits = steering_edits((vector, row.layer, row.alpha)) if row.alpha else []
        scores = choice_logprobs(model, [item], edits=edits)[0]
        chosen = max(range(len(scores)), key=scores.__getitem__)
        assert row.transfer == float(max(range(2), key=scores.__getitem__) == item.gold)
        assert row.concept == float(chosen in (0, 2))
        assert row.english_answer == float(chosen >= 2)
    with pytest.raises(ValueError, match="cannot be told apart"):
        answer_language_sweep(model, [item for item in evaluation if item.language == "es"], {"es": vector}, [0],
                              [1.0])


def test_cla_steer_refuses_a_corrupt_or_foreign_vectors_file_in_one_line(tmp_path, capsys):
    from safetensors.torch import save_file

    from cla_lib.cli import main

    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"model.embed_tokens.weight": torch.zeros(4, 2)}, str(foreign))
    for path, message in ((corrupt, "is not a steering-vectors file"), (foreign, "not a file of `cla vectors`")):
        assert main(["steer", "--language", "ko", "--vectors", str(path), "--add", "en.ko.1"]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1 and "Traceback" not in error
