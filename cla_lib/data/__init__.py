"""Real data as scored items: Global-MMLU for transfer (`global_mmlu`), BLEnD for localization (`blend`).

Both loaders return `cla_lib.core.items.Item`s, split deterministically into `extract` (to build steering vectors),
`validation` (to choose layers and strengths) and `test` (to report), by hashing the language-independent question
key (`sources.assign_split`): a question lands in the same split in every language. How the items are built — the
templates, the choices of a BLEnD item, the country-mention rules, answer matching — is written up in
`docs/data.md`.

`SMOKE_TRANSFER` and `SMOKE_LOCALIZATION` are a smoke set in both data sets' real layouts (24 questions each, written
for this project by tests/fixtures/make_smoke_set.py): enough for every split to hold items, so that every chapter
runs on a real model anywhere (the pretrained preset, chapter 5); far too few for a number about the paper.
"""

from pathlib import Path

from cla_lib.data.sources import (
    GLOBAL_MMLU, GLOBAL_MMLU_LITE, BLEND, BLEND_CONFIG, DEFAULT_SPLIT_FRACTIONS, DatasetLayoutError,
    DatasetUnavailableError, HUB_REVISIONS, assign_split, data_revision
)
from cla_lib.data.global_mmlu import GLOBAL_MMLU_COLUMNS, LETTERS, TRANSFER_CHOICES, TRANSFER_TEMPLATE, transfer_items
from cla_lib.data.mentions import (
    CountryMention, COUNTRY_MENTIONS, remove_country_mention, remove_english_country_mention
)
from cla_lib.data.matching import normalize_answer, matches
from cla_lib.data.blend import (
    LOCALIZATION_TEMPLATE, ANSWER_LANGUAGES, BLEND_SPLIT_CODES, BLEND_COUNTRY_LANGUAGES, US_COUNTRY,
    LOCALIZATION_COUNTRIES, localization_items
)

SMOKE_TRANSFER = Path(__file__).parent / "smoke" / "global_mmlu"
SMOKE_LOCALIZATION = Path(__file__).parent / "smoke" / "blend"
