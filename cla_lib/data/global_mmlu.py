"""Transfer items from Global-MMLU's culturally agnostic questions (lm-evaluation-harness MMLU style)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from cla_lib.data.sources import (
    DEFAULT_SPLIT_FRACTIONS, DatasetLayoutError, DatasetUnavailableError, GLOBAL_MMLU, GLOBAL_MMLU_LITE,
    SUPPORTED_TABLES, check_fractions, load_hub, read_rows, require_columns, resolve_source, limited_items, cell_text,
    assign_split,
)
from cla_lib.core.items import Item
from cla_lib.core.languages import ENGLISH, check_language


GLOBAL_MMLU_COLUMNS = (
    "sample_id", "subject", "question", "option_a", "option_b", "option_c", "option_d", "answer",
    "cultural_sensitivity_label",
)


LETTERS = ("A", "B", "C", "D")


TRANSFER_CHOICES = tuple(f" {letter}" for letter in LETTERS)


TRANSFER_TEMPLATE = "{question}\nA. {option_a}\nB. {option_b}\nC. {option_c}\nD. {option_d}\nAnswer:"


def transfer_items(
    source: str | Path | None,
    language: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    lite: bool = False,
    dataset_split: str = "test",
    split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
    english_prompts: bool = True,
) -> list[Item]:
    """Global-MMLU's culturally agnostic questions in `language`, as multiple-choice transfer items.

    Args:
        source: a hub id (None: "CohereLabs/Global-MMLU", or "CohereLabs/Global-MMLU-Lite" with `lite=True`), or a
            local path: a directory in the hub's layout (`<language>/test-*.parquet`, `<language>/dev-*.parquet`;
            CSV or JSONL files with the same names also work), or one parquet/CSV/JSONL/JSON file with the same
            columns. A single file is taken to hold the requested language; if it has a `language` column, only
            that language's rows are used.
        language: a language code of `cla_lib.core.languages` ("en" gives the English ceiling on the same sample_ids).
        limit: keep at most this many items, chosen by a seeded hash of `sample_id` (same questions across
            languages).
        seed: the seed of that choice.
        lite: use Global-MMLU-Lite when `source` is None.
        dataset_split: the data set's own split, "test" or "dev".
        split_fractions: the fractions of the extract, validation and test splits.
        english_prompts: add `meta["english_prompt"]`, the English row with the same `sample_id` (for EN steering
            vectors), where the source has English rows.

    Returns:
        Items with `task="transfer"`, `id="<language>:<sample_id>"`, gold = the answer letter's index.

    Example:
        >>> items = transfer_items("tests/fixtures/global_mmlu", "ko")  # doctest: +SKIP
        >>> items[0].choices  # doctest: +SKIP
        (' A', ' B', ' C', ' D')
    """
    check_language(language)
    check_fractions(split_fractions)
    resolved = resolve_source(source, GLOBAL_MMLU_LITE if lite else GLOBAL_MMLU)
    items: list[Item] = []
    seen: set[str] = set()
    for where, columns, rows in _global_mmlu_tables(resolved, language, dataset_split):
        require_columns(columns, GLOBAL_MMLU_COLUMNS, where, "Global-MMLU")
        has_annotation_flag = "is_annotated" in columns
        for row in rows:
            if not _is_culturally_agnostic(row, has_annotation_flag):
                continue
            sample_id = str(row["sample_id"])
            if sample_id in seen:  # a question listed twice (two files of one split) is one item
                continue
            seen.add(sample_id)
            items.append(_transfer_item(row, language, where, split_fractions))
    if english_prompts:
        english = ({item.meta["sample_id"]: item.prompt for item in items} if language == ENGLISH
                   else _english_transfer_prompts(resolved, dataset_split))
        for item in items:
            if item.meta["sample_id"] in english:
                item.meta["english_prompt"] = english[item.meta["sample_id"]]
    return limited_items(items, limit, seed, key=lambda item: item.meta["sample_id"])


def _english_transfer_prompts(source: str | Path, dataset_split: str) -> dict[str, str]:
    """{sample_id: the English row's prompt} from the source's English rows, or {} when it has none."""
    if isinstance(source, Path) and source.is_file():
        columns, _ = read_rows(source)
        if "language" not in columns:
            return {}  # a single file of one language: no English rows to pair with
    try:
        tables = list(_global_mmlu_tables(source, ENGLISH, dataset_split))
    except (DatasetLayoutError, DatasetUnavailableError):
        return {}
    prompts = {}
    for _, columns, rows in tables:
        if any(column not in columns for column in ("sample_id", "question", *(f"option_{l.lower()}" for l in LETTERS))):
            return {}
        for row in rows:
            prompts.setdefault(str(row["sample_id"]), _transfer_prompt(row))
    return prompts


def _transfer_prompt(row: dict) -> str:
    return TRANSFER_TEMPLATE.format(
        question=cell_text(row["question"]).strip(),
        **{f"option_{letter.lower()}": cell_text(row[f"option_{letter.lower()}"]).strip() for letter in LETTERS},
    )


def _global_mmlu_tables(source: str | Path, language: str, dataset_split: str):
    """Yield (where, columns, rows) for each table that holds `language`'s rows."""
    if isinstance(source, str):
        for _, (columns, rows) in load_hub(source, language, dataset_split).items():
            yield f"{source} (config {language!r}, split {dataset_split!r})", columns, rows
        return
    if source.is_file():
        columns, rows = read_rows(source)
        if "language" in columns:
            present = sorted({str(row["language"]) for row in rows})
            rows = [row for row in rows if str(row["language"]) == language]
            if not rows and present:
                raise DatasetLayoutError(f"{source}: no rows with language {language!r}; languages present: {present}")
        yield str(source), columns, rows
        return
    language_directory = source / language
    files = sorted(
        path for path in language_directory.glob(f"{dataset_split}-*") if path.suffix.lower() in SUPPORTED_TABLES
    ) if language_directory.is_dir() else []
    if not files:
        present = sorted(path.name for path in source.iterdir() if path.is_dir())
        raise DatasetLayoutError(
            f"{source}: no {language}/{dataset_split}-*.parquet (the Global-MMLU hub layout: "
            f"<language>/{dataset_split}-00000-of-00001.parquet); language directories present: {present}"
        )
    for path in files:
        columns, rows = read_rows(path)
        yield str(path), columns, rows


def _is_culturally_agnostic(row: dict, has_annotation_flag: bool) -> bool:
    # The label is only meaningful on rows annotators saw, hence the is_annotated check where the column exists.
    if str(row.get("cultural_sensitivity_label") or "").strip().upper() != "CA":
        return False
    return _parse_boolean(row.get("is_annotated")) if has_annotation_flag else True


def _parse_boolean(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y", "t")
    return bool(value) if value is not None else False


def _transfer_item(row: dict, language: str, where: str, split_fractions: Sequence[float]) -> Item:
    sample_id = str(row["sample_id"])
    letter = str(row["answer"] or "").strip().upper()
    if letter not in LETTERS:
        raise DatasetLayoutError(f"{where}: sample {sample_id!r}: answer {row['answer']!r} is not one of A, B, C, D")
    prompt = _transfer_prompt(row)
    meta = {"sample_id": sample_id, "subject": cell_text(row["subject"]), "source": where}
    return Item(
        task="transfer",
        language=language,
        prompt=prompt,
        choices=TRANSFER_CHOICES,
        gold=LETTERS.index(letter),
        us_choice=None,
        id=f"{language}:{sample_id}",
        split=assign_split(sample_id, split_fractions),
        meta=meta,
    )
