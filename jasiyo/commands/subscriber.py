"""`jasiyo subscriber ...`: customers, their credentials and their status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress

from jasiyo.agent import subscribers as subs
from jasiyo.agent.models import Subscriber
from jasiyo.commands.billing import statement
from jasiyo.commands.common import (
    STATE,
    actor,
    cfg,
    console,
    done,
    show_list,
    show_one,
    store,
    when,
)
from jasiyo.errors import ValidationError

app = typer.Typer(help="Subscribers: add, change, suspend, import.", no_args_is_help=True)
app.command("statement")(statement)


def _row(s: Subscriber) -> dict[str, Any]:
    d = s.to_dict()
    d.pop("id")
    d["paid_until"] = when(s.paid_until) if s.paid_until else None
    d["created_at"] = when(s.created_at)
    return d


@app.command("add")
def add(
    username: str = typer.Argument(..., help="Login name (PPPoE / hotspot)."),
    plan: str = typer.Option(..., "--plan", help="Plan name."),
    password: str | None = typer.Option(None, "--password", help="Password to set."),
    generate_password: bool = typer.Option(
        False, "--generate-password", help="Generate a password and print it once."
    ),
    service: str = typer.Option("pppoe", "--service", help="pppoe, hotspot or static."),
    ip: str | None = typer.Option(None, "--ip", help="Fixed IPv4 address (static customers)."),
    phone: str | None = typer.Option(None, "--phone", help="Phone in E.164, e.g. +254712345678."),
    name: str | None = typer.Option(None, "--name", help="Customer's name."),
    sms_consent: bool = typer.Option(False, "--sms-consent", help="Customer agreed to SMS."),
) -> None:
    """Add a subscriber."""
    if bool(password) == generate_password:
        raise ValidationError("give exactly one of --password P or --generate-password")
    secret = password or subs.generate_password()
    new = subs.NewSubscriber.build(
        username, password=secret, plan=plan, service=service, ip=ip, phone=phone, name=name,
        sms_consent=sms_consent, country=cfg().billing.country,
    )
    with store() as s:
        sub = subs.add(s, new, actor())
    extra = {"password": secret} if generate_password else {}
    done(f"subscriber {sub.username} added on plan {sub.plan}"
         + (f"; password: {secret}" if generate_password else ""), subscriber=_row(sub), **extra)


@app.command("list")
def list_(
    status: str | None = typer.Option(
        None, "--status", help="Only this status: active, grace, suspended, terminated."
    ),
) -> None:
    """List subscribers."""
    with store() as s:
        rows = [_row(x) for x in subs.list_(s, status)]
    show_list(rows, ["username", "plan", "service", "status", "ip", "paid_until"], "subscribers")


@app.command("show")
def show(username: str = typer.Argument(..., help="Subscriber username.")) -> None:
    """Show one subscriber (never the password) and how SMS consent was given or withdrawn."""
    from jasiyo.agent import consent

    with store() as s:
        row = _row(subs.get(s, username))
        rec = consent.latest(s, username)
    row["sms_consent_record"] = (
        f"{'given' if rec.given else 'withdrawn'} {when(rec.at)} via {rec.how} by {rec.actor}"
        + (f" ({rec.source})" if rec.source else "") if rec else "none recorded")
    show_one(row)


@app.command("update")
def update(
    username: str = typer.Argument(..., help="Subscriber username."),
    plan: str | None = typer.Option(None, "--plan", help="Move to this plan."),
    password: str | None = typer.Option(None, "--password", help="New password."),
    service: str | None = typer.Option(None, "--service", help="pppoe, hotspot or static."),
    ip: str | None = typer.Option(None, "--ip", help="Fixed IPv4 ('' to clear)."),
    phone: str | None = typer.Option(None, "--phone", help="Phone in E.164 ('' to clear)."),
    name: str | None = typer.Option(None, "--name", help="Customer's name."),
    sms_consent: bool | None = typer.Option(
        None, "--sms-consent/--no-sms-consent", help="Record or withdraw SMS consent."
    ),
) -> None:
    """Change a subscriber. A plan change mid-cycle is prorated."""
    changes: dict[str, Any] = {
        k: v for k, v in {"password": password, "service": service, "ip": ip,
                          "phone": phone, "name": name, "sms_consent": sms_consent}.items()
        if v is not None
    }
    if plan is None and not changes:
        raise ValidationError("nothing to change: give at least one option")
    with store() as s:
        with s.transaction():  # all or nothing: a bad --phone must not leave a plan change
            if plan is not None:
                _change_plan(s, username, plan)
            if changes:
                subs.update(s, username, actor(), **changes)
        sub = subs.get(s, username)
    done(f"subscriber {username} updated", subscriber=_row(sub))


def _change_plan(s: Any, username: str, plan: str) -> None:
    from jasiyo.agent.billing import change_plan

    change_plan(s, username, plan, actor(), cfg=cfg())


@app.command("suspend")
def suspend(
    username: str = typer.Argument(..., help="Subscriber username."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the audit log)."),
) -> None:
    """Suspend a subscriber now (walled garden or reject, per config)."""
    with store() as s:
        sub = subs.suspend(s, username, actor(), reason)
    done(f"subscriber {username} suspended", subscriber=_row(sub))


@app.command("resume")
def resume(username: str = typer.Argument(..., help="Subscriber username.")) -> None:
    """Resume a suspended subscriber."""
    with store() as s:
        sub = subs.resume(s, username, actor())
    done(f"subscriber {username} resumed", subscriber=_row(sub))


@app.command("remove")
def remove(username: str = typer.Argument(..., help="Subscriber username.")) -> None:
    """Remove a subscriber who has no money records (else suspend them)."""
    with store() as s:
        subs.remove(s, username, actor())
    done(f"subscriber {username} removed")


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="CSV: username,password,plan[,service,ip,phone,name]."),
) -> None:
    """Import subscribers from CSV: every row validated first, then one transaction."""
    rows, columns = subs.read_csv(file, cfg().billing.country)
    with store() as s:
        if STATE.json or not console.is_terminal:
            result = subs.import_rows(s, rows, actor(), columns=columns, cfg=cfg())
        else:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("importing", total=len(rows))
                result = subs.import_rows(
                    s, rows, actor(), columns=columns, cfg=cfg(),
                    progress=lambda n: progress.update(task, completed=n),
                )
    done(f"imported {len(rows)} rows: {result.created} created, {result.updated} updated, "
         f"{result.unchanged} unchanged",
         created=result.created, updated=result.updated, unchanged=result.unchanged)
