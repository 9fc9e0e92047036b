"""`jasiyo payment request|link|unmatched|allocate|register-urls|reconcile|inbox|providers`.

Mounted on ``payment`` by :mod:`jasiyo.commands.billing` (``mount``).
"""

from __future__ import annotations

from typing import Any

import typer

from jasiyo.commands.common import STATE, actor, cfg, console, done, show_list, store, when
from jasiyo.errors import ValidationError
from jasiyo.money import format_money, parse_money

providers_app = typer.Typer(help="Payment providers configured on this POP.", no_args_is_help=True)


def _close(provs: dict[str, Any]) -> None:
    """Close the providers a command opened (each holds an HTTP connection pool)."""
    for prov in provs.values():
        prov.close()


def _amount(username: str, amount: str | None) -> int | None:
    if amount is None:
        return None
    from jasiyo.agent import ledger

    with store() as s:
        currency = ledger.subscriber_row(s, username)["currency"]
    return parse_money(amount, currency, allow_zero=False)


def payment_request(
    username: str = typer.Argument(..., help="Subscriber to ask."),
    amount: str | None = typer.Option(None, "--amount", help="Amount (default: what is due)."),
    phone: str | None = typer.Option(None, "--phone", help="Phone to prompt (default: theirs)."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the answer; exit 0 only if paid."),
    timeout: float = typer.Option(180.0, "--timeout", help="Seconds --wait waits at most."),
) -> None:
    """Send an M-Pesa prompt (STK push) to the subscriber's phone."""
    from jasiyo.agent import charge, paywork

    conf = cfg()
    minor = _amount(username, amount)
    prov = charge.provider(conf, "mpesa")
    try:
        with store() as s:
            req = charge.request_stk(
                s,
                conf,
                prov,
                username,
                amount_minor=minor,
                phone=phone,
                actor=actor(),
                register=paywork.cloud_register(conf, s),
            )
    finally:
        prov.close()  # its HTTP connections (the agent's worker asks about the answer)
    money = format_money(req.amount_minor, req.currency)
    if not wait:
        done(
            f"M-Pesa prompt for {money} sent to {req.phone} ({req.request_id}); "
            f"{req.message or 'waiting for the customer'}",
            request=req.to_dict(),
        )
        return
    typer.echo(f"M-Pesa prompt for {money} sent to {req.phone}; waiting for the customer...", err=True)
    if console.is_terminal and not STATE.json:
        with console.status("waiting for M-Pesa", spinner="dots"):
            final = paywork.wait_for(conf, req.request_id, timeout)
    else:
        final = paywork.wait_for(conf, req.request_id, timeout)
    if final.status == "paid":
        done(f"paid: {money} from {username}, receipt {final.receipt}", request=final.to_dict())
        return
    why = final.status if final.status != "pending" else f"no answer after {timeout:.0f} s"
    raise ValidationError(f"not paid: {why} {final.result}".strip())


def payment_link(
    username: str = typer.Argument(..., help="Subscriber to ask."),
    amount: str | None = typer.Option(None, "--amount", help="Amount (default: what is due)."),
    email: str | None = typer.Option(None, "--email", help="Customer's email (Paystack needs one)."),
) -> None:
    """Create a Paystack checkout link for the subscriber."""
    from jasiyo.agent import charge, paywork

    conf = cfg()
    if not email:
        raise ValidationError("Paystack needs the customer's email: give --email")
    minor = _amount(username, amount)
    prov = charge.provider(conf, "paystack")
    try:
        with store() as s:
            req = charge.request_link(
                s,
                conf,
                prov,
                username,
                amount_minor=minor,
                email=email,
                actor=actor(),
                register=paywork.cloud_register(conf, s),
            )
    finally:
        prov.close()
    done(
        f"Paystack link for {format_money(req.amount_minor, req.currency)}: {req.checkout_url}",
        request=req.to_dict(),
    )


def payment_unmatched(
    all_: bool = typer.Option(False, "--all", help="Include allocated ones."),
    refused: bool = typer.Option(False, "--refused", help="Callbacks refused at verification."),
) -> None:
    """Money that matched nobody (suspense), or callbacks refused at verification."""
    from jasiyo.agent import collect

    with store() as s:
        if refused:
            rows: list[dict[str, Any]] = [
                {**i.to_dict(), "received": when(i.received_at)} for i in collect.refused(s)
            ]
            show_list(rows, ["id", "received", "endpoint", "detail"], "refused callbacks")
            return
        rows = [
            {
                **u.to_dict(),
                "amount": format_money(u.amount_minor, u.currency),
                "received": when(u.received_at),
            }
            for u in collect.unmatched(s, all_)
        ]
    show_list(
        rows,
        ["reference", "received", "provider", "amount", "account", "reason", "status", "allocated_to"],
        "unmatched payments",
    )


def payment_allocate(
    reference: str = typer.Argument(..., help="Reference of an unmatched payment."),
    username: str = typer.Argument(..., help="Subscriber it belongs to."),
) -> None:
    """Credit an unmatched payment to a subscriber."""
    from jasiyo.agent import collect

    with store(durable=True) as s:
        r = collect.allocate(s, cfg(), reference, username, actor())
    done(
        f"payment {r.payment.reference} ({format_money(r.payment.amount_minor, r.payment.currency)})"
        f" allocated to {username}; status {r.status}",
        **r.to_dict(),
    )


def payment_register_urls() -> None:
    """Create this POP's callback URLs (cloud) and register the C2B ones with M-Pesa."""
    from jasiyo.agent import charge, paywork

    conf = cfg()
    urls: dict[str, str] = {}
    with store() as s:
        register = paywork.cloud_register(conf, s)
        for base in ("mpesa-stk", "mpesa-c2b", "mpesa-val", "paystack"):
            urls[base] = charge.callback_url(s, conf, base, register=register)
    lines = [f"{k}: {v}" for k, v in urls.items()]
    provs = charge.providers(conf)
    try:
        if "mpesa" in provs:
            answer = provs["mpesa"].register_urls(  # type: ignore[attr-defined]
                urls["mpesa-c2b"], urls["mpesa-val"], "Completed"
            )
            lines.append(
                f"M-Pesa C2B URLs registered for shortcode {conf.payments.mpesa.shortcode} ({answer})"
            )
    finally:
        _close(provs)
    if "paystack" in provs:
        lines.append(f"Paystack: set the webhook URL in the dashboard to {urls['paystack']}")
    done("\n".join(lines), urls=urls)


def payment_reconcile(
    since: str | None = typer.Option(
        None, "--since", help="Only requests made since (YYYY-MM-DD, local time)."
    ),
) -> None:
    """Ask the providers about every pending request and apply what arrived."""
    from jasiyo.agent import charge, paywork

    conf = cfg()
    after = None
    if since:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        try:
            after = (
                datetime.strptime(since, "%Y-%m-%d")
                .replace(tzinfo=ZoneInfo(conf.billing.timezone))
                .timestamp()
            )
        except ValueError:
            raise ValidationError(f"bad --since {since!r}: use YYYY-MM-DD") from None
    pulled = paywork.step_once(conf)
    provs = charge.providers(conf)
    try:
        with store() as s:
            counts = charge.query_due(s, conf, provs, all_pending=True, since=after)
    finally:
        _close(provs)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing pending"
    done(
        f"callbacks: {pulled.get('pulled', 0)} pulled, {pulled.get('processed', 0)} processed; "
        f"pending requests: {summary}",
        callbacks=pulled,
        requests=counts,
    )


def payment_requests(
    username: str | None = typer.Argument(None, help="Only this subscriber's."),
    limit: int = typer.Option(50, "--limit", help="At most this many, newest first."),
) -> None:
    """List payment requests (STK prompts, Paystack links) and what became of them."""
    from jasiyo.agent import charge

    with store() as s:
        rows = [
            {**r.to_dict(), "amount": format_money(r.amount_minor, r.currency), "created": when(r.created_at)}
            for r in charge.list_requests(s, username, limit)
        ]
    show_list(
        rows,
        ["created", "provider", "request_id", "username", "amount", "status", "receipt", "result"],
        "payment requests",
    )


def payment_inbox(
    status: str | None = typer.Option(
        None, "--status", help="new, retry, applied, duplicate, refused, unmatched, closed, other_pop."
    ),
    limit: int = typer.Option(50, "--limit", help="At most this many, newest first."),
) -> None:
    """List the provider callbacks received and what became of each."""
    from jasiyo.agent import collect

    with store() as s:
        rows = [{**i.to_dict(), "received": when(i.received_at)} for i in collect.inbox(s, status, limit)]
    show_list(rows, ["id", "received", "endpoint", "status", "reference", "detail"], "callbacks")


@providers_app.command("check")
def providers_check() -> None:
    """Say whether each configured payment provider accepts our credentials."""
    from jasiyo.agent import charge
    from jasiyo.payments.errors import PaymentError

    provs = charge.providers(cfg())
    if not provs:
        raise ValidationError("no payment provider is configured ([payments.mpesa], [payments.paystack])")
    results: dict[str, str] = {}
    failed = False
    for name, prov in provs.items():
        try:
            results[name] = f"ok: {prov.check()}"
        except PaymentError as exc:
            results[name] = f"FAILED: {exc}"
            failed = True
    _close(provs)
    text = "\n".join(f"{k}: {v}" for k, v in results.items())
    if failed:
        raise ValidationError(text)
    done(text, providers=results)


def mount(app: typer.Typer) -> None:
    app.command("request")(payment_request)
    app.command("link")(payment_link)
    app.command("requests")(payment_requests)
    app.command("unmatched")(payment_unmatched)
    app.command("allocate")(payment_allocate)
    app.command("register-urls")(payment_register_urls)
    app.command("reconcile")(payment_reconcile)
    app.command("inbox")(payment_inbox)
    app.add_typer(providers_app, name="providers")
