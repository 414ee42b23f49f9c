"""LoRA adapters through `peft`: how a real model is aligned when its full fine-tuning would not fit.

MidAlign's own setting is LoRA; the other recipes take the same adapters, with the same objectives (only the
trainable parameters change). Adapters go on the modules the method trains (CLO's attention projections), or on
every projection of the decoder for methods that train everything. The adapters train in float32 (peft's
default) over frozen weights in the model's dtype (bfloat16 for a real model), and are saved in peft's own format,
so that `peft`, `transformers` and `load_model` all read them.

CLO compares the policy with its starting model: with adapters, that is the same model with its adapters switched
off (`frozen_reference`), not a second copy of the weights.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch

ADAPTER_CONFIG = "adapter_config.json"

# Every linear map of a Llama / Qwen2 / Gemma decoder layer (attention and gated MLP).
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    """A LoRA adapter's shape: `rank`, its scale `alpha` (None: twice the rank) and the modules it adapts (empty:
    the method's trainable modules, else `PROJECTIONS`)."""

    rank: int
    alpha: float | None = None
    targets: tuple[str, ...] = ()

    def resolved(self, method_trainable: tuple[str, ...]) -> "LoraSettings":
        if self.rank < 1:
            raise ValueError(f"the LoRA rank must be a positive integer, not {self.rank}")
        return LoraSettings(self.rank, self.alpha if self.alpha is not None else 2.0 * self.rank,
                            tuple(self.targets or method_trainable or PROJECTIONS))


def add_adapters(lm, settings: LoraSettings):
    """`model` (a transformers causal LM) with fresh LoRA adapters (a `peft.PeftModel`; the base weights are
    frozen). The adapters' initialisation draws from torch's global generator: seed it first."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, target_modules=list(settings.targets),
                        lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(lm, config)


def is_adapted(lm) -> bool:
    """Whether `model` carries peft adapters."""
    return hasattr(lm, "peft_config") and callable(getattr(lm, "disable_adapter", None))


class _AdaptersOff(torch.nn.Module):
    """The starting model of an adapted one: the same module with its adapters switched off for each call."""

    def __init__(self, adapted):
        super().__init__()
        self._adapted = [adapted]  # a list, so that it is not registered (and trained, or saved) as a submodule

    def forward(self, **inputs):
        adapted = self._adapted[0]
        with adapted.disable_adapter():
            return adapted(**inputs)


def frozen_reference(lm) -> torch.nn.Module:
    """A frozen copy of the starting model, for objectives that compare with it (CLO's DPO): the adapted model with
    its adapters off, or a deep copy of a model that trains its own weights."""
    if is_adapted(lm):
        return _AdaptersOff(lm)
    return copy.deepcopy(lm).eval().requires_grad_(False)


def is_adapter_directory(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base(path: str | Path) -> str:
    """The base model an adapter directory was trained on (peft's ``base_model_name_or_path``)."""
    return json.loads((Path(path) / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]


def load_merged(path: str | Path, load_base):
    """An adapter directory as one plain transformers model: `load_base(source)` loads the base model it names, and
    the adapters are merged into its weights (so that tracing sees the architecture it knows, at no extra cost per
    token)."""
    from peft import PeftModel

    base = load_base(adapter_base(path))
    return PeftModel.from_pretrained(base, str(path)).merge_and_unload()
