"""What every command shares: the loaded config, the store, output as table or JSON."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from jasiyo import config as config_mod
from jasiyo.agent.store import Store
from jasiyo.config import Config


@dataclass
class State:
    """Global options, set by the root callback (and by ``main`` for --json anywhere)."""

    config_path: str | None = None
    json: bool = False
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = config_mod.load(self.config_path)
        return self._config


STATE = State()
console = Console(highlight=False, soft_wrap=True)
if not console.is_terminal:
    # Piped into grep or a file: never cut a cell to fit 80 columns.
    console = Console(highlight=False, soft_wrap=True, width=10_000)


def cfg() -> Config:
    return STATE.config


def actor() -> str:
    """Who the audit log records for this command."""
    name = cfg().agent.operator
    if name:
        return name
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def store() -> Iterator[Store]:
    s = Store.open(cfg())
    try:
        yield s
    finally:
        s.close()


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


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
        console.print(f"(no {title or 'rows'})")
        return
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
