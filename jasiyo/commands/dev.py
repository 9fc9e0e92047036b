"""`jasiyo dev ...`: tools for engineers and the demo (simulated routers and payment APIs)."""

from __future__ import annotations

import threading

import typer

from jasiyo.commands.common import group

app = group("Developer tools: simulated routers and payment APIs for demos and tests.")


@app.callback()
def _group() -> None:
    """Developer tools: simulated routers and payment APIs for demos and tests."""


def _serve_until_interrupted(sim: object) -> None:
    try:
        threading.Event().wait()  # serve until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()  # type: ignore[attr-defined]


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

    sim = RouterOSSim(
        host,
        port,
        users={username: password},
        certfile=cert,
        keyfile=key,
        state=RouterOSState(identity=identity),
    )
    sim.faults.latency_s = latency_ms / 1000
    sim.start()
    kind = "api-ssl" if cert else "api"
    typer.echo(
        f"RouterOS simulator ({kind}) listening on {host}:{sim.port}, user {username!r}; Ctrl-C to stop"
    )
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
        None, "--host-key-file", help="Keep the SSH host key here (created if missing)."
    ),
    hostname: str = typer.Option("jasiyo-edgeos", "--hostname", help="system host-name."),
) -> None:
    """Run a simulated EdgeRouter (SSH, Vyatta config wrappers), until Ctrl-C."""
    from jasiyo.drivers.edgeos.sim import EdgeOSSim
    from jasiyo.drivers.edgeos.simstate import EdgeOSState

    sim = EdgeOSSim(
        host,
        port,
        users={username: password},
        host_key_file=host_key_file,
        state=EdgeOSState(hostname=hostname),
    )
    sim.start()
    typer.echo(
        f"EdgeOS simulator listening on {host}:{sim.port}, user {username!r}, "
        f"host key {sim.host_key_fingerprint}; Ctrl-C to stop"
    )
    try:
        threading.Event().wait()  # serve until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


@app.command("daraja-sim")
def daraja_sim(
    port: int = typer.Option(8000, "--port", help="TCP port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    consumer_key: str = typer.Option(
        "sim-consumer-key", "--consumer-key", help="Daraja app consumer key the simulator accepts."
    ),
    consumer_secret: str = typer.Option(
        "sim-consumer-secret", "--consumer-secret", help="That app's consumer secret."
    ),
    shortcode: str = typer.Option("174379", "--shortcode", help="Paybill / STK shortcode."),
    passkey: str = typer.Option(
        "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
        "--passkey",
        help="Lipa na M-Pesa Online passkey (default: Daraja's sandbox one).",
    ),
    till_number: str = typer.Option("", "--till-number", help="Till for buy goods (PartyB)."),
    callback_delay: float = typer.Option(
        3.0, "--callback-delay", help="Seconds before the simulated customer answers."
    ),
) -> None:
    """Run a simulated Safaricom Daraja API (OAuth, STK push and query, C2B), until Ctrl-C."""
    from jasiyo.payments.mpesa.sim import DarajaSim

    sim = DarajaSim(
        host,
        port,
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        shortcode=shortcode,
        passkey=passkey,
        till_number=till_number,
        callback_delay=callback_delay,
    )
    sim.start()
    typer.echo(
        f"Daraja simulator listening on {sim.url} (base_url), shortcode {shortcode}, "
        f"consumer key {consumer_key!r}; control under {sim.url}/sim/; Ctrl-C to stop"
    )
    _serve_until_interrupted(sim)


@app.command("paystack-sim")
def paystack_sim(
    port: int = typer.Option(8001, "--port", help="TCP port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    secret_key: str = typer.Option(
        "sk_test_jasiyo_sim", "--secret-key", help="Secret key the simulator accepts and signs with."
    ),
    webhook_url: str = typer.Option(
        "", "--webhook-url", help="Where charge.success webhooks go (the dashboard's webhook URL)."
    ),
    callback_delay: float = typer.Option(
        1.0, "--callback-delay", help="Seconds between a payment and its webhook."
    ),
) -> None:
    """Run a simulated Paystack API (initialize, verify, checkout page, webhooks), until Ctrl-C."""
    from jasiyo.payments.paystack.sim import PaystackSim

    sim = PaystackSim(
        host, port, secret_key=secret_key, webhook_url=webhook_url, callback_delay=callback_delay
    )
    sim.start()
    target = webhook_url or "nowhere (set --webhook-url)"
    typer.echo(
        f"Paystack simulator listening on {sim.url} (base_url), webhooks to {target}; "
        f"control under {sim.url}/sim/; Ctrl-C to stop"
    )
    _serve_until_interrupted(sim)


@app.command("sms-sim")
def sms_sim(
    port: int = typer.Option(8002, "--port", help="TCP port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    username: str = typer.Option(
        "sandbox", "--username", help="Africa's Talking username the simulator accepts."
    ),
    api_key: str = typer.Option("sim-at-api-key", "--api-key", help="The apiKey it accepts."),
    dlr_url: str = typer.Option("", "--dlr-url", help="Where delivery reports go (the dashboard's setting)."),
    incoming_url: str = typer.Option(
        "", "--incoming-url", help="Where customers' replies go (POST /sim/incoming)."
    ),
    callback_delay: float = typer.Option(
        1.0, "--callback-delay", help="Seconds between a send and its delivery report."
    ),
    rate_per_minute: int = typer.Option(
        0, "--rate-per-minute", help="Answer 429 beyond this many sends a minute."
    ),
) -> None:
    """Run a simulated Africa's Talking SMS API (send, delivery reports, replies), until Ctrl-C."""
    from jasiyo.sms.sim import AfricasTalkingSim

    sim = AfricasTalkingSim(host, port, username=username, api_key=api_key, callback_delay=callback_delay)
    sim.dlr_url, sim.incoming_url, sim.rate_per_minute = dlr_url, incoming_url, rate_per_minute
    sim.start()
    typer.echo(
        f"Africa's Talking SMS simulator listening on {sim.url} (base_url), username "
        f"{username!r}; control under {sim.url}/sim/; Ctrl-C to stop"
    )
    _serve_until_interrupted(sim)
