"""Compute counted from a model's config: the FLOPs of training and scoring, and the parameters that multiply a token.

Every performance figure of the book is a ratio against these counts (`cla_lib.core.performance` measures the
machine's side: its matmul ceiling and the throughput reached), and every cost estimate before a run is built
from them (`cla_lib.book.costs`). Nothing here runs a model: configs, token counts and meta-device builds only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode


def training_flops_per_token(config: dict) -> float:
    """Training FLOPs per token of a Llama-style organism: 6 x (matmul parameters incl. the output head) plus the
    attention scores and values (6 x layers x sequence x hidden), the usual estimate (Kaplan et al. 2020)."""
    hidden, layers, vocabulary = config["hidden_size"], config["n_layers"], config["vocab_size"]
    intermediate, sequence = config["intermediate_size"], config["sequence_length"]
    per_layer = 4 * hidden * hidden + 3 * hidden * intermediate
    return 6 * (layers * per_layer + vocabulary * hidden) + 6 * layers * sequence * hidden


def linear_flops_per_token(config, layers: int | None = None) -> tuple[float, float]:
    """Forward matmul FLOPs per token of a Llama-style decoder: (through `layers` decoder layers, through the head).

    Counts the weight matmuls (query, key, value and output projections, the gated MLP, the output head), 2 FLOPs
    per multiply-add; attention scores and values are left out (they are not weight matmuls, and on the organism's
    short prompts they add a few percent). `config` is a transformers config (a multimodal one's text config is used).
    """
    config = getattr(config, "text_config", None) or config
    hidden, intermediate = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    queries = config.num_attention_heads * head_dim
    keys = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    per_layer = 2 * (hidden * queries + 2 * hidden * keys * head_dim + queries * hidden) + 2 * 3 * hidden * intermediate
    layers = config.num_hidden_layers if layers is None else layers
    return layers * per_layer, 2 * hidden * config.vocab_size


def floor_flops(config, encoded, skips: Sequence[int] = (0,)) -> float:
    """The fewest forward matmul FLOPs that score `encoded` items (`cla_lib.scoring.EncodedItem`s) under each run.

    Each prompt token passes every layer once, each choice token after the first too, and the head runs only where
    a log-probability is read (a prompt's last position, a choice's positions but its last). A run in `skips` that
    skips k layers (a steered configuration on top of the shared unsteered run, `cla_lib.scoring.shared`) redoes
    the same tokens through the other layers only; 0 is a run through every layer. No padding is counted.
    """
    layers = (getattr(config, "text_config", None) or config).num_hidden_layers
    tokens = heads = 0
    for item in encoded:
        if not any(item.continuations):
            continue
        extra = sum(max(len(continuation) - 1, 0) for continuation in item.continuations)
        tokens += len(item.context) + extra
        heads += 1 + extra
    total = 0.0
    for skipped in skips:
        per_token, head = linear_flops_per_token(config, layers - skipped)
        total += tokens * per_token + heads * head
    return total


def counted_flops(function: Callable[[], Any]) -> tuple[Any, float]:
    """`function()`'s result and the matmul FLOPs it ran, as torch's FlopCounterMode counts them (padding included)."""
    with FlopCounterMode(display=False) as counter:
        result = function()
    return result, float(counter.get_total_flops())


def forward_flops(frame, multiplying: float, head: float) -> "object":
    """Forward FLOPs of each row of a cost table: 2 per decoder weight per token-layer, 2 per head weight per
    head position (`multiplying` counts every weight that multiplies a token, the head's `head` included)."""
    return 2 * (multiplying - head) * frame["tokens"] + 2 * head * frame["head_positions"]


def parameter_counts(preset) -> tuple[int, int]:
    """(all parameters, parameters that multiply each token) of a preset's text model, built on the meta device from
    its row (no weights, no download)."""
    config = getattr(transformers, preset.config_class)(hidden_size=preset.hidden_size,
                                                        num_hidden_layers=preset.n_layers, **preset.text_config)
    with torch.device("meta"):
        network = getattr(transformers, preset.model_class)(config)
    total = sum(parameter.numel() for parameter in network.parameters())
    embedding = network.get_input_embeddings().weight.numel()
    # A tied embedding is also the output head, which multiplies every token; an untied one is only a lookup.
    return total, total if config.tie_word_embeddings else total - embedding


def head_parameters(preset) -> int:
    """The output head's weights (vocabulary x hidden size) of a preset's text model, from its row."""
    return int(preset.text_config["vocab_size"]) * preset.hidden_size
