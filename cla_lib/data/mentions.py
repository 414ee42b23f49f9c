"""Country mentions: the rules that remove a country's name from a BLEnD question (see docs/data.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass

US_COUNTRY = "US"


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
