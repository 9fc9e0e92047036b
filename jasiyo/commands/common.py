"""What every command shares: the loaded config, the store, output as table or JSON.

Imports here and at the top of every ``jasiyo/commands`` module stay light (typer and the
standard library): the whole command tree is built on every run, so anything heavy
(sqlite-utils, rich, asyncio, the agent's modules) is imported by the command that uses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from jasiyo.agent.store import Store
    from jasiyo.config import Config


class _LazyModule:
    """A module imported on first attribute access (``plans = lazy("jasiyo.agent.plans")``)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._name), attr)


def lazy(name: str) -> Any:
    return _LazyModule(name)


def group(help: str) -> typer.Typer:
    """A command group with plain help (no rich boxes that cut option names, no markup)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


@dataclass
class State:
    """Global options, set by the root callback (and by ``main`` for --json anywhere)."""

    config_path: str | None = None
    json: bool = False
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            from jasiyo import config as config_mod

            self._config = config_mod.load(self.config_path)
        return self._config


STATE = State()


class _LazyConsole:
    """rich's Console, made on first use (importing rich costs every command otherwise)."""

    _real: Any = None

    @property
    def is_terminal(self) -> bool:
        import sys

        return sys.stdout.isatty()

    def print(self, *objects: Any, **kw: Any) -> None:
        if not self.is_terminal and all(isinstance(o, str) for o in objects) and not kw:
            typer.echo(" ".join(objects))  # piped: plain text, as written (no markup)
            return
        self.__getattr__("print")(*objects, **kw)

    def __getattr__(self, name: str) -> Any:
        if _LazyConsole._real is None:
            from rich.console import Console

            real = Console(highlight=False, soft_wrap=True)
            if not real.is_terminal:
                # Piped into grep or a file: never cut a cell to fit 80 columns.
                real = Console(highlight=False, soft_wrap=True, width=10_000)
            _LazyConsole._real = real
        return getattr(_LazyConsole._real, name)


console: Any = _LazyConsole()


def cfg() -> Config:
    return STATE.config


def actor() -> str:
    """Who the audit log records for this command."""
    import getpass

    name = cfg().agent.operator
    if name:
        return name
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def store(durable: bool = False) -> Iterator[Store]:
    """The store; ``durable`` commits with ``synchronous=FULL`` (money: on disk before we
    say it is recorded, even if the machine loses power right after)."""
    from jasiyo.agent.store import Store

    s = Store.open(cfg(), synchronous="FULL" if durable else "NORMAL")
    try:
        yield s
    finally:
        s.close()


def local_zone() -> Any:
    """The tenant's time zone (``[billing] timezone``): every time a person reads is in it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from jasiyo.errors import JasiyoError

    try:
        return ZoneInfo(cfg().billing.timezone)
    except (JasiyoError, ZoneInfoNotFoundError):  # no config to read: UTC, labelled
        return UTC


def when(ts: float | None) -> str:
    """A time for output: local wall time with its zone in tables (``2026-05-01 00:30:00
    EAT``); ISO 8601 with the offset in JSON (``2026-05-01T00:30:00+03:00``)."""
    if ts is None:
        return "-"
    dt = datetime.fromtimestamp(ts, local_zone())
    if STATE.json:
        return dt.isoformat(timespec="seconds")
    return dt.strftime("%Y-%m-%d %H:%M:%S %Z")


def parse_time(text: str) -> float:
    """A time a person typed (``--at``): ISO 8601; without an offset it is local time in
    ``[billing] timezone`` (``2026-05-01 00:30`` in Nairobi is 2026-04-30 21:30 UTC)."""
    from jasiyo.errors import ValidationError

    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"bad time {text!r}: use ISO 8601, e.g. 2026-05-01T00:00 (local time) or "
            "2026-05-01T00:00:00+03:00"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=local_zone())
    return dt.timestamp()


def human_bytes(n: int | None) -> str:
    """Octets as a person reads them: 1.5 GB (decimal units, as ISPs sell data)."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def human_seconds(s: float | int | None) -> str:
    """A duration as ``2d 3h``, ``3h 05m``, ``4m 10s``."""
    if s is None:
        return "-"
    s = int(s)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m:02d}m"
    return f"{m}m {sec:02d}s"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def show_list(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """A table of ``columns`` (JSON: the whole rows, a list)."""
    if STATE.json:
        typer.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if not rows:
        typer.echo(f"(no {title or 'rows'})")
        return
    import sys

    if not sys.stdout.isatty():
        # Piped or redirected: plain aligned columns, nothing cut, no rich to import.
        cells = [list(columns)] + [[_cell(row.get(c)) for c in columns] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
        for r in cells[:1] + [["-" * w for w in widths]] + cells[1:]:
            typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        return
    from rich.table import Table

    table = Table(*columns, title=None, show_lines=False, header_style="bold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def show_one(row: dict[str, Any]) -> None:
    """Key: value lines (JSON: the object)."""
    if STATE.json:
        typer.echo(json.dumps(row, indent=2, default=str))
        return
    width = max((len(k) for k in row), default=0)
    for key, value in row.items():
        console.print(f"{key.ljust(width)}  {_cell(value)}")


def failed(message: str, **data: Any) -> None:
    """Report an action that did not work (JSON: ``ok`` false) and exit with status 1."""
    if STATE.json:
        typer.echo(json.dumps({"ok": False, "message": message, **data}, default=str))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def done(message: str, **data: Any) -> None:
    """Confirm an action (JSON: an object with ``ok`` and the data)."""
    if STATE.json:
        typer.echo(json.dumps({"ok": True, "message": message, **data}, default=str))
    else:
        console.print(message)
