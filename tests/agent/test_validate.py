"""Names and phones a person reads: no trailing newline, no invisible or reordering text."""

from __future__ import annotations

import pytest

from jasiyo.agent import validate
from jasiyo.errors import ValidationError

SNEAKY = ["\n", "\r", "\u202e", "\u2066", "\u200b", "\u200d", "\u00ad", "\ufeff", "\u2028", "\x85", "\x1b"]


@pytest.mark.parametrize("tail", SNEAKY)
def test_usernames_and_names_refuse_hidden_characters(tail: str) -> None:
    with pytest.raises(ValidationError):
        validate.username("mallory" + tail)
    with pytest.raises(ValidationError):
        validate.name("home" + tail, "plan name")
    with pytest.raises(ValidationError):
        validate.text("Mallory" + tail + "Smith", "name")
    with pytest.raises(ValidationError):
        validate.text("Mallory Smith" + tail, "name")
    with pytest.raises(ValidationError):
        validate.phone("+254712345678" + tail)


def test_digits_of_other_scripts_are_not_a_phone() -> None:
    with pytest.raises(ValidationError):
        validate.phone("+٢٥٤٧١٢٣٤٥٦٧٨")


def test_plain_values_still_pass() -> None:
    assert validate.username("mallory") == "mallory"
    assert validate.phone("+254 712 345 678") == "+254712345678"
    assert validate.text("  Wanjiru Kamau–Otieno  ", "name") == "Wanjiru Kamau–Otieno"
    assert validate.text("Chidi Ọkọnkwọ", "name") == "Chidi Ọkọnkwọ"


def test_error_names_the_hidden_character() -> None:
    with pytest.raises(ValidationError, match="U\\+202E"):
        validate.text("evil\u202egnp.exe", "name")
