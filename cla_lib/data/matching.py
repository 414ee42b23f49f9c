"""Matching a generated short answer against annotators' answers: normalized containment."""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable


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
