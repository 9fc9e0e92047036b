"""`jasiyo backup FILE` and `jasiyo restore FILE`: the store and keys, encrypted."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from jasiyo.commands.common import cfg, done

PASSPHRASE_ENV = "JASIYO_BACKUP_PASSPHRASE"


def _passphrase(path: Path | None, confirm: bool) -> str:
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot read {path}: {exc.strerror or exc}", param_hint="--passphrase-file"
            ) from None
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    return typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm)


def backup(
    file: Path = typer.Argument(..., help="Where to write the encrypted backup."),
    passphrase_file: Path | None = typer.Option(
        None,
        "--passphrase-file",
        help=f"Read the passphrase from this file (else ${PASSPHRASE_ENV}, else a prompt).",
    ),
) -> None:
    """Back up the store, the agent key and RadSec files into one encrypted file."""
    from jasiyo.agent import backup as lib

    info = lib.backup(cfg(), file, _passphrase(passphrase_file, confirm=True))
    done(
        f"backup written to {info.path} ({info.bytes:,} bytes: {', '.join(info.files)}); "
        "keep the passphrase: without it the backup cannot be opened",
        path=str(info.path),
        files=list(info.files),
        bytes=info.bytes,
    )


def restore(
    file: Path = typer.Argument(..., help="A file made by `jasiyo backup`."),
    passphrase_file: Path | None = typer.Option(
        None,
        "--passphrase-file",
        help=f"Read the passphrase from this file (else ${PASSPHRASE_ENV}, else a prompt).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing store (stop the agent first)."),
) -> None:
    """Restore the store, agent key and RadSec files from a backup."""
    from jasiyo.agent import backup as lib

    c = cfg()
    files = lib.restore(c, file, _passphrase(passphrase_file, confirm=False), force=force)
    done(f"restored {', '.join(files)} into {c.data_dir}", files=list(files))
