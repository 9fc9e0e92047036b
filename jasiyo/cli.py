"""The `jasiyo` command. Thin: parse, call the library, print.

Errors from the library (:class:`jasiyo.errors.JasiyoError`) become one line on stderr and
exit status 1; usage errors exit 2 (typer). Only a bug in Jasiyo shows a traceback.
"""

from __future__ import annotations

import logging
import shutil
import sys

import typer

try:  # typer >= 0.25 vendors click; its usage errors are these (no public alias)
    from typer._click.exceptions import ClickException  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - older typer on plain click
    from click.exceptions import ClickException

from jasiyo import config as config_mod
from jasiyo import log as log_mod
from jasiyo.commands import common
from jasiyo.commands.common import STATE, actor, cfg, done, group
from jasiyo.errors import ConfigError, JasiyoError

#: Command groups: (module, attribute, help shown by `jasiyo --help`). A run imports and
#: builds only the group it names (typer inspects every command of what it builds), so a
#: short command does not pay for the whole tree. The help here must match the group's.
GROUPS: dict[str, tuple[str, str, str]] = {
    "plan": ("jasiyo.commands.plan", "app", "Plans: rate, price, period and billing rules."),
    "subscriber": ("jasiyo.commands.subscriber", "app",
                   "Subscribers: add, change, suspend, import."),
    "router": ("jasiyo.commands.router", "app",
               "Routers: RADIUS clients the agent answers and drives."),
    "session": ("jasiyo.commands.session", "app", "RADIUS sessions from accounting."),
    "payment": ("jasiyo.commands.billing", "payment_app",
                "Payments: record, ask for (M-Pesa, Paystack), match and list money."),
    "invoice": ("jasiyo.commands.billing", "invoice_app",
                "Invoices: one per subscriber and billing cycle."),
    "billing": ("jasiyo.commands.billing", "billing_app", "The billing clock: run a tick by hand."),
    "enforce": ("jasiyo.commands.enforce", "app",
                "The enforcement queue: Disconnect, CoA and router reconciles after a change."),
    "cloud": ("jasiyo.commands.cloud", "app",
              "The cloud registry: serve it, migrate it, create tenants."),
    "tenant": ("jasiyo.commands.tenant", "app",
               "Tenant data keys: create, export for new POPs, rotate."),
    "sync": ("jasiyo.commands.sync", "app",
             "Sync with the cloud: push local changes, pull the others'."),
    "dev": ("jasiyo.commands.dev", "app",
            "Developer tools: simulated routers and payment APIs for demos and tests."),
    "sms": ("jasiyo.commands.sms", "app", "SMS to customers: the outbox, broadcasts, templates."),
    "radsec": ("jasiyo.commands.radsec", "app",
               "RadSec (RADIUS over TLS): a CA and router certificates."),
    "portal": ("jasiyo.commands.portal", "app", "The customer portal: hotspot files for the router."),
    "voucher": ("jasiyo.commands.voucher", "app",
                "Vouchers: generate, print, list, revoke and export hotspot codes."),
    "pop": ("jasiyo.commands.pop", "app",
            "POPs: which agent bills and drives which subscribers and routers."),
    "audit": ("jasiyo.commands.audit", "app", "The audit log: who changed what, when."),
    "privacy": ("jasiyo.commands.privacy", "app",
                "Privacy: what is held and for how long; retention."),
}

root_app = typer.Typer(
    name="jasiyo",
    help="Jasiyo: billing and network provisioning for ISPs (RADIUS, MikroTik, EdgeOS).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
agent_app = group("The POP agent: run it, enrol it, restore it.")
root_app.add_typer(agent_app, name="agent")


@root_app.callback()
def root(
    config: str | None = typer.Option(
        None, "--config", "-c", help=f"Config file (default: ${config_mod.ENV_VAR} or ./jasiyo.toml)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print lists and objects as JSON."),
) -> None:
    """Global options apply to every command."""
    if config:
        STATE.config_path = config
    if json_out:
        STATE.json = True


@root_app.command("init")
def init(
    demo: bool = typer.Option(
        False, "--demo",
        help="With a new store: add a 127.0.0.1 router (secret testing123) and users "
        "user00001..user10000 (password pw-N). Never touches an existing store.",
    ),
) -> None:
    """Create the config (from the example, if missing), data directory, store and key."""
    path = config_mod.resolve_path(STATE.config_path)
    wrote = False
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(config_mod.EXAMPLE, path)
        except OSError as exc:
            raise ConfigError(f"cannot write config {path}: {exc.strerror}") from None
        wrote = True
    from jasiyo.agent.store import init_store

    info = init_store(cfg())
    msg = [f"config {path}" + (" (created)" if wrote else ""),
           f"data dir {info['data_dir']}",
           "agent key " + ("created (0600)" if info["key_created"] else "exists"),
           "store " + ("created" if info["store_created"] else "up to date")]
    if demo and info["store_created"]:
        from jasiyo.agent.demo import seed

        with common.store() as s:
            added = seed(s, cfg(), actor())
        msg.append(f"demo: {added['subscribers']} subscribers added")
    elif demo:
        msg.append("demo: the store already existed, so no demo data was added")
    done("; ".join(msg), config=str(path), **info)


@agent_app.command("run")
def agent_run(
    log_format: str = typer.Option(
        "text", "--log-format", help="text (time LEVEL logger event k=v) or json (one object a line)."
    ),
) -> None:
    """Serve RADIUS and run billing until SIGTERM / SIGINT."""
    import asyncio

    from jasiyo.agent.runtime import serve

    conf = cfg()
    if log_format not in log_mod.FORMATS:
        raise typer.BadParameter(f"{log_format!r}: use text or json", param_hint="--log-format")
    log_mod.setup(conf.agent.log_level, fmt=log_format)
    asyncio.run(serve(conf))


@agent_app.command("status")
def agent_status() -> None:
    """What runs, the store, RADIUS and web listeners, the cloud link, and the queues."""
    import json

    from jasiyo.agent import status

    report = status.collect(cfg())
    typer.echo(json.dumps(report, indent=2, default=str) if STATE.json
               else status.render_text(report))


def _mount_agent_sync() -> None:
    from jasiyo.commands import sync as sync_cmd

    agent_app.command("enroll")(sync_cmd.agent_enroll)
    agent_app.command("restore")(sync_cmd.agent_restore)


_mount_agent_sync()


def build_app(only: str | None = None, *, stubs: bool = False) -> typer.Typer:
    """The root with every group (default), only group ``only``, or (``stubs``) each group as
    an empty placeholder carrying its help, which is all `jasiyo --help` shows."""
    import importlib

    app = typer.Typer(name="jasiyo", help=root_app.info.help, no_args_is_help=True,
                      pretty_exceptions_enable=False, add_completion=False,
                      rich_markup_mode=None)
    app.registered_callback = root_app.registered_callback
    app.registered_commands = list(root_app.registered_commands)
    app.registered_groups = list(root_app.registered_groups)
    for name, (module, attr, help_text) in GROUPS.items():
        if only is not None and name != only:
            continue
        if stubs:
            stub = group(help_text)
            stub.command("-", hidden=True)(lambda: None)  # a group needs one command
            app.add_typer(stub, name=name)
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:  # an optional part not installed
            if exc.name != module:
                raise
            continue
        app.add_typer(getattr(mod, attr), name=name)
    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the whole tree, for tests and tools that walk every command
        return build_app()
    raise AttributeError(name)


def _app_for(args: list[str]) -> typer.Typer:
    """Build only what ``args`` run: the named group, or stubs for the root's help."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--config", "-c"):
            i += 2
            continue
        if arg.startswith("-"):
            if arg in ("--help", "-h"):
                return build_app(stubs=True)
            i += 1
            continue
        return build_app(arg) if arg in GROUPS else build_app()
    return build_app(stubs=True)  # no command: the root's help



def _mount_backup() -> None:
    # The module only defines the commands (its work is imported when they run): cheap.
    from jasiyo.commands import backup as backup_cmd

    root_app.command("backup")(backup_cmd.backup)
    root_app.command("restore")(backup_cmd.restore)


_mount_backup()

_GLOBAL_FLAGS = ("--json",)


def _hoist_globals(argv: list[str]) -> list[str]:
    """Let global options appear anywhere (`jasiyo plan list --json`), as engineers type them."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in _GLOBAL_FLAGS:
            front.append(arg)
        elif arg in ("--config", "-c") and i + 1 < len(argv) and i > 0:
            front.extend(argv[i:i + 2])
            i += 1
        elif arg.startswith("--config="):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> int:
    args = _hoist_globals(list(sys.argv[1:] if argv is None else argv))
    logging.getLogger().addHandler(logging.NullHandler())
    try:
        # Without standalone mode click *returns* the code of a `typer.Exit(n)` raised by
        # a command (a failed disconnect, a router sync with failures) instead of raising.
        code = _app_for(args)(args=args, prog_name="jasiyo", standalone_mode=False)
        if isinstance(code, int) and code:
            return code
    except JasiyoError as exc:
        logging.getLogger("jasiyo.cli").info("error %s", exc)
        typer.echo(f"error: {exc}", err=True)
        return 1
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        return 130
    except ClickException as exc:  # usage errors: typer prints them with the usage line
        exc.show()
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    return 0


def run() -> None:  # pragma: no cover - console-script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
