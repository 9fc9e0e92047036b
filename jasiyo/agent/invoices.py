"""Invoices: one per subscriber and billing cycle, the charge that goes with it, settlement.

A cycle is charged at most once: ``UNIQUE (subscriber_id, cycle_start)`` in the store and
the ledger's unique ``(kind, reference)`` both guard it. Prepaid periods are invoices too
(issued already paid), so every charge has one document and one shape.

Numbers are sequential per POP and year with no gaps, ``INV-NRB1-2026-000123``: the counter
(``document_counters``) is bumped in the same transaction that inserts the invoice, so a
rolled-back issue gives its number back. The year is the issue date's in the billing time
zone. Credit notes (:mod:`jasiyo.agent.credit_notes`) have their own series, ``CN-...``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jasiyo.agent import ledger
from jasiyo.agent.cycles import round_div, tax
from jasiyo.agent.store import Row, Store
from jasiyo.errors import NotFound, ValidationError

if TYPE_CHECKING:
    from jasiyo.config import Config


@dataclass(frozen=True, slots=True)
class Invoice:
    number: str
    username: str
    plan: str
    billing: str
    cycle_start: float
    cycle_end: float
    amount_minor: int
    tax_minor: int
    total_minor: int
    currency: str
    issued_at: float
    due_at: float
    status: str
    paid_at: float | None = None
    #: Debt on no earlier invoice (a mid-cycle upgrade's proration) carried onto this one;
    #: already in the ledger, so part of ``total_minor`` but not of this invoice's charge.
    carried_minor: int = 0
    tax_inclusive: bool = False
    seller_tax_pin: str | None = None
    customer_tax_pin: str | None = None
    #: Credited back by credit notes (a void credits the whole of this invoice's charge).
    credited_minor: int = 0
    void_reason: str | None = None
    #: For a prepaid period bought by a payment: ``<payment reference>#<n>``. The charge is
    #: keyed by it, so a payment applied at two POPs buys the period once.
    purchase: str | None = None

    @property
    def charge_minor(self) -> int:
        """This invoice's own charge (its total without the carried earlier debt)."""
        return self.total_minor - self.carried_minor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SELECT = "SELECT i.*, s.username FROM invoices i JOIN subscribers s ON s.id = i.subscriber_id"


def _from_row(row: Row) -> Invoice:
    return Invoice(
        number=row["number"], username=row["username"], plan=row["plan"],
        billing=row["billing"], cycle_start=row["cycle_start"], cycle_end=row["cycle_end"],
        amount_minor=row["amount_minor"], tax_minor=row["tax_minor"],
        total_minor=row["total_minor"], currency=row["currency"], issued_at=row["issued_at"],
        due_at=row["due_at"], status=row["status"], paid_at=row["paid_at"],
        carried_minor=row["carried_minor"] or 0, tax_inclusive=bool(row["tax_inclusive"]),
        seller_tax_pin=row["seller_tax_pin"], customer_tax_pin=row["customer_tax_pin"],
        credited_minor=row["credited_minor"] or 0, void_reason=row["void_reason"],
        purchase=row["purchase"],
    )


def pop_code(cfg: Config) -> str:
    """The POP's code in document numbers: ``[agent] pop``, else from ``[agent] name``."""
    return code_of(cfg.agent.pop or cfg.agent.name or "POP")


def code_of(name: str) -> str:
    """The document-number code a POP of this name uses: its letters and digits when they
    are 8 at most (``NRB1``), else the first five and three characters of a digest of the
    whole name, so long names that share a beginning (``nairobi-west``, ``nairobi-east``)
    never issue the same invoice numbers."""
    clean = re.sub(r"[^A-Z0-9]", "", name.upper()) or "POP"
    if len(clean) <= 8:
        return clean
    digest = base64.b32encode(hashlib.sha256(clean.encode()).digest()).decode()
    return clean[:5] + digest[:3]


def next_number(store: Store, cfg: Config, prefix: str, at: float) -> str:
    """The next number of the ``prefix`` (INV, CN) series of this POP and ``at``'s year.

    Call inside the transaction that stores the document. A store restored from the cloud
    has its documents but no counter: the series then continues after the highest number.
    """
    year = datetime.fromtimestamp(at, ZoneInfo(cfg.billing.timezone)).year
    code = pop_code(cfg)
    if not (cfg.agent.pop or cfg.agent.name) and store.agent_id:
        # Two POPs left unnamed must not issue the same numbers: the agent id tells them apart.
        code = store.agent_id.replace("-", "")[-6:].upper()
    series = f"{prefix}-{code}-{year}"
    last = store.scalar("SELECT last FROM document_counters WHERE series = ?", (series,))
    if last is None:
        table = "invoices" if prefix == "INV" else "credit_notes"
        last = store.scalar(
            f"SELECT MAX(CAST(substr(number, ?) AS INTEGER)) FROM {table} "
            "WHERE number LIKE ? || '-%'", (len(series) + 2, series)) or 0
    n = int(last) + 1
    store.execute("INSERT INTO document_counters (series, last) VALUES (?, ?) "
                       "ON CONFLICT (series) DO UPDATE SET last = excluded.last", (series, n))
    return f"{series}-{n:06d}"


def cost(sub: Row) -> tuple[int, int, int]:
    """(net, tax, total) of one period of the subscriber's plan.

    Tax-exclusive plans add the tax to the price; tax-inclusive plans (the price a customer
    sees is what they pay) split it: net = price / (1 + rate), rounded half up, and tax is
    the rest, so net + tax is the price exactly.
    """
    price = int(sub["price_minor"])
    rate_bp = int(sub["tax_rate_bp"] or 0)
    if sub.get("tax_inclusive"):
        net = round_div(price * 10_000, 10_000 + rate_bp)
        return net, price - net, price
    t = tax(price, rate_bp)
    return price, t, price + t


def issue(
    store: Store, cfg: Config, sub: Row, start: float, end: float, *, at: float,
    due_at: float, paid: bool = False, purchase: str | None = None,
) -> Invoice:
    """Invoice the cycle ``[start, end)`` and post its charge (in the caller's transaction).

    Idempotent: a cycle already invoiced returns the stored invoice and posts nothing. The
    seller's and customer's tax PINs are copied onto it: an issued invoice never changes.
    """
    existing = store.one(f"{_SELECT} WHERE i.subscriber_id = ? AND i.cycle_start = ?",
                         (sub["id"], start))
    if existing is not None:
        return _from_row(existing)
    net, t, total = cost(sub)
    carried = 0 if paid else _uninvoiced_debt(store, sub)
    inv = Invoice(
        number=next_number(store, cfg, "INV", at), username=sub["username"], plan=sub["plan"],
        billing=sub["billing"], cycle_start=start, cycle_end=end, amount_minor=net,
        tax_minor=t, total_minor=total + carried, currency=sub["currency"], issued_at=at,
        due_at=due_at, status="paid" if paid else "open", paid_at=at if paid else None,
        carried_minor=carried, tax_inclusive=bool(sub.get("tax_inclusive")),
        seller_tax_pin=cfg.agent.tax_pin or None, customer_tax_pin=sub.get("tax_pin"),
        purchase=purchase,
    )
    store.execute(
        "INSERT INTO invoices (number, subscriber_id, plan, billing, cycle_start, cycle_end, "
        "amount_minor, tax_minor, total_minor, currency, issued_at, due_at, status, paid_at, "
        "carried_minor, rate_total_minor, tax_inclusive, seller_tax_pin, customer_tax_pin, "
        "purchase) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (inv.number, sub["id"], inv.plan, inv.billing, start, end, net, t, total + carried,
         inv.currency, at, due_at, inv.status, inv.paid_at, carried, total,
         int(inv.tax_inclusive), inv.seller_tax_pin, inv.customer_tax_pin, purchase),
    )
    store.emit("invoice", inv.number, "append", inv.to_dict())
    ledger.post(store, sub, "charge", -total, f"BUY:{purchase}" if purchase else inv.number,
                f"{inv.plan} {_span(start, end, ZoneInfo(cfg.billing.timezone))}", at)
    return inv


def _uninvoiced_debt(store: Store, sub: Row) -> int:
    """What the subscriber owes beyond their open invoices (e.g. an upgrade's proration).

    Without a document it has no due date and paying every invoice would not clear it; the
    next invoice carries it so that paying that invoice in full clears the balance.
    """
    owed = max(0, -ledger.balance(store, sub["id"]))
    on_invoices = store.scalar(
        "SELECT COALESCE(SUM(total_minor - credited_minor), 0) FROM invoices "
        "WHERE subscriber_id = ? AND status = 'open'", (sub["id"],))
    return max(0, owed - int(on_invoices))


def _span(start: float, end: float, tz: ZoneInfo) -> str:
    """A cycle as the statement shows it: local calendar days (``[billing] timezone``)."""
    fmt = "%Y-%m-%d"
    return (f"{datetime.fromtimestamp(start, tz).strftime(fmt)}.."
            f"{datetime.fromtimestamp(end, tz).strftime(fmt)}")


def settle(store: Store, sub: Row, at: float) -> list[str]:
    """Mark open invoices paid that the balance now covers; return their numbers.

    The ledger already holds every charge, so what is still owed is ``-balance``. The newest
    open invoices are the ones left unpaid (payments settle the oldest debt first).
    """
    owed = max(0, -ledger.balance(store, sub["id"]))
    open_rows = store.all(
        "SELECT number, total_minor - credited_minor AS due FROM invoices "
        "WHERE subscriber_id = ? AND status = 'open' ORDER BY cycle_start DESC", (sub["id"],),
    )
    paid: list[str] = []
    for row in open_rows:
        if owed > 0:
            owed -= row["due"]
            continue
        paid.append(row["number"])
    for number in paid:
        store.execute(
            "UPDATE invoices SET status = 'paid', paid_at = ? WHERE number = ?", (at, number)
        )
        store.emit("invoice", number, "upsert", {"status": "paid", "paid_at": at})
    return paid


def oldest_open(store: Store, subscriber_id: int) -> Row | None:
    return store.one(
        "SELECT * FROM invoices WHERE subscriber_id = ? AND status = 'open' "
        "ORDER BY due_at, cycle_start LIMIT 1", (subscriber_id,),
    )


def current(store: Store, subscriber_id: int, at: float) -> Row | None:
    """The (non-void) invoice whose cycle contains ``at``, if any."""
    return store.one(
        "SELECT * FROM invoices WHERE subscriber_id = ? AND status != 'void' "
        "AND cycle_start <= ? AND cycle_end > ? ORDER BY cycle_start DESC LIMIT 1",
        (subscriber_id, at, at),
    )


def get(store: Store, number: str) -> Invoice:
    row = store.one(f"{_SELECT} WHERE i.number = ?", (number,))
    if row is None:
        raise NotFound(f"no invoice numbered {number!r} (see `jasiyo invoice list`)")
    return _from_row(row)


def list_(store: Store, *, username: str | None = None, status: str | None = None,
          limit: int = 1000) -> list[Invoice]:
    where, params = [], []
    if username:
        ledger.subscriber_row(store, username)  # NotFound for an unknown name
        where.append("s.username = ?")
        params.append(username)
    if status:
        if status not in ("open", "paid", "void"):
            raise ValidationError(f"bad invoice status {status!r}: use open, paid or void")
        where.append("i.status = ?")
        params.append(status)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY i.cycle_start DESC, s.username LIMIT ?"
    return [_from_row(r) for r in store.all(sql, (*params, limit))]
