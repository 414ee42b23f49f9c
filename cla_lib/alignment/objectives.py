"""The alignment methods' losses: functions of tensors, or of a model and a batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cla_lib.alignment.distributed import gather_rows
from cla_lib.model.layers import decoder_layers


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


def residual_after(lm, layer: int, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The residual stream after decoder layer `layer` (= ``output_hidden_states[layer + 1]``), with gradients.

    The forward stops at that layer: the layers above it and the vocabulary projection are never computed.
    """
    captured = {}

    def capture(module, arguments, output):
        captured["hidden"] = output[0] if isinstance(output, tuple) else output
        raise _StopForward

    handle = decoder_layers(lm)[layer].register_forward_hook(capture)
    try:
        lm(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    except _StopForward:
        pass
    finally:
        handle.remove()
    return captured["hidden"]


def midalign_loss(lm, batch: dict, *, layer: int, temperature: float = 0.1) -> torch.Tensor:
    """MidAlign's objective: `contrastive_loss` between the mean-pooled residuals after `layer` of each
    target-language sentence (`a`) and of the English sentences (`b`)."""
    target = mean_pooled(residual_after(lm, layer, **batch["target"]), batch["target"]["attention_mask"])
    english = mean_pooled(residual_after(lm, layer, **batch["english"]), batch["english"]["attention_mask"])
    # On several processes, every pair's negatives come from the whole global batch (`cla_lib.alignment.distributed`).
    return contrastive_loss(gather_rows(target, batch), gather_rows(english, batch), temperature)


def continuation_logprobs(lm, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the summed log-probability of the continuation tokens and their number.

    The batch comes from `encode_continuations`: its `continuation_mask` marks the tokens past the prompt.
    """
    logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    logits = logits[:, :-1].float()
    targets = batch["input_ids"][:, 1:].unsqueeze(-1)
    token_logprobs = logits.gather(-1, targets).squeeze(-1) - logits.logsumexp(-1)
    mask = batch["continuation_mask"][:, 1:].to(token_logprobs.dtype)
    return (token_logprobs * mask).sum(-1), mask.sum(-1)


def answer_loss(lm, batch: dict) -> torch.Tensor:
    """Multilingual instruction tuning's objective: the mean negative log-likelihood of the answer tokens (prompt
    tokens do not count), averaged over all answer tokens of the batch (over the global batch's on several
    processes: its ``token_total``, `cla_lib.alignment.distributed`)."""
    sums, counts = continuation_logprobs(lm, batch)
    return -sums.sum() / batch.get("token_total", counts.sum())


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """Direct preference optimization on sequence log-probabilities:
    ``mean(-log sigmoid(beta * ((pc - rc) - (pr - rr))))``."""
    margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)
    return -F.logsigmoid(beta * margin).mean()


def clo_loss(lm, batch: dict, *, reference, beta: float = 0.1, nll_weight: float = 0.5) -> torch.Tensor:
    """CLO's objective: ``nll_weight * NLL(chosen) + (1 - nll_weight) * DPO(beta)`` against a frozen `reference`.

    The batch (`preference_batch`) holds the chosen continuations in its first half of rows and the rejected ones
    in the second; NLL is the mean over the chosen answers' tokens, as in `answer_loss` (``token_total`` included).
    """
    half = len(batch["input_ids"]) // 2
    sums, counts = continuation_logprobs(lm, batch)
    with torch.no_grad():
        reference_sums, _ = continuation_logprobs(reference, batch)
    nll = -sums[:half].sum() / batch.get("token_total", counts[:half].sum())
    preference = dpo_loss(sums[:half], sums[half:], reference_sums[:half], reference_sums[half:], beta)
    return nll_weight * nll + (1 - nll_weight) * preference
