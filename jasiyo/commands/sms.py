"""`jasiyo sms list|send|broadcast|retry|templates|urls`: the SMS outbox and its gateway."""

from __future__ import annotations

from typing import Any

import typer

from jasiyo.commands.common import STATE, actor, cfg, console, done, show_list, store, when
from jasiyo.errors import ValidationError
from jasiyo.money import format_money

app = typer.Typer(help="SMS to customers: the outbox, broadcasts, templates.", no_args_is_help=True)
STATUSES = ("queued", "sending", "sent", "delivered", "failed", "dropped")


@app.command("list")
def list_(
    status: str | None = typer.Option(None, "--status", help=f"Only this status: {', '.join(STATUSES)}."),
    user: str | None = typer.Option(None, "--user", help="Only this subscriber."),
    limit: int = typer.Option(200, "--limit", help="At most this many (oldest first)."),
) -> None:
    """List messages in the outbox with their status, parts and cost."""
    from jasiyo.agent import notify

    if status and status not in STATUSES:
        raise ValidationError(f"bad status {status!r}: use {', '.join(STATUSES)}")
    with store() as s:
        rows: list[dict[str, Any]] = []
        for n in notify.list_(s, user, limit, status):
            d = n.to_dict()
            d["created"] = when(n.created_at)
            d["cost"] = (
                format_money(n.cost_minor, n.cost_currency)
                if n.cost_minor is not None and n.cost_currency
                else ""
            )
            rows.append(d)
    show_list(
        rows,
        ["created", "username", "kind", "status", "attempts", "parts", "cost", "detail", "message"],
        "sms",
    )


@app.command("send")
def send(
    username: str = typer.Argument(..., help="Subscriber to text."),
    text: str = typer.Argument(..., help="The message."),
) -> None:
    """Queue one message for a subscriber (only with recorded SMS consent)."""
    from jasiyo.agent import smsops
    from jasiyo.sms.encoding import segments

    with store() as s:
        smsops.send_one(s, username, text, actor())
    seg = segments(text.strip())
    done(
        f"queued for {username}: {seg.parts} part(s), {seg.encoding}", parts=seg.parts, encoding=seg.encoding
    )


@app.command("broadcast")
def broadcast(
    text: str = typer.Argument(..., help="The message."),
    plan: str | None = typer.Option(None, "--plan", help="Subscribers on this plan."),
    status: str | None = typer.Option(None, "--status", help="Subscribers with this status."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show count and cost; queue nothing."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask before queueing."),
) -> None:
    """Text every consenting subscriber on a plan or with a status (count and cost first)."""
    from jasiyo.agent import smsops

    with store() as s:
        preview = smsops.broadcast(s, text, actor(), plan=plan, status=status, dry_run=True)
        cost = (
            format_money(preview.estimated_cost_minor, preview.currency)
            if preview.estimated_cost_minor is not None and preview.currency
            else "unknown (nothing sent yet)"
        )
        summary = (
            f"{preview.recipients} recipient(s) with consent ({preview.skipped_no_consent}"
            f" without, skipped), {preview.parts_each} part(s) each ({preview.encoding}),"
            f" about {cost}"
        )
        if dry_run:
            done(f"dry run: {summary}", broadcast=preview.to_dict())
            return
        if not yes and not STATE.json and console.is_terminal:
            typer.confirm(f"{summary}. Queue it?", abort=True)
        result = smsops.broadcast(s, text, actor(), plan=plan, status=status)
    done(f"queued: {summary}", broadcast=result.to_dict())


@app.command("retry")
def retry(
    key: str | None = typer.Argument(None, help="One message's key (default: every failed one)."),
) -> None:
    """Queue failed messages again (stale ones stay failed)."""
    from jasiyo.agent import smsops

    with store() as s:
        n = smsops.retry(s, key)
    done(f"{n} message(s) queued again", count=n)


@app.command("templates")
def templates() -> None:
    """Show the templates in use (English and Swahili) and the variables they may use."""
    from jasiyo.sms import templates as tpl

    conf = cfg().sms
    rows = []
    for key in tpl.DEFAULTS:
        configured = getattr(conf.templates, key, "")
        rows.append(
            {
                "template": key,
                "source": "config" if configured else "built-in",
                "text": configured or tpl.DEFAULTS[key],
            }
        )
    if STATE.json:
        done("templates", templates=rows, variables=tpl.VARIABLES, language=conf.language)
        return
    show_list(rows, ["template", "source", "text"], f"templates (language {conf.language})")
    show_list(
        [{"variable": f"{{{k}}}", "meaning": v} for k, v in tpl.VARIABLES.items()],
        ["variable", "meaning"],
        "variables",
    )


@app.command("urls")
def urls() -> None:
    """The delivery-report and incoming-message URLs to set in the gateway's dashboard."""
    from jasiyo.agent import paywork, smsops

    conf = cfg()
    with store() as s:
        got = smsops.callback_urls(s, conf, register=paywork.cloud_register(conf, s))
    for base, url in got.items():
        typer.echo(f"{base}: {url}", err=True)
    done("set these in the Africa's Talking dashboard (SMS > callback URLs)", urls=got)
