"""Chapter 5's pieces: a quiet set-up, what a full rerun of the book costs, and the worked example's tiny Llama.

The cost of a rerun is counted from the data when it is given and from stated assumptions otherwise, then priced in
FLOPs and GPU-hours; the tiny Llama is a real Hugging Face directory with random weights, so that the chapter's
example runs the path a downloaded checkpoint takes, on any machine, offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from huggingface_hub.utils import disable_progress_bars
from tokenizers import Tokenizer, decoders, models as bpe_models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as transformers_logging

from cla_lib.book.chapters import table_style
from cla_lib.book.costs import assumed_workload, chapter_costs, estimate
from cla_lib.core.compute import forward_flops, head_parameters
from cla_lib.book.rerun import chapters
from cla_lib.core.languages import resolve_languages
from cla_lib.model.presets import ModelPreset, PRESETS, resolve_preset
from cla_lib.organism.world import World, WorldConfig

COST_COLUMNS = ["scoring_passes", "swept_passes", "sequences", "batches", "tokens", "head_positions"]


def real_models_setup(reference: str, language: str, *, seed: int) -> tuple[list[str], ModelPreset]:
    """The chapter's languages and the preset whose rerun it costs; the book's table style, no loading bars on
    the page, and torch seeded (the worked example's random weights). A name that is no preset is refused."""
    table_style()
    transformers_logging.disable_progress_bar()  # no loading bars in the rendered page
    disable_progress_bars()
    torch.manual_seed(seed)
    languages = resolve_languages(language)
    preset = resolve_preset(reference)
    if preset is None:
        raise ValueError(f"{reference!r} is not a preset; presets: {', '.join(PRESETS)}")
    return languages, preset


def rerun_costs(preset: ModelPreset, languages: Sequence[str], *, multiplying: float, batch_size: int,
                transfer_data: str | None, localization_data: str | None, assumed: dict, gpu_peak_tflops: float,
                gpu_utilization: float) -> tuple[pd.DataFrame, str]:
    """What rerunning chapters 01-04 for `preset` in `languages` costs, one row per chapter and a total: counted
    from the data when both data sets are given, else from `assumed_workload(**assumed)`; with its forward PFLOP
    and GPU-hours at `gpu_utilization` of `gpu_peak_tflops`. Also says which of the two it was."""
    chapter_paths = [path for path in chapters().values() if not path.stem.startswith("05")]
    if transfer_data and localization_data:
        frames = [estimate(preset.name, code, chapter_paths, transfer_data=transfer_data,
                           localization_data=localization_data, batch_size=batch_size) for code in languages]
        costs = pd.concat(frames).groupby("chapter", sort=False)[COST_COLUMNS].sum()
        costs["remote_requests"] = pd.concat(frames).groupby("chapter", sort=False)["remote_requests"].sum()
        workload_source = "counted from the data"
    else:
        workload = assumed_workload(languages=len(languages), **assumed, batch_size=batch_size)
        # The chapters' own files: each sweeps the strengths of its own `alphas` parameter.
        costs = chapter_costs(workload, chapter_paths, layers=preset.n_layers, batch_size=batch_size,
                              counted_with="the assumed mean sequence lengths").set_index("chapter")
        workload_source = "assumed"
    costs = costs[[*COST_COLUMNS, "remote_requests"]]
    costs["PFLOP"] = forward_flops(costs, multiplying, head_parameters(preset)) / 1e15
    costs["GPU-hours"] = costs["PFLOP"] * 1e15 / (gpu_peak_tflops * 1e12 * gpu_utilization) / 3600
    costs.loc["total"] = costs.sum(numeric_only=True)
    return costs, workload_source


def cost_numbers(costs: pd.DataFrame, workload_source: str, *, parameters: int, multiplying: int,
                 gpu_utilization: float, gpu_peak_tflops: float) -> dict:
    """What the chapter's prose reads of `rerun_costs`, by glue name: the totals, the model's size, the GPU assumed,
    and each of chapters 01-04's NDIF requests."""
    total = costs.loc["total"]
    numbers = {"workload_source": workload_source, "parameters_billions": parameters / 1e9,
               "multiplying_billions": multiplying / 1e9, "total_sequences": int(total["sequences"]),
               "total_tokens_billions": float(total["tokens"]) / 1e9, "total_pflop": float(total["PFLOP"]),
               "total_gpu_hours": float(total["GPU-hours"]), "gpu_utilization": gpu_utilization,
               "gpu_peak_tflops": gpu_peak_tflops}
    for row, number in zip(costs.index[:4], ("01", "02", "03", "04")):
        numbers[f"requests_{number}"] = int(costs.loc[row, "remote_requests"])
    return numbers


def tiny_llama(directory: str | Path) -> Path:
    """A Llama with random weights, built from a config, and a byte-level BPE tokenizer trained on the seed-0
    organism world's text, saved as a Hugging Face directory at `directory` (returned): a checkpoint's layout."""
    world = World(WorldConfig(seed=0))
    bpe = Tokenizer(bpe_models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(world.corpus_sample, trainers.BpeTrainer(
        vocab_size=2048, special_tokens=["<pad>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bpe.post_processor = processors.TemplateProcessing(single="<s> $A",
                                                       special_tokens=[("<s>", bpe.token_to_id("<s>"))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)
