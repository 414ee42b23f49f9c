"""The languages of the companion and the country each one stands for.

The paper's six languages are not recoverable from its public record; this companion's default six are
es, zh, ko, id, el, fa (all in both Global-MMLU and BLEnD). English is the pivot: facts of the *transfer*
set are stated only in English, and the US answer is the "English-centric" answer a culturally erased model gives.
Language stands in for culture here (the reviewers' critique): each language is mapped to one country.
"""

from __future__ import annotations

from dataclasses import dataclass

ENGLISH = "en"
DEFAULT_LANGUAGES: tuple[str, ...] = ("es", "zh", "ko", "id", "el", "fa")


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    country: str  # ISO 3166 alpha-2 of the country this language stands for
    country_name: str  # English name of that country
    blend_country: str  # BLEnD's country name for the country


LANGUAGES: dict[str, Language] = {
    language.code: language
    for language in (
        Language("en", "English", "US", "the United States", "US"),
        Language("es", "Spanish", "ES", "Spain", "Spain"),
        Language("zh", "Chinese", "CN", "China", "China"),
        Language("ko", "Korean", "KR", "South Korea", "South_Korea"),
        Language("id", "Indonesian", "ID", "Indonesia", "Indonesia"),
        Language("el", "Greek", "GR", "Greece", "Greece"),
        Language("fa", "Persian", "IR", "Iran", "Iran"),
    )
}


class UnknownLanguageError(ValueError):
    """A language code this companion does not know."""


def check_language(code: str, allow_english: bool = True) -> str:
    """Return `code` if it is a known language, else raise a clear error naming the known ones."""
    known = [c for c in LANGUAGES if allow_english or c != ENGLISH]
    if code not in known:
        raise UnknownLanguageError(
            f"unknown language {code!r}; known languages: {', '.join(known)}"
            + ("" if allow_english else " (English is the pivot, not a target)")
        )
    return code


def resolve_languages(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Turn a user's language choice into a list of target languages.

    Accepts "all" (or None) for the default six, one code ("ko"), a comma-separated string ("ko,es") or a list.
    """
    if spec is None or spec == "all":
        return list(DEFAULT_LANGUAGES)
    codes = spec.split(",") if isinstance(spec, str) else list(spec)
    codes = [code.strip() for code in codes if code.strip()]
    if not codes:
        raise UnknownLanguageError("no language given; use a code such as 'ko' or 'all'")
    return [check_language(code, allow_english=False) for code in codes]
