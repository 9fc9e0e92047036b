"""`jasiyo subscriber ...`: customers, their credentials and their status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from jasiyo.agent.records import Subscriber
from jasiyo.commands.billing import statement
from jasiyo.commands.common import (
    STATE,
    actor,
    cfg,
    console,
    done,
    group,
    human_bytes,
    lazy,
    show_list,
    show_one,
    store,
    when,
)
from jasiyo.errors import ValidationError

subs = lazy("jasiyo.agent.subscribers")
pops = lazy("jasiyo.agent.pops")

app = group("Subscribers: add, change, suspend, import.")
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
    tax_pin: str | None = typer.Option(None, "--tax-pin", help="Customer's tax PIN, for invoices."),
    mac: str | None = typer.Option(
        None, "--mac", help="Bind to this device: only this Calling-Station-Id logs in."
    ),
    router: str | None = typer.Option(
        None,
        "--router",
        help="Home router: its POP bills and reconciles the subscriber "
        "(default: learned from the first session).",
    ),
) -> None:
    """Add a subscriber."""
    if bool(password) == generate_password:
        raise ValidationError("give exactly one of --password P or --generate-password")
    secret = password or subs.generate_password()
    new = subs.NewSubscriber.build(
        username,
        password=secret,
        plan=plan,
        service=service,
        ip=ip,
        phone=phone,
        name=name,
        sms_consent=sms_consent,
        tax_pin=tax_pin,
        country=cfg().billing.country,
        mac=mac,
    )
    with store() as s:
        with s.transaction():  # one change: the subscriber and its home
            subs.add(s, new, actor())
            if router:
                pops.set_home(s, new.username, router, actor())
        sub = subs.get(s, new.username)
    extra = {"password": secret} if generate_password else {}
    done(
        f"subscriber {sub.username} added on plan {sub.plan}"
        + (f"; password: {secret}" if generate_password else ""),
        subscriber=_row(sub),
        **extra,
    )


@app.command("list")
def list_(
    status: str | None = typer.Option(
        None, "--status", help="Only this status: active, grace, suspended, terminated."
    ),
    search: str | None = typer.Option(
        None, "--search", "-s", help="Text in the username, name, phone or tax PIN."
    ),
    plan: str | None = typer.Option(None, "--plan", help="Only subscribers on this plan."),
    router: str | None = typer.Option(
        None, "--router", help="Only those homed on this router (`subscriber add/move --router`)."
    ),
    seen_on: str | None = typer.Option(
        None, "--seen-on", help="Only those with a session recorded from this router."
    ),
    limit: int = typer.Option(50, "--limit", min=1, help="Rows per page (default 50)."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many rows first."),
) -> None:
    """List subscribers by username, a page at a time."""
    with store() as s:
        page = subs.page(
            s, status, search=search, plan=plan, router=router, seen_on=seen_on, limit=limit, offset=offset
        )
    rows = [_row(x) for x in page.rows]
    show_list(rows, ["username", "name", "plan", "service", "status", "ip", "paid_until"], "subscribers")
    if not STATE.json and page.total > len(rows):
        first = offset + 1 if rows else offset
        console.print(
            f"{first}-{offset + len(rows)} of {page.total}; next page: --offset {offset + limit}"
            if offset + len(rows) < page.total
            else f"{first}-{offset + len(rows)} of {page.total}"
        )


@app.command("show")
def show(username: str = typer.Argument(..., help="Subscriber username.")) -> None:
    """Show one subscriber: profile, balance, paid-through, usage this cycle, sessions."""
    from jasiyo.agent import consent
    from jasiyo.money import format_money

    with store() as s:
        row = _row(subs.get(s, username))
        more = subs.details(s, username)
        rec = consent.latest(s, username)
    row["sms_consent_record"] = (
        f"{'given' if rec.given else 'withdrawn'} {when(rec.at)} via {rec.how} by {rec.actor}"
        + (f" ({rec.source})" if rec.source else "")
        if rec
        else "none recorded"
    )
    if STATE.json:
        show_one({**row, **more})
        return
    quota = f" of {human_bytes(more['quota_bytes'])}" if more["quota_bytes"] else ""
    row.update(
        {
            "balance": format_money(more["balance_minor"], more["currency"]),
            "cycle": (
                f"{when(more['cycle_start'])} .. {when(more['cycle_end'])}" if more["cycle_start"] else None
            ),
            "usage": (human_bytes(more["usage_bytes"]) + quota if more["usage_bytes"] is not None else None),
            "fair_usage": "throttled" if more["fup_active"] else ("not reached" if quota else None),
            "open_invoices": more["open_invoices"],
            "sessions": "; ".join(
                f"{x['router'] or x['nas_ip']} {x['framed_ip'] or '-'} since {when(x['started_at'])}"
                f" ({human_bytes(x['octets'])}{', stale' if x['status'] == 'stale' else ''})"
                for x in more["sessions"]
            )
            or "none",
        }
    )
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
    tax_pin: str | None = typer.Option(None, "--tax-pin", help="Customer's tax PIN ('' to clear)."),
    mac: str | None = typer.Option(None, "--mac", help="Bind to this device's MAC ('' to unbind)."),
    router: str | None = typer.Option(
        None, "--router", help="Home router ('' for none); `subscriber move` says the same."
    ),
) -> None:
    """Change a subscriber. A plan change mid-cycle is prorated."""
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "password": password,
            "service": service,
            "ip": ip,
            "phone": phone,
            "name": name,
            "sms_consent": sms_consent,
            "tax_pin": tax_pin,
            "mac": mac,
        }.items()
        if v is not None
    }
    if plan is None and not changes and router is None:
        raise ValidationError("nothing to change: give at least one option")
    from jasiyo.agent import accounts

    with store() as s:
        with s.transaction():  # all or nothing: a bad --router leaves no plan change
            if plan is not None or changes:
                accounts.update(s, cfg(), username, actor(), plan=plan, **changes)
            if router is not None:
                pops.set_home(s, username, router or None, actor())
        sub = subs.get(s, username)
    done(f"subscriber {username} updated", subscriber=_row(sub))


@app.command("move")
def move(
    username: str = typer.Argument(..., help="Subscriber username."),
    router: str = typer.Option(..., "--router", help="The new home router."),
) -> None:
    """Hand a subscriber to another home router (and its POP); nothing is charged twice."""
    with store() as s:
        r = pops.move(s, username, router, actor())
    if not r["changed"]:
        done(f"{username} is already homed on {router} (POP {r['pop'] or '-'}); nothing changed", **r)
        return
    done(
        f"{username} moved to router {router} (POP {r['pop'] or '-'}) from "
        f"{r['from_router'] or 'no home'}; that POP bills, reminds and reconciles it from now",
        **r,
    )


@app.command("suspend")
def suspend(
    username: str = typer.Argument(..., help="Subscriber username."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the audit log)."),
) -> None:
    """Suspend a subscriber now (walled garden or reject, per config)."""
    with store() as s:
        before = subs.get(s, username)
        sub = subs.suspend(s, username, actor(), reason)
    if before.status == "suspended":
        msg = (
            f"subscriber {username} was already suspended ({before.status_reason}); now held "
            "by hand: a payment no longer restores them (`jasiyo subscriber resume` does)"
        )
    else:
        msg = f"subscriber {username} suspended"
    done(msg, subscriber=_row(sub))


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
    file: Path = typer.Argument(
        ..., help="CSV: username,password,plan[,service,ip,phone,name,sms_consent,tax_pin]."
    ),
    update_passwords: bool = typer.Option(
        False,
        "--update-passwords",
        help="Replace existing subscribers' passwords with the file's (default: keep them).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; change nothing."),
) -> None:
    """Import subscribers from CSV: every row checked first, then one transaction."""
    from jasiyo.agent import imports

    with store() as s:
        data = imports.read_csv(file, s)
        kw: dict[str, Any] = dict(
            columns=data.columns,
            cfg=cfg(),
            dry_run=dry_run,
            update_passwords=update_passwords,
            lines=data.lines,
            source=str(file),
            homes=data.homes,
        )
        if STATE.json or not console.is_terminal:
            result = imports.import_rows(s, data.rows, actor(), **kw)
        else:
            from rich.progress import Progress

            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("importing", total=len(data.rows))
                result = imports.import_rows(
                    s, data.rows, actor(), progress=lambda n: progress.update(task, completed=n), **kw
                )
    report_import(f"{len(data.rows)} rows", result)


def report_import(what: str, result: Any, extra: str = "", **data: Any) -> None:
    """The import's counts, then each change on its own line (JSON: ``changes``)."""
    verb = "would import" if result.dry_run else "imported"
    done(
        f"{verb} {what}: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged{extra}" + (" (dry run: nothing changed)" if result.dry_run else ""),
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        changes=list(result.changes),
        dry_run=result.dry_run,
        **data,
    )
    if not STATE.json:
        for line in result.changes:
            console.print(f"  {line}")


@app.command("export")
def export_cmd(
    username: str = typer.Argument(..., help="Subscriber username."),
    output: Path | None = typer.Option(
        None, "--output", help="Write the JSON document to this new file (mode 0600) instead of printing it."
    ),
    csv_dir: Path | None = typer.Option(
        None, "--csv", help="Also write one CSV per section into this new or empty directory."
    ),
) -> None:
    """Everything held about one subscriber, as one JSON document (audited)."""
    import json

    from jasiyo.agent import export

    with store() as s:
        doc = export.export_subscriber(s, cfg(), username, actor(), output, csv_dir)
    if output is None:
        typer.echo(json.dumps(doc, indent=2, default=str))
    else:
        done(
            f"export of {username} written to {output}" + (f" and {csv_dir}" if csv_dir else ""),
            output=str(output),
            csv=str(csv_dir) if csv_dir else None,
        )


@app.command("erase")
def erase_cmd(
    username: str = typer.Argument(..., help="Subscriber username."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: this cannot be undone."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the erasure record)."),
) -> None:
    """Erase a person's data on every POP and in the cloud; money is kept, pseudonymised."""
    from jasiyo.agent import erase

    if not yes:
        raise ValidationError(f"erasing {username} cannot be undone: add --yes to confirm")
    with store(durable=True) as s:
        result = erase.erase(s, username, actor(), reason)
    done(
        f"{username} erased: now {result.pseudonym} (money records kept under that name); "
        "other POPs and the cloud follow at the next sync",
        **result.to_dict(),
    )
