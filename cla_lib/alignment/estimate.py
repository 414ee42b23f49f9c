"""What an alignment run will need, before it starts: memory per device and compute per step.

Counted from the model's config (its architecture built on the meta device: no weights, no download), the dtype,
the LoRA rank, the tokens of one step and the parallelism, so that a run that cannot fit is refused with the
numbers instead of swapping or dying an hour in. Memory counts the weights, the trainable state (LoRA adapters or
full fine-tuning), CLO's frozen reference when every weight trains, and the activations per token and the logits;
the estimate errs high. Compute counts the multiplying parameters per token for the forward and backward passes.
Design notes: docs/design-notes.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import transformers

GIB = 2 ** 30


class TrainingWontFitError(ValueError):
    """An alignment run whose estimate exceeds the memory of the device it would run on."""


def size(value: float) -> str:
    """Bytes as GiB, or MiB below one GiB."""
    return f"{value / GIB:.2f} GiB" if value >= GIB else f"{value / 2 ** 20:.1f} MiB"


@dataclass(frozen=True)
class Architecture:
    """The numbers of a decoder-only model the estimate needs."""

    parameters: int
    multiplying: int  # parameters that multiply each token (the input embedding of an untied model does not)
    layers: int
    hidden: int
    query: int  # width of the query projection's output (heads x head size)
    key_value: int  # width of each of the key and value projections' outputs
    intermediate: int
    vocabulary: int
    linear_shapes: dict  # module name (last part) -> list of (in, out) of every linear with that name
    named_sizes: dict  # module name (any part) -> parameters inside modules with that name


def architecture(config) -> Architecture:
    """An `Architecture` from a transformers config (a multimodal one's text config is used)."""
    config = getattr(config, "text_config", None) or config
    with torch.device("meta"):
        network = transformers.AutoModelForCausalLM.from_config(config)
    parameters = sum(parameter.numel() for parameter in network.parameters())
    embedding = network.get_input_embeddings().weight.numel()
    tied = bool(getattr(config, "tie_word_embeddings", False))
    linear_shapes: dict[str, list] = {}
    for name, module in network.named_modules():
        if isinstance(module, torch.nn.Linear):
            linear_shapes.setdefault(name.rsplit(".", 1)[-1], []).append((module.in_features, module.out_features))
    named_sizes: dict[str, int] = {}
    for name, parameter in network.named_parameters():
        for part in set(name.split(".")[:-1]):
            named_sizes[part] = named_sizes.get(part, 0) + parameter.numel()
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return Architecture(
        parameters=parameters, multiplying=parameters if tied else parameters - embedding,
        layers=config.num_hidden_layers, hidden=config.hidden_size, query=config.num_attention_heads * head_dim,
        key_value=getattr(config, "num_key_value_heads", config.num_attention_heads) * head_dim,
        intermediate=config.intermediate_size, vocabulary=config.vocab_size, linear_shapes=linear_shapes,
        named_sizes=named_sizes,
    )


def preset_architecture(preset) -> Architecture:
    """A preset's `Architecture`, from its row (`cla_lib.model.presets`)."""
    config = getattr(transformers, preset.config_class)(hidden_size=preset.hidden_size,
                                                        num_hidden_layers=preset.n_layers, **preset.text_config)
    return architecture(config)


@dataclass(frozen=True)
class TrainingEstimate:
    """Bytes per device and FLOPs per step of one alignment run."""

    processes: int
    sharding: str  # "ddp" (a full copy per process) or "fsdp" (weights and training state sharded)
    parameters: int
    trainable: int
    tokens: int  # per process and step
    weights: float
    training_state: float
    reference: float
    activations: float
    flops_per_step: float  # all processes together

    @property
    def total(self) -> float:
        return self.weights + self.training_state + self.reference + self.activations

    def describe(self) -> str:
        parts = ", ".join(f"{name} {size(value)}" for name, value in (
            ("weights", self.weights), ("trainable state", self.training_state), ("reference", self.reference),
            ("activations", self.activations)) if value)
        where = "one process" if self.processes == 1 else f"each of {self.processes} processes ({self.sharding})"
        return (f"estimate: {size(self.total)} on {where} ({parts}); {self.trainable:,} of "
                f"{self.parameters:,} parameters train; {self.tokens:,} tokens per process and step; "
                f"{self.flops_per_step:.3g} FLOPs per step")


def estimate_training(arch: Architecture, *, bytes_per_value: int, tokens: int, lora_rank: int | None = None,
                      targets: tuple[str, ...] = (), trainable: tuple[str, ...] = (), reference: bool = False,
                      checkpointing: bool = False, processes: int = 1, sharding: str = "ddp") -> TrainingEstimate:
    """The estimate of one run (see the module's docstring for what is counted).

    Args:
        arch: the architecture.
        bytes_per_value: the weights' dtype size (2 for bfloat16).
        tokens: tokens per process and step (replay rows x length, plus the objective's).
        lora_rank: LoRA's rank, adapting the linear modules named in `targets`; None: full fine-tuning of the
            modules named in `trainable` (empty: every parameter).
        reference: the method keeps a frozen reference model (CLO).
        checkpointing: gradient checkpointing.
        processes, sharding: data parallelism: ``"ddp"`` or ``"fsdp"``.
    """
    if sharding not in ("ddp", "fsdp"):
        raise ValueError(f"sharding is ddp or fsdp, not {sharding!r}")
    shards = processes if sharding == "fsdp" else 1
    if lora_rank:
        unknown = [name for name in targets if name not in arch.linear_shapes]
        if unknown:
            raise ValueError(f"no linear module is called {', '.join(unknown)}; "
                             f"the model's: {', '.join(sorted(arch.linear_shapes))}")
        trained = sum(lora_rank * (inputs + outputs)
                      for name in targets for inputs, outputs in arch.linear_shapes[name])
        training_state = 16.0 * trained
        weight_gradient_passes = 0
    else:
        trained = sum(arch.named_sizes.get(name, 0) for name in trainable) if trainable else arch.parameters
        training_state = 3.0 * bytes_per_value * trained
        weight_gradient_passes = 1
    layer_values = 6 * arch.hidden + 3 * arch.query + 3 * arch.key_value + 4 * arch.intermediate
    kept_layers = arch.hidden * arch.layers + layer_values if checkpointing else layer_values * arch.layers
    per_token = bytes_per_value * kept_layers + arch.vocabulary * (bytes_per_value + 8)
    forwards = 2 if checkpointing else 1
    flops = 2.0 * arch.multiplying * tokens * processes * (forwards + 1 + weight_gradient_passes)
    return TrainingEstimate(
        processes=processes, sharding=sharding, parameters=arch.parameters, trainable=trained, tokens=tokens,
        weights=bytes_per_value * arch.parameters / shards, training_state=training_state / shards,
        reference=bytes_per_value * arch.parameters / shards if reference and not lora_rank else 0.0,
        activations=float(per_token * tokens), flops_per_step=flops,
    )


def check_device(device: torch.device | str | None) -> None:
    """Refuse a device this machine does not have, before anything loads or trains: a model placed with
    device_map="auto" on a machine without a GPU would quietly run on the CPU, and `.to("cuda")` fails deep in torch.
    "auto" (spread over whatever GPUs there are) and None stand."""
    if device is None or str(device) == "auto":
        return
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {str(device)!r}; for example cpu, cuda or cuda:1") from None
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        have = torch.cuda.device_count()
        raise ValueError(f"device {str(device)!r}: this machine has {have or 'no'} CUDA GPU{'s' if have != 1 else ''} "
                         "(use --device cpu, -p device cpu in a chapter, or NDIF with --remote)")


def device_memory(device: torch.device | str) -> int | None:
    """The memory a run on `device` may use: a GPU's total, the CPU's available RAM; None when unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device.index or 0).total_memory
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError):
            return None
    return None


def check_fits(estimate: TrainingEstimate, device: torch.device | str, memory: int | None = None) -> None:
    """Refuse a run whose estimate exceeds the device's memory (`memory`, default `device_memory(device)`)."""
    memory = memory if memory is not None else device_memory(device)
    if memory is not None and estimate.total > memory:
        raise TrainingWontFitError(
            f"this run needs about {size(estimate.total)} per device and {device} has {size(memory)} "
            f"({estimate.describe()}). Use LoRA (--lora-rank), --gradient-checkpointing, a smaller --batch-size or "
            "--sequence-length, or more GPUs with FSDP (accelerate launch --config_file configs/accelerate/fsdp.yaml)")
