"""Where data comes from (a hub id or local files in the data set's layout) and the deterministic splits."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Iterable, Sequence

from cla_lib.core.files import read_jsonl
from cla_lib.core.items import Item, SPLITS


GLOBAL_MMLU = "CohereLabs/Global-MMLU"


GLOBAL_MMLU_LITE = "CohereLabs/Global-MMLU-Lite"


BLEND = "nayeon212/BLEnD"


BLEND_CONFIG = "annotations"


# The hub commit each data set loads from (None: unpinned, the hub's main at load time). No commit could be confirmed
# offline for these, so none is guessed; provenance records a local copy's content hash (`data_revision`), which is
# what a rerun should pass (`--transfer-data DIR`) when the numbers must be reproducible to the digit.
HUB_REVISIONS: dict[str, str | None] = {GLOBAL_MMLU: None, GLOBAL_MMLU_LITE: None, BLEND: None}


# extract / validation / test
DEFAULT_SPLIT_FRACTIONS: tuple[float, float, float] = (0.2, 0.2, 0.6)


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


SUPPORTED_TABLES = (".parquet", ".csv", ".jsonl", ".json")


class DatasetLayoutError(ValueError):
    """A data file lacks a column or key the loader needs, or is not in a layout it knows."""


class DatasetUnavailableError(RuntimeError):
    """The data could not be read at all: the hub is unreachable, or a local path does not exist."""


def assign_split(key: str, fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS) -> str:
    """The split (`extract`, `validation` or `test`) of a question, from a hash of its key.

    The same key always lands in the same split, on every machine and in every language, and about
    `fractions[i]` of all keys land in split i.

    Example:
        >>> assign_split("astronomy/test/2") == assign_split("astronomy/test/2")
        True
    """
    fractions = check_fractions(fractions)
    position = unit_hash(f"split:{key}")
    cumulative = 0.0
    for split, fraction in zip(SPLITS, fractions):
        cumulative += fraction
        if position < cumulative:
            return split
    return SPLITS[-1]  # rounding: the fractions sum to 1 within 1e-6


def check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    fractions = tuple(float(fraction) for fraction in fractions)
    if len(fractions) != len(SPLITS) or any(fraction < 0 for fraction in fractions):
        raise ValueError(f"split fractions must be {len(SPLITS)} non-negative numbers for {SPLITS}, not {fractions}")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, not {sum(fractions)} ({fractions})")
    return fractions


def unit_hash(text: str) -> float:
    """A number in [0, 1) from SHA-256, stable across processes (unlike Python's salted `hash`)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


def limited_items(items: list[Item], limit: int | None, seed: int, key) -> list[Item]:
    """Keep `limit` items: those whose key hashes lowest under `seed`, in their original order.

    Ranking by a hash of the question key, rather than shuffling, picks the same questions in every language
    whenever they are eligible there, so limited runs in two languages still share their questions.
    """
    if limit is None or limit >= len(items):
        return items
    if limit < 0:
        raise ValueError(f"limit must be non-negative, not {limit}")
    chosen = set(sorted(range(len(items)), key=lambda index: unit_hash(f"sample:{seed}:{key(items[index])}"))[:limit])
    return [item for index, item in enumerate(items) if index in chosen]


def resolve_source(source: str | Path | None, default: str) -> str | Path:
    """A local path when one exists, else a hub id; a clear error for anything else."""
    if source is None:
        return default
    path = Path(source).expanduser()
    if path.exists():
        return path
    if isinstance(source, str) and _HUB_ID.fullmatch(source):
        return source
    raise DatasetUnavailableError(f"{source}: no such file or directory (and not a hub id of the form 'owner/name')")


def load_hub(hub_id: str, config: str, split: str | None) -> dict[str, tuple[list[str], list[dict]]]:
    """{split: (columns, rows)} from the Hugging Face hub, or an error that says how to work offline."""
    try:
        import datasets

        loaded = datasets.load_dataset(hub_id, config, split=split, revision=HUB_REVISIONS.get(hub_id))
    except Exception as error:  # network errors come in many types (ConnectionError, OSError, hub errors)
        where = f" (and {hub_id} is not a local path either)" if "/" in hub_id else ""
        raise DatasetUnavailableError(
            f"could not load {hub_id!r} (config {config!r}, split {split or 'all'!r}) from the Hugging Face hub"
            f"{where}: {type(error).__name__}: {error}. Without network access, download the data set elsewhere "
            f"(for example `hf download --repo-type dataset {hub_id} --local-dir DIR`) and pass the "
            f"local directory as the source instead."
        ) from error
    splits = {split: loaded} if split is not None else dict(loaded)
    return {name: (list(dataset.column_names), dataset.to_list()) for name, dataset in splits.items()}


def data_revision(source: str | Path) -> str:
    """What a data source was, for provenance: a local copy's content hash (``sha256:`` of its files' names and
    bytes, first 16 hex digits), or a hub id with its pinned commit or ``unpinned``."""
    path = Path(source).expanduser()
    if path.exists():
        digest = hashlib.sha256()
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
                with open(file, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
        return f"local copy, sha256:{digest.hexdigest()[:16]}"
    revision = HUB_REVISIONS.get(str(source))
    return f"{source}@{revision}" if revision else f"{source} (unpinned: the hub's main when loaded)"


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    """(columns, rows) of a parquet, CSV, JSONL or JSON-list file, every row a plain dict."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet

        table = pyarrow.parquet.read_table(path)
        return list(table.column_names), table.to_pylist()
    if suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            return list(reader.fieldnames or []), list(reader)
    if suffix in (".jsonl", ".json"):
        if suffix == ".jsonl":
            rows = [row for _, row in read_jsonl(path)]
        else:
            with open(path, encoding="utf-8") as handle:
                rows = json.load(handle)
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise DatasetLayoutError(f"{path}: expected one JSON object per row (a list of objects)")
        # Rows of a JSON file may differ; a column counts only if every row has it.
        columns = list(rows[0]) if rows else []
        for row in rows[1:]:
            columns = [column for column in columns if column in row]
        return columns, rows
    raise DatasetLayoutError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUPPORTED_TABLES)}")


def require_columns(columns: Iterable[str], required: Iterable[str], where: str, layout: str) -> None:
    missing = [column for column in required if column not in set(columns)]
    if missing:
        raise DatasetLayoutError(
            f"{where}: missing column(s) {', '.join(repr(column) for column in missing)}; "
            f"the {layout} layout needs {', '.join(required)}"
        )


def cell_text(value) -> str:
    """Cell text; numbers (an option "12" read from JSON as 12) become their plain string."""
    return "" if value is None else str(value)
