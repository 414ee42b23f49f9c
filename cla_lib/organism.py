"""The model organism: a small multilingual causal LM that this project trains itself, on CPU, on the synthetic
world of `cla_lib.world`, whose ground truth is known.

The organism is a `LlamaForCausalLM` (8 decoder layers by default, so that it has an early, a middle and a late
stage) with a byte-level BPE tokenizer trained on the world's text. Training is deterministic in the
`OrganismConfig` and the result is a standard Hugging Face directory (`config.json`, `model.safetensors`,
tokenizer files) cached under a key of the world and training configuration; the directory appears atomically,
so an interrupted training never leaves a half-written model behind.

Names: ``organism`` (the base model), ``organism:<method>`` (an aligned organism, see `cla_lib.alignment`), each
optionally with ``@<seed>`` (``organism:midalign@1``). Sizes: ``default`` for the book, ``tiny`` for tests and
quick runs (the environment variable ``CLA_ORGANISM_SIZE`` picks the default size).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from cla_lib.training import Schedule, TrainingLog, language_model_loss, train
from cla_lib.world import World, WorldConfig

# Bump when the world's text or the training code changes in a way the configs do not capture.
FORMAT_VERSION = "organism-v3"  # v2: creature names are never lexicon words; v3: a smaller, denser world
BOS, EOS, PAD = "<s>", "</s>", "<pad>"


@dataclass(frozen=True)
class OrganismConfig:
    world: WorldConfig = field(default_factory=WorldConfig)
    vocab_size: int = 3072
    n_layers: int = 8
    hidden_size: int = 128
    intermediate_size: int = 512
    n_heads: int = 4
    sequence_length: int = 128
    # Many small steps at a high learning rate: memorising hundreds of random facts needs updates more than tokens
    # (at 1,200 x 16 sequences, lr 6e-3 the English ceiling reached 0.86; at lr 3e-3 0.55; at 600 x 32, 3e-3 0.35).
    batch_size: int = 16
    steps: int = 1200
    learning_rate: float = 6e-3
    warmup: int = 60
    seed: int = 0

    def key(self) -> str:
        payload = json.dumps({"version": FORMAT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


SIZES = {
    "default": OrganismConfig(),
    "tiny": OrganismConfig(world=WorldConfig(n_anchor=16, n_bridge=8, n_transfer=8), vocab_size=1024, n_layers=4,
                           hidden_size=64, intermediate_size=128, sequence_length=64, batch_size=16, steps=40,
                           warmup=5),
}


class UnknownOrganismError(ValueError):
    """A model organism name, method or size that does not exist."""


def config_for(size: str | None = None, seed: int = 0) -> OrganismConfig:
    size = size or os.environ.get("CLA_ORGANISM_SIZE", "default")
    if size not in SIZES:
        raise UnknownOrganismError(f"unknown organism size {size!r}; sizes: {', '.join(SIZES)}")
    config = SIZES[size]
    return replace(config, seed=seed, world=replace(config.world, seed=seed))


def cache_root() -> Path:
    """Where trained organisms live: $CLA_CACHE, else ~/.cache/cla_lib."""
    return Path(os.environ.get("CLA_CACHE", Path.home() / ".cache" / "cla_lib"))


def parse_name(name: str) -> tuple[str, int]:
    """'organism:clo@2' -> ('clo', 2); 'organism' -> ('base', 0)."""
    if not (name == "organism" or name.startswith(("organism:", "organism@"))):
        raise UnknownOrganismError(f"{name!r} is not an organism name (organism[:method][@seed])")
    rest = name[len("organism"):]
    seed = 0
    if "@" in rest:
        rest, seed_text = rest.split("@", 1)
        if not seed_text.isdigit():
            raise UnknownOrganismError(f"organism seed must be a number, not {seed_text!r}")
        seed = int(seed_text)
    method = rest.lstrip(":") or "base"
    return method, seed


def organism_path(name: str = "organism", *, size: str | None = None, train_if_missing: bool = True,
                  progress: bool = True) -> Path:
    """The Hugging Face directory of a named organism, training it (and its base) first if it is not cached."""
    method, seed = parse_name(name)
    config = config_for(size, seed)
    if method == "base":
        return base_organism(config, train_if_missing=train_if_missing, progress=progress)
    from cla_lib import alignment  # the aligned organisms build on the base; imported late to keep layers one-way

    return alignment.aligned_organism(method, config, train_if_missing=train_if_missing, progress=progress)


# ----------------------------------------------------------------------------------------------------------
# Tokenizer and data


def train_tokenizer(world: World, vocab_size: int):
    """A byte-level BPE over the world's text; it adds <s> at the start of every encoded text, as models do.

    A prefix space makes a word's tokens the same at the start of a text and inside it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(world.corpus_sample, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tokenizer.token_to_id(BOS))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD)


def pack_documents(tokenizer, documents: list[str], sequence_length: int) -> torch.Tensor:
    """Concatenate `<s> document </s>` token runs and cut them into rows of `sequence_length` tokens."""
    encoded = tokenizer(documents, add_special_tokens=True)["input_ids"]
    stream = [token for ids in encoded for token in (*ids, tokenizer.eos_token_id)]
    rows = len(stream) // sequence_length
    return torch.tensor(stream[: rows * sequence_length]).view(rows, sequence_length)


class PackedStream:
    """Rows of packed training text, epoch after epoch; `batch(step)` is a pure function of the step."""

    def __init__(self, world: World, tokenizer, sequence_length: int, batch_size: int, steps: int):
        self.batch_size = batch_size
        needed = batch_size * steps
        chunks, available, epoch = [], 0, 0
        while available < needed:
            chunk = pack_documents(tokenizer, world.documents(epoch), sequence_length)
            chunks.append(chunk)
            available += len(chunk)
            epoch += 1
        self.rows = torch.cat(chunks)
        self.epochs = epoch
        self.tokens_per_epoch = chunks[0].numel()

    def batch(self, step: int) -> dict:
        rows = self.rows[step * self.batch_size:(step + 1) * self.batch_size]
        return {"input_ids": rows, "labels": rows}


# ----------------------------------------------------------------------------------------------------------
# The base organism


def build_model(config: OrganismConfig, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads, num_key_value_heads=config.n_heads,
        max_position_embeddings=max(256, config.sequence_length), tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(model_config)


def save_atomically(directory: Path, write) -> Path:
    """Run `write(temporary_directory)`, then move the finished directory into place in one rename."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        write(temporary)
        if directory.exists():  # another process finished first; theirs is identical
            shutil.rmtree(temporary)
        else:
            os.replace(temporary, directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return directory


def base_organism(config: OrganismConfig, *, train_if_missing: bool = True, progress: bool = True) -> Path:
    directory = cache_root() / "organisms" / f"base-{config.key()}"
    if (directory / "model.safetensors").exists():
        return directory
    if not train_if_missing:
        raise FileNotFoundError(f"the organism is not trained yet (expected at {directory})")
    torch.use_deterministic_algorithms(True)
    world = World(config.world)
    tokenizer = train_tokenizer(world, config.vocab_size)
    stream = PackedStream(world, tokenizer, config.sequence_length, config.batch_size, config.steps)
    model = build_model(config, tokenizer)
    log = train(model, language_model_loss, stream.batch,
                Schedule(config.steps, config.learning_rate, warmup=config.warmup, weight_decay=0.01),
                tokens_per_batch=config.batch_size * config.sequence_length,
                description=f"training the base organism (seed {config.seed})", progress=progress)
    return save_atomically(directory, lambda path: _save(path, model, tokenizer, config, log, stream))


def _save(path: Path, model, tokenizer, config: OrganismConfig, log: TrainingLog, stream: PackedStream) -> None:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    record = {
        "method": "base",
        "config": asdict(config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": log.seconds,
        "tokens": log.tokens,
        "tokens_per_second": log.tokens_per_second,
        "epochs": log.tokens / stream.tokens_per_epoch,
        "final_loss": sum(log.losses[-20:]) / len(log.losses[-20:]),
        "losses": log.losses,
        "torch_threads": torch.get_num_threads(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (path / "training.json").write_text(json.dumps(record, indent=1))


def training_record(path: str | Path) -> dict:
    """What a cached organism's training recorded (config, loss curve, throughput)."""
    return json.loads((Path(path) / "training.json").read_text())


def world_of(path: str | Path) -> World:
    """The world an organism directory was trained on (its items are the organism's benchmark)."""
    world = training_record(path)["config"]["world"]
    world["split_fractions"] = tuple(world["split_fractions"])
    return World(WorldConfig(**world))


def is_organism_directory(path: str | Path) -> bool:
    return (Path(path) / "training.json").exists()
