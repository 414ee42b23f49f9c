"""Tests for cla_lib.core.languages: turning a user's language choice into target languages."""

from __future__ import annotations

import pytest

from cla_lib.core.languages import (
    DEFAULT_LANGUAGES,
    ENGLISH,
    LANGUAGES,
    UnknownLanguageError,
    check_language,
    resolve_languages,
)


def test_all_and_none_resolve_to_the_six_default_languages_in_order():
    assert resolve_languages("all") == ["es", "zh", "ko", "id", "el", "fa"]
    assert resolve_languages(None) == list(DEFAULT_LANGUAGES)


def test_one_code_resolves_to_a_list_of_that_code():
    assert resolve_languages("ko") == ["ko"]


def test_comma_separated_codes_keep_their_order_and_ignore_spaces():
    assert resolve_languages("ko,es") == ["ko", "es"]
    assert resolve_languages(" fa , el ") == ["fa", "el"]


def test_a_list_or_tuple_of_codes_resolves_to_the_same_codes():
    assert resolve_languages(["zh", "id"]) == ["zh", "id"]
    assert resolve_languages(("el",)) == ["el"]


def test_unknown_language_error_names_the_code_and_every_known_target():
    with pytest.raises(UnknownLanguageError) as raised:
        resolve_languages("ko,xx")
    message = str(raised.value)
    assert "'xx'" in message
    assert all(code in message for code in DEFAULT_LANGUAGES)
    assert isinstance(raised.value, ValueError)  # the CLI turns ValueErrors into a clear message


def test_english_is_not_a_target_language():
    with pytest.raises(UnknownLanguageError, match="English is the pivot"):
        resolve_languages("en")
    assert ENGLISH not in resolve_languages("all")


def test_english_is_a_known_language_where_it_is_allowed():
    assert check_language("en") == "en"
    with pytest.raises(UnknownLanguageError):
        check_language("en", allow_english=False)


def test_an_empty_choice_is_an_error_not_an_empty_list():
    with pytest.raises(UnknownLanguageError, match="no language given"):
        resolve_languages(" , ")


def test_every_language_stands_for_a_country():
    assert set(LANGUAGES) == {ENGLISH, *DEFAULT_LANGUAGES}
    assert LANGUAGES["ko"].country == "KR" and LANGUAGES["en"].country == "US"
    assert len({language.country for language in LANGUAGES.values()}) == len(LANGUAGES)
