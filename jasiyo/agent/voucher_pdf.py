"""A printable A4 sheet of vouchers (fpdf2, as the invoices): cards to cut and sell.

Each card shows the business, the code (large, in groups of five), the package (plan,
price, period, data), the use-by date, how to use it and the number to call for help.
3 columns x 8 rows per page.
Times are in the tenant's time zone (``[billing] timezone``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from jasiyo.agent.vouchers import Voucher, display
from jasiyo.config import Config

if TYPE_CHECKING:
    from fpdf import FPDF

COLS, ROWS = 3, 8
_MARGIN, _GAP = 8.0, 2.0


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def _period(period: str) -> str:
    digits = period.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = period[len(digits) :]
    names = {"min": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "m": "month"}
    word = names.get(unit, unit)
    return f"{digits} {word}{'' if digits == '1' else 's'}"


def _size(n: int) -> str:
    for unit, f in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if n >= f:
            return f"{n / f:g} {unit}"
    return f"{n} bytes"


def _fit(pdf: FPDF, text: str, family: str, style: str, size: float, room: float) -> str:
    """Set the largest font from ``size`` down to 5 pt at which ``text`` fits ``room`` mm;
    if even 5 pt is too wide, the text is cut with "..." so nothing runs off the card."""
    text = _latin1(text)
    while size > 5 and pdf.get_string_width(text) > room:
        size = max(5.0, size - 0.5)
        pdf.set_font(family, style, size)
    while len(text) > 1 and pdf.get_string_width(text) > room:
        text = text[:-4] + "..."
    return text


def card_lines(v: Voucher, use_by: str | None, support_phone: str = "") -> list[str]:
    """The small print of one card (``support_phone``: ``[agent] support_phone``)."""
    package = f"{v.plan}: {v.price}, {_period(v.period)}"
    if v.data_bytes:
        package += f" or {_size(v.data_bytes)}"
    lines = [package]
    if use_by:
        lines.append(f"Use by {use_by}. Starts at first login.")
    lines.append("Log in with this code as username and password.")
    if support_phone:
        lines.append(f"Help: {support_phone}")
    return lines


def sheet(cfg: Config, items: list[Voucher]) -> bytes:
    """The PDF of ``items`` as cards on A4 pages."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_compression(True)  # 10,000 cards: keep the file small
    pdf.set_creator("Jasiyo")
    pdf.set_title("Vouchers")
    pdf.set_auto_page_break(False)
    tz = ZoneInfo(cfg.billing.timezone)
    business = cfg.agent.business_name or cfg.agent.name or "Wi-Fi"
    width = (210 - 2 * _MARGIN - (COLS - 1) * _GAP) / COLS
    height = (297 - 2 * _MARGIN - (ROWS - 1) * _GAP) / ROWS
    room = width - 4  # inside the card's 2 mm padding
    per_page = COLS * ROWS
    for i, v in enumerate(items):
        if i % per_page == 0:
            pdf.add_page()
        slot = i % per_page
        x = _MARGIN + (slot % COLS) * (width + _GAP)
        y = _MARGIN + (slot // COLS) * (height + _GAP)
        pdf.set_draw_color(150, 150, 150)
        pdf.set_line_width(0.2)
        pdf.rect(x, y, width, height)
        pdf.set_xy(x + 2, y + 2)
        pdf.set_font("Helvetica", "B", 8)
        pdf.cell(width - 4, 4, _fit(pdf, business, "Helvetica", "B", 8, room), new_x="LEFT", new_y="NEXT")
        pdf.set_font("Courier", "B", 15)
        pdf.cell(width - 4, 8, display(v.code), align="C", new_x="LEFT", new_y="NEXT")
        use_by = datetime.fromtimestamp(v.valid_until, tz).strftime("%Y-%m-%d") if v.valid_until else None
        for line in card_lines(v, use_by, cfg.agent.support_phone):
            pdf.set_font("Helvetica", "", 7)
            pdf.cell(width - 4, 3.4, _fit(pdf, line, "Helvetica", "", 7, room), new_x="LEFT", new_y="NEXT")
    return bytes(pdf.output())


def write_sheet(cfg: Config, items: list[Voucher], path: Path) -> int:
    """Write the sheet to ``path``; returns its size in bytes."""
    data = sheet(cfg, items)
    path.write_bytes(data)
    return len(data)


__all__ = ["sheet", "write_sheet"]
