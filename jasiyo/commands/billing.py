"""`jasiyo payment ...`, `jasiyo invoice ...`, `jasiyo billing run`, `subscriber statement`.

Mounted by the root: ``payment_app`` as ``payment``, ``invoice_app`` as ``invoice``,
``billing_app`` as ``billing``, and :func:`statement` as ``subscriber statement``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from jasiyo.commands.common import (
    actor,
    cfg,
    done,
    group,
    lazy,
    parse_time,
    show_list,
    show_one,
    store,
    when,
)
from jasiyo.errors import ValidationError
from jasiyo.money import format_money

if TYPE_CHECKING:  # the modules themselves are imported when a command runs
    from jasiyo.agent.invoices import Invoice
    from jasiyo.agent.payments import Payment

billing = lazy("jasiyo.agent.billing")
invoices = lazy("jasiyo.agent.invoices")
ledger = lazy("jasiyo.agent.ledger")
payments = lazy("jasiyo.agent.payments")

payment_app = group("Payments: record, ask for (M-Pesa, Paystack), match and list money.")
invoice_app = group("Invoices: one per subscriber and billing cycle.")
billing_app = group("The billing clock: run a tick by hand.")


def _payment_row(p: Payment) -> dict[str, Any]:
    return {**p.to_dict(), "amount": format_money(p.amount_minor, p.currency),
            "received": when(p.received_at)}


@payment_app.command("record")
def payment_record(
    username: str = typer.Argument(..., help="Subscriber who paid."),
    amount: str = typer.Argument(..., help="Amount in the plan's currency, e.g. 1500 or 1500.00."),
    ref: str = typer.Option("", "--ref", help="Provider reference (M-Pesa receipt, ...); "
                            "cash without one gets a receipt number."),
    method: str = typer.Option("cash", "--method", help="cash, mpesa, airtel, paystack or bank."),
) -> None:
    """Record a payment; buys prepaid periods or settles invoices, and restores service."""
    with store(durable=True) as s:
        r = payments.record(s, cfg(), username, amount, ref, method=method, actor=actor())
    p = r.payment
    money = format_money(p.amount_minor, p.currency)
    if not r.created:
        msg = f"payment {p.reference} was already recorded ({money} from {p.username}); nothing changed"
    else:
        msg = f"payment {p.reference}: {money} from {p.username} recorded"
        if r.periods_bought:
            msg += f"; {r.periods_bought} period(s) bought, paid until {when(r.paid_until)}"
        if r.restored:
            msg += "; service restored"
        msg += f"; balance {format_money(r.balance_minor, p.currency)}; status {r.status}"
    done(msg, **r.to_dict())


@payment_app.command("list")
def payment_list(
    subscriber: str | None = typer.Option(None, "--subscriber", help="Only this subscriber."),
    limit: int = typer.Option(1000, "--limit", help="At most this many, newest first."),
) -> None:
    """List payments, newest first."""
    with store() as s:
        rows = [_payment_row(p) for p in payments.list_(s, subscriber, limit)]
    show_list(rows, ["received", "reference", "username", "amount", "method", "recorded_by"],
              "payments")


def _invoice_row(i: Invoice) -> dict[str, Any]:
    return {**i.to_dict(), "total": format_money(i.total_minor, i.currency),
            "cycle": f"{when(i.cycle_start)[:10]} .. {when(i.cycle_end)[:10]}",
            "due": when(i.due_at)}


@invoice_app.command("list")
def invoice_list(
    subscriber: str | None = typer.Option(None, "--subscriber", help="Only this subscriber."),
    status: str | None = typer.Option(None, "--status", help="open, paid or void."),
    limit: int = typer.Option(1000, "--limit", help="At most this many, newest first."),
) -> None:
    """List invoices, newest cycle first."""
    with store() as s:
        rows = [_invoice_row(i) for i in invoices.list_(s, username=subscriber, status=status,
                                                        limit=limit)]
    show_list(rows, ["number", "username", "plan", "cycle", "total", "status", "due"], "invoices")


@invoice_app.command("show")
def invoice_show(number: str = typer.Argument(..., help="Invoice number (INV-...).")) -> None:
    """Show one invoice."""
    with store() as s:
        inv = invoices.get(s, number)
    row = _invoice_row(inv)
    row.update(amount=format_money(inv.amount_minor, inv.currency),
               tax=format_money(inv.tax_minor, inv.currency), issued=when(inv.issued_at),
               paid=when(inv.paid_at) if inv.paid_at else None,
               vat="included in the price" if inv.tax_inclusive else "added to the price",
               credited=format_money(inv.credited_minor, inv.currency)
               if inv.credited_minor else None)
    order = ["number", "username", "plan", "billing", "cycle", "amount", "tax", "vat", "total",
             "credited", "status", "issued", "due", "paid", "customer_tax_pin", "void_reason"]
    show_one({k: row[k] for k in order} if not _json() else row)


def _note_row(n: Any) -> dict[str, Any]:
    return {**n.to_dict(), "amount": format_money(n.amount_minor, n.currency),
            "issued": when(n.issued_at)}


@invoice_app.command("void")
def invoice_void(
    number: str = typer.Argument(..., help="Open invoice issued in error (INV-...)."),
    reason: str = typer.Option(..., "--reason", help="Why (printed on the credit note)."),
) -> None:
    """Void an open invoice: a credit note cancels its charge; the number stays used."""
    from jasiyo.agent import credit_notes

    with store() as s:
        note = credit_notes.void(s, cfg(), number, reason, actor())
    extra = f"; credit note {note.number} for {format_money(note.amount_minor, note.currency)}" \
        if note else ""
    done(f"invoice {number} void{extra}", credit_note=note.to_dict() if note else None)


@invoice_app.command("credit-note")
def invoice_credit_note(
    number: str = typer.Argument(..., help="Invoice to credit (INV-...)."),
    amount: str = typer.Argument(..., help="Amount to credit, in the invoice's currency."),
    reason: str = typer.Option(..., "--reason", help="Why (printed on the credit note)."),
) -> None:
    """Credit part of an invoice (CN-... number); the customer's balance goes up by it."""
    from jasiyo.agent import credit_notes
    from jasiyo.money import parse_money

    with store() as s:
        inv = invoices.get(s, number)
        minor = parse_money(amount, inv.currency, allow_zero=False)
        note = credit_notes.credit(s, cfg(), number, minor, reason, actor())
    done(f"credit note {note.number}: {format_money(note.amount_minor, note.currency)} on "
         f"{number}", credit_note=note.to_dict())


@invoice_app.command("credit-notes")
def invoice_credit_notes(
    invoice: str | None = typer.Option(None, "--invoice", help="Only those on this invoice."),
    limit: int = typer.Option(1000, "--limit", help="At most this many, newest first."),
) -> None:
    """List credit notes, newest first."""
    from jasiyo.agent import credit_notes

    with store() as s:
        rows = [_note_row(n) for n in credit_notes.list_(s, invoice=invoice, limit=limit)]
    show_list(rows, ["number", "invoice_number", "username", "amount", "reason", "issued"],
              "credit notes")


@invoice_app.command("pdf")
def invoice_pdf(
    number: str = typer.Argument(
        ..., help="Invoice (INV-...), credit note (CN-...) or payment reference (receipt)."),
    out: str | None = typer.Option(None, "--out", "-o",
                                   help="File to write (default: NUMBER.pdf; '-' for stdout)."),
) -> None:
    """Write a PDF tax invoice (a receipt once paid), credit note or payment receipt."""
    import sys
    from pathlib import Path

    from jasiyo.agent import invoice_pdf

    with store() as s:
        kind, data = invoice_pdf.render(s, cfg(), number)
    if out == "-":
        sys.stdout.buffer.write(data)
        return
    path = Path(out or f"{number}.pdf")
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ValidationError(f"cannot write {path}: {exc.strerror}") from None
    done(f"{kind} {number} written to {path} ({len(data)} bytes)", path=str(path), kind=kind)


def _json() -> bool:
    from jasiyo.commands.common import STATE

    return STATE.json


def statement(username: str = typer.Argument(..., help="Subscriber username.")) -> None:
    """The subscriber's ledger with a running balance (positive = credit)."""
    with store() as s:
        entries = ledger.statement(s, username)
    rows = [{**e.to_dict(), "when": when(e.at), "ref": _short_ref(e.reference),
             "amount": format_money(e.amount_minor, e.currency),
             "balance": format_money(e.balance_minor or 0, e.currency)} for e in entries]
    show_list(rows, ["when", "kind", "ref", "description", "amount", "balance"],
              "ledger entries")


def _short_ref(ref: str) -> str:
    """A proration's reference leads with a 36-character change id: a table shows its first
    8 characters (JSON keeps the whole reference)."""
    head, sep, rest = ref.partition(":")
    return f"{head[:8]}:{rest}" if sep and len(head) == 36 else ref


def _parse_at(text: str) -> float:
    return parse_time(text)


@billing_app.command("run")
def billing_run(
    at: str | None = typer.Option(None, "--at", help="Run as of this ISO time, local time "
                                  "unless it has an offset (default: now)."),
) -> None:
    """Run one billing tick now: expiries, renewals, invoices, grace, reminders, quotas.

    With --at it replays a tick as of an earlier time (support: what should have happened
    then); a time in the future is refused, since its transitions would be real.
    """
    import time

    when_at = _parse_at(at) if at else None
    if when_at is not None and when_at > time.time() + 60:
        raise ValidationError(
            f"--at {at} is in the future: a tick applies real suspensions and invoices, so "
            "it can only run as of now or earlier"
        )
    with store() as s:
        report = billing.tick(s, cfg(), when_at)
    changes = ", ".join(f"{n} -> {k}" for k, n in sorted(report.transitions.items())) or "none"
    done(f"billing tick at {when(report.at)}: {report.examined} subscriber(s) due, "
         f"{report.invoices} invoice(s), {report.renewals} renewal(s), "
         f"{report.reminders} reminder(s), {report.fup_on} throttled, status changes: {changes}"
         + (f", {report.errors} error(s) (see the log)" if report.errors else ""),
         **report.to_dict())


@billing_app.command("notifications")
def billing_notifications(
    subscriber: str | None = typer.Option(None, "--subscriber", help="Only this subscriber."),
    limit: int = typer.Option(100, "--limit", help="At most this many."),
) -> None:
    """The SMS outbox: reminders, suspension notices and receipts (consenting subscribers)."""
    from jasiyo.agent import notify

    with store() as s:
        rows = [{**n.to_dict(), "created": when(n.created_at),
                 "sent": when(n.sent_at) if n.sent_at else None}
                for n in notify.list_(s, subscriber, limit)]
    show_list(rows, ["created", "username", "kind", "message", "sent"], "notifications")


def _adjust(kind: str, username: str, amount: str, ref: str, reason: str,
            allow_debt: bool = False) -> None:
    from jasiyo.money import parse_money

    with store(durable=True) as s:
        currency = ledger.subscriber_row(s, username)["currency"]
        minor = parse_money(amount, currency, allow_zero=False)
        entry = billing.adjust(s, cfg(), username, kind, minor, ref, reason, actor(),
                               allow_debt=allow_debt)
        balance = ledger.balance(s, ledger.subscriber_row(s, username)["id"])
    done(f"{kind} {ref}: {format_money(minor, currency)} for {username}; "
         f"balance {format_money(balance, currency)}", entry=entry.to_dict(),
         balance_minor=balance)


@billing_app.command("credit")
def billing_credit(
    username: str = typer.Argument(..., help="Subscriber to credit."),
    amount: str = typer.Argument(..., help="Amount in the plan's currency."),
    ref: str = typer.Option(..., "--ref", help="A unique reference for this credit."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the ledger and audit log)."),
) -> None:
    """Credit a subscriber's wallet (goodwill, outage compensation). Audited."""
    _adjust("credit", username, amount, ref, reason)


@billing_app.command("refund")
def billing_refund(
    username: str = typer.Argument(..., help="Subscriber who is given money back."),
    amount: str = typer.Argument(..., help="Amount in the plan's currency."),
    ref: str = typer.Option(..., "--ref", help="The refund's reference (e.g. the M-Pesa B2C id)."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the ledger and audit log)."),
    allow_debt: bool = typer.Option(
        False, "--allow-debt", help="Refund more than the balance (the rest becomes debt)."
    ),
) -> None:
    """Record money paid back to a subscriber (up to the wallet balance). Audited."""
    _adjust("refund", username, amount, ref, reason, allow_debt)


def _mount_money_in() -> None:
    from jasiyo.commands import pay

    pay.mount(payment_app)


_mount_money_in()
