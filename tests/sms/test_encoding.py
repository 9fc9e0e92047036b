"""GSM-7 versus UCS-2 length and part counting: what the customer is billed for."""

from __future__ import annotations

import pytest

from jasiyo.sms.encoding import is_gsm7, segments


@pytest.mark.parametrize(
    ("text", "encoding", "length", "parts"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 70, "GSM-7", 70, 1),
        ("ü" * 70, "GSM-7", 70, 1),  # ü is in the GSM-7 default alphabet
        ("ā" * 70, "UCS-2", 70, 1),  # ā is not
        ("ā" * 71, "UCS-2", 71, 2),
        ("ā" * 134, "UCS-2", 134, 2),
        ("ā" * 135, "UCS-2", 135, 3),
        ("Asante 🙏", "UCS-2", 9, 1),  # an emoji is a surrogate pair: two UTF-16 units
    ],
)
def test_lengths_and_parts(text: str, encoding: str, length: int, parts: int) -> None:
    seg = segments(text)
    assert (seg.encoding, seg.length, seg.parts) == (encoding, length, parts)


def test_one_curly_quote_makes_the_whole_message_ucs2() -> None:
    plain = "Your internet expires tomorrow. Pay now to stay connected, it's quick." * 2
    curly = plain.replace("'", "\u2019")
    assert segments(plain).encoding == "GSM-7" and segments(plain).parts == 1
    assert segments(curly).encoding == "UCS-2" and segments(curly).parts == 3


def test_an_escape_pair_is_never_split_between_parts() -> None:
    # 152 plain characters then a euro sign: the pair does not fit the 153 septets of the
    # first part, so it starts the second; the total is still 154 septets.
    text = "a" * 152 + "€" + "b" * 150
    seg = segments(text)
    assert seg.length == 304
    assert seg.parts == 2
    assert segments("a" * 152 + "€" + "b" * 152).parts == 3


def test_swahili_templates_are_gsm7() -> None:
    from jasiyo.sms.templates import DEFAULTS

    for key, text in DEFAULTS.items():
        assert is_gsm7(text), key
