"""Payments: money received, idempotent on the provider's reference.

``record`` is the one way money enters: the payment row, its ledger entry, the receipt
notification, the purchase of prepaid periods or settlement of invoices, and the restore of
a subscriber suspended for non-payment all happen in one transaction. The same reference
with the same amount and subscriber is a no-op that returns the stored payment (a webhook
or an engineer retrying); the same reference with anything different is refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from jasiyo.agent import billing, ledger, notify
from jasiyo.agent.store import Row, Store
from jasiyo.config import Config
from jasiyo.errors import ValidationError
from jasiyo.log import event, get_logger
from jasiyo.money import format_money, parse_money

log = get_logger(__name__)

METHODS = ("cash", "mpesa", "airtel", "paystack", "bank")
#: What a provider reference may be made of, after normalising (see normalize_reference).
_REFERENCE_RE = re.compile(r"^[A-Z0-9][A-Z0-9._=/#:-]{0,99}$")


@dataclass(frozen=True, slots=True)
class Payment:
    reference: str
    username: str
    amount_minor: int
    currency: str
    method: str
    received_at: float
    recorded_by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Recorded:
    """The outcome of :func:`record`. ``created`` is False for a repeated reference."""

    payment: Payment
    created: bool
    periods_bought: int = 0
    restored: bool = False
    balance_minor: int = 0
    paid_until: float | None = None
    status: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "payment": self.payment.to_dict()}


def _from_row(row: Row) -> Payment:
    return Payment(
        reference=row["reference"],
        username=row["username"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        method=row["method"],
        received_at=row["received_at"],
        recorded_by=row["recorded_by"],
    )


_SELECT = "SELECT p.*, s.username FROM payments p JOIN subscribers s ON s.id = p.subscriber_id"


def normalize_reference(reference: str) -> str:
    """The one normal form of a provider reference, used by every path that stores or finds
    a payment: NFKC (full-width letters become ASCII), invisible format characters removed
    (zero-width space, soft hyphen, BOM), surrounding space dropped, upper case.

    Provider references (M-Pesa receipts, Paystack references, bank slips) are ASCII
    letters, digits and a few separators; anything else after normalising (a Cyrillic
    ``А`` that looks like ``A``) cannot be one and is refused, never stored as a new payment.
    """
    text = unicodedata.normalize("NFKC", reference or "")
    text = "".join(c for c in text if unicodedata.category(c) != "Cf").strip().upper()
    if not _REFERENCE_RE.match(text):
        raise ValidationError(
            f"bad payment reference {reference!r}: a provider's receipt or reference is 1-100 "
            "ASCII letters and digits (and . _ = / # : -), without spaces"
        )
    return text


def _check_reference(reference: str) -> str:
    return normalize_reference(reference)


def cash_receipt(store: Store) -> str:
    """A new receipt number for money taken without a provider reference (cash at the
    counter): ``CASH-<agent>-<n>``, unique on this POP and across POPs (agent id prefix)."""
    n = int(store.meta("payments.cash_seq") or "0") + 1
    store.set_meta("payments.cash_seq", str(n))
    agent = (store.agent_id or "local").replace("-", "")[:8].upper()
    return f"CASH-{agent}-{n:06d}"


def record(
    store: Store,
    cfg: Config,
    username: str,
    amount: str | int,
    reference: str,
    *,
    method: str = "cash",
    actor: str,
    at: float | None = None,
) -> Recorded:
    """Record a payment of ``amount`` (a decimal string in the plan's currency, or minor
    units as an int) from ``username`` under ``reference``.

    ``at`` is when the money counts as received (default: now). It is meant for "now" and
    for tests under a controlled clock; back-dating past transitions the billing clock has
    already applied does not rewrite them.

    Raises NotFound (unknown subscriber) or ValidationError (bad amount, method or
    reference; a reference already used with another amount or subscriber). On error
    nothing is stored.
    """
    if method not in METHODS:
        raise ValidationError(f"bad method {method!r}: use {', '.join(METHODS)}")
    if not reference and method != "cash":
        raise ValidationError(
            f"a {method} payment needs the provider's reference (--ref); "
            "only cash gets a receipt number of its own"
        )
    ref = _check_reference(reference) if reference else ""
    with store.transaction():
        if not ref:
            ref = cash_receipt(store)
        sub = ledger.subscriber_row(store, username)
        currency = sub["currency"]
        if isinstance(amount, int) and not isinstance(amount, bool):
            if amount <= 0:
                raise ValidationError(f"bad amount {amount}: must be above zero")
            minor = amount
        else:
            minor = parse_money(str(amount), currency, allow_zero=False)
        # Providers and people retype receipts in either case (QX12AB / qx12ab): the same
        # receipt in another case is the same payment. Stored as given.
        existing = store.one(f"{_SELECT} WHERE p.reference = ? COLLATE NOCASE", (ref,))
        if existing is not None:
            if existing["amount_minor"] != minor or existing["username"] != username:
                raise ValidationError(
                    f"payment reference {ref!r} was already recorded for "
                    f"{existing['username']!r} ({format_money(existing['amount_minor'], currency)}); "
                    f"nothing changed. Check the reference"
                )
            return _outcome(store, sub, _from_row(existing), created=False)
        now = store.now() if at is None else at
        billing.advance(store, cfg, sub["id"], now)  # what fell due before the money came
        store.execute(
            "INSERT INTO payments (reference, subscriber_id, amount_minor, currency, method, "
            "received_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ref, sub["id"], minor, currency, method, now, actor),
        )
        payment = Payment(ref, username, minor, currency, method, now, actor)
        store.emit("payment", ref, "append", payment.to_dict())
        ledger.post(store, sub, "payment", minor, ref, f"{method} payment", now)
        store.audit(
            actor,
            "payment.record",
            f"subscriber:{username}",
            reference=ref,
            amount=format_money(minor, currency),
            method=method,
        )
        bought, restored = billing.apply_payment(store, cfg, sub["id"], now, ref)
        billing.advance(store, cfg, sub["id"], now)
        sub = ledger.subscriber_row(store, username)
        result = _outcome(store, sub, payment, created=True, bought=bought, restored=restored)
        notify.queue(
            store,
            sub,
            "receipt",
            f"receipt:{ref}",
            _receipt(result, cfg),
            now,
            values=_receipt_values(sub, result, cfg),
        )
    event(
        log,
        "payment.recorded",
        user=username,
        reference=ref,
        amount=minor,
        method=method,
        periods=bought,
        restored=restored,
    )
    return result


def _outcome(
    store: Store, sub: Row, payment: Payment, *, created: bool, bought: int = 0, restored: bool = False
) -> Recorded:
    return Recorded(
        payment=payment,
        created=created,
        periods_bought=bought,
        restored=restored,
        balance_minor=ledger.balance(store, sub["id"]),
        paid_until=sub["paid_until"],
        status=sub["status"],
    )


def _receipt(r: Recorded, cfg: Config) -> str:
    from zoneinfo import ZoneInfo

    p = r.payment
    text = f"Received {format_money(p.amount_minor, p.currency)}, ref {p.reference}. Thank you."
    if r.paid_until:
        until = datetime.fromtimestamp(r.paid_until, ZoneInfo(cfg.billing.timezone))
        text += f" Service paid until {until:%Y-%m-%d %H:%M}."
    if r.balance_minor:
        text += f" Balance {format_money(r.balance_minor, p.currency)}."
    return text


def _receipt_values(sub: Row, r: Recorded, cfg: Config) -> dict[str, object]:
    """The receipt's template variables (``jasiyo.sms.templates``)."""
    from zoneinfo import ZoneInfo

    p = r.payment
    until = (
        f"{datetime.fromtimestamp(r.paid_until, ZoneInfo(cfg.billing.timezone)):%Y-%m-%d %H:%M}"
        if r.paid_until
        else ""
    )
    return {
        "name": sub["name"] or sub["username"],
        "plan": sub["plan"],
        "account": sub["username"],
        "amount": format_money(p.amount_minor, p.currency),
        "reference": p.reference,
        "paid_until": until,
        "balance": format_money(r.balance_minor, p.currency),
    }


def get(store: Store, reference: str) -> Payment:
    from jasiyo.errors import NotFound

    row = store.one(f"{_SELECT} WHERE p.reference = ? COLLATE NOCASE", (normalize_reference(reference),))
    if row is None:
        raise NotFound(f"no payment with reference {reference!r}")
    return _from_row(row)


def list_(store: Store, username: str | None = None, limit: int = 1000) -> list[Payment]:
    if username:
        ledger.subscriber_row(store, username)
        rows = store.all(
            f"{_SELECT} WHERE s.username = ? ORDER BY p.received_at DESC, p.id DESC LIMIT ?",
            (username, limit),
        )
    else:
        rows = store.all(f"{_SELECT} ORDER BY p.received_at DESC, p.id DESC LIMIT ?", (limit,))
    return [_from_row(r) for r in rows]
