"""The ledger: every movement of money, one row each, never updated. Balances are sums.

Sign convention: positive is in the customer's favour (a payment, a credit), negative is
what they owe (a charge). ``balance > 0`` is wallet credit, ``balance < 0`` is debt.

Every entry has a ``(kind, reference)`` that is unique in the store and an event with
``op="append"`` and key ``"{kind}:{reference}"``, so sync replays it exactly once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jasiyo.agent.store import Row, Store
from jasiyo.errors import BillingError, NotFound, ValidationError
from jasiyo.money import format_money

KINDS = ("payment", "charge", "credit", "refund", "proration", "credit_note")


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger row as the CLI and sync see it (natural keys: username, not ids)."""

    username: str
    at: float
    kind: str
    amount_minor: int
    currency: str
    reference: str
    description: str
    balance_minor: int | None = None  # running balance, in statements only

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.reference}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["balance_minor"] is None:
            d.pop("balance_minor")
        return d


def subscriber_row(store: Store, username: str) -> Row:
    """The subscriber joined with its plan's billing fields; NotFound if unknown."""
    row = store.one(
        "SELECT s.*, p.name AS plan, p.price_minor, p.currency, p.period, p.billing, "
        "p.grace_days, p.tax_rate_bp, p.tax_inclusive, p.quota_bytes, p.fup_rate "
        "FROM subscribers s JOIN plans p ON p.id = s.plan_id WHERE s.username = ?",
        (username,),
    )
    if row is None:
        raise NotFound(f"no subscriber named {username!r} (see `jasiyo subscriber list`)")
    return row


def post(
    store: Store,
    sub: Row,
    kind: str,
    amount_minor: int,
    reference: str,
    description: str,
    at: float,
    currency: str | None = None,
) -> Entry:
    """Append one entry (inside the caller's transaction) and its event.

    Idempotent on ``(kind, reference)``: posting the same entry again returns the stored
    one; the same key with a different amount is refused (that would be money changing).
    """
    if kind not in KINDS:
        raise ValidationError(f"unknown ledger kind {kind!r}")
    currency = currency or sub["currency"]
    existing = store.one(
        "SELECT l.*, s.username FROM ledger l JOIN subscribers s ON s.id = l.subscriber_id "
        "WHERE l.kind = ? AND l.reference = ?",
        (kind, reference),
    )
    if existing is not None:
        if existing["amount_minor"] != amount_minor or existing["username"] != sub["username"]:
            raise BillingError(
                f"ledger entry {kind}:{reference} already exists with a different amount "
                f"or subscriber; nothing changed"
            )
        return _entry(existing)
    store.execute(
        "INSERT INTO ledger (subscriber_id, at, kind, amount_minor, currency, reference, "
        "description) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (sub["id"], at, kind, amount_minor, currency, reference, description),
    )
    entry = Entry(sub["username"], at, kind, amount_minor, currency, reference, description)
    store.emit("ledger", entry.key, "append", entry.to_dict())
    return entry


def _entry(row: Row, balance: int | None = None) -> Entry:
    return Entry(
        username=row["username"],
        at=row["at"],
        kind=row["kind"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        reference=row["reference"] or "",
        description=row["description"],
        balance_minor=balance,
    )


def balance(store: Store, subscriber_id: int) -> int:
    """The subscriber's balance: the sum of their ledger (positive = wallet credit)."""
    return int(
        store.scalar(
            "SELECT COALESCE(SUM(amount_minor), 0) FROM ledger WHERE subscriber_id = ?",
            (subscriber_id,),
        )
    )


def statement(store: Store, username: str) -> list[Entry]:
    """Every entry of ``username`` in order, each with the running balance after it."""
    sub = subscriber_row(store, username)
    rows = store.all(
        "SELECT l.*, ? AS username FROM ledger l WHERE l.subscriber_id = ? ORDER BY l.at, l.id",
        (username, sub["id"]),
    )
    out, running = [], 0
    for row in rows:
        running += row["amount_minor"]
        out.append(_entry(row, running))
    return out


def adjust(
    store: Store,
    username: str,
    kind: str,
    amount_minor: int,
    reference: str,
    reason: str,
    actor: str,
    *,
    allow_debt: bool = False,
) -> Entry:
    """A manual ``credit`` (in the customer's favour) or ``refund`` (money given back).

    ``amount_minor`` is positive; the sign follows from ``kind``. Audited. A refund gives
    back only what the wallet holds: more would leave the customer owing money they never
    received services for, so it is refused unless ``allow_debt`` says a person meant it.
    """
    if kind not in ("credit", "refund"):
        raise ValidationError(f"bad adjustment {kind!r}: use credit or refund")
    if amount_minor <= 0:
        raise ValidationError("bad amount: must be above zero")
    if not reference:
        raise ValidationError("an adjustment needs a reference (--ref)")
    with store.transaction():
        sub = subscriber_row(store, username)
        signed = amount_minor if kind == "credit" else -amount_minor
        repeated = store.scalar("SELECT 1 FROM ledger WHERE kind = ? AND reference = ?", (kind, reference))
        if kind == "refund" and not repeated and not allow_debt:
            wallet = max(0, balance(store, sub["id"]))
            if amount_minor > wallet:
                raise ValidationError(
                    f"refund of {format_money(amount_minor, sub['currency'])} is more than "
                    f"{username}'s balance of {format_money(wallet, sub['currency'])}; nothing "
                    "recorded (give --allow-debt if the customer really owes it back)"
                )
        entry = post(store, sub, kind, signed, reference, reason, store.now())
        if repeated:  # the same adjustment again: a no-op (post checked the amount)
            return entry
        store.audit(
            actor,
            f"ledger.{kind}",
            f"subscriber:{username}",
            amount=format_money(amount_minor, sub["currency"]),
            reference=reference,
            reason=reason,
        )
    return entry
