"""`jasiyo audit ...`: read the audit log (who changed what, when)."""

from __future__ import annotations

import json

import typer

from jasiyo.commands.common import cfg, group, show_list, store

app = group("The audit log: who changed what, when.")


@app.command("list")
def list_cmd(
    user: str | None = typer.Option(None, "--user", help="Only lines about this subscriber."),
    actor: str | None = typer.Option(None, "--actor", help="Only lines by this actor."),
    action: str | None = typer.Option(None, "--action", help="Only this action, e.g. "
                                      "subscriber.erase."),
    since: str | None = typer.Option(None, "--since", help="From a date (2026-11-01, the "
                                     "tenant's time zone), a date and time, or an age (7d)."),
    limit: int = typer.Option(200, "--limit", min=1, max=100_000, help="At most this many."),
) -> None:
    """Audit lines, newest first, with their (unsealed) details."""
    from jasiyo.agent import audit, timeparse

    tz = cfg().billing.timezone
    with store() as s:
        start = timeparse.since(since, tz, s.now()) if since else None
        lines = audit.list_(s, user=user, actor=actor, action=action, since=start, limit=limit)
    rows = [{**line.to_dict(), "at": timeparse.local(line.at, tz),
             "details": json.dumps(line.detail, sort_keys=True, default=str)}
            for line in lines]
    show_list(rows, ["at", "actor", "action", "target", "details"], "audit lines")
