"""`jasiyo sync ...` and the cloud-related `jasiyo agent ...` commands."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import typer

from jasiyo.commands.common import actor, cfg, done, group, show_list, show_one, when
from jasiyo.errors import ValidationError


def _syncrun() -> ModuleType:  # imported on use: it pulls in httpx and the crypto stack
    from jasiyo.agent import syncrun

    return syncrun

app = group("Sync with the cloud: push local changes, pull the others'.")


@app.command("now")
def now(
    wait: float = typer.Option(0.0, "--wait", help="Long-poll up to this many seconds."),
) -> None:
    """Push the outbox and pull everything new, once."""
    result = _syncrun().sync_once(cfg(), wait=wait)
    done(f"pushed {result.pushed}, pulled {result.pulled}, applied {result.applied}",
         pushed=result.pushed, pulled=result.pulled, applied=result.applied)


@app.command("snapshot")
def snapshot_cmd() -> None:
    """Write a sealed snapshot to the cloud now; it drops the events the snapshot covers."""
    from jasiyo.agent import snapshot

    r = snapshot.write(cfg())
    done(f"snapshot {r['snapshot']} up to seq {r['seq']}: {r['events']} events in "
         f"{r['parts']} parts ({r['bytes']} bytes); the cloud dropped {r['dropped']} events", **r)


@app.command("status")
def status() -> None:
    """Cursor, backlog, lag and last error (read from the store; works offline)."""
    st = _syncrun().sync_status(cfg()).to_dict()
    st["last_ok"] = when(st.pop("last_ok_at"))
    show_one(st)


quarantine_app = typer.Typer(
    help="Pulled events that would not open, set aside so the rest of the log flows.",
    no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("list")
def quarantine_list() -> None:
    """Quarantined events: sequence, id, sending agent, why they would not open."""
    rows = [{"seq": q.seq, "id": q.id, "origin": q.origin, "error": q.error, "at": when(q.at)}
            for q in _syncrun().quarantine_list(cfg())]
    show_list(rows, ["seq", "id", "origin", "error", "at"], "quarantined events")


@quarantine_app.command("retry")
def quarantine_retry() -> None:
    """Open quarantined events again (e.g. after `jasiyo tenant import-recovery`)."""
    result = _syncrun().quarantine_retry(cfg())
    done(f"applied {result['applied']}, still quarantined {result['quarantined']}", **result)


@quarantine_app.command("skip")
def quarantine_skip(
    event_id: str = typer.Argument(..., help="The event id (`jasiyo sync quarantine list`)."),
) -> None:
    """Give up on one quarantined event for good (recorded in the audit log)."""
    bad = _syncrun().quarantine_skip(cfg(), event_id, actor())
    done(f"skipped event {bad.id} from agent {bad.origin}", id=bad.id, origin=bad.origin)


def agent_enroll(
    url: str = typer.Argument(..., help="Cloud URL, e.g. https://cloud.example.net"),
    token: str = typer.Argument(..., help="One-time enrolment token from the tenant admin."),
) -> None:
    """Register this agent's signing key with the cloud (once per agent)."""
    from jasiyo.agent.cloudlink import enroll_agent

    result = enroll_agent(cfg(), url, token)
    done(f"enrolled agent {result['agent_id']} in tenant {result['tenant_id']}. Next: "
         "`jasiyo tenant init` (first POP) or `jasiyo tenant import-recovery FILE`", **result)


def agent_restore(
    from_cloud: bool = typer.Option(False, "--from-cloud", help="Rebuild from the cloud log."),
    recovery: Path = typer.Option(..., "--recovery", help="The tenant recovery file."),
) -> None:
    """Rebuild this (freshly initialised, enrolled) agent's store from the cloud."""
    if not from_cloud:
        raise ValidationError("only --from-cloud restore exists; pass --from-cloud")
    from jasiyo.agent.tenantkeys import restore_from_cloud

    result = restore_from_cloud(cfg(), recovery)
    done(f"restored {result['events']} events: {result['plans']} plans, "
         f"{result['subscribers']} subscribers, {result['routers']} routers, "
         f"{result['payments']} payments", **result)
