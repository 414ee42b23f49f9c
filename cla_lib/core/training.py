"""One training loop for everything the project trains: the base organism and every alignment recipe.

A recipe is a loss function `loss(model, batch) -> scalar tensor` plus a batch source `batch(step) -> batch`.
The loop owns what all recipes share: AdamW with linear warm-up and cosine decay, gradient clipping, which
parameters train, determinism (the batch source is a pure function of the step; the model's initialisation is
seeded by the caller) and a progress bar.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from tqdm import tqdm  # not tqdm.auto: it warns "IProgress not found" in kernels without ipywidgets


@dataclass(frozen=True)
class Schedule:
    steps: int
    learning_rate: float
    warmup: int = 0
    weight_decay: float = 0.0
    clip: float = 1.0

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.steps - self.warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class TrainingLog:
    losses: list[float]
    seconds: float
    tokens: int

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else float("nan")


def train(
    lm: torch.nn.Module,
    loss: Callable[[torch.nn.Module, object], torch.Tensor],
    batch: Callable[[int], object],
    schedule: Schedule,
    *,
    parameters: Iterable[torch.nn.Parameter] | None = None,
    tokens_per_batch: int = 0,
    description: str = "training",
    progress: bool = True,
    accelerator=None,
    stop: int | None = None,
    after_step: Callable[[int], None] | None = None,
) -> TrainingLog:
    """Train `model` in place and return the loss curve.

    Args:
        loss: the recipe's objective for one batch.
        batch: returns the batch of a step; a pure function of the step so that a run is reproducible.
        parameters: the parameters that train (default: all that require grad).
        tokens_per_batch: for the throughput figure only.
        accelerator: an `accelerate.Accelerator` to train data-parallel on (it wraps the model and the optimizer;
            `batch` then returns this process's share, `cla_lib.alignment.distributed`); None: this process alone.
            The recorded losses are then the processes' means.
        stop: end after this many steps, on the full schedule's learning rates (a throughput measurement).
        after_step: called with the number of steps done after each step (a checkpoint of a dose-response).
    """
    trainable = [p for p in (parameters if parameters is not None else lm.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=schedule.learning_rate, weight_decay=schedule.weight_decay,
                                  betas=(0.9, 0.98))
    if accelerator is not None:
        # The scheduler stays ours: accelerate's would step once per process for each optimizer step.
        lm, optimizer = accelerator.prepare(lm, optimizer)
        trainable = [p for p in lm.parameters() if p.requires_grad]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.factor)
    lm.train()
    losses = []
    started = time.perf_counter()
    # Only `progress=False` is passed on, so that TQDM_DISABLE=1 in the environment (the book build) still applies.
    steps = schedule.steps if stop is None else min(stop, schedule.steps)
    bar = tqdm(range(steps), desc=description, mininterval=2.0, **({} if progress else {"disable": True}))
    for step in bar:
        value = loss(lm, batch(step))
        optimizer.zero_grad(set_to_none=True)
        if accelerator is None:
            value.backward()
            if schedule.clip:
                torch.nn.utils.clip_grad_norm_(trainable, schedule.clip)
        else:
            accelerator.backward(value)
            if schedule.clip:
                accelerator.clip_grad_norm_(trainable, schedule.clip)
        optimizer.step()
        scheduler.step()
        losses.append(value.item())
        if after_step is not None:
            after_step(step + 1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    lm.eval()
    losses = mean_over_processes(losses, accelerator)
    return TrainingLog(losses, time.perf_counter() - started, tokens_per_batch * steps)


def language_model_loss(lm: torch.nn.Module, batch: dict) -> torch.Tensor:
    """Next-token cross-entropy; positions whose label is -100 do not count."""
    return lm(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"),
                 labels=batch["labels"]).loss


def mean_over_processes(values: list[float], accelerator) -> list[float]:
    """Per-step values averaged over the processes, in one collective at the end of training."""
    if accelerator is None or accelerator.num_processes == 1 or not values:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    return accelerator.reduce(tensor, reduction="mean").tolist()
