"""GSM-7 versus UCS-2: how many characters and how many billed parts a text is.

A text made only of the GSM 03.38 default alphabet (plus its extension table, whose
characters take two septets) goes as GSM-7: 160 septets in one part, 153 per part when
concatenated (the user data header takes 7). Anything else (an emoji, a curly quote, most
non-Latin letters) makes the whole message UCS-2: 70 UTF-16 units in one part, 67 per part.
An escape pair or a surrogate pair is never split between parts, as handsets require.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    length: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int
    per_part: int  # capacity of each part at this length (160/153, 70/67)


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text)


def _pack(units: list[int], single: int, multi: int) -> int:
    """Parts needed for items of the given widths, never splitting one item."""
    total = sum(units)
    if total <= single:
        return 1
    parts, room = 1, multi
    for w in units:
        if w > room:
            parts, room = parts + 1, multi
        room -= w
    return parts


def segments(text: str) -> Segments:
    """The encoding, length and part count of ``text`` (an empty text is one part)."""
    if is_gsm7(text):
        widths = [2 if c in GSM7_EXTENDED else 1 for c in text]
        parts = _pack(widths, 160, 153)
        return Segments("GSM-7", sum(widths), parts, 160 if parts == 1 else 153)
    widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
    parts = _pack(widths, 70, 67)
    return Segments("UCS-2", sum(widths), parts, 70 if parts == 1 else 67)
