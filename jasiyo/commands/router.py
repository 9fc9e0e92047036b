"""`jasiyo router ...`: the POP's routers (RADIUS clients and driven devices)."""

from __future__ import annotations

from typing import Any

import typer

from jasiyo.agent.records import Router
from jasiyo.commands.common import STATE, actor, cfg, console, done, group, lazy, show_list, show_one, store

routers = lazy("jasiyo.agent.routers")

app = group("Routers: RADIUS clients the agent answers and drives.")


def _row(r: Router) -> dict[str, Any]:
    d = r.to_dict()
    d.pop("id")
    return d


def _payment_hosts() -> str:
    """Payment pages a hotspot device must reach before it is logged in."""
    return "checkout.paystack.com" if cfg().payments.paystack.configured else ""


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Router name, e.g. pop1-ccr."),
    driver: str = typer.Option(
        ..., "--driver",
        help="mikrotik, edgeos or generic (RADIUS only: pppd, accel-ppp, Cisco, Cambium).",
    ),
    host: str = typer.Option(..., "--host", help="Management address (IP or DNS name)."),
    radius_secret: str = typer.Option(
        ..., "--radius-secret", help="Shared RADIUS secret (8+ characters)."
    ),
    port: int | None = typer.Option(None, "--port", help="API/SSH port (driver default)."),
    username: str | None = typer.Option(None, "--username", help="API/SSH login."),
    password: str | None = typer.Option(None, "--password", help="API/SSH password."),
    nas_ip: str | None = typer.Option(
        None, "--nas-ip", help="Source address of its RADIUS packets (default: --host)."
    ),
    coa_port: int | None = typer.Option(
        None, "--coa-port", help="Its CoA/Disconnect port (default: [radius] coa_port, 3799)."
    ),
    require_message_authenticator: bool = typer.Option(
        True, "--require-message-authenticator/--no-require-message-authenticator",
        help="Drop its Access-Requests lacking Message-Authenticator (BlastRADIUS). "
             "Relax only for old routers that cannot send it.",
    ),
    tls: bool = typer.Option(False, "--tls", help="MikroTik: use api-ssl (8729)."),
    fingerprint: str | None = typer.Option(
        None, "--fingerprint", help="Pin the router's TLS certificate / SSH host key (SHA-256)."
    ),
    trust_on_first_use: bool = typer.Option(
        False, "--trust-on-first-use",
        help="EdgeOS: accept and pin the SSH host key seen at the first connection.",
    ),
    radsec_fingerprint: str | None = typer.Option(
        None, "--radsec-fingerprint",
        help="SHA-256 of its RadSec client certificate: identifies it over RADIUS/TLS.",
    ),
    pay_page: str | None = typer.Option(
        None, "--pay-page", help="Pay page URL (http://IP[:port]/pay): suspended customers' "
        "HTTP is redirected there; DNS and it are let through.",
    ),
    portal_url: str | None = typer.Option(
        None, "--portal-url", help="Hotspot portal URL: let into the hotspot's walled garden "
        "with the payment pages.",
    ),
    suspended_pool: str | None = typer.Option(
        None, "--suspended-pool",
        help="Framed-Pool (on the NAS) for suspended subscribers where it cannot "
             "walled-garden; without it they are rejected there.",
    ),
) -> None:
    """Add a router."""
    options: dict[str, Any] = {k: v for k, v in routers.walled_garden_options(
        pay_page, portal_url, _payment_hosts()).items() if v not in ("", None)}
    if suspended_pool:
        options["suspended_pool"] = suspended_pool
    if tls:
        options["tls"] = True
    if fingerprint:
        options["fingerprint"] = fingerprint
    if trust_on_first_use:
        options["trust_on_first_use"] = True
    with store() as s:
        router = routers.add(
            s, name, driver=driver, host=host, radius_secret=radius_secret, actor=actor(),
            port=port, username=username, password=password, nas_ip=nas_ip,
            require_message_authenticator=require_message_authenticator,
            coa_port=cfg().radius.coa_port if coa_port is None else coa_port, options=options,
            radsec_fingerprint=radsec_fingerprint,
        )
    warn = "" if require_message_authenticator else (
        " (WARNING: Message-Authenticator not required: vulnerable to BlastRADIUS)")
    done(f"router {router.name} added (NAS {router.nas_ip}){warn}", router=_row(router))


@app.command("list")
def list_() -> None:
    """List routers."""
    with store() as s:
        rows = [_row(r) for r in routers.list_(s)]
    show_list(rows, ["name", "pop", "driver", "host", "nas_ip", "require_message_authenticator"],
              "routers")


@app.command("show")
def show(name: str = typer.Argument(..., help="Router name.")) -> None:
    """Show one router (never its secrets)."""
    with store() as s:
        show_one(_row(routers.get(s, name)))


@app.command("update")
def update(
    name: str = typer.Argument(..., help="Router name."),
    host: str | None = typer.Option(None, "--host", help="Management address (IP or name)."),
    port: int | None = typer.Option(None, "--port", help="API/SSH port."),
    username: str | None = typer.Option(None, "--username", help="API/SSH login (with --password)."),
    password: str | None = typer.Option(None, "--password", help="API/SSH password."),
    radius_secret: str | None = typer.Option(
        None, "--radius-secret", help="Shared RADIUS secret (8+ characters)."
    ),
    nas_ip: str | None = typer.Option(
        None, "--nas-ip", help="Source address of its RADIUS packets (does not follow --host)."
    ),
    coa_port: int | None = typer.Option(None, "--coa-port", help="Its CoA/Disconnect port."),
    require_message_authenticator: bool | None = typer.Option(
        None, "--require-message-authenticator/--no-require-message-authenticator",
        help="Drop its Access-Requests lacking Message-Authenticator (BlastRADIUS).",
    ),
    tls: bool | None = typer.Option(None, "--tls/--no-tls", help="MikroTik: api-ssl or plain."),
    fingerprint: str | None = typer.Option(
        None, "--fingerprint", help="Pin its TLS certificate / SSH host key (SHA-256); '' unpins."
    ),
    radsec_fingerprint: str | None = typer.Option(
        None, "--radsec-fingerprint",
        help="SHA-256 of its RadSec client certificate; '' unpins.",
    ),
    pay_page: str | None = typer.Option(
        None, "--pay-page", help="Pay page URL (http://IP[:port]/pay): suspended customers' "
        "HTTP is redirected there; DNS and it are let through; '' removes it.",
    ),
    portal_url: str | None = typer.Option(
        None, "--portal-url", help="Hotspot portal URL: let into the hotspot's walled garden "
        "with the payment pages; '' removes it.",
    ),
    suspended_pool: str | None = typer.Option(
        None, "--suspended-pool",
        help="Framed-Pool for suspended subscribers where it cannot walled-garden; '' clears.",
    ),
) -> None:
    """Change a router's settings; only what you give changes."""
    given = {"host": host, "port": port, "username": username, "password": password,
             "radius_secret": radius_secret, "nas_ip": nas_ip, "coa_port": coa_port,
             "require_message_authenticator": require_message_authenticator, "tls": tls,
             "fingerprint": fingerprint, "radsec_fingerprint": radsec_fingerprint,
             "suspended_pool": suspended_pool}
    given = {k: v for k, v in given.items() if v is not None}
    given.update(routers.walled_garden_options(pay_page, portal_url, _payment_hosts()))
    with store() as s:
        router = routers.update(s, name, actor(), **given)
    warn = "" if router.require_message_authenticator else (
        " (WARNING: Message-Authenticator not required: vulnerable to BlastRADIUS)")
    done(f"router {router.name} updated: {', '.join(given)} (NAS {router.nas_ip}){warn}",
         router=_row(router))


@app.command("remove")
def remove(
    name: str = typer.Argument(..., help="Router name."),
    force: bool = typer.Option(
        False, "--force", help="Remove even with active sessions (they are marked closed)."
    ),
) -> None:
    """Remove a router; its RADIUS packets are dropped from then on."""
    with store() as s:
        closed = routers.remove(s, name, actor(), force=force)
    extra = f"; {closed} active session(s) marked closed" if closed else ""
    done(f"router {name} removed{extra}", closed_sessions=closed)


@app.command("check")
def check(name: str = typer.Argument(..., help="Router name.")) -> None:
    """Reach the router: identity, software version, what the agent manages there."""
    from jasiyo.agent import reconcile

    with store() as s:
        info = reconcile.check(s, cfg(), name)
    if STATE.json:
        show_one(info)
        return
    managed = ", ".join(f"{k}: {v}" for k, v in sorted(info["managed"].items())) or "nothing yet"
    console.print(f"{name}: reachable in {info['round_trip_s']}s; {info['vendor']} "
                  f"{info['version']} ({info['model']}), identity {info['identity']!r}; "
                  f"managed: {managed}")


@app.command("sync")
def sync(
    name: str = typer.Argument(..., help="Router name."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the changes; apply nothing."),
) -> None:
    """Make the router match the desired state now (only the difference is applied)."""
    from jasiyo.agent import reconcile

    with store() as s:
        if dry_run:
            diff = reconcile.plan(s, cfg(), name)
            rows = [{"action": c.action.value, "kind": c.kind, "key": c.key,
                     "subscriber": c.subscriber, "reason": c.reason,
                     "change": c.describe()} for c in diff.changes]
            rows += [{"action": "conflict", "kind": c.kind, "key": c.key, "subscriber": None,
                      "reason": c.reason, "change": ""} for c in diff.conflicts]
            show_list(rows, ["action", "kind", "key", "subscriber", "reason"], "changes needed")
            return
        if console.is_terminal and not STATE.json:
            with console.status(f"reconciling {name}..."):
                report = reconcile.sync(s, cfg(), name, actor())
        else:
            report = reconcile.sync(s, cfg(), name, actor())
    failed = [{"change": f.change.describe(), "error": f.error} for f in report.failed]
    if STATE.json:
        done(report.summary(), applied=[c.describe() for c in report.applied], failed=failed,
             not_attempted=[c.describe() for c in report.not_attempted],
             conflicts=[f"{c.kind} {c.key}: {c.reason}" for c in report.conflicts],
             api_calls=report.api_calls)
    else:
        console.print(f"{name}: {report.summary()} ({report.api_calls} API calls, "
                      f"{report.duration_s:.2f}s)")
        for f in failed:
            console.print(f"  failed: {f['change']}: {f['error']}")
        for c in report.conflicts:
            console.print(f"  conflict: {c.kind} {c.key}: {c.reason}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("import")
def import_(
    name: str = typer.Argument(..., help="Router name."),
    mapping: list[str] = typer.Option(
        [], "--map", help="PROFILE=PLAN: which plan a router profile becomes (repeatable)."
    ),
    default_plan: str | None = typer.Option(
        None, "--default-plan", help="Plan for profiles with no plan of the same name."
    ),
    update_passwords: bool = typer.Option(
        False, "--update-passwords",
        help="Replace existing subscribers' passwords with the router's (default: keep)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; change nothing."),
) -> None:
    """Bring the router's PPP secrets / hotspot users in as subscribers (rerun: no change)."""
    from jasiyo.agent import reconcile
    from jasiyo.errors import ValidationError

    plan_map: dict[str, str] = {}
    for item in mapping:
        profile, sep, plan_name = item.partition("=")
        if not sep or not profile or not plan_name:
            raise ValidationError(f"bad --map {item!r}: use PROFILE=PLAN")
        plan_map[profile] = plan_name
    with store() as s:
        result = reconcile.import_accounts(s, cfg(), name, actor(), plan_map=plan_map,
                                           default_plan=default_plan,
                                           update_passwords=update_passwords, dry_run=dry_run)
    from jasiyo.commands.subscriber import report_import

    report_import(f"from {name}", result, f", {len(result.skipped)} skipped",
                  skipped=list(result.skipped))
    if not STATE.json:
        for line in result.skipped:
            console.print(f"  skipped {line}")
