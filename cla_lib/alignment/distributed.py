"""Training on several processes (GPUs, nodes) through `accelerate`, with the results of one process.

`accelerate launch` starts one process per device; each runs `align_model` unchanged. `Accelerator` (in
`cla_lib.core.training.train`) wraps the model for data parallelism (DDP, or FSDP / DeepSpeed from an accelerate config
file, `configs/accelerate/`), and every process takes its own slice of each step's *global* batch. The global batch
is the single-process batch: a pure function of the step (`RecordBatches`), built on every process, so no data
moves between them.

What makes N processes compute the single-process step (up to float summation order), given that data parallelism
averages the processes' gradients:

- a loss that is a mean over rows (replay's language-model loss over equal-length packed rows, DPO over pairs)
  needs nothing, as long as each process holds the same number of rows (`shard_rows` insists);
- a loss that is a mean over a varying number of tokens (MIT's answer loss, CLO's NLL) divides by the global
  count over N (`token_total`, set here), not by its own count;
- MidAlign's contrastive loss needs every pair's negatives from the whole batch: the pooled states are gathered
  across processes with gradients (`gather_rows`); the loss is then the global one on every process, and the
  gather's backward sums N equal gradients, which the averaging divides by N again.

One process (the default, `accelerate` not launched) takes none of these paths: its batches carry no `processes`
key, so every loss is computed exactly as before (bitwise).
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
