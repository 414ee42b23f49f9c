"""Generative scoring of localization, as BLEnD scores it: a short answer, generated, matched against annotators'.

The plane scores a culture question by log-likelihood over a fixed set of choices (`cla_lib.scoring`): cheap,
deterministic and comparable across models, but it only asks which of the listed answers the model prefers.
BLEnD itself asks the model to answer and counts the answer right when it contains one of the local annotators'
answers (`cla_lib.data.matching.matches`, normalized containment). Here each prompt is continued greedily for a few
tokens, the first line is the answer, and it is matched against the item's local answers (``meta["local_answers"]``)
and, separately, the US ones (``meta["us_answers"]``): an answer can be local, American, both or neither, while
log-likelihood always picks exactly one choice. `agreement` counts how often the two ways agree item by item.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from cla_lib.core.batching import pad
from cla_lib.data.matching import matches
from cla_lib.core.items import Item
from cla_lib.model.remote import Remote

# Short answers: BLEnD's are a word or a short phrase.
ANSWER_TOKENS = 12


def generate_answers(lm, prompts: Sequence[str], *, max_new_tokens: int = ANSWER_TOKENS, batch_size: int = 16,
                     remote: Remote = False) -> list[str]:
    """The greedy continuation of each prompt, up to `max_new_tokens` and cut at its first line break.

    Prompts are encoded with the tokenizer's default special tokens (as the plane's scoring does) and padded on the
    left, so that every row continues from its own last token.
    """
    tokenizer = lm.tokenizer
    answers: list[str] = []
    for start in range(0, len(prompts), batch_size):
        encoded = [list(tokenizer(prompt)["input_ids"]) for prompt in prompts[start:start + batch_size]]
        batch = pad(encoded, tokenizer.pad_token_id, side="left")
        with lm.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                            remote=remote) as tracer:
            generated = tracer.result.save()
        width = batch["input_ids"].shape[1]
        for row in torch.as_tensor(generated)[:, width:]:
            text = tokenizer.decode(row, skip_special_tokens=True)
            answers.append(text.strip().split("\n", 1)[0].strip())
    return answers


def generative_localization(lm, items: Sequence[Item], **options) -> pd.DataFrame:
    """One row per localization item that carries annotators' answers: its generated answer and whether it matches
    a local answer (``local``) and a US one (``us``). `options` go to `generate_answers`."""
    items = [item for item in items if item.task == "localization" and item.meta.get("local_answers")]
    answers = generate_answers(lm, [item.prompt for item in items], **options)
    return pd.DataFrame([
        {"id": item.id, "language": item.language, "split": item.split, "answer": answer,
         "local": matches(answer, item.meta["local_answers"], item.language),
         "us": bool(item.meta.get("us_answers")) and matches(answer, item.meta["us_answers"], item.language)}
        for item, answer in zip(items, answers)
    ], columns=["id", "language", "split", "answer", "local", "us"])


def agreement(generated: pd.DataFrame, likelihood: pd.DataFrame) -> pd.DataFrame:
    """Per language, how the generative verdict (``local``) and the log-likelihood one (``correct``, by ``id``)
    agree: items, the share each calls local, the share where they agree, and Cohen's kappa (agreement beyond
    what the two shares alone would give; NaN when either is constant)."""
    joined = generated.merge(likelihood[["id", "correct"]], on="id")
    rows = []
    for language, group in joined.groupby("language", sort=False):
        generative, chosen = group["local"].astype(bool), group["correct"].astype(bool)
        observed = float((generative == chosen).mean())
        expected = float(generative.mean() * chosen.mean() + (1 - generative.mean()) * (1 - chosen.mean()))
        kappa = (observed - expected) / (1 - expected) if expected < 1 - 1e-12 else float("nan")
        rows.append({"language": language, "items": len(group), "generative_local": float(generative.mean()),
                     "likelihood_local": float(chosen.mean()), "agree": observed, "kappa": kappa,
                     "generative_us": float(group["us"].mean())})
    return pd.DataFrame(rows)
