"""The cloud learns nothing from a dashboard session: after staff signed in, read a
subscriber and a payment, suspended them and had a POP record a cash payment, the cloud's
database (every byte of the SQLite file; every column of every PostgreSQL table, read as
the superuser, past row level security) and its log output hold none of the names, phones
or amounts the browser showed. The same scan finds what the cloud is meant to know (the
tenant, the dashboard's name), so a scan that reads nothing cannot pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import expect

from jasiyo.cloud.backend import open_storage
from tests.cloud.pgutil import reachable_or_skip, scratch_database
from tests.dashboard.dash_support import (
    CASH_SHOWN,
    NAME,
    PAYMENT_SHOWN,
    PHONE_SHOWN,
    SECRETS,
    Pop,
    browser_page,
    captured_logs,
    open_subscriber,
    pop_in,
    sign_in,
    suspend_and_pay,
)
from tests.sync.harness import FAST, Cloud, sqlite_cloud, start_cloud

pytestmark = pytest.mark.slow
DASHBOARD = "front-desk-scan"


def session(pop: Pop) -> None:
    """What staff do, checking the browser shows each value the scan then looks for."""
    with browser_page("learns_nothing") as page:
        sign_in(page, pop, DASHBOARD)
        open_subscriber(page)
        info = page.locator("#detail-info")
        for shown in (NAME, PHONE_SHOWN, PAYMENT_SHOWN):
            expect(info).to_contain_text(shown)
        suspend_and_pay(page, pop)
        expect(page.locator("#detail-payments")).to_contain_text(CASH_SHOWN, timeout=30000)


def found(text: str) -> list[str]:
    return [s for s in SECRETS if s.lower() in text.lower()]


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[tuple[Cloud, Path]]:
    c = sqlite_cloud(tmp_path)
    yield c, tmp_path
    c.server.stop()
    c.storage.close()


def test_sqlite_file_and_logs_hold_no_tenant_data(sqlite_world: tuple[Cloud, Path], tmp_path: Path) -> None:
    cloud, where = sqlite_world
    with captured_logs() as logs:
        with pop_in(cloud, tmp_path) as pop:
            session(pop)
            tenant = pop.tenant
    raw = b"".join(p.read_bytes() for p in sorted(where.glob("cloud.db*")))
    text = raw.decode("latin-1")
    assert tenant in text and DASHBOARD in text  # the scan reads the real file
    assert found(text) == []
    log = logs.getvalue()
    assert "cloud.agent_enrolled" in log, "no cloud log output captured"
    assert found(log) == []


@pytest.mark.postgres
def test_postgres_tables_and_logs_hold_no_tenant_data(tmp_path: Path) -> None:
    dsn = reachable_or_skip()
    with scratch_database(dsn) as scratch, captured_logs() as logs:
        owner = open_storage(scratch.owner_dsn, owner=True)
        cloud = start_cloud(open_storage(scratch.app_dsn), FAST, owner)
        owner.close()
        try:
            with pop_in(cloud, tmp_path) as pop:
                session(pop)
                tenant = pop.tenant
        finally:
            cloud.server.stop()
            cloud.storage.close()
        dump = dump_postgres(scratch.owner_dsn)
    assert tenant in dump and DASHBOARD in dump
    assert found(dump) == []
    assert "cloud.agent_enrolled" in logs.getvalue()
    assert found(logs.getvalue()) == []


def dump_postgres(dsn: str) -> str:
    """Every value of every column of every table in the database, as text (bytea as
    latin-1 bytes, so a plaintext inside binary would show)."""
    out: list[str] = []
    with psycopg.connect(dsn) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
        ]
        assert "events" in tables and "agents" in tables
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for v in row:
                    if isinstance(v, bytes | memoryview):
                        out.append(bytes(v).decode("latin-1"))
                    elif v is not None:
                        out.append(str(v))
    return "\n".join(out)
