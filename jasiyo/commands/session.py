"""`jasiyo session ...`: who is online, and kicking a session off."""

from __future__ import annotations

import typer

from jasiyo.commands.common import (
    actor,
    cfg,
    done,
    failed,
    group,
    human_bytes,
    human_seconds,
    lazy,
    show_list,
    store,
    when,
)

sessions = lazy("jasiyo.agent.sessions")

app = group("RADIUS sessions from accounting.")


@app.command("list")
def list_(
    active: bool = typer.Option(False, "--active", help="Only sessions still online."),
    username: str | None = typer.Option(None, "--user", help="Only this subscriber."),
    limit: int = typer.Option(1000, "--limit", min=1, max=1_000_000, help="At most this many, newest first."),
) -> None:
    """List sessions, newest first."""
    with store() as s:
        rows = [x.to_dict() for x in sessions.list_(s, active=active, username=username, limit=limit)]
        names = {r["nas_ip"]: r["name"] for r in s.all("SELECT name, nas_ip FROM routers")}
    for r in rows:
        r["router"] = names.get(r["nas_ip"], r["nas_ip"])
        r["started"] = when(r["started_at"])
        r["last_update"] = when(r["last_update_at"])
        r["time"] = human_seconds(r["session_time"])
        r["upload"] = human_bytes(r["input_octets"])  # router's input: the client's upload
        r["download"] = human_bytes(r["output_octets"])
    show_list(
        rows,
        [
            "username",
            "router",
            "status",
            "framed_ip",
            "started",
            "time",
            "upload",
            "download",
            "acct_session_id",
        ],
        "sessions",
    )


@app.command("disconnect")
def disconnect(username: str = typer.Argument(..., help="Subscriber whose sessions to end.")) -> None:
    """Send a Disconnect-Request (RFC 5176) for each of the subscriber's active sessions."""
    with store() as s:
        results = sessions.disconnect(s, cfg(), username, actor())
    off = sum(1 for r in results if r["ok"])
    msg = f"{username}: {off} of {len(results)} session(s) disconnected"
    if not results:
        done(f"{username}: no active session", results=results)
        return
    bad = [r for r in results if not r["ok"]]
    if not bad:
        done(msg, results=results)
        return
    failed(
        msg + "; " + "; ".join(f"{r['acct_session_id']} on {r['nas_ip']}: {r['why']}" for r in bad),
        results=results,
    )
