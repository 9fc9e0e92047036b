"""`jasiyo enforce ...`: the enforcement queue (Disconnect / CoA / router reconcile)."""

from __future__ import annotations

from typing import Any

import typer

from jasiyo.commands.common import actor, done, group, show_list, store, when

app = group("The enforcement queue: Disconnect, CoA and router reconciles after a change.")


def _row(job: Any) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(job)
    d["target"] = job.router or job.nas_ip or "-"
    d["next"] = when(job.next_attempt_at) if job.status == "pending" else None
    d["outcome"] = job.result or job.last_error
    return d


@app.command("list")
def list_(
    pending: bool = typer.Option(False, "--pending", help="Only jobs not finished yet."),
    failed: bool = typer.Option(False, "--failed", help="Only jobs given up or cancelled."),
    user: str | None = typer.Option(None, "--user", help="Only this subscriber's jobs."),
    router: str | None = typer.Option(None, "--router", help="Only jobs for this router."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
) -> None:
    """List jobs, newest first: what, where, attempts and the last error."""
    from jasiyo.agent import enforce
    from jasiyo.errors import ValidationError

    if pending and failed:
        raise ValidationError("give --pending or --failed, not both")
    status = "pending" if pending else "failed" if failed else None
    with store() as s:
        rows = [
            _row(j)
            for j in enforce.list_filtered(s, status=status, username=user, router=router, limit=limit)
        ]
    show_list(
        rows,
        ["id", "username", "action", "target", "reason", "status", "attempts", "next", "outcome"],
        "enforcement jobs",
    )


@app.command("retry")
def retry(
    ids: list[int] = typer.Argument(None, help="Failed job ids (see `jasiyo enforce list`)."),
    user: str | None = typer.Option(None, "--user", help="Every failed job of this subscriber."),
) -> None:
    """Queue failed jobs again, due now, with a fresh attempt count."""
    from jasiyo.agent import enforce

    with store() as s:
        n = enforce.retry(s, ids or [], actor(), username=user)
    done(f"{n} failed job(s) queued again" if n else "no failed job matched; nothing changed", retried=n)


@app.command("cancel")
def cancel(
    ids: list[int] = typer.Argument(None, help="Pending job ids (see `jasiyo enforce list`)."),
    user: str | None = typer.Option(None, "--user", help="Every pending job of this subscriber."),
) -> None:
    """Take pending jobs off the queue (they are kept, marked cancelled)."""
    from jasiyo.agent import enforce

    with store() as s:
        n = enforce.cancel(s, ids or [], actor(), username=user)
    done(f"{n} pending job(s) cancelled" if n else "no pending job matched; nothing changed", cancelled=n)
