"""Cross-lingual alignment (CLA): the fine-tuning methods the paper re-evaluates, as small recipes.

A cross-lingual alignment method fine-tunes a multilingual model so that what it knows in English becomes usable
in other languages. The paper asks what such methods cost: they raise *transfer*, and they may also erase
*localization* (culture-specific answers that should differ by query language). To measure that cost on the model
organism, this module trains one aligned organism per method, starting from the cached base organism.

Each method is a recipe: an *objective* (a loss function of the model and a batch, below) and the data it reads.

- ``midalign``: a contrastive loss that pulls together the middle-layer representations of parallel sentences.
- ``clo``: cross-lingual preference optimization: prefer answering in the language of the question.
- ``mit``: multilingual instruction tuning: supervised question answering, translated into every language.
- ``replay``: no objective at all: the control.

**One design for all methods, so that the replay control isolates each objective.** Every method trains for the
same number of steps, with the same learning rate schedule and batch sizes, through the one training loop
(`cla_lib.training.train`), and every step's batch holds *replay* rows (the base organism's own training text,
continuing its packed stream at epochs the base never reached) plus a batch of the method's objective data:

    loss = language-model loss on the replay rows  +  objective_weight * the method's objective

Replay keeps the fine-tuned model from forgetting what it learnt (without it, a prototype's translate-train model
forgot its English-only facts), and it is extra training in its own right. The ``replay`` method runs exactly that
extra training with no objective, so "method minus replay" is the effect of the method's objective alone. (CLO
trains only the attention projections, its replay included, whereas ``replay`` trains every weight; so for CLO
the control matches the data and steps, not the trainable set.)

Everything is deterministic in the configuration: the batch of a step is a pure function of the step and the
seed. An aligned organism is a standard Hugging Face directory, cached at
``cache_root()/organisms/<method>-<key>`` under a key of the method's configuration and the base organism's key,
written atomically; its ``training.json`` keeps the base ``"config"`` (so `cla_lib.organism.world_of` works on it),
the ``"method"``, the ``"method_config"`` and the loss curves.

**Real models.** `align_model` runs the same recipes, losses and loop on a Hugging Face model from a local directory
(on a GPU when there is one), with data in JSONL files, one JSON object per line (`DATA_FIELDS`):

    parallel     {"language": "ko", "english": "The cat sleeps.", "target": "고양이가 잔다."}
    preference   {"prompt": "고양이는 무엇을 먹나요?", "chosen": " 생선", "rejected": " fish"}
    instruction  {"language": "ko", "prompt": "고양이는 무엇을 먹나요?", "answer": " 생선"}
    replay       {"text": "any pre-training-like text"}

A continuation (``chosen``, ``rejected``, ``answer``) is appended to its prompt as it is, so it carries its own
separator (a leading space or newline). By default every weight trains, in float32 (`dtype` changes that);
`trainable` restricts training to the modules it names (CLO's attention-only training is this option). For large
models LoRA adapters would be the way; they are not implemented here (peft is not a dependency).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from cla_lib.models import decoder_layers, n_layers
from cla_lib.organism import (
    OrganismConfig,
    UnknownOrganismError,
    base_organism,
    cache_root,
    pack_documents,
    save_atomically,
    training_record,
)
from cla_lib.scoring import encode_choice
from cla_lib.training import Schedule, language_model_loss, train
from cla_lib.world import World

# Bump when a recipe changes in a way its configuration does not capture.
FORMAT_VERSION = "alignment-v1"

ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")

# The JSONL record kinds and their fields (all strings).
DATA_FIELDS = {
    "parallel": ("language", "english", "target"),
    "preference": ("prompt", "chosen", "rejected"),
    "instruction": ("language", "prompt", "answer"),
    "replay": ("text",),
}


# ----------------------------------------------------------------------------------------------------------
# Configurations


@dataclass(frozen=True)
class AlignmentConfig:
    """What every method shares; the ``replay`` control uses exactly these fields.

    `trainable` names the modules whose parameters train (a parameter trains when one of the dot-separated parts
    of its name is in the tuple); empty means every parameter.
    """

    steps: int = 150
    learning_rate: float = 1e-3
    warmup: int = 15
    replay_batch_size: int = 32  # rows of packed replay text per step
    objective_batch_size: int = 32  # objective examples per step
    objective_weight: float = 1.0
    trainable: tuple[str, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class MidAlignConfig(AlignmentConfig):
    layer: int | None = None  # decoder layer whose output is pooled; None: n_layers // 2
    temperature: float = 0.1


@dataclass(frozen=True)
class CLOConfig(AlignmentConfig):
    beta: float = 0.1  # DPO's inverse temperature
    nll_weight: float = 0.5  # lambda: loss = lambda * NLL(chosen) + (1 - lambda) * DPO
    trainable: tuple[str, ...] = ATTENTION_PROJECTIONS


# ----------------------------------------------------------------------------------------------------------
# Losses: functions of tensors, or of a model and a batch


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE with in-batch negatives on cosine similarity, one direction: each row of `a` must pick out its own
    row of `b` among all rows of `b`.

    Args:
        a, b: `[batch, hidden]` representations; row i of `a` and row i of `b` are a positive pair.
        temperature: the softmax temperature of the cosine similarities.

    Returns:
        The mean over rows i of ``-log softmax_j(cos(a_i, b_j) / temperature)[i]``. Both sides receive gradients.
    """
    similarities = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    return F.cross_entropy(similarities, torch.arange(len(a), device=a.device))


def mean_pooled(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of `[batch, seq, hidden]` states over each row's real (non-pad) tokens."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


class _StopForward(Exception):
    pass


def residual_after(model, layer: int, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The residual stream after decoder layer `layer` (= ``output_hidden_states[layer + 1]``), with gradients.

    The forward stops at that layer: the layers above it and the vocabulary projection are never computed.
    """
    captured = {}

    def capture(module, arguments, output):
        captured["hidden"] = output[0] if isinstance(output, tuple) else output
        raise _StopForward

    handle = decoder_layers(model)[layer].register_forward_hook(capture)
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    except _StopForward:
        pass
    finally:
        handle.remove()
    return captured["hidden"]


def midalign_loss(model, batch: dict, *, layer: int, temperature: float = 0.1) -> torch.Tensor:
    """MidAlign's objective: `contrastive_loss` between the mean-pooled residuals after `layer` of each
    target-language sentence (`a`) and of the English sentences (`b`)."""
    target = mean_pooled(residual_after(model, layer, **batch["target"]), batch["target"]["attention_mask"])
    english = mean_pooled(residual_after(model, layer, **batch["english"]), batch["english"]["attention_mask"])
    return contrastive_loss(target, english, temperature)


def continuation_logprobs(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the summed log-probability of the continuation tokens and their number.

    The batch comes from `encode_continuations`: its `continuation_mask` marks the tokens past the prompt.
    """
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    logits = logits[:, :-1].float()
    targets = batch["input_ids"][:, 1:].unsqueeze(-1)
    token_logprobs = logits.gather(-1, targets).squeeze(-1) - logits.logsumexp(-1)
    mask = batch["continuation_mask"][:, 1:].to(token_logprobs.dtype)
    return (token_logprobs * mask).sum(-1), mask.sum(-1)


def answer_loss(model, batch: dict) -> torch.Tensor:
    """Multilingual instruction tuning's objective: the mean negative log-likelihood of the answer tokens (prompt
    tokens do not count), averaged over all answer tokens of the batch."""
    sums, counts = continuation_logprobs(model, batch)
    return -sums.sum() / counts.sum()


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """Direct preference optimization on sequence log-probabilities:
    ``mean(-log sigmoid(beta * ((pc - rc) - (pr - rr))))``."""
    margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)
    return -F.logsigmoid(beta * margin).mean()


def clo_loss(model, batch: dict, *, reference, beta: float = 0.1, nll_weight: float = 0.5) -> torch.Tensor:
    """CLO's objective: ``nll_weight * NLL(chosen) + (1 - nll_weight) * DPO(beta)`` against a frozen `reference`.

    The batch (`preference_batch`) holds the chosen continuations in its first half of rows and the rejected ones
    in the second; NLL is the mean over the chosen answers' tokens, as in `answer_loss`.
    """
    half = len(batch["input_ids"]) // 2
    sums, counts = continuation_logprobs(model, batch)
    with torch.no_grad():
        reference_sums, _ = continuation_logprobs(reference, batch)
    nll = -sums[:half].sum() / counts[:half].sum()
    preference = dpo_loss(sums[:half], sums[half:], reference_sums[:half], reference_sums[half:], beta)
    return nll_weight * nll + (1 - nll_weight) * preference


# ----------------------------------------------------------------------------------------------------------
# Batches: records (the JSONL format) to tensors


def _pad(rows: list[list[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists (every real token keeps its position) and return them with their attention mask."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, : len(row)] = torch.tensor(row)
        attention_mask[index, : len(row)] = 1
    return input_ids, attention_mask


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def encode_texts(tokenizer, texts: list[str]) -> dict:
    """Texts (with the tokenizer's default special tokens), right-padded: `input_ids`, `attention_mask`."""
    input_ids, attention_mask = _pad([list(tokenizer(text)["input_ids"]) for text in texts], _pad_id(tokenizer))
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def encode_continuations(tokenizer, prompts: list[str], continuations: list[str]) -> dict:
    """Prompt + continuation rows, split the lm-evaluation-harness way (`cla_lib.scoring.encode_choice`): the
    prompt's tokens, then the tokens of prompt + continuation past the prompt's length.

    Returns `input_ids`, `attention_mask` and `continuation_mask` (1 on the continuation's tokens).
    """
    rows, starts = [], []
    for prompt, continuation in zip(prompts, continuations, strict=True):
        context, rest = encode_choice(tokenizer, prompt, continuation)
        if not context or not rest:
            raise ValueError(f"prompt {prompt!r} with continuation {continuation!r} leaves no context or no "
                             "continuation tokens to train on")
        rows.append(context + rest)
        starts.append(len(context))
    input_ids, attention_mask = _pad(rows, _pad_id(tokenizer))
    positions = torch.arange(input_ids.shape[1])
    continuation_mask = (positions >= torch.tensor(starts).unsqueeze(1)) & attention_mask.bool()
    return {"input_ids": input_ids, "attention_mask": attention_mask,
            "continuation_mask": continuation_mask.long()}


def parallel_batch(tokenizer, records: list[dict]) -> dict:
    return {"english": encode_texts(tokenizer, [record["english"] for record in records]),
            "target": encode_texts(tokenizer, [record["target"] for record in records])}


def preference_batch(tokenizer, records: list[dict]) -> dict:
    """Chosen rows first, then rejected rows, each after its prompt."""
    prompts = [record["prompt"] for record in records]
    return encode_continuations(tokenizer, prompts + prompts, [record["chosen"] for record in records]
                                + [record["rejected"] for record in records])


def instruction_batch(tokenizer, records: list[dict]) -> dict:
    return encode_continuations(tokenizer, [record["prompt"] for record in records],
                                [record["answer"] for record in records])


class RecordBatches:
    """Batches of records as a pure function of the step.

    Each epoch visits the records' groups in a seeded order and takes one record of each group, chosen at random;
    a batch never spans two epochs, so no group appears twice in a batch. (MidAlign groups pairs by their English
    sentence, so that no in-batch negative is a translation of the positive.) Without `group`, every record is
    its own group.
    """

    def __init__(self, records: list, batch_size: int, seed: int, group: Callable | None = None):
        groups: dict = {}
        for index, record in enumerate(records):
            groups.setdefault(group(record) if group else index, []).append(index)
        if not groups:
            raise ValueError("no records to train on")
        self.records = records
        self.groups = list(groups.values())
        self.batch_size = min(batch_size, len(self.groups))
        self.seed = seed
        self._order: tuple[int, list[int]] = (-1, [])  # the latest epoch's order, as steps run in sequence

    def _epoch(self, epoch: int) -> list[int]:
        if self._order[0] != epoch:
            rng = random.Random(f"{self.seed}-records-{epoch}")
            groups = list(range(len(self.groups)))
            rng.shuffle(groups)
            self._order = (epoch, [rng.choice(self.groups[group]) for group in groups])
        return self._order[1]

    def __call__(self, step: int) -> list:
        epoch, index = divmod(step, len(self.groups) // self.batch_size)
        chosen = self._epoch(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        return [self.records[position] for position in chosen]


# ----------------------------------------------------------------------------------------------------------
# The methods


@dataclass(frozen=True)
class Recipe:
    """A method made concrete for one model: its objective and how records become the objective's batch."""

    objective: Callable | None = None  # loss(model, batch) -> scalar
    collate: Callable | None = None  # records -> batch
    group: Callable | None = None  # record -> key; records of one key never share a batch


@dataclass(frozen=True)
class Method:
    """A registered method: where it comes from, its configuration, its data and its recipe."""

    name: str
    summary: str
    config_type: type
    data: str | None  # the JSONL kind its objective reads (`DATA_FIELDS`); None: replay only
    organism_records: Callable[[World], list[dict]]  # the organism's objective data, as records
    recipe: Callable  # (model, tokenizer, config) -> Recipe


def midalign_recipe(model, tokenizer, config: MidAlignConfig) -> Recipe:
    """MidAlign, after Liu & Niehues (ACL 2025, arXiv 2502.14830; code: dannigt/mid-align).

    Follows: InfoNCE on cosine similarity, temperature 0.1, in-batch negatives, on mean-pooled (over the attention
    mask, BOS included) middle-layer states of parallel sentence pairs; one-directional as in the original
    (each target-language sentence picks out its English translation; both sides receive gradients), added to the
    language-model loss. Departs: the two losses are summed in every step (the original alternates task and
    alignment steps); the task loss is replay, not task data; batches never hold two pairs of one English sentence.
    `layer` counts decoder layers from 0: its output is the original's ``additional_loss_layer = layer + 1``.
    """
    layer = config.layer if config.layer is not None else n_layers(model) // 2
    if not 0 <= layer < n_layers(model):
        raise ValueError(f"MidAlign layer {layer} does not exist: the model has {n_layers(model)} decoder layers")
    return Recipe(objective=functools.partial(midalign_loss, layer=layer, temperature=config.temperature),
                  collate=functools.partial(parallel_batch, tokenizer), group=lambda record: record["english"])


def clo_recipe(model, tokenizer, config: CLOConfig) -> Recipe:
    """Cross-Lingual Optimization (CLO), after Lee et al. (ACL 2025, arXiv 2505.14297).

    Follows: a question in a target language prefers the answer in that language over the English answer, and an
    English question the reverse; loss = lambda * NLL(chosen) + (1 - lambda) * DPO(beta) against a frozen copy of
    the starting model; only the attention projections (q, k, v, o) train (Qwen2's projection biases included), so
    replay updates only them too. Departs: no public code exists; the NLL is taken on the chosen answer of every
    pair (English answers to English questions included), and the data are short answers in the organism's world.
    """
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    return Recipe(objective=functools.partial(clo_loss, reference=reference, beta=config.beta,
                                              nll_weight=config.nll_weight),
                  collate=functools.partial(preference_batch, tokenizer))


def mit_recipe(model, tokenizer, config: AlignmentConfig) -> Recipe:
    """Multilingual instruction tuning (translate-train), as the paper re-evaluates it.

    Supervised tuning on the English question-answer data rendered into every language, the loss on the answer
    tokens only. The organism's translations keep the English (US) answers to culture questions, as translating
    English instruction data would. Departs: the paper's exact instruction data are not public.
    """
    return Recipe(objective=answer_loss, collate=functools.partial(instruction_batch, tokenizer))


def replay_recipe(model, tokenizer, config: AlignmentConfig) -> Recipe:
    """The control: the same extra training on the base organism's own text, no alignment objective."""
    return Recipe()


def _parallel_records(world: World) -> list[dict]:
    return [{"language": language, "english": english, "target": target}
            for language, english, target in world.parallel_pairs()]


def _preference_records(world: World) -> list[dict]:
    return [{"prompt": prompt, "chosen": chosen, "rejected": rejected}
            for prompt, chosen, rejected in world.preference_triples()]


def _instruction_records(world: World) -> list[dict]:
    # The world's QA documents read "question answer": the answer follows after a space.
    return [{"language": language, "prompt": question, "answer": f" {answer}"}
            for language, question, answer in world.translated_qa()]


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("midalign", "contrastive alignment of middle-layer states of parallel sentences", MidAlignConfig,
               "parallel", _parallel_records, midalign_recipe),
        Method("clo", "cross-lingual preference optimization, attention weights only", CLOConfig, "preference",
               _preference_records, clo_recipe),
        Method("mit", "multilingual instruction tuning on translated QA", AlignmentConfig, "instruction",
               _instruction_records, mit_recipe),
        Method("replay", "the control: the same extra training, replay only", AlignmentConfig, None,
               lambda world: [], replay_recipe),
    )
}


def method_of(name: str) -> Method:
    if name not in METHODS:
        raise UnknownOrganismError(f"unknown alignment method {name!r}; methods: {', '.join(METHODS)}")
    return METHODS[name]


# ----------------------------------------------------------------------------------------------------------
# Training: replay + objective through the one loop


def trainable_parameters(model, names: tuple[str, ...]) -> list[torch.nn.Parameter]:
    """Freeze every parameter except those of the modules named in `names` (all of them if `names` is empty)."""
    if not names:
        return [parameter for parameter in model.parameters() if parameter.requires_grad]
    selected = []
    for name, parameter in model.named_parameters():
        trains = any(part in names for part in name.split("."))
        parameter.requires_grad_(trains)
        if trains:
            selected.append(parameter)
    if not selected:
        raise ValueError(f"no parameter belongs to a module named {', '.join(names)}")
    return selected


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch


def align(model, tokenizer, method: str, config: AlignmentConfig, records: list[dict],
          replay: Callable[[int], torch.Tensor], *, progress: bool = True, description: str | None = None) -> dict:
    """Fine-tune `model` in place with a method's recipe plus replay, and return what to record.

    Args:
        model: a transformers causal LM (its device is where batches go).
        tokenizer: its tokenizer.
        method: a name in `METHODS`.
        config: the method's configuration (`Method.config_type`).
        records: the objective's data, in the method's JSONL record format (ignored by ``replay``).
        replay: the replay rows of a step, `[replay_batch_size, sequence_length]` token ids.

    Returns:
        ``method``, ``method_config`` (with defaults resolved), ``losses`` (the total per step), ``replay_losses``,
        ``objective_losses``, ``train_seconds``, ``parameters`` and ``trainable_parameters``.
    """
    method_entry = method_of(method)
    if isinstance(config, MidAlignConfig) and config.layer is None:
        config = replace(config, layer=n_layers(model) // 2)
    torch.manual_seed(config.seed)
    recipe = method_entry.recipe(model, tokenizer, config)
    parameters = trainable_parameters(model, config.trainable)
    device = next(model.parameters()).device
    objective_batches = (RecordBatches(records, config.objective_batch_size, config.seed, recipe.group)
                         if recipe.objective else None)

    def batch(step: int) -> dict:
        rows = replay(step)
        return _to_device({
            "replay": {"input_ids": rows, "labels": rows},
            "objective": recipe.collate(objective_batches(step)) if objective_batches else None,
        }, device)

    replay_losses, objective_losses = [], []

    def loss(model, batch: dict) -> torch.Tensor:
        total = language_model_loss(model, batch["replay"])
        replay_losses.append(total.item())
        if recipe.objective:
            objective = recipe.objective(model, batch["objective"])
            objective_losses.append(objective.item())
            total = total + config.objective_weight * objective
        return total

    log = train(model, loss, batch, Schedule(config.steps, config.learning_rate, warmup=config.warmup),
                parameters=parameters, description=description or f"aligning: {method}", progress=progress)
    return {
        "method": method,
        "method_config": asdict(config),
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "trainable_parameters": sum(parameter.numel() for parameter in parameters),
        "train_seconds": log.seconds,
        "final_loss": sum(log.losses[-10:]) / len(log.losses[-10:]),
        "losses": log.losses,
        "replay_losses": replay_losses,
        "objective_losses": objective_losses,
    }


def _save(path: Path, model, tokenizer, record: dict) -> None:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    record = {**record, "torch_threads": torch.get_num_threads(),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (path / "training.json").write_text(json.dumps(record, indent=1))


# ----------------------------------------------------------------------------------------------------------
# Aligned organisms


def organism_method_config(method: str, base: OrganismConfig) -> AlignmentConfig:
    """A method's configuration on the organism, derived from the base's: a tenth of the base's steps (at least
    10), the base's batch size of replay rows plus as many objective examples, learning rate 1e-3 with a 10%
    warm-up and cosine decay, the same for every method."""
    steps = max(10, base.steps // 10)
    common = dict(steps=steps, warmup=max(1, steps // 10), learning_rate=1e-3, replay_batch_size=base.batch_size,
                  objective_batch_size=base.batch_size, seed=base.seed)
    if method == "midalign":
        common["layer"] = base.n_layers // 2
    return method_of(method).config_type(**common)


def aligned_organism_key(method: str, base: OrganismConfig, config: AlignmentConfig | None = None) -> str:
    config = config or organism_method_config(method, base)
    payload = json.dumps({"version": FORMAT_VERSION, "method": method, "config": asdict(config),
                          "base": base.key()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def organism_replay(world: World, tokenizer, base: OrganismConfig, base_epochs: float, rows: int) -> torch.Tensor:
    """`rows` rows of packed training text, continuing the base organism's stream at the first epoch it did not
    reach (every epoch holds the same documents in a new order, so the rows are new packings of known text)."""
    epoch = math.ceil(round(base_epochs, 6))  # rounded first: 2.0000000001 epochs means epochs 0 and 1
    chunks, available = [], 0
    while available < rows:
        chunk = pack_documents(tokenizer, world.documents(epoch), base.sequence_length)
        chunks.append(chunk)
        available += len(chunk)
        epoch += 1
    return torch.cat(chunks)[:rows]


def aligned_organism(method: str, config: OrganismConfig, *, train_if_missing: bool = True,
                     progress: bool = True) -> Path:
    """The directory of an aligned organism: the base organism of `config`, fine-tuned with `method`.

    Trains the base (if needed) and the aligned organism on first use; later calls return the cached directory.

    Args:
        method: a name in `METHODS`.
        config: the base organism's configuration (`cla_lib.organism.config_for`).
        train_if_missing: train when the organism is not cached; otherwise raise FileNotFoundError.
        progress: show progress bars.

    Raises:
        UnknownOrganismError: `method` is not in `METHODS` (the message lists them).

    Example:
        >>> path = aligned_organism("midalign", config_for("tiny"))
        >>> training_record(path)["method_config"]["layer"]
    """
    method_config = organism_method_config(method, config)
    directory = cache_root() / "organisms" / f"{method}-{aligned_organism_key(method, config, method_config)}"
    if (directory / "model.safetensors").exists():
        return directory
    if not train_if_missing:
        raise FileNotFoundError(f"the {method} organism is not trained yet (expected at {directory})")
    base_directory = base_organism(config, train_if_missing=True, progress=progress)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.use_deterministic_algorithms(True)
    model = AutoModelForCausalLM.from_pretrained(base_directory, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(base_directory)
    world = World(config.world)
    rows = organism_replay(world, tokenizer, config, training_record(base_directory)["epochs"],
                           method_config.steps * method_config.replay_batch_size)
    size = method_config.replay_batch_size
    record = align(model, tokenizer, method, method_config, METHODS[method].organism_records(world),
                   lambda step: rows[step * size:(step + 1) * size], progress=progress,
                   description=f"aligning the organism: {method} (seed {config.seed})")
    record = {**record, "config": asdict(config), "base": base_directory.name,
              "tokens": method_config.steps * size * config.sequence_length}
    return save_atomically(directory, lambda path: _save(path, model, tokenizer, record))


# ----------------------------------------------------------------------------------------------------------
# Real models


def read_records(path: str | Path, kind: str) -> list[dict]:
    """The records of a JSONL file of one kind (`DATA_FIELDS`), checked field by field."""
    if kind not in DATA_FIELDS:
        raise ValueError(f"unknown data kind {kind!r}; kinds: {', '.join(DATA_FIELDS)}")
    records = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            missing = [name for name in DATA_FIELDS[kind] if not isinstance(record.get(name), str)]
            if missing:
                raise ValueError(f"{path}:{number}: {kind} records need the string fields "
                                 f"{', '.join(DATA_FIELDS[kind])}; missing or not a string: {', '.join(missing)}")
            records.append(record)
    if not records:
        raise ValueError(f"{path}: no {kind} records")
    return records


def align_model(model_directory: str | Path, method: str, data_files: dict, out_directory: str | Path, *,
                steps: int, learning_rate: float, batch_size: int, layer: int | None = None,
                device: str | None = None, seed: int = 0, replay_batch_size: int | None = None,
                sequence_length: int = 512, trainable: tuple[str, ...] | None = None,
                dtype: torch.dtype = torch.float32, progress: bool = True, **options) -> Path:
    """Fine-tune a Hugging Face model with an alignment method and save it as a Hugging Face directory.

    Args:
        model_directory: a local Hugging Face model directory.
        method: a name in `METHODS`.
        data_files: JSONL files by kind: ``"replay"`` (always) and the method's kind (``Method.data``:
            ``"parallel"`` for midalign, ``"preference"`` for clo, ``"instruction"`` for mit).
        out_directory: where the aligned model goes; it must not exist (it appears atomically).
        steps, learning_rate: the schedule (10% linear warm-up, then cosine decay; ``warmup=`` overrides).
        batch_size: objective examples per step, and replay rows per step unless `replay_batch_size` is given.
        layer: MidAlign's decoder layer (default: the middle one).
        device: a torch device; default ``"cuda"`` when available, else the CPU.
        seed: the seed of the data order.
        sequence_length: the length of the packed replay rows.
        trainable: module names whose parameters train (for example ``("q_proj", "v_proj")``); default: the
            method's (every parameter, or CLO's attention projections).
        dtype: the weights' dtype during training and in the saved model.
        **options: other fields of the method's configuration (``temperature``, ``beta``, ``nll_weight``,
            ``objective_weight``, ``warmup``).

    Returns:
        `out_directory`, with the model, its tokenizer and a ``training.json`` (method, configuration, losses).

    Example:
        >>> align_model("gemma-3-1b-it", "midalign", {"parallel": "pairs.jsonl", "replay": "text.jsonl"},
        ...             "gemma-3-1b-midalign", steps=500, learning_rate=1e-5, batch_size=16)
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    entry = method_of(method)
    out_directory = Path(out_directory)
    if out_directory.exists():
        raise ValueError(f"{out_directory} exists already; choose a new output directory")
    needed = ["replay"] + ([entry.data] if entry.data else [])
    missing = [kind for kind in needed if kind not in data_files]
    if missing:
        raise ValueError(f"{method} needs data files of kind {', '.join(needed)}; missing: {', '.join(missing)}")
    settings = dict(steps=steps, learning_rate=learning_rate, warmup=steps // 10, objective_batch_size=batch_size,
                    replay_batch_size=replay_batch_size or batch_size, seed=seed)
    if layer is not None:
        settings["layer"] = layer
    if trainable is not None:
        settings["trainable"] = tuple(trainable)
    settings.update(options)
    known = {item.name for item in fields(entry.config_type)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{method} has no option {', '.join(unknown)}; its options: {', '.join(sorted(known))}")
    config = entry.config_type(**settings)

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_directory)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_directory, dtype=dtype).to(device)
    records = read_records(data_files[entry.data], entry.data) if entry.data else []
    texts = [record["text"] for record in read_records(data_files["replay"], "replay")]
    rows = pack_documents(tokenizer, texts, sequence_length)
    if len(rows) == 0:
        raise ValueError(f"{data_files['replay']}: too little replay text for one row of {sequence_length} tokens")
    replay_indices = RecordBatches(list(range(len(rows))), config.replay_batch_size, seed)
    record = align(model, tokenizer, method, config, records, lambda step: rows[replay_indices(step)],
                   progress=progress, description=f"aligning {Path(model_directory).name}: {method}")
    record = {**record, "source": str(model_directory),
              "data_files": {kind: str(path) for kind, path in data_files.items()},
              "sequence_length": sequence_length, "device": str(device)}
    return save_atomically(out_directory, lambda path: _save(path, model, tokenizer, record))
