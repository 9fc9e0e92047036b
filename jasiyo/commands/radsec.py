"""`jasiyo radsec ...`: a small CA for RADIUS over TLS (RFC 6614)."""

from __future__ import annotations

from pathlib import Path

import typer

from jasiyo.commands.common import actor, cfg, done, store

app = typer.Typer(help="RadSec (RADIUS over TLS): a CA and router certificates.", no_args_is_help=True)


def _ca_dir() -> Path:
    return Path(cfg().radsec.ca).parent


@app.command("ca")
def ca(
    host: list[str] = typer.Option(
        [], "--host", help="A name or address routers reach the agent by (repeatable)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing CA (every router certificate stops working)."
    ),
) -> None:
    """Make the RadSec CA and the agent's server certificate (in <data_dir>/radsec/)."""
    from jasiyo.radius import pki

    c = cfg()
    name = c.agent.name or "jasiyo-agent"
    hosts = list(host)
    if c.radsec.address not in ("0.0.0.0", "::", ""):
        hosts.append(c.radsec.address)
    issued = pki.make_ca(_ca_dir(), name, hosts, force=force)
    done(
        f"RadSec CA made in {_ca_dir()}; agent certificate {issued.certificate} "
        f"(SHA-256 {issued.fingerprint}). Give routers {_ca_dir() / 'ca.pem'} to trust.",
        ca=str(_ca_dir() / "ca.pem"),
        certificate=str(issued.certificate),
        private_key=str(issued.private_key),
        fingerprint=issued.fingerprint,
    )


@app.command("issue")
def issue(
    router: str = typer.Argument(..., help="Router name (as in `jasiyo router list`)."),
    out: Path | None = typer.Option(
        None, "--out", help="Directory for ROUTER.pem and ROUTER.key (default: the CA's)."
    ),
    pin: bool = typer.Option(False, "--pin", help="Also pin this certificate's fingerprint on the router."),
) -> None:
    """Make a client certificate for ROUTER, signed by the RadSec CA."""
    from jasiyo.agent import routers
    from jasiyo.radius import pki

    with store() as s:
        routers.get(s, router)  # a certificate for a router that does not exist helps nobody
        issued = pki.issue(_ca_dir(), router, out=out)
        if pin:
            routers.update(s, router, actor(), radsec_fingerprint=issued.fingerprint)
    done(
        f"certificate for {router}: {issued.certificate} and key {issued.private_key} "
        f"(SHA-256 {issued.fingerprint}{', pinned' if pin else ''})",
        certificate=str(issued.certificate),
        private_key=str(issued.private_key),
        fingerprint=issued.fingerprint,
        pinned=pin,
    )
