"""`jasiyo router ...`: the POP's routers (RADIUS clients and driven devices)."""

from __future__ import annotations

from typing import Any

import typer

from jasiyo.agent import routers
from jasiyo.agent.models import Router
from jasiyo.commands.common import actor, done, show_list, show_one, store

app = typer.Typer(help="Routers: RADIUS clients the agent answers and drives.", no_args_is_help=True)


def _row(r: Router) -> dict[str, Any]:
    d = r.to_dict()
    d.pop("id")
    return d


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Router name, e.g. pop1-ccr."),
    driver: str = typer.Option(..., "--driver", help="mikrotik or ubiquiti."),
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
    coa_port: int = typer.Option(3799, "--coa-port", help="Its CoA/Disconnect port."),
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
) -> None:
    """Add a router."""
    options: dict[str, Any] = {}
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
            require_message_authenticator=require_message_authenticator, coa_port=coa_port,
            options=options,
        )
    warn = "" if require_message_authenticator else (
        " (WARNING: Message-Authenticator not required: vulnerable to BlastRADIUS)")
    done(f"router {router.name} added (NAS {router.nas_ip}){warn}", router=_row(router))


@app.command("list")
def list_() -> None:
    """List routers."""
    with store() as s:
        rows = [_row(r) for r in routers.list_(s)]
    show_list(rows, ["name", "driver", "host", "nas_ip", "require_message_authenticator"],
              "routers")


@app.command("show")
def show(name: str = typer.Argument(..., help="Router name.")) -> None:
    """Show one router (never its secrets)."""
    with store() as s:
        show_one(_row(routers.get(s, name)))


@app.command("remove")
def remove(name: str = typer.Argument(..., help="Router name.")) -> None:
    """Remove a router; its RADIUS packets are dropped from then on."""
    with store() as s:
        routers.remove(s, name, actor())
    done(f"router {name} removed")
