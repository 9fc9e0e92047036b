"""Credit notes and voided invoices: an issued invoice is never edited or deleted.

An invoice issued in error is *voided*: a credit note for its whole charge is issued and
the invoice is marked ``void`` (it stays, with its number, so the series has no gap). A
partial correction is a *credit note* for part of an invoice's charge. Both post a
``credit_note`` ledger entry (in the customer's favour) referenced by the note's number,
``CN-<POP>-<YEAR>-000001``, and then work like money coming in: a postpaid subscriber's
open invoices that the balance now covers are settled, and one suspended for non-payment
is restored. A prepaid wallet credit stays in the wallet (it buys no period by itself).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jasiyo.agent import invoices, ledger
from jasiyo.agent.cycles import round_div
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import NotFound, ValidationError
from jasiyo.money import format_money


@dataclass(frozen=True, slots=True)
class CreditNote:
    number: str
    invoice_number: str
    username: str
    amount_minor: int
    tax_minor: int
    currency: str
    reason: str
    issued_at: float
    issued_by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _issue(
    store: Store, cfg: Config, inv: invoices.Invoice, amount: int, reason: str, actor: str
) -> CreditNote:
    sub = ledger.subscriber_row(store, inv.username)
    now = store.now()
    gross = inv.amount_minor + inv.tax_minor
    tax = round_div(amount * inv.tax_minor, gross) if gross else 0
    note = CreditNote(
        number=invoices.next_number(store, cfg, "CN", now),
        invoice_number=inv.number,
        username=inv.username,
        amount_minor=amount,
        tax_minor=tax,
        currency=inv.currency,
        reason=reason,
        issued_at=now,
        issued_by=actor,
    )
    store.execute(
        "INSERT INTO credit_notes (number, invoice_number, subscriber_id, amount_minor, "
        "tax_minor, currency, reason, issued_at, issued_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (note.number, inv.number, sub["id"], amount, tax, inv.currency, reason, now, actor),
    )
    store.execute(
        "UPDATE invoices SET credited_minor = credited_minor + ? WHERE number = ?", (amount, inv.number)
    )
    store.emit("credit_note", note.number, "append", note.to_dict())
    store.emit("invoice", inv.number, "upsert", {"credited_minor": inv.credited_minor + amount})
    ledger.post(store, sub, "credit_note", amount, note.number, f"credit note on {inv.number}: {reason}", now)
    store.audit(
        actor,
        "invoice.credit_note",
        f"invoice:{inv.number}",
        note=note.number,
        amount=format_money(amount, inv.currency),
        reason=reason,
    )
    return note


def _after_credit(store: Store, cfg: Config, username: str) -> None:
    from jasiyo.agent import billing

    sub = ledger.subscriber_row(store, username)
    if sub["billing"] == "postpaid":
        now = store.now()
        billing.advance(store, cfg, sub["id"], now)
        billing.apply_payment(store, cfg, sub["id"], now)
        billing.advance(store, cfg, sub["id"], now)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("a credit note needs a reason (--reason)")
    return reason


def credit(store: Store, cfg: Config, number: str, amount_minor: int, reason: str, actor: str) -> CreditNote:
    """Credit part (or all) of an invoice's charge. One transaction; audited."""
    reason = _reason(reason)
    if amount_minor <= 0:
        raise ValidationError("bad amount: must be above zero")
    with store.transaction():
        inv = invoices.get(store, number)
        if inv.status == "void":
            raise ValidationError(f"invoice {number} is void; nothing is left to credit")
        left = inv.charge_minor - inv.credited_minor
        if amount_minor > left:
            raise ValidationError(
                f"credit of {format_money(amount_minor, inv.currency)} is more than is left to "
                f"credit on {number} ({format_money(left, inv.currency)})"
            )
        note = _issue(store, cfg, inv, amount_minor, reason, actor)
        _after_credit(store, cfg, inv.username)
    return note


def void(store: Store, cfg: Config, number: str, reason: str, actor: str) -> CreditNote | None:
    """Void an open invoice issued in error: a credit note for what is left of its charge.

    A paid invoice cannot be voided (the time it bought was had); credit it instead.
    Returns the credit note (None when earlier notes had already credited all of it).
    """
    reason = _reason(reason)
    with store.transaction():
        inv = invoices.get(store, number)
        if inv.status == "void":
            raise ValidationError(f"invoice {number} is already void")
        if inv.status != "open":
            raise ValidationError(
                f"invoice {number} is {inv.status}: only an open invoice can be voided; "
                f"give money back with `jasiyo invoice credit-note {number} AMOUNT --reason ...`"
            )
        left = inv.charge_minor - inv.credited_minor
        note = _issue(store, cfg, inv, left, reason, actor) if left > 0 else None
        store.execute(
            "UPDATE invoices SET status = 'void', void_reason = ? WHERE number = ?", (reason, number)
        )
        store.emit("invoice", number, "upsert", {"status": "void", "void_reason": reason})
        store.audit(actor, "invoice.void", f"invoice:{number}", reason=reason)
        _after_credit(store, cfg, inv.username)
    return note


def list_(store: Store, *, invoice: str | None = None, limit: int = 1000) -> list[CreditNote]:
    where, params = ("WHERE c.invoice_number = ? ", (invoice,)) if invoice else ("", ())
    rows = store.all(
        "SELECT c.*, s.username FROM credit_notes c JOIN subscribers s ON s.id = c.subscriber_id "
        f"{where}ORDER BY c.id DESC LIMIT ?",
        (*params, limit),
    )
    return [_from_row(r) for r in rows]


def _from_row(r: dict[str, Any]) -> CreditNote:
    return CreditNote(
        r["number"],
        r["invoice_number"],
        r["username"],
        r["amount_minor"],
        r["tax_minor"],
        r["currency"],
        r["reason"],
        r["issued_at"],
        r["issued_by"],
    )


def get(store: Store, number: str) -> CreditNote:
    row = store.one(
        "SELECT c.*, s.username FROM credit_notes c JOIN subscribers s "
        "ON s.id = c.subscriber_id WHERE c.number = ?",
        (number,),
    )
    if row is None:
        raise NotFound(f"no credit note numbered {number!r}")
    return _from_row(row)
