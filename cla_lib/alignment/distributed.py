"""Training on several processes (GPUs, nodes) through `accelerate`, with the results of one process.

`accelerate launch` starts one process per device; each runs `align_model` unchanged, and `Accelerator` (in
`cla_lib.core.training.train`) wraps the model for data parallelism (DDP, or FSDP / DeepSpeed from
`configs/accelerate/`). Every process takes its own slice of each step's *global* batch, a pure function of the
step built on every process, so no data moves between them. Each loss then computes the single-process step (up to
float summation order) although data parallelism averages the processes' gradients: `shard_rows` (the same number
of rows per process), `token_total` (token means over the global count) and `gather_rows` (MidAlign's negatives from
the whole batch). One process (the default) takes none of these paths: every loss is computed exactly as before.
Design notes: docs/design-notes.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shard:
    """This process's place among `processes`."""

    index: int = 0
    processes: int = 1

    @classmethod
    def of(cls, accelerator) -> "Shard":
        if accelerator is None:
            return cls()
        return cls(accelerator.process_index, accelerator.num_processes)

    def rows(self, items: list, what: str) -> list:
        """This process's contiguous share of a global batch's rows (their order is the single-process order)."""
        if len(items) % self.processes:
            raise ValueError(f"{len(items)} {what} per step do not split evenly over {self.processes} processes; "
                             f"choose a batch size that is a multiple of {self.processes}")
        size = len(items) // self.processes
        return items[self.index * size:(self.index + 1) * size]


def token_total(global_mask: torch.Tensor, shard: Shard) -> float:
    """The denominator a token-mean loss uses on one process: the global token count over the processes, so that
    averaging the processes' gradients gives the gradient of the global mean."""
    return float(global_mask[:, 1:].sum()) / shard.processes


def gather_rows(rows: torch.Tensor, batch: dict) -> torch.Tensor:
    """All processes' rows, in process order, with gradients flowing back to each process's own; `rows` itself when
    the batch comes from one process."""
    if batch.get("processes", 1) == 1:
        return rows
    from torch.distributed import group
    from torch.distributed._functional_collectives import all_gather_tensor_autograd, wait_tensor

    # Its backward sums each process's gradients for these rows (a reduce-scatter).
    return wait_tensor(all_gather_tensor_autograd(rows.contiguous(), gather_dim=0, group=group.WORLD))
