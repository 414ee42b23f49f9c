"""Real data as scored items: Global-MMLU for transfer, BLEnD for localization.

The paper places a model on two axes, and each axis has its own data set.

**Transfer** asks universal knowledge in many languages: a fact learnt in English should be available in Korean.
Global-MMLU (`CohereLabs/Global-MMLU`) translates MMLU into 42 languages and labels part of each language's
questions *culturally sensitive* (`CS`) or *culturally agnostic* (`CA`). Only `CA` questions have one right answer
whatever the asker's culture, so `transfer_items` keeps the rows labelled `CA` (and, where the file has an
`is_annotated` column, only the rows annotators actually saw: the label means nothing on the others). English rows
with the same `sample_id` are the ceiling: the same question, asked in the pivot language.

**Localization** asks everyday cultural knowledge whose right answer depends on where the asker lives. BLEnD
(`nayeon212/BLEnD`) asked the same questions of annotators in 16 countries, in their local languages; the same
question ID across countries is the same question, so one question has a local answer (the target country's file)
and a US answer (the US file). BLEnD's questions name the country ("대한민국에서 ..."); following the paper,
`localization_items` removes that mention, so that the query language is the only cultural cue left.

Both loaders return `cla_lib.items.Item`s, split deterministically into `extract` (to build steering vectors),
`validation` (to choose layers and strengths) and `test` (to report), by hashing the language-independent question
key: a question lands in the same split in every language, so nothing learnt on Korean extract items leaks into
the Spanish test items of the same question.

Transfer items (lm-evaluation-harness MMLU style)
-------------------------------------------------
    prompt  = "{question}\\nA. {option_a}\\nB. {option_b}\\nC. {option_c}\\nD. {option_d}\\nAnswer:"
    choices = (" A", " B", " C", " D"), gold = the index of the `answer` letter, us_choice = None.

Localization items: how the choices are built
---------------------------------------------
    prompt = "{question without the country}\\nAnswer:"      (`LOCALIZATION_TEMPLATE`)
    gold   = the answer most of the target country's annotators gave (ties: the first listed)
    US     = the top answer in the US file; `us_choice` is its index among the choices
    others = the top answer of every other country in the source, as distractors

Each candidate is identified by its English gloss: BLEnD gives every annotation, in every country, English
translations (`en_answers`), and this is the only layer in which answers of different countries can be compared.
Glosses that BLEnD's translators listed together for one annotation (Spain: "soccer", "football") are the same
answer everywhere in that question (a union over the question's annotations in all countries), so that Iran's
"football" is not offered as a distractor to Korea's "soccer". A candidate that is the same answer as any of the
local top answers (the gold or one tied with it) is dropped: it would be a second right answer. If that candidate
is the US answer, `us_choice` is None and the item counts as `us_same_as_local`. Candidates that are the same answer
as each other are merged into one choice. A distractor that the local annotators also gave, with fewer votes,
stays: it is less local than the gold, and `meta["local_votes"]` records it for analysis. Items with fewer than
two choices are dropped.

The choices are rendered in one language per item, chosen by `answers_in`:

- `"english"` (default): every choice is its English gloss. This companion's choice, because BLEnD translates every
  annotation into English but into no other language, so every item keeps its US answer and its distractors; and
  because one language for all choices removes a confound of log-likelihood scoring: with a Korean gold and an
  English US answer, a model (or an English steering vector) could prefer a choice for its language rather than its
  culture. The prompt stays in the query language; answering in English may itself pull a model toward
  English-centric answers, uniformly across choices, which makes measured localization conservative.
- `"query"`: every choice in the query language, wherever BLEnD provides that rendering: the gold is the local
  annotators' own words; another candidate is rendered by an annotation in the query language with the same English
  gloss (the target country's, then other countries sharing the language: Mexico for Spanish), or directly when
  its country speaks the query language. Candidates without a rendering are left out (`us_untranslatable` counts
  the US ones), so this variant keeps fewer, harder items (mostly answers the local annotators also gave).

Every continuation is a space and the answer (" kimchi"), as the harness does after "Answer:".

Parallel prompts for steering vectors
-------------------------------------
`cla_lib.steering` builds its EN vector from `meta["english_prompt"]` (the same question in English) and its LOC
vector from `meta["explicit_prompt"]` (the same question with the country named). The loaders fill them in the
items' own template (the chat template, if any, is applied later, to all three prompts alike, by
`cla_lib.evaluation.plane_items`):

- Global-MMLU: `english_prompt` is the English row with the same `sample_id` (the `en` config, the `en/` directory,
  or the `en` rows of a single file with a `language` column), in the transfer template; omitted when the source
  has no English rows. English items carry their own prompt.
- BLEnD: `english_prompt` is BLEnD's `en_question` with its country mention ("in China", "in your country")
  removed by `remove_english_country_mention`, so that it differs from the prompt only in language; omitted when
  the removal fails. `explicit_prompt` is the original local-language question, country mention kept; omitted for
  the questions that never named the country (their explicit and implicit prompts would be the same).

Country-mention removal
-----------------------
`COUNTRY_MENTIONS` holds, per BLEnD country, regular-expression rules (pattern, replacement), applied in order,
then a `residue` pattern: if the residue still matches (the country name, its demonym or adjective), removal
failed and the item is dropped and counted (`dropped_country_mention`): that covers both "a rule matched but the
name remains" and "no rule matched". The rules come from BLEnD's actual phrasing (checked against
`data/annotations/<Country>_data.json` in `nlee0212/BLEnD`): Korean questions say "대한민국에서 / 대한민국의 /
대한민국 사람들은" (rarely 한국), Chinese "在中国，/ 在中国的", Greek "στην Ελλάδα", Persian "درایران" (often
written without a space) and "در کشور شما" ("in your country"), Spanish "en España", Indonesian "di Indonesia",
US "in the US". The rules, by country:

| country     | removed (→ replacement)                                                               | residue (drop)      |
|-------------|----------------------------------------------------------------------------------------|---------------------|
| US          | in/across/throughout/of/from (the) US/USA/U.S./United States/America; Americans → people | US, America(n)      |
| Spain       | en/de/a/para/por/desde (toda/la) España                                                 | españ- (español...) |
| Mexico      | en/de/a/para/por/desde (todo) México                                                    | méxic-, mexic-      |
| South_Korea | 대한민국/한국 before 사람; 한국인 → 사람; 대한민국/한국 + 에서는/에서도/에서/에는/에도/의/에; 대한민국/한국 + space | 대한민국, 한국       |
| China       | 在中国(的)(，); 中国人 → 人们; (全/整个)中国(的)                                            | 中国, 中华, 中華      |
| Indonesia   | di/ke/dari (seluruh) Indonesia; orang/masyarakat Indonesia → orang/masyarakat; Indonesia after a noun (not "bahasa Indonesia") | indonesia |
| Greece      | στην/στη/σε όλη την/από την/για την Ελλάδα; της Ελλάδας; οι Έλληνες → οι άνθρωποι         | Ελλάδ-, Έλλην-/ελλην- |
| Iran        | در ایران / درایران; در کشور شما; مردم ایران → مردم; ایرانی‌ها/ایرانیان → مردم; ایران after a noun | ایران (also ایرانی) |

Generative scoring (for later chapters)
---------------------------------------
BLEnD scores a generated short answer by lemmatized match against the annotators' answers. This companion uses
`matches`: normalized containment (`normalize_answer`: Unicode NFKC, case folding, accents and punctuation removed,
Persian letter variants unified, leading articles and English/Spanish plurals folded), on word boundaries in
languages written with spaces and as plain substrings in Chinese, Korean and Persian. It is simpler than
lemmatization and says so.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from cla_lib.items import SPLITS, Item
from cla_lib.languages import ENGLISH, LANGUAGES, check_language

GLOBAL_MMLU = "CohereLabs/Global-MMLU"
GLOBAL_MMLU_LITE = "CohereLabs/Global-MMLU-Lite"
BLEND = "nayeon212/BLEnD"
BLEND_CONFIG = "annotations"

# extract / validation / test
DEFAULT_SPLIT_FRACTIONS: tuple[float, float, float] = (0.2, 0.2, 0.6)

GLOBAL_MMLU_COLUMNS = (
    "sample_id", "subject", "question", "option_a", "option_b", "option_c", "option_d", "answer",
    "cultural_sensitivity_label",
)
LETTERS = ("A", "B", "C", "D")
TRANSFER_CHOICES = tuple(f" {letter}" for letter in LETTERS)
TRANSFER_TEMPLATE = "{question}\nA. {option_a}\nB. {option_b}\nC. {option_c}\nD. {option_d}\nAnswer:"
LOCALIZATION_TEMPLATE = "{question}\nAnswer:"
ANSWER_LANGUAGES = ("english", "query")

# BLEnD's countries: file stem in data/annotations/<Country>_data.json -> split name on the hub.
BLEND_SPLIT_CODES: dict[str, str] = {
    "Algeria": "DZ", "Assam": "AS", "Azerbaijan": "AZ", "China": "CN", "Ethiopia": "ET", "Greece": "GR",
    "Indonesia": "ID", "Iran": "IR", "Mexico": "MX", "North_Korea": "KP", "Northern_Nigeria": "NG",
    "South_Korea": "KR", "Spain": "ES", "UK": "GB", "US": "US", "West_Java": "JB",
}
# The language BLEnD's annotators of each country answered in.
BLEND_COUNTRY_LANGUAGES: dict[str, str] = {
    "Algeria": "ar", "Assam": "as", "Azerbaijan": "az", "China": "zh", "Ethiopia": "am", "Greece": "el",
    "Indonesia": "id", "Iran": "fa", "Mexico": "es", "North_Korea": "ko", "Northern_Nigeria": "ha",
    "South_Korea": "ko", "Spain": "es", "UK": "en", "US": "en", "West_Java": "su",
}
US_COUNTRY = "US"

# Which BLEnD country a query language stands for. The first is the default (it equals
# `cla_lib.languages.LANGUAGES[language].blend_country`); the others can be chosen with `country=`.
#
# | language | BLEnD country files                 |
# |----------|-------------------------------------|
# | en       | US_data.json                        |
# | es       | Spain_data.json (or Mexico_data.json) |
# | zh       | China_data.json                     |
# | ko       | South_Korea_data.json               |
# | id       | Indonesia_data.json                 |
# | el       | Greece_data.json                    |
# | fa       | Iran_data.json                      |
LOCALIZATION_COUNTRIES: dict[str, tuple[str, ...]] = {
    "en": ("US",),
    "es": ("Spain", "Mexico"),
    "zh": ("China",),
    "ko": ("South_Korea",),
    "id": ("Indonesia",),
    "el": ("Greece",),
    "fa": ("Iran",),
}

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_SUPPORTED_TABLES = (".parquet", ".csv", ".jsonl", ".json")


class DatasetLayoutError(ValueError):
    """A data file lacks a column or key the loader needs, or is not in a layout it knows."""


class DatasetUnavailableError(RuntimeError):
    """The data could not be read at all: the hub is unreachable, or a local path does not exist."""


# ---------------------------------------------------------------------------------------------------------------
# Splits and sampling


def assign_split(key: str, fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS) -> str:
    """The split (`extract`, `validation` or `test`) of a question, from a hash of its key.

    The same key always lands in the same split, on every machine and in every language, and about
    `fractions[i]` of all keys land in split i.

    Example:
        >>> assign_split("astronomy/test/2") == assign_split("astronomy/test/2")
        True
    """
    fractions = _check_fractions(fractions)
    position = _unit_hash(f"split:{key}")
    cumulative = 0.0
    for split, fraction in zip(SPLITS, fractions):
        cumulative += fraction
        if position < cumulative:
            return split
    return SPLITS[-1]  # rounding: the fractions sum to 1 within 1e-6


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    fractions = tuple(float(fraction) for fraction in fractions)
    if len(fractions) != len(SPLITS) or any(fraction < 0 for fraction in fractions):
        raise ValueError(f"split fractions must be {len(SPLITS)} non-negative numbers for {SPLITS}, not {fractions}")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, not {sum(fractions)} ({fractions})")
    return fractions


def _unit_hash(text: str) -> float:
    """A number in [0, 1) from SHA-256, stable across processes (unlike Python's salted `hash`)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


def _take(items: list[Item], limit: int | None, seed: int, key) -> list[Item]:
    """Keep `limit` items: those whose key hashes lowest under `seed`, in their original order.

    Ranking by a hash of the question key, rather than shuffling, picks the same questions in every language
    whenever they are eligible there, so limited runs in two languages still share their questions.
    """
    if limit is None or limit >= len(items):
        return items
    if limit < 0:
        raise ValueError(f"limit must be non-negative, not {limit}")
    chosen = set(sorted(range(len(items)), key=lambda index: _unit_hash(f"sample:{seed}:{key(items[index])}"))[:limit])
    return [item for index, item in enumerate(items) if index in chosen]


# ---------------------------------------------------------------------------------------------------------------
# Sources: a hub id or a local path


def _resolve_source(source: str | Path | None, default: str) -> str | Path:
    """A local path when one exists, else a hub id; a clear error for anything else."""
    if source is None:
        return default
    path = Path(source).expanduser()
    if path.exists():
        return path
    if isinstance(source, str) and _HUB_ID.fullmatch(source):
        return source
    raise DatasetUnavailableError(f"{source}: no such file or directory (and not a hub id of the form 'owner/name')")


def _load_hub(hub_id: str, config: str, split: str | None) -> dict[str, tuple[list[str], list[dict]]]:
    """{split: (columns, rows)} from the Hugging Face hub, or an error that says how to work offline."""
    try:
        import datasets

        loaded = datasets.load_dataset(hub_id, config, split=split)
    except Exception as error:  # network errors come in many types (ConnectionError, OSError, hub errors)
        where = f" (and {hub_id} is not a local path either)" if "/" in hub_id else ""
        raise DatasetUnavailableError(
            f"could not load {hub_id!r} (config {config!r}, split {split or 'all'!r}) from the Hugging Face hub"
            f"{where}: {type(error).__name__}: {error}. Without network access, download the data set elsewhere "
            f"(for example `huggingface-cli download --repo-type dataset {hub_id} --local-dir DIR`) and pass the "
            f"local directory as the source instead."
        ) from error
    splits = {split: loaded} if split is not None else dict(loaded)
    return {name: (list(dataset.column_names), dataset.to_list()) for name, dataset in splits.items()}


def _read_table(path: Path) -> tuple[list[str], list[dict]]:
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
        with open(path, encoding="utf-8") as handle:
            if suffix == ".jsonl":
                rows = [json.loads(line) for line in handle if line.strip()]
            else:
                rows = json.load(handle)
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise DatasetLayoutError(f"{path}: expected one JSON object per row (a list of objects)")
        # Rows of a JSON file may differ; a column counts only if every row has it.
        columns = list(rows[0]) if rows else []
        for row in rows[1:]:
            columns = [column for column in columns if column in row]
        return columns, rows
    raise DatasetLayoutError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(_SUPPORTED_TABLES)}")


def _require_columns(columns: Iterable[str], required: Iterable[str], where: str, layout: str) -> None:
    missing = [column for column in required if column not in set(columns)]
    if missing:
        raise DatasetLayoutError(
            f"{where}: missing column(s) {', '.join(repr(column) for column in missing)}; "
            f"the {layout} layout needs {', '.join(required)}"
        )


# ---------------------------------------------------------------------------------------------------------------
# Transfer: Global-MMLU


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
        language: a language code of `cla_lib.languages` ("en" gives the English ceiling on the same sample_ids).
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
    _check_fractions(split_fractions)
    resolved = _resolve_source(source, GLOBAL_MMLU_LITE if lite else GLOBAL_MMLU)
    items: list[Item] = []
    seen: set[str] = set()
    for where, columns, rows in _global_mmlu_tables(resolved, language, dataset_split):
        _require_columns(columns, GLOBAL_MMLU_COLUMNS, where, "Global-MMLU")
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
    return _take(items, limit, seed, key=lambda item: item.meta["sample_id"])


def _english_transfer_prompts(source: str | Path, dataset_split: str) -> dict[str, str]:
    """{sample_id: the English row's prompt} from the source's English rows, or {} when it has none."""
    if isinstance(source, Path) and source.is_file():
        columns, _ = _read_table(source)
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
        question=_text(row["question"]).strip(),
        **{f"option_{letter.lower()}": _text(row[f"option_{letter.lower()}"]).strip() for letter in LETTERS},
    )


def _global_mmlu_tables(source: str | Path, language: str, dataset_split: str):
    """Yield (where, columns, rows) for each table that holds `language`'s rows."""
    if isinstance(source, str):
        for _, (columns, rows) in _load_hub(source, language, dataset_split).items():
            yield f"{source} (config {language!r}, split {dataset_split!r})", columns, rows
        return
    if source.is_file():
        columns, rows = _read_table(source)
        if "language" in columns:
            present = sorted({str(row["language"]) for row in rows})
            rows = [row for row in rows if str(row["language"]) == language]
            if not rows and present:
                raise DatasetLayoutError(f"{source}: no rows with language {language!r}; languages present: {present}")
        yield str(source), columns, rows
        return
    language_directory = source / language
    files = sorted(
        path for path in language_directory.glob(f"{dataset_split}-*") if path.suffix.lower() in _SUPPORTED_TABLES
    ) if language_directory.is_dir() else []
    if not files:
        present = sorted(path.name for path in source.iterdir() if path.is_dir())
        raise DatasetLayoutError(
            f"{source}: no {language}/{dataset_split}-*.parquet (the Global-MMLU hub layout: "
            f"<language>/{dataset_split}-00000-of-00001.parquet); language directories present: {present}"
        )
    for path in files:
        columns, rows = _read_table(path)
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
    meta = {"sample_id": sample_id, "subject": _text(row["subject"]), "source": where}
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


def _text(value) -> str:
    """Cell text; numbers (an option "12" read from JSON as 12) become their plain string."""
    return "" if value is None else str(value)


# ---------------------------------------------------------------------------------------------------------------
# Country-mention removal


@dataclass(frozen=True)
class CountryMention:
    """How one BLEnD country is named in its questions: removal rules, then the residue that means failure."""

    rules: tuple[tuple[str, str], ...]  # (regular expression, replacement), applied in order
    residue: str  # a regular expression; if it still matches after the rules, the country is still named
    ignore_case: bool = True


_US_NAMES = r"(?:the\s+)?(?:USA|US|U\.S\.(?:A\.)?|United\s+States(?:\s+of\s+America)?|America)(?![A-Za-z])"
_KOREA = r"(?:대한민국|한국)"
_IRAN = r"ا[یي]ران"  # Persian and Arabic yeh both occur in BLEnD's Persian text
_SPANISH_PREPOSITIONS = r"(?:en|de|a|para|por|desde)"

COUNTRY_MENTIONS: dict[str, CountryMention] = {
    "US": CountryMention(
        rules=(
            (r"\s*\b(?:in|across|throughout|of|from)\s+" + _US_NAMES, ""),
            (r"\bAmericans\b", "people"),
        ),
        residue=r"\b(?:USA|US|U\.S\.|United States|America|Americans?)(?![A-Za-z])",
        ignore_case=False,  # "US" must not match the pronoun "us"
    ),
    "Spain": CountryMention(
        rules=((r"\s*\b" + _SPANISH_PREPOSITIONS + r"\s+(?:toda\s+|la\s+)?España\b", ""),),
        residue=r"españ",
    ),
    "Mexico": CountryMention(
        rules=((r"\s*\b" + _SPANISH_PREPOSITIONS + r"\s+(?:todo\s+)?M[ée]xico\b", ""),),
        residue=r"m[ée]xic",
    ),
    "South_Korea": CountryMention(
        rules=(
            (_KOREA + r"\s*(?=사람)", ""),  # 대한민국 사람들은 -> 사람들은
            (r"한국인", "사람"),
            (_KOREA + r"(?:에서는|에서도|에서|에는|에도|의|에)\s*", ""),  # locative and genitive particles
            (_KOREA + r"\s+", ""),  # a modifier: 대한민국 학교 급식에서 -> 학교 급식에서
        ),
        residue=_KOREA,  # also catches 한국식, 한국어, 한국인 left in place
    ),
    "China": CountryMention(
        rules=(
            (r"在中国(?:的)?[，,]?\s*", ""),  # 在中国，... / 在中国的学校食堂里 -> 学校食堂里
            (r"中国人", "人们"),
            (r"(?:全|整个)?中国(?:的)?", ""),  # a modifier: 中国小学 -> 小学
        ),
        residue=r"中国|中华|中華",
    ),
    "Indonesia": CountryMention(
        rules=(
            (r"\s*\b(?:di|ke|dari)\s+(?:seluruh\s+)?Indonesia\b", ""),
            (r"\b(orang|masyarakat)\s+Indonesia\b", r"\1"),
            (r"(?<!bahasa)\s+Indonesia\b", ""),  # after a noun: makanan khas Indonesia; not the language's name
        ),
        residue=r"indonesia",
    ),
    "Greece": CountryMention(
        rules=(
            (r"\s*(?:στην|στη|σε\s+όλη\s+την|από\s+την|για\s+την)\s+Ελλάδα\b", ""),
            (r"\s*της\s+Ελλάδας\b", ""),
            (r"\bοι\s+Έλληνες\b", "οι άνθρωποι"),
        ),
        residue=r"ελλ[άα]δ|[εέ]λλην",
    ),
    "Iran": CountryMention(
        rules=(
            # BLEnD often writes "درایران" without the space; (?<!\S) keeps "در" a word of its own.
            (r"\s*(?<!\S)در\s*" + _IRAN + r"(?![یي])", ""),
            (r"\s*(?<!\S)در\s*[کك]شور\s*شما", ""),  # "in your country"
            (r"مردم\s*" + _IRAN + r"(?![یي])", "مردم"),
            (_IRAN + r"[یي]\u200c?(?:ها|ان)", "مردم"),  # Iranians -> people
            (r"[\s\u200c]*" + _IRAN + r"(?![یي])", ""),  # after a noun (ezafe): مدارس ایران -> مدارس
        ),
        residue=_IRAN,
    ),
}


def remove_country_mention(question: str, country: str) -> str | None:
    """The question with its mention of `country` removed, or None if the country is still named afterwards.

    Args:
        question: a BLEnD question in its local language.
        country: a BLEnD country name with rules in `COUNTRY_MENTIONS` ("South_Korea", "Spain", ...).

    Returns:
        The cleaned question (unchanged if it never named the country), or None when removal failed.

    Example:
        >>> remove_country_mention("대한민국에서 가장 인기 있는 과일은 무엇인가요?", "South_Korea")
        '가장 인기 있는 과일은 무엇인가요?'
    """
    if country not in COUNTRY_MENTIONS:
        raise KeyError(f"no country-mention rules for {country!r}; countries with rules: {', '.join(COUNTRY_MENTIONS)}")
    mention = COUNTRY_MENTIONS[country]
    flags = re.IGNORECASE if mention.ignore_case else 0
    text = question
    for pattern, replacement in mention.rules:
        text = re.sub(pattern, replacement, text, flags=flags)
    text = _tidy(text, question)
    if re.search(mention.residue, text, flags=flags):
        return None
    return text


# BLEnD's English questions (`en_question`) name the country in English ("in China"), or say "in your country".
# How each country is named in English, and the residue (name, demonym) that means the removal failed.
_ENGLISH_COUNTRY_NAMES: dict[str, tuple[str, str]] = {
    "US": (_US_NAMES, r"\b(?:USA|US|U\.S\.|United States|America|Americans?)(?![A-Za-z])"),
    "Spain": (r"Spain", r"\bSpain\b|\bSpaniards?\b"),
    "Mexico": (r"Mexico", r"\bMexic"),
    "South_Korea": (r"(?:the\s+Republic\s+of\s+Korea|South\s+Korea|Korea)", r"\bKorea"),
    "China": (r"(?:mainland\s+)?China", r"\bChina\b"),
    "Indonesia": (r"Indonesia", r"\bIndonesia\b"),
    "Greece": (r"Greece", r"\bGreece\b"),
    "Iran": (r"Iran", r"\bIran\b|\bIranians?\b"),
}


def remove_english_country_mention(question: str, country: str) -> str | None:
    """BLEnD's English question (`en_question`) without its country mention, or None if the country is still named.

    Removes "in/across/throughout/of/from/for (the) <country>" and "in your country"; the result must no longer name
    the country. Demonyms used as adjectives ("a popular Korean dish") are left in place and make the removal fail.

    Example:
        >>> remove_english_country_mention("What is the most popular fruit in China?", "China")
        'What is the most popular fruit?'
    """
    if country not in _ENGLISH_COUNTRY_NAMES:
        raise KeyError(f"no English country names for {country!r}; countries: {', '.join(_ENGLISH_COUNTRY_NAMES)}")
    name, residue = _ENGLISH_COUNTRY_NAMES[country]
    flags = 0 if country == US_COUNTRY else re.IGNORECASE  # "US" must not match the pronoun "us"
    text = re.sub(r"\s*\b(?:in|across|throughout|of|from|for)\s+(?:the\s+)?(?:" + name + r"|your\s+country)\b",
                  "", question, flags=flags)
    text = re.sub(r"\bAmericans\b", "people", text) if country == US_COUNTRY else text
    text = _tidy(text, question)
    if re.search(residue, text, flags=flags) or re.search(r"\byour\s+country\b", text, flags=re.IGNORECASE):
        return None
    return text


def _tidy(text: str, original: str) -> str:
    """Repair what a removal leaves: doubled spaces, a space before punctuation, a leading comma."""
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\s*\u200c\s+|\s+\u200c", " ", text)  # a Persian half-space left next to a removed word
    text = re.sub(r"\s+([?？!.,，;\u037e:؟)])", r"\1", text)
    text = re.sub(r"^[\s,，、:：]+", "", text).strip()
    # Keep the capital the question started with ("En España, ¿cuál ...?" -> "¿Cuál ...?").
    original_letter = next((character for character in original if character.isalpha()), "")
    for index, character in enumerate(text):
        if character.isalpha():
            if original_letter.isupper() and character.islower():
                text = text[:index] + character.upper() + text[index + 1:]
            break
    return text


# ---------------------------------------------------------------------------------------------------------------
# Answer normalization and matching (generative scoring)

_PERSIAN_VARIANTS = str.maketrans({"ي": "ی", "ك": "ک", "ى": "ی", "ة": "ه", "\u200c": "", "\u200d": ""})
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_LEADING_ARTICLES = {
    "en": ("the", "a", "an"),
    "es": ("el", "la", "los", "las", "un", "una", "unos", "unas"),
    "el": ("ο", "η", "το", "οι", "τα", "ενας", "μια", "ενα"),
}
# Scripts where words are not separated by spaces, or take attached particles and suffixes: match substrings.
_SUBSTRING_LANGUAGES = ("zh", "ja", "ko", "fa")
_UNSPACED_LANGUAGES = ("zh", "ja", "ko")  # spacing there is inconsistent between annotators: ignore it


def normalize_answer(text: str, language: str) -> str:
    """A short answer in a canonical form for comparison.

    Unicode NFKC; Persian letter variants and half-spaces unified; Persian and Arabic digits made ASCII; case
    folded; accents and other combining marks removed; punctuation and symbols made spaces; whitespace collapsed
    (and removed in Chinese, Japanese and Korean); a leading article dropped (English, Spanish, Greek); plural
    endings folded word by word (English; Spanish, where a final -s and then -e go).

    Example:
        >>> normalize_answer("Las Patatas Bravas!", "es")
        'patata brava'
    """
    text = unicodedata.normalize("NFKC", str(text)).translate(_PERSIAN_VARIANTS).translate(_DIGITS).casefold()
    decomposed = unicodedata.normalize("NFD", text)
    text = unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    words = text.split()
    if words and len(words) > 1 and words[0] in _LEADING_ARTICLES.get(language, ()):
        words = words[1:]
    if language == "en":
        words = [_fold_english_plural(word) for word in words]
    elif language == "es":
        words = [_fold_spanish_plural(word) for word in words]
    return ("" if language in _UNSPACED_LANGUAGES else " ").join(words)


def _fold_english_plural(word: str) -> str:
    if len(word) <= 3 or not word.endswith("s") or word.endswith("ss"):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "oes", "sses")):
        return word[:-2]
    return word[:-1]


def _fold_spanish_plural(word: str) -> str:
    # A plural alone does not say whether "-es" or "-s" was added (tomat-es? tomate-s?), so both forms lose a
    # final "s" and then a final "e": tomate, tomates -> tomat; frijol, frijoles -> frijol.
    if len(word) > 3 and word.endswith("s"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def matches(prediction: str, accepted: str | Iterable[str], language: str) -> bool:
    """Whether a generated answer contains one of the accepted answers (normalized containment).

    BLEnD itself lemmatizes and matches; this companion compares `normalize_answer` forms: on word boundaries in
    languages written with spaces, as substrings in Chinese, Japanese, Korean and Persian (where particles and
    suffixes attach to the word), and never inside a longer number ("5" does not match "15").

    Example:
        >>> matches("I think it is kimchi.", ["kimchi"], "en")
        True
    """
    if isinstance(accepted, str):
        accepted = [accepted]
    normalized_prediction = normalize_answer(prediction, language)
    for answer in accepted:
        normalized = normalize_answer(answer, language)
        if not normalized:
            continue
        escaped = re.escape(normalized)
        if language in _SUBSTRING_LANGUAGES:
            pattern = rf"(?<!\d){escaped}(?!\d)" if normalized.isdigit() else escaped
        else:
            pattern = rf"(?<!\w){escaped}(?!\w)"
        if re.search(pattern, normalized_prediction):
            return True
    return False


# ---------------------------------------------------------------------------------------------------------------
# Localization: BLEnD


@dataclass(frozen=True)
class _Annotation:
    answers: tuple[str, ...]  # in the country's own language
    english: tuple[str, ...]  # BLEnD's English glosses
    count: int


def localization_items(
    source: str | Path | None,
    language: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    country: str | None = None,
    answers_in: str = "english",
    min_gold_votes: int = 2,
    max_distractors: int | None = None,
    split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
) -> tuple[list[Item], dict]:
    """BLEnD's everyday-culture questions in `language`, country mention removed, as localization items.

    Args:
        source: the hub id (None: "nayeon212/BLEnD", config "annotations"), or a local directory holding
            `<Country>_data.json` files (the GitHub layout `data/annotations/`; its parents `data/` and the
            repository root also work, as does the hub's `data/annotations_hf/`). A file is either a JSON object
            keyed by question ID or a list of records with an `ID` key.
        language: a language code with a BLEnD country in `LOCALIZATION_COUNTRIES`.
        limit: keep at most this many items, chosen by a seeded hash of the question ID.
        seed: the seed of that choice and of the order of the choices.
        country: another BLEnD country for the language (`"Mexico"` for Spanish); default: the language's own.
        answers_in: "english" (every choice is BLEnD's English gloss) or "query" (every choice in the query
            language where BLEnD provides it); see the module docstring for why English is the default.
        min_gold_votes: drop questions whose top local answer has fewer annotator votes than this.
        max_distractors: keep at most this many choices besides the gold (the US answer first), None for all.
        split_fractions: the fractions of the extract, validation and test splits.

    Returns:
        (items, counts). `counts` reports `total` questions in the country's file, `eligible` (passing every
        filter), `kept` (after `limit`), the drops (`dropped_no_answer`, `dropped_weak_gold`,
        `dropped_country_mention`, `dropped_too_few_choices`), `no_country_mention` (kept questions that never
        named the country), and how the US answer fared: `us_choice_present`, `us_same_as_local`, `us_missing`,
        `us_untranslatable`.
    """
    check_language(language)
    _check_fractions(split_fractions)
    if language not in LOCALIZATION_COUNTRIES:
        raise ValueError(
            f"no BLEnD country for language {language!r}; languages with one: {', '.join(LOCALIZATION_COUNTRIES)}"
        )
    country = country or LOCALIZATION_COUNTRIES[language][0]
    if country not in LOCALIZATION_COUNTRIES[language]:
        raise ValueError(
            f"{country!r} is not a BLEnD country for {language!r}; choose one of {LOCALIZATION_COUNTRIES[language]}"
        )
    if answers_in not in ANSWER_LANGUAGES:
        raise ValueError(f"answers_in must be one of {ANSWER_LANGUAGES}, not {answers_in!r}")

    records, where = _blend_records(_resolve_source(source, BLEND), needed=(country, US_COUNTRY))
    counts = {
        "language": language, "country": country, "answers_in": answers_in,
        "total": len(records[country]), "eligible": 0, "kept": 0,
        "dropped_no_answer": 0, "dropped_weak_gold": 0, "dropped_country_mention": 0, "dropped_too_few_choices": 0,
        "no_country_mention": 0,
        "us_choice_present": 0, "us_same_as_local": 0, "us_missing": 0, "us_untranslatable": 0,
    }
    items = []
    for question_id, record in records[country].items():
        item = _localization_item(
            question_id, record, language, country, records, where, counts,
            answers_in=answers_in, min_gold_votes=min_gold_votes, max_distractors=max_distractors, seed=seed,
            split_fractions=split_fractions,
        )
        if item is not None:
            items.append(item)
    counts["eligible"] = len(items)
    items = _take(items, limit, seed, key=lambda item: item.meta["question_id"])
    counts["kept"] = len(items)
    return items, counts


def _blend_records(source: str | Path, needed: Sequence[str]) -> tuple[dict[str, dict[str, dict]], dict[str, str]]:
    """({country: {question_id: record}}, {country: where it came from}) for every country in the source."""
    records: dict[str, dict[str, dict]] = {}
    where: dict[str, str] = {}
    if isinstance(source, str):
        countries_by_code = {code: name for name, code in BLEND_SPLIT_CODES.items()}
        for split, (_, rows) in _load_hub(source, BLEND_CONFIG, None).items():
            name = countries_by_code.get(split, split)
            where[name] = f"{source} (config {BLEND_CONFIG!r}, split {split!r})"
            records[name] = _records_by_id(rows, where[name])
    else:
        directory = _annotations_directory(source)
        for path in sorted(directory.glob("*_data.json")):
            name = path.name[: -len("_data.json")]
            where[name] = str(path)
            with open(path, encoding="utf-8") as handle:
                records[name] = _records_by_id(json.load(handle), str(path))
    for country in needed:
        if country not in records:
            expected = f"{country}_data.json" if not isinstance(source, str) else f"split {BLEND_SPLIT_CODES[country]!r}"
            raise DatasetLayoutError(
                f"{source}: no BLEnD annotations for {country} ({expected}); present: {', '.join(sorted(records))}"
            )
    return records, where


def _annotations_directory(source: Path) -> Path:
    if source.is_file():
        raise DatasetLayoutError(f"{source}: give the directory that holds <Country>_data.json files, not one file")
    candidates = [
        source, source / "annotations", source / "data" / "annotations",
        source / "annotations_hf", source / "data" / "annotations_hf",
    ]
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*_data.json")):
            return candidate
    raise DatasetLayoutError(
        f"{source}: no <Country>_data.json files here or in annotations/ or data/annotations/ "
        f"(the layout of github.com/nlee0212/BLEnD)"
    )


def _records_by_id(data, where: str) -> dict[str, dict]:
    if isinstance(data, dict):
        return {str(question_id): record for question_id, record in data.items()}
    if isinstance(data, list):
        records = {}
        for record in data:
            if "ID" not in record:
                raise DatasetLayoutError(f"{where}: a record lacks the key 'ID' (keys: {', '.join(record)})")
            records[str(record["ID"])] = record
        return records
    raise DatasetLayoutError(f"{where}: expected a JSON object keyed by question ID or a list of records")


def _annotations(record: dict, where: str, question_id: str) -> list[_Annotation]:
    """The answered annotations of one question, most votes first (stable: BLEnD's order breaks ties)."""
    for key in ("question", "annotations"):
        if key not in record:
            raise DatasetLayoutError(f"{where}: question {question_id!r}: missing key {key!r}")
    annotations = []
    for annotation in record["annotations"] or []:
        for key in ("answers", "en_answers", "count"):
            if key not in annotation:
                raise DatasetLayoutError(f"{where}: question {question_id!r}: an annotation lacks the key {key!r}")
        answers = tuple(str(answer).strip() for answer in annotation["answers"] or [] if str(answer).strip())
        english = tuple(str(answer).strip() for answer in annotation["en_answers"] or [] if str(answer).strip())
        if answers and int(annotation["count"]) > 0:
            annotations.append(_Annotation(answers, english or answers, int(annotation["count"])))
    return sorted(annotations, key=lambda annotation: -annotation.count)


class _Synonyms:
    """English glosses that are one answer: BLEnD's translators listed them together somewhere in the question."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, keys: Iterable[str]) -> None:
        keys = [key for key in keys if key]
        for key in keys[1:]:
            self.parent[self.find(key)] = self.find(keys[0])

    def classes(self, glosses: Iterable[str]) -> frozenset[str]:
        return frozenset(self.find(key) for key in map(_english_key, glosses) if key)


def _english_key(gloss: str) -> str:
    return normalize_answer(gloss, ENGLISH)


def _localization_item(
    question_id: str, record: dict, language: str, country: str, records: dict[str, dict[str, dict]],
    where: dict[str, str], counts: dict, *, answers_in: str, min_gold_votes: int, max_distractors: int | None,
    seed: int, split_fractions: Sequence[float],
) -> Item | None:
    local = _annotations(record, where[country], question_id)
    if not local:
        counts["dropped_no_answer"] += 1
        return None
    gold = local[0]
    if gold.count < min_gold_votes:
        counts["dropped_weak_gold"] += 1
        return None
    question = remove_country_mention(str(record["question"]), country)
    if question is None:
        counts["dropped_country_mention"] += 1
        return None

    # Every country's annotations of this question, to learn which English glosses are one answer.
    per_country = {country: local}
    for other, other_records in records.items():
        if other != country and question_id in other_records:
            per_country[other] = _annotations(other_records[question_id], where[other], question_id)
    synonyms = _Synonyms()
    for annotations in per_country.values():
        for annotation in annotations:
            synonyms.join([_english_key(gloss) for gloss in annotation.english])

    tied_top = set().union(*(synonyms.classes(a.english) for a in local if a.count == gold.count))
    translations = _query_language_renderings(language, country, per_country, synonyms) if answers_in == "query" else []

    def render(annotation: _Annotation, of_country: str) -> str | None:
        if answers_in == "english":
            return annotation.english[0]
        if BLEND_COUNTRY_LANGUAGES.get(of_country) == language:
            return annotation.answers[0]
        classes = synonyms.classes(annotation.english)
        return next((text for text_classes, text in translations if text_classes & classes), None)

    gold_text = gold.english[0] if answers_in == "english" else gold.answers[0]
    choices: list[dict] = [_choice(gold_text, synonyms.classes(gold.english), country, language)]
    # The US answer's fate: "choice_present", "same_as_local", "untranslatable" or "missing" (no US answer).
    us_state = "same_as_local" if country == US_COUNTRY else "missing"
    # The US first, so that `max_distractors` always keeps it; then the others in a seeded order.
    others = sorted(
        (name for name in per_country if name not in (country, US_COUNTRY)),
        key=lambda name: _unit_hash(f"distractor:{seed}:{question_id}:{name}"),
    )
    candidates = ([US_COUNTRY] if country != US_COUNTRY and US_COUNTRY in per_country else []) + others
    for other in candidates:
        if not per_country[other]:
            continue  # that country's annotators gave no answer (e.g. "not applicable")
        top = per_country[other][0]
        is_us = other == US_COUNTRY
        classes = synonyms.classes(top.english)
        if classes & tied_top:  # a second right answer, not a distractor
            us_state = "same_as_local" if is_us else us_state
            continue
        text = render(top, other)
        if text is None:
            us_state = "untranslatable" if is_us else us_state
            continue
        candidate = _choice(text, classes, other, language)
        existing = next(
            (choice for choice in choices if choice["classes"] & classes or choice["key"] == candidate["key"]), None
        )
        if existing is choices[0]:  # renders exactly like the gold
            us_state = "same_as_local" if is_us else us_state
            continue
        if existing is not None:
            existing["countries"].append(other)
            existing["classes"] = existing["classes"] | classes
        elif max_distractors is None or len(choices) - 1 < max_distractors:
            choices.append(candidate)
        else:
            continue
        us_state = "choice_present" if is_us else us_state

    if len(choices) < 2:
        counts["dropped_too_few_choices"] += 1
        return None
    if question == str(record["question"]).strip():
        counts["no_country_mention"] += 1
    counts[f"us_{us_state}"] += 1

    # Shuffle the choices per item so that the gold's position carries no signal for generative multiple choice.
    order = sorted(range(len(choices)), key=lambda index: _unit_hash(f"order:{seed}:{question_id}:{index}"))
    ordered = [choices[index] for index in order]
    us_choice = next((i for i, choice in enumerate(ordered) if US_COUNTRY in choice["countries"]), None)
    parallel = {}
    english_question = remove_english_country_mention(str(record.get("en_question") or ""), country)
    if english_question:
        parallel["english_prompt"] = LOCALIZATION_TEMPLATE.format(question=english_question)
    if question != str(record["question"]).strip():
        parallel["explicit_prompt"] = LOCALIZATION_TEMPLATE.format(question=str(record["question"]).strip())
    return Item(
        task="localization",
        language=language,
        prompt=LOCALIZATION_TEMPLATE.format(question=question),
        choices=tuple(f" {choice['text']}" for choice in ordered),
        gold=order.index(0),
        us_choice=us_choice if us_state == "choice_present" else None,
        id=f"{language}:{country}:{question_id}",
        split=assign_split(question_id, split_fractions),
        meta={
            "question_id": question_id,
            "country": country,
            "original_question": str(record["question"]),
            "en_question": str(record.get("en_question", "")),
            "choice_countries": [choice["countries"] for choice in ordered],
            # votes each choice got from the local annotators (the gold's are the most)
            "local_votes": [
                max((a.count for a in local if synonyms.classes(a.english) & choice["classes"]), default=0)
                for choice in ordered
            ],
            # every local and US answer, in both languages, for generative scoring with `matches`
            "local_answers": sorted({text for a in local for text in a.answers + a.english}),
            "us_answers": sorted({text for a in per_country.get(US_COUNTRY, [])[:1] for text in a.answers + a.english}),
            **parallel,
        },
    )


def _choice(text: str, classes: frozenset[str], country: str, language: str) -> dict:
    return {"text": text, "key": normalize_answer(text, language), "classes": classes, "countries": [country]}


def _query_language_renderings(
    language: str, country: str, per_country: dict[str, list[_Annotation]], synonyms: _Synonyms
) -> list[tuple[frozenset[str], str]]:
    """(English answer classes, text in the query language) from every annotation written in that language.

    The target country's annotations come first (most votes first), then other countries sharing the language.
    """
    sources = [country] + sorted(name for name in per_country if name != country)
    return [
        (synonyms.classes(annotation.english), annotation.answers[0])
        for name in sources
        if BLEND_COUNTRY_LANGUAGES.get(name) == language
        for annotation in per_country[name]
    ]
