"""The transfer-localization plane: where a model stands, per query language.

For a target language L (this companion's definitions; the paper's exact ones are not public):
- **transfer** = accuracy on the transfer set asked in L: universal facts the model could only have learnt in
  English (for the organism: creatures described only in English; for a real model: Global-MMLU's culturally
  agnostic questions). The same items asked in English give the **English ceiling**.
- **localization** = the share of culture questions asked in L, with no country named, whose *local* answer (the
  answer of the country L stands for) scores highest among the candidates.
- **English bias** = the share of those culture questions whose US answer scores highest.

Every item is scored by the log-likelihood of its candidate continuations (`cla_lib.scoring`); the highest-scoring
candidate is the model's answer. Intervals are 95% Wilson score intervals over items.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Sequence

import torch

from dataclasses import replace
from transformers import AutoTokenizer

from cla_lib import data
from cla_lib.core.items import Item
from cla_lib.core.languages import resolve_languages
from cla_lib.model import presets
from cla_lib.model.reference import ModelRef, known_reference
from cla_lib.organism.base import is_organism_directory, world_of
from cla_lib.organism.registry import organism_path
from cla_lib.organism.world import World, WorldConfig
from cla_lib.scoring import choice_logprobs_passes, predictions


@dataclass(frozen=True)
class PlanePoint:
    model: str
    language: str
    transfer: float
    localization: float
    english_bias: float
    n_transfer: int
    n_localization: int
    transfer_interval: tuple[float, float]
    localization_interval: tuple[float, float]
    english_transfer: float | None  # the ceiling: the same transfer items asked in English
    n_english_transfer: int

    def to_json(self) -> dict:
        record = asdict(self)
        record["transfer_interval"] = list(self.transfer_interval)
        record["localization_interval"] = list(self.localization_interval)
        return record


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (sound near 0 and 1, unlike the normal approximation)."""
    if total == 0:
        return (math.nan, math.nan)
    proportion = successes / total
    denominator = 1 + z * z / total
    centre = (proportion + z * z / (2 * total)) / denominator
    half = z * math.sqrt(proportion * (1 - proportion) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def _share(hits: Sequence[bool]) -> float:
    return sum(hits) / len(hits) if hits else math.nan


def answers(lm, items: Sequence[Item], *, edits: Sequence[tuple[int, torch.Tensor]] = (),
            batch_size: int = 64) -> list[int]:
    """The model's chosen candidate for each item (on a remote model, in one request)."""
    return predictions(choice_logprobs_passes(lm, [(items, edits)], batch_size=batch_size)[0])


def plane_from_answers(model_name: str, items: Sequence[Item], chosen: Sequence[int]) -> list[PlanePoint]:
    """Aggregate per-item answers into one plane point per target language (English rows are the ceiling)."""
    transfer_hits: dict[str, list[bool]] = defaultdict(list)
    local_hits: dict[str, list[bool]] = defaultdict(list)
    us_hits: dict[str, list[bool]] = defaultdict(list)
    for item, answer in zip(items, chosen, strict=True):
        if item.task == "transfer":
            transfer_hits[item.language].append(answer == item.gold)
        else:
            local_hits[item.language].append(answer == item.gold)
            us_hits[item.language].append(item.us_choice is not None and answer == item.us_choice)
    ceiling = transfer_hits.get("en", [])
    languages = [language for language in dict.fromkeys(item.language for item in items) if language != "en"]
    points = []
    for language in languages:
        transfer, local = transfer_hits[language], local_hits[language]
        points.append(PlanePoint(
            model=model_name, language=language,
            transfer=_share(transfer), localization=_share(local), english_bias=_share(us_hits[language]),
            n_transfer=len(transfer), n_localization=len(local),
            transfer_interval=wilson_interval(sum(transfer), len(transfer)),
            localization_interval=wilson_interval(sum(local), len(local)),
            english_transfer=_share(ceiling) if ceiling else None, n_english_transfer=len(ceiling),
        ))
    return points


def plane(lm, items: Sequence[Item], *, model_name: str, edits: Sequence[tuple[int, torch.Tensor]] = (),
          batch_size: int = 64) -> list[PlanePoint]:
    """Score `items` (all languages at once, in batched passes) and place the model on the plane per language.

    Args:
        lm: an nnsight `TransformersModel` (see `cla_lib.plane.loading.load_model`).
        items: transfer and localization items of one or more target languages, plus English transfer items
            for the ceiling.
        edits: (layer, vector) pairs added to the residual stream after that layer (steering).
    Returns:
        One `PlanePoint` per target language, in the order the languages first appear in `items`.
    """
    return plane_from_answers(model_name, items, answers(lm, items, edits=edits, batch_size=batch_size))


def is_organism_reference(reference) -> bool:
    """Whether a `ModelRef` (or None) names an organism, by name or by its directory: a model scored on its own world."""
    return reference is not None and (reference.is_organism or (reference.kind == "directory"
                                                                and is_organism_directory(reference.path)))


class MissingDataError(ValueError):
    """A real model asked to be scored without its data: it would be scored on the organism's fictional world."""


def _no_data_for_an_organism(transfer_data, localization_data) -> None:
    if transfer_data or localization_data:
        raise ValueError("an organism is scored on its own world; --transfer-data/--localization-data are for "
                         "real models")


def check_data(reference: str | ModelRef, transfer_data: str | None, localization_data: str | None, *,
               embedded_world: bool = False, how: str = "cli") -> None:
    """Refuse a real model without both data sets, unless `embedded_world` asks for the fictional world on purpose.

    Without the check a real model is silently scored on the embedded world (see `plane_items`), whose numbers
    measure nothing about it. `how` words the remedy for where the user stands: ``"cli"`` (flags) or ``"chapter"``
    (papermill parameters)."""
    parsed = reference if isinstance(reference, ModelRef) else ModelRef.parse(reference)
    if is_organism_reference(parsed):  # refused here, before the organism trains
        return _no_data_for_an_organism(transfer_data, localization_data)
    if embedded_world or (transfer_data and localization_data):
        return
    transfer, localization, embedded = (("--transfer-data", "--localization-data", "--embedded-world")
                                        if how == "cli" else ("-p transfer_data", "-p localization_data",
                                                              "-p embedded_world True"))
    raise MissingDataError(f"{parsed.name} is a real model: give {transfer} (Global-MMLU) and {localization} "
                           f"(BLEnD), hub ids or local copies; or {embedded} to score it on the organism's fictional "
                           "world, which checks the code path and measures nothing")


def plane_items(reference: str | ModelRef, languages: Sequence[str], *, transfer_data: str | None = None,
                localization_data: str | None = None, size: str | None = None,
                splits: Sequence[str] | None = None, tokenizer=None, preset=None) -> list[Item]:
    """The items that place `reference` on the plane for `languages`, English transfer items (ceiling) first.

    Where the items come from:

    - An organism (by name or directory) is scored on its own world, and takes no data arguments.
    - Any other model is scored on real data for each axis whose data is given: Global-MMLU's culturally agnostic
      items for transfer (`transfer_data`) and BLEnD for localization (`localization_data`), each a hub id or a
      local file/folder in those layouts (`cla_lib.data`).
    - An axis without data comes from the embedded world, `World(WorldConfig(seed=0))`: a benchmark in the seven
      languages that needs no download and does not depend on the model, so that every chapter runs offline on any
      model directory. On a real model it is a check of the code path, not a measurement: its transfer facts are
      about fictional creatures the model never saw (expect chance), and only four of its culture questions are
      real (emergency number, calling code, currency, capital).

    Prompts of a model whose preset sets `chat_template` go through the tokenizer's chat template
    (`cla_lib.model.presets.format_prompt`): the item's prompt and its parallel prompts (`meta["english_prompt"]`,
    `meta["explicit_prompt"]`, used to build steering vectors) alike, so that every prompt the model reads is
    formatted the same way. The preset is `preset` when given (a name or a `ModelPreset`, e.g. for a local copy of
    a preset's checkpoint), else the one `reference` names; the tokenizer is `tokenizer` when given (pass
    `model.tokenizer` to avoid loading it twice), else the preset's, loaded from the hub.

    Args:
        reference: an organism name or directory, a preset, a hub id or a local model directory.
        languages: target languages.
        transfer_data, localization_data: real data for each axis (not for organisms).
        size: the organism size.
        splits: keep only items of these splits.
        tokenizer: the model's tokenizer, for the chat template.
        preset: a preset name or `ModelPreset` overriding the one `reference` names.
    """
    languages = resolve_languages(list(languages))
    parsed = known_reference(reference, size=size)
    organism_directory = parsed is not None and parsed.kind == "directory" and is_organism_directory(parsed.path)
    if is_organism_reference(parsed):
        _no_data_for_an_organism(transfer_data, localization_data)
        path = parsed.path if organism_directory else organism_path(parsed)
        world = world_of(path)
        items = world.transfer_items("en")
        for language in languages:
            items += world.items(language)
    else:
        world = World(WorldConfig(seed=0)) if not (transfer_data and localization_data) else None
        items = data.transfer_items(transfer_data, "en") if transfer_data else world.transfer_items("en")
        for language in languages:
            items += data.transfer_items(transfer_data, language) if transfer_data else world.transfer_items(language)
            items += (data.localization_items(localization_data, language)[0] if localization_data
                      else world.localization_items(language))
        items = _through_chat_template(items, parsed.preset if parsed else None, tokenizer, preset)
    if splits is not None:
        items = [item for item in items if item.split in splits]
    return items


# The prompts of an item that a model reads: the scored prompt, and the parallel prompts of the steering vectors.
PROMPT_META_KEYS = ("english_prompt", "explicit_prompt")


def _through_chat_template(items: list[Item], own_preset, tokenizer, preset) -> list[Item]:
    """The items with every prompt rendered by the preset's chat template (unchanged without one)."""
    if isinstance(preset, str):
        name = preset
        preset = presets.resolve_preset(name)
        if preset is None:
            raise ValueError(f"unknown preset {name!r}; presets: {', '.join(presets.PRESETS)}")
    preset = preset if preset is not None else own_preset
    if preset is None or not preset.chat_template:
        return items
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(ModelRef.parse(preset.name).source)
    formatted = {}

    def render(prompt: str) -> str:
        if prompt not in formatted:
            formatted[prompt] = presets.format_prompt(preset, tokenizer, prompt)
        return formatted[prompt]

    return [replace(item, prompt=render(item.prompt),
                    meta={**item.meta, **{key: render(item.meta[key]) for key in PROMPT_META_KEYS
                                          if item.meta.get(key)}})
            for item in items]


def answer_frame(items: Sequence[Item], chosen: Sequence[int]):
    """One row per item: what was asked, what the model chose, and whether that was the gold or the US answer."""
    import pandas as pd

    rows = []
    for item, answer in zip(items, chosen, strict=True):
        rows.append({
            "id": item.id, "task": item.task, "language": item.language, "split": item.split,
            "prompt": item.prompt, "answer": item.choices[answer].strip(), "gold": item.choices[item.gold].strip(),
            "correct": answer == item.gold,
            "us_answer": item.us_choice is not None and answer == item.us_choice,
            "held_out": bool(item.meta.get("held_out", False)),
            "chance": 1 / len(item.choices),
        })
    return pd.DataFrame(rows)


def with_explicit_cue(items: Sequence[Item]) -> list[Item]:
    """The localization items asked with the country named ("In Korea, ..."): the explicit-cue baseline."""
    return [replace(item, prompt=item.meta["explicit_prompt"], id=item.id + "/explicit")
            for item in items if item.task == "localization" and "explicit_prompt" in item.meta]


def explicit_cue(items: Sequence[Item]) -> list[Item]:
    """The plane's items with every culture question asked with its country named (`cla plane --explicit-cue`):
    the localization a model reaches when the language is not the only cue."""
    cued = with_explicit_cue(items)
    if not cued:
        raise ValueError("--explicit-cue needs culture questions that name their country (the organism's, or "
                         "BLEnD's own questions); these items have none")
    return [item for item in items if item.task != "localization"] + cued


def organism_fields(reference: ModelRef) -> dict:
    """What identifies an organism in a results file: its size and cache key (the directory's name); {} for a real
    model."""
    if not reference.is_organism:
        return {}
    return {"organism_size": reference.size or os.environ.get("CLA_ORGANISM_SIZE", "default"),
            "organism_key": organism_path(reference, train_if_missing=False).name}


def points_frame(points: Sequence[PlanePoint], **columns):
    """Plane points as a DataFrame (one row per language), with extra constant columns (method, seed, ...)."""
    import pandas as pd

    frame = pd.DataFrame([point.to_json() for point in points])
    for name, value in columns.items():
        frame[name] = value
    return frame
