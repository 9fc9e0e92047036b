"""PDF documents a customer or an accountant keeps: tax invoice, credit note, receipt.

Made with fpdf2 (pure Python, maintained, no system libraries). The core PDF fonts cover
Latin-1 only; other characters in a customer's name are shown as ``?`` rather than
failing the document. Times are in the tenant's time zone (``[billing] timezone``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jasiyo.agent import credit_notes, invoices, ledger
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import BillingError, NotFound
from jasiyo.money import format_money


def _latin1(text: Any) -> str:
    return str(text if text is not None else "").encode("latin-1", "replace").decode("latin-1")


class _Doc:
    def __init__(self, cfg: Config, title: str, number: str) -> None:
        from fpdf import FPDF

        self.cfg = cfg
        self.tz = ZoneInfo(cfg.billing.timezone)
        self.pdf = FPDF(format="A4")
        # Uncompressed: a few kilobytes, and the text stays searchable by simple tools.
        self.pdf.set_compression(False)
        self.pdf.set_title(_latin1(f"{title} {number}"))
        self.pdf.set_creator("Jasiyo")
        self.pdf.add_page()
        self.pdf.set_auto_page_break(True, margin=15)
        a = cfg.agent
        self.pdf.set_font("Helvetica", "B", 14)
        self.line(a.business_name or a.name or "Internet service provider")
        self.pdf.set_font("Helvetica", "", 10)
        if a.business_address:
            self.line(a.business_address)
        if a.tax_pin:
            self.line(f"Tax PIN: {a.tax_pin}")
        self.pdf.ln(4)
        self.pdf.set_font("Helvetica", "B", 16)
        self.line(f"{title}  {number}")
        self.pdf.set_font("Helvetica", "", 10)
        self.pdf.ln(2)

    def when(self, ts: float | None) -> str:
        return "-" if ts is None else datetime.fromtimestamp(ts, self.tz).strftime("%Y-%m-%d %H:%M")

    def day(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).strftime("%Y-%m-%d")

    def line(self, text: str) -> None:
        self.pdf.cell(0, 6, _latin1(text), new_x="LMARGIN", new_y="NEXT")

    def pair(self, key: str, value: Any) -> None:
        self.pdf.cell(45, 6, _latin1(key))
        self.pdf.cell(0, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")

    def customer(self, store: Store, username: str, pin: str | None) -> None:
        sub = ledger.subscriber_row(store, username)
        self.pair("Customer", sub["name"] or username)
        self.pair("Account", username)
        if pin:
            self.pair("Customer tax PIN", pin)

    def table(self, rows: list[tuple[str, str]], bold_last: bool = True) -> None:
        self.pdf.ln(3)
        for i, (label, amount) in enumerate(rows):
            last = bold_last and i == len(rows) - 1
            self.pdf.set_font("Helvetica", "B" if last else "", 10)
            self.pdf.cell(130, 7, _latin1(label), border="B")
            self.pdf.cell(0, 7, _latin1(amount), border="B", align="R", new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font("Helvetica", "", 10)

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def _invoice(store: Store, cfg: Config, inv: invoices.Invoice) -> bytes:
    title = "TAX INVOICE / RECEIPT" if inv.status == "paid" else "TAX INVOICE"
    d = _Doc(cfg, title, inv.number)
    d.pair("Issued", d.when(inv.issued_at))
    d.pair("Due", d.when(inv.due_at))
    d.customer(store, inv.username, inv.customer_tax_pin)
    rate = store.scalar("SELECT tax_rate_bp FROM plans WHERE name = ?", (inv.plan,))
    m = inv.currency
    rows = [
        (
            f"{inv.plan}, {d.day(inv.cycle_start)} to {d.day(inv.cycle_end)}",
            format_money(inv.amount_minor, m),
        ),
        (
            f"VAT {((rate or 0) / 100):g}%" + (" (included in the price)" if inv.tax_inclusive else ""),
            format_money(inv.tax_minor, m),
        ),
    ]
    if inv.carried_minor:
        rows.append(("Carried from earlier plan changes", format_money(inv.carried_minor, m)))
    if inv.credited_minor:
        rows.append(("Credited (credit notes)", format_money(-inv.credited_minor, m)))
    rows.append(("Total", format_money(inv.total_minor - inv.credited_minor, m)))
    d.table(rows)
    d.pdf.ln(4)
    if inv.status == "paid":
        d.line(f"PAID on {d.when(inv.paid_at)}. Thank you.")
    elif inv.status == "void":
        d.line(f"VOID: {inv.void_reason or 'issued in error'}. Nothing is owed on this invoice.")
    else:
        d.line(f"Please pay by {d.when(inv.due_at)}, quoting account {inv.username}.")
    return d.output()


def _credit_note(store: Store, cfg: Config, note: credit_notes.CreditNote) -> bytes:
    d = _Doc(cfg, "CREDIT NOTE", note.number)
    d.pair("Issued", d.when(note.issued_at))
    d.pair("Against invoice", note.invoice_number)
    inv = invoices.get(store, note.invoice_number)
    d.customer(store, note.username, inv.customer_tax_pin)
    m = note.currency
    d.table(
        [
            (f"Credit: {note.reason}", format_money(note.amount_minor - note.tax_minor, m)),
            ("VAT", format_money(note.tax_minor, m)),
            ("Total credited", format_money(note.amount_minor, m)),
        ]
    )
    return d.output()


def _receipt(store: Store, cfg: Config, reference: str) -> bytes:
    row = store.one(
        "SELECT p.*, s.username FROM payments p JOIN subscribers s "
        "ON s.id = p.subscriber_id WHERE p.reference = ? COLLATE NOCASE",
        (reference,),
    )
    if row is None:
        raise NotFound(f"no invoice, credit note or payment numbered {reference!r}")
    d = _Doc(cfg, "RECEIPT", row["reference"])
    d.pair("Received", d.when(row["received_at"]))
    d.pair("Method", row["method"])
    d.customer(store, row["username"], None)
    d.table([("Amount received", format_money(row["amount_minor"], row["currency"]))])
    return d.output()


def render(store: Store, cfg: Config, number: str) -> tuple[str, bytes]:
    """(kind, PDF bytes) for an invoice number, a credit-note number or a payment reference."""
    try:
        import fpdf  # noqa: F401
    except ImportError:  # pragma: no cover - a broken install
        raise BillingError("PDF output needs the fpdf2 package (pip install fpdf2)") from None
    try:
        return "invoice", _invoice(store, cfg, invoices.get(store, number))
    except NotFound:
        pass
    try:
        return "credit note", _credit_note(store, cfg, credit_notes.get(store, number))
    except NotFound:
        pass
    return "receipt", _receipt(store, cfg, number)
