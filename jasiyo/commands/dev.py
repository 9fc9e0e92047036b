"""`jasiyo dev ...`: tools for engineers and the demo (simulated routers)."""

from __future__ import annotations

import threading

import typer

from jasiyo.commands.common import group

app = group("Developer tools: simulated routers for demos and tests.")


@app.callback()
def _group() -> None:
    """Developer tools: simulated routers for demos and tests."""


@app.command("routeros-sim")
def routeros_sim(
    port: int = typer.Option(8728, "--port", help="TCP port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    username: str = typer.Option("admin", "--username", help="API user the simulator accepts."),
    password: str = typer.Option("", "--password", help="That user's password."),
    cert: str | None = typer.Option(None, "--cert", help="PEM certificate: serve api-ssl."),
    key: str | None = typer.Option(None, "--key", help="PEM private key for --cert."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Delay before every reply."),
    identity: str = typer.Option("jasiyo-sim", "--identity", help="/system/identity name."),
) -> None:
    """Run a simulated RouterOS 7 router speaking the real API protocol, until Ctrl-C."""
    from jasiyo.drivers.mikrotik.sim import RouterOSSim
    from jasiyo.drivers.mikrotik.simstate import RouterOSState

    sim = RouterOSSim(host, port, users={username: password}, certfile=cert, keyfile=key,
                      state=RouterOSState(identity=identity))
    sim.faults.latency_s = latency_ms / 1000
    sim.start()
    kind = "api-ssl" if cert else "api"
    typer.echo(f"RouterOS simulator ({kind}) listening on {host}:{sim.port}, "
               f"user {username!r}; Ctrl-C to stop")
    try:
        threading.Event().wait()  # serve until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


@app.command("edgeos-sim")
def edgeos_sim(
    port: int = typer.Option(2222, "--port", help="TCP port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    username: str = typer.Option("ubnt", "--username", help="SSH user the simulator accepts."),
    password: str = typer.Option("ubnt", "--password", help="That user's password."),
    host_key_file: str | None = typer.Option(
        None, "--host-key-file", help="Keep the SSH host key here (created if missing)."),
    hostname: str = typer.Option("jasiyo-edgeos", "--hostname", help="system host-name."),
) -> None:
    """Run a simulated EdgeRouter (SSH, Vyatta config wrappers), until Ctrl-C."""
    from jasiyo.drivers.ubiquiti.sim import EdgeOSSim
    from jasiyo.drivers.ubiquiti.simstate import EdgeOSState

    sim = EdgeOSSim(host, port, users={username: password}, host_key_file=host_key_file,
                    state=EdgeOSState(hostname=hostname))
    sim.start()
    typer.echo(f"EdgeOS simulator listening on {host}:{sim.port}, user {username!r}, "
               f"host key {sim.host_key_fingerprint}; Ctrl-C to stop")
    try:
        threading.Event().wait()  # serve until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
