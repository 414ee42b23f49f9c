"""Shared fixtures: tiny random models of each supported architecture, built in-process, no network.

Each model directory is a real Hugging Face checkpoint (config, safetensors weights, tokenizer files), so tests
load it the way users load real models (`load_model(path)`), and plain transformers can load it too for reference
computations. The tokenizer is a byte-level BPE trained here on a few sentences in the scripts of the companion's
languages (Latin, Greek, Hangul, Han, Arabic-Persian), so multi-byte scripts produce multi-token choices.
Weights are random but seeded, and larger than the default initialization so that log-probabilities differ
visibly between choices.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

# One thread here and in every process the tests start (papermill kernels, the CLI): CI runs the tests beside the
# book's trainings on two cores, and a two-thread OpenMP process among them spin-waits at every small op. Chapter 3
# on tiny Gemma 3, beside two busy processes: 195 s on two threads (126 s of CPU), 21 s on one (13 s of CPU).
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"

# Nothing a test runs reads or writes the user's organism cache or the checkout's results/: a test that reached the
# default-size organism trained it here (chapter 5's test once spent ~20 CPU-minutes so, racing the book's own
# training of the same organism on CI). Tests that need an organism use the tiny one (`tiny_organism_environment`).
_SESSION_FILES = tempfile.mkdtemp(prefix="cla-tests-")
os.environ["CLA_CACHE"] = os.path.join(_SESSION_FILES, "cache")
os.environ["CLA_RESULTS"] = os.path.join(_SESSION_FILES, "results")
atexit.register(shutil.rmtree, _SESSION_FILES, True)

TRAINING_SENTENCES = (
    "The capital of France is Paris. The capital of Spain is Madrid.",
    "La capital de España es Madrid. El río más largo es el Amazonas.",
    "Ibu kota Indonesia adalah Jakarta. Makanan khas adalah nasi goreng.",
    "Η πρωτεύουσα της Ελλάδας είναι η Αθήνα. Το φαγητό είναι μουσακάς.",
    "한국의 수도는 서울입니다. 대표 음식은 김치입니다.",
    "中国的首都是北京。最长的河流是长江。",
    "پایتخت ایران تهران است. غذای محلی چلوکباب است.",
)
# Weighted up so that the answer letters " A" ... " D" each become one token, as in real tokenizers.
LETTER_SENTENCE = "Answer: A. Answer: B. Answer: C. Answer: D."
SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>"}
ARCHITECTURES = ("llama", "qwen2", "gemma3")
HIDDEN_SIZE = 32


def build_tokenizer():
    """A byte-level BPE tokenizer (vocabulary 400) that adds a BOS token, as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(TRAINING_SENTENCES) * 3 + [LETTER_SENTENCE] * 10, trainer)
    bos_id = tokenizer.token_to_id(SPECIAL_TOKENS["bos_token"])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos_id)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


def build_model(architecture: str, vocabulary_size: int, special_ids: dict[str, int]):
    """A 2-layer random causal LM of the given architecture, hidden size 32, seeded."""
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    common = dict(
        vocab_size=vocabulary_size,
        hidden_size=HIDDEN_SIZE,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.1,
        **special_ids,
    )
    torch.manual_seed(0)
    if architecture == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    elif architecture == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    elif architecture == "gemma3":
        # One sliding-window layer with a window shorter than the test sequences, one global layer, and logit
        # soft-capping: the Gemma 3 features that a scoring shortcut could get wrong.
        config = Gemma3TextConfig(
            **common,
            head_dim=8,
            query_pre_attn_scalar=8,
            sliding_window=6,
            layer_types=["sliding_attention", "full_attention"],
            final_logit_softcapping=30.0,
        )
        model = Gemma3ForCausalLM(config)
    else:
        raise ValueError(f"no tiny {architecture!r} model")
    return model.eval()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    """All tiny model directories, by architecture name, built once per test session."""
    special_ids = {
        "pad_token_id": tiny_tokenizer.pad_token_id,
        "bos_token_id": tiny_tokenizer.bos_token_id,
        "eos_token_id": tiny_tokenizer.eos_token_id,
    }
    root = tmp_path_factory.mktemp("tiny_models")
    directories = {}
    for architecture in ARCHITECTURES:
        directory = root / architecture
        build_model(architecture, len(tiny_tokenizer), special_ids).save_pretrained(directory)
        tiny_tokenizer.save_pretrained(directory)
        directories[architecture] = directory
    return directories


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_model_dirs) -> Path:
    return tiny_model_dirs["llama"]


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tiny_model_dirs) -> Path:
    return tiny_model_dirs["qwen2"]


@pytest.fixture(scope="session")
def tiny_gemma3_dir(tiny_model_dirs) -> Path:
    return tiny_model_dirs["gemma3"]


@pytest.fixture(params=ARCHITECTURES)
def tiny_model_dir(request, tiny_model_dirs) -> Path:
    """Each tiny model directory in turn (Llama, Qwen2, Gemma 3 text)."""
    return tiny_model_dirs[request.param]


@pytest.fixture
def tiny_model(tiny_model_dir):
    """Each tiny model in turn, loaded fresh with `load_model` (cheap: a few milliseconds)."""
    from cla_lib.plane.loading import load_model

    return load_model(str(tiny_model_dir))


@pytest.fixture
def plain_model(tiny_model_dir):
    """The same tiny model loaded with plain transformers, for reference computations."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


# -- the model organism ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_organism_cache(tmp_path_factory) -> Path:
    """A session cache (a `CLA_CACHE` directory) holding the tiny base organism, trained once (5-40 s).

    The environment is set only while training; tests that call `organism_path`, the CLI or a chapter against this
    cache use `tiny_organism_environment`."""
    from cla_lib.organism import organism_path

    root = tmp_path_factory.mktemp("cla_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLA_CACHE", str(root))
        organism_path("organism", size="tiny", progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_organism_dir(tiny_organism_cache) -> Path:
    """The tiny base organism's Hugging Face directory (seed 0)."""
    from cla_lib.organism import config_for

    return tiny_organism_cache / "organisms" / f"base-{config_for('tiny', 0).key()}"  # tests add other seeds


@pytest.fixture
def tiny_organism_environment(tiny_organism_cache, monkeypatch) -> Path:
    """For one test: `CLA_CACHE` is the session cache with the tiny organism and `CLA_ORGANISM_SIZE` is tiny."""
    monkeypatch.setenv("CLA_CACHE", str(tiny_organism_cache))
    monkeypatch.setenv("CLA_ORGANISM_SIZE", "tiny")
    return tiny_organism_cache


@pytest.fixture(scope="session")
def rescore_with_transformers():
    """Answers from plain transformers, the lm-evaluation-harness way, sharing no code with `cla_lib.scoring`.

    `rescore(directory, items)` loads the directory with AutoModelForCausalLM and AutoTokenizer; a choice's score
    is the sum of the log-probabilities of the tokens of `tokenizer(prompt + choice)` past `len(tokenizer(prompt))`,
    each from its own unbatched forward; the answer is the highest-scoring choice."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def rescore(directory, items) -> list[int]:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
        chosen = []
        for item in items:
            context = tokenizer(item.prompt)["input_ids"]
            scores = []
            for choice in item.choices:
                whole = tokenizer(item.prompt + choice)["input_ids"]
                with torch.no_grad():
                    logprobs = torch.log_softmax(model(input_ids=torch.tensor([whole])).logits[0].float(), dim=-1)
                scores.append(sum(float(logprobs[len(context) - 1 + offset, token])
                                  for offset, token in enumerate(whole[len(context):])))
            chosen.append(max(range(len(scores)), key=scores.__getitem__))
        return chosen

    return rescore
