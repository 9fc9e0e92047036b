"""A scratch PostgreSQL database and service role per test run (or benchmark)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jasiyo.cloud.pg import PostgresStorage

DSN_ENV = "JASIYO_TEST_POSTGRES_DSN"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Scratch:
    owner_dsn: str
    app_dsn: str
    app_role: str


def admin_dsn() -> str:
    return os.environ.get(DSN_ENV, DEFAULT_DSN)


def reachable_or_skip() -> str:
    """The admin DSN; skip (fail under CI=true) when the server cannot be reached."""
    dsn = admin_dsn()
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error as exc:
        reason = (
            f"PostgreSQL at ${DSN_ENV} ({conninfo_to_dict(dsn).get('host')}) unreachable: "
            f"{type(exc).__name__}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return dsn


@contextmanager
def scratch_database(dsn: str) -> Iterator[Scratch]:
    """A fresh database (migrated by its owner) and a fresh service role; dropped after."""
    name = "jasiyo_t_" + secrets.token_hex(5)
    role = name + "_app"
    password = secrets.token_hex(16)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        owner = make_conninfo(dsn, dbname=name)
        PostgresStorage(owner, owner=True).migrate(app_role=role, app_password=password)
        yield Scratch(owner, make_conninfo(dsn, dbname=name, user=role, password=password), role)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")
