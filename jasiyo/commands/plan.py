"""`jasiyo plan ...`: what subscribers buy."""

from __future__ import annotations

from typing import Any

import typer

from jasiyo.agent.records import Plan
from jasiyo.commands.common import actor, done, group, lazy, show_list, show_one, store
from jasiyo.money import format_money
from jasiyo.network import mikrotik_rate_limit

plans = lazy("jasiyo.agent.plans")
validate = lazy("jasiyo.agent.validate")

app = group("Plans: rate, price, period and billing rules.")

GRACE_HELP = "Grace after the due date, in whole days, e.g. 3d."
BILLING_HELP = "prepaid (pay ahead; default) or postpaid (invoiced each cycle)."


def _row(p: Plan) -> dict[str, Any]:
    return {
        "name": p.name,
        "rate": p.rate,
        "burst": p.burst,
        "rate_limit": mikrotik_rate_limit(p.rate, p.burst),
        "price": format_money(p.price_minor, p.currency),
        "price_minor": p.price_minor,
        "currency": p.currency,
        "period": p.period,
        "billing": p.billing,
        "grace_days": p.grace_days,
        "tax_rate": p.tax_rate_bp / 100,
        "quota_bytes": p.quota_bytes,
        "fup_rate": p.fup_rate,
        "tax_inclusive": p.tax_inclusive,
        "data_bytes": p.data_bytes,
        "devices": p.devices,
        "portal": p.portal,
    }


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Plan name, e.g. home-10M."),
    rate: str = typer.Option(..., "--rate", help="RX/TX in MikroTik syntax, e.g. 10M/10M."),
    price: str = typer.Option(..., "--price", help="Price per period, e.g. 1500 or 1500.00."),
    currency: str = typer.Option("KES", "--currency", help="ISO 4217 code."),
    period: str = typer.Option(
        "30d", "--period", help="Billing period: 30d, 1w, 1mo (calendar month), 1h or 30min."
    ),
    burst: str | None = typer.Option(
        None, "--burst", help="Burst 'RATE [THRESHOLD [SECONDS]]', e.g. '20M/20M 8M/8M 16/16'."
    ),
    billing: str = typer.Option("prepaid", "--billing", help=BILLING_HELP),
    grace: str | None = typer.Option(None, "--grace", help=GRACE_HELP),
    tax_rate: str | None = typer.Option(None, "--tax-rate", help="Tax percent on invoices."),
    quota: str | None = typer.Option(None, "--quota", help="Data per cycle, e.g. 100G."),
    fup_rate: str | None = typer.Option(None, "--fup-rate", help="Rate once over quota."),
    tax_inclusive: bool = typer.Option(
        False,
        "--tax-inclusive/--tax-exclusive",
        help="The price includes the tax (VAT-inclusive), or tax is added on top (default).",
    ),
    data: str | None = typer.Option(
        None, "--data", help="The package also ends once this much is used, e.g. 2G."
    ),
    devices: int = typer.Option(1, "--devices", help="Sessions at once (Simultaneous-Use)."),
    portal: bool = typer.Option(
        False, "--portal/--no-portal", help="Sell this plan on the hotspot captive portal."
    ),
) -> None:
    """Add a plan."""
    plan = plans.build(
        name,
        rate=rate,
        price=price,
        currency=currency,
        period=period,
        burst=burst,
        billing=billing,
        grace=grace,
        tax_rate=tax_rate,
        quota=quota,
        fup_rate=fup_rate,
        tax_inclusive=tax_inclusive,
        data=data,
        devices=devices,
        portal=portal,
    )
    with store() as s:
        plan = plans.add(s, plan, actor())
    done(
        f"plan {plan.name} added: {mikrotik_rate_limit(plan.rate, plan.burst)}, "
        f"{format_money(plan.price_minor, plan.currency)} per {plan.period}",
        plan=_row(plan),
    )


@app.command("list")
def list_() -> None:
    """List plans."""
    with store() as s:
        rows = [_row(p) for p in plans.list_(s)]
    show_list(rows, ["name", "rate_limit", "price", "period", "billing"], "plans")


@app.command("show")
def show(name: str = typer.Argument(..., help="Plan name.")) -> None:
    """Show one plan."""
    with store() as s:
        show_one(_row(plans.get(s, name)))


@app.command("update")
def update(
    name: str = typer.Argument(..., help="Plan name."),
    rate: str | None = typer.Option(None, "--rate", help="New RX/TX rate."),
    price: str | None = typer.Option(None, "--price", help="New price per period."),
    currency: str | None = typer.Option(None, "--currency", help="New currency."),
    period: str | None = typer.Option(None, "--period", help="New billing period."),
    burst: str | None = typer.Option(None, "--burst", help="New burst ('' to clear)."),
    billing: str | None = typer.Option(None, "--billing", help=BILLING_HELP),
    grace: str | None = typer.Option(None, "--grace", help=GRACE_HELP),
    tax_rate: str | None = typer.Option(None, "--tax-rate", help="Tax percent on invoices."),
    quota: str | None = typer.Option(None, "--quota", help="Data per cycle ('' to clear)."),
    fup_rate: str | None = typer.Option(None, "--fup-rate", help="Rate once over quota."),
    tax_inclusive: bool | None = typer.Option(
        None,
        "--tax-inclusive/--tax-exclusive",
        help="Whether the price includes the tax.",
    ),
    data: str | None = typer.Option(None, "--data", help="Data the package allows ('' to clear)."),
    devices: int | None = typer.Option(None, "--devices", help="Sessions at once."),
    portal: bool | None = typer.Option(
        None, "--portal/--no-portal", help="Sell this plan on the hotspot captive portal."
    ),
) -> None:
    """Change a plan. Subscribers on it get the new rate at their next session or CoA."""
    given = (
        rate,
        price,
        currency,
        period,
        burst,
        billing,
        grace,
        tax_rate,
        quota,
        fup_rate,
        tax_inclusive,
        data,
        devices,
        portal,
    )
    if all(v is None for v in given):
        raise typer.BadParameter("nothing to change: give at least one option")
    with store() as s:
        plan = plans.update(
            s,
            name,
            actor(),
            rate=rate,
            price=price,
            currency=currency,
            period=period,
            burst=burst,
            billing=billing,
            grace=grace,
            tax_rate=tax_rate,
            quota=quota,
            fup_rate=fup_rate,
            tax_inclusive=tax_inclusive,
            data=data,
            devices=devices,
            portal=portal,
        )
    done(f"plan {name} updated", plan=_row(plan))


@app.command("remove")
def remove(name: str = typer.Argument(..., help="Plan name.")) -> None:
    """Remove a plan that no subscriber uses."""
    with store() as s:
        plans.remove(s, name, actor())
    done(f"plan {name} removed")
