"""The `jasiyo` command. Thin: parse, call the library, print.

Errors from the library (:class:`jasiyo.errors.JasiyoError`) become one line on stderr and
exit status 1; usage errors exit 2 (typer). Only a bug in Jasiyo shows a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import sys

import typer

try:  # typer >= 0.25 vendors click; its usage errors are these (no public alias)
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on plain click
    from click.exceptions import ClickException  # type: ignore[no-redef]

from jasiyo import config as config_mod
from jasiyo import log as log_mod
from jasiyo.commands import common, plan, router, session, subscriber
from jasiyo.commands.common import STATE, actor, cfg, done
from jasiyo.errors import ConfigError, JasiyoError

app = typer.Typer(
    name="jasiyo",
    help="Jasiyo: billing and network provisioning for ISPs (RADIUS, MikroTik, EdgeOS).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
agent_app = typer.Typer(help="The POP agent: run it, enrol it, restore it.", no_args_is_help=True)

app.add_typer(plan.app, name="plan")
app.add_typer(subscriber.app, name="subscriber")
app.add_typer(router.app, name="router")
app.add_typer(session.app, name="session")
app.add_typer(agent_app, name="agent")


@app.callback()
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


@app.command("init")
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
            added = seed(s, actor())
        msg.append(f"demo: {added['subscribers']} subscribers added")
    elif demo:
        msg.append("demo: the store already existed, so no demo data was added")
    done("; ".join(msg), config=str(path), **info)


@agent_app.command("run")
def agent_run() -> None:
    """Serve RADIUS and run billing until SIGTERM / SIGINT."""
    from jasiyo.agent.runtime import serve

    conf = cfg()
    log_mod.setup(conf.agent.log_level)
    asyncio.run(serve(conf))


def _mount_agent_sync() -> None:
    from jasiyo.commands import sync as sync_cmd

    agent_app.command("enroll")(sync_cmd.agent_enroll)
    agent_app.command("restore")(sync_cmd.agent_restore)


_mount_agent_sync()


def _mount_optional() -> None:
    """Command groups that live beside the core (drivers, billing, sync, dev tools)."""
    import importlib

    for module, attr, name in (
        ("jasiyo.commands.dev", "app", "dev"),
        ("jasiyo.commands.billing", "payment_app", "payment"),
        ("jasiyo.commands.billing", "invoice_app", "invoice"),
        ("jasiyo.commands.billing", "billing_app", "billing"),
        ("jasiyo.commands.cloud", "app", "cloud"),
        ("jasiyo.commands.tenant", "app", "tenant"),
        ("jasiyo.commands.sync", "app", "sync"),
        ("jasiyo.commands.sms", "app", "sms"),
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        sub = getattr(mod, attr, None)
        if sub is not None:
            app.add_typer(sub, name=name)


_mount_optional()

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
        app(args=args, prog_name="jasiyo", standalone_mode=False)
    except JasiyoError as exc:
        logging.getLogger("jasiyo.cli").info("error %s", exc)
        typer.echo(f"error: {exc}", err=True)
        return 1
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        return 130
    except sqlite3.Error as exc:
        typer.echo(f"error: the store failed: {exc}", err=True)
        return 1
    except OverflowError:
        typer.echo("error: a number given is too large", err=True)
        return 1
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
