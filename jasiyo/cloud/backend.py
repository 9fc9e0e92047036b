"""Choosing the cloud's storage backend (SQLite or PostgreSQL) from a database URL."""

from __future__ import annotations

from pathlib import Path

from jasiyo.cloud.storage import Storage
from jasiyo.errors import CloudError


def open_storage(url: str, *, owner: bool = False) -> Storage:
    """Storage for ``url``: a PostgreSQL URL or conninfo, or a SQLite path (``sqlite:///p``).

    ``owner``: connecting as the tables' owner is allowed (migrations only).
    """
    if url.startswith(("postgresql://", "postgres://")) or "dbname=" in url:
        from jasiyo.cloud.pg import PostgresStorage

        return PostgresStorage(url, owner=owner)
    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    if not path:
        raise CloudError("--db: give a SQLite file path or a postgresql:// URL")
    from jasiyo.cloud.sqlite import SqliteStorage

    return SqliteStorage(Path(path))
