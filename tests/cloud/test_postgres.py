"""The cloud on a real PostgreSQL: row level security, sync, restore, cross-process wake-ups."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from jasiyo.agent import cloudlink, plans, syncrun, tenantkeys
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store, init_store
from jasiyo.cloud.app import AgentRecord, CloudSettings
from jasiyo.cloud.backend import open_storage
from jasiyo.cloud.migrations import TENANT_TABLES
from jasiyo.cloud.server import ThreadedServer
from jasiyo.cloud.storage import Storage
from jasiyo.config import parse
from jasiyo.errors import CloudError
from jasiyo.sync.ids import uuid7
from tests.cloud.pgutil import Scratch, reachable_or_skip, scratch_database
from tests.sync.harness import FAST, Cloud, Tenant, snap, start_cloud, sync

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def scratch() -> Iterator[Scratch]:
    dsn = reachable_or_skip()
    with scratch_database(dsn) as s:
        yield s


@pytest.fixture
def cloud(scratch: Scratch) -> Iterator[Cloud]:
    owner = owner_of(scratch)
    c = start_cloud(open_storage(scratch.app_dsn), FAST, owner)
    owner.close()
    yield c
    c.server.stop()
    c.storage.close()


def owner_of(scratch: Scratch) -> Storage:
    """The tables' owner: only it may create operator tokens. The caller closes it."""
    return open_storage(scratch.owner_dsn, owner=True)


def _fill(storage, tenant: str) -> None:
    now = time.time()
    storage.create_tenant(tenant, f"isp {tenant}", f"hash-{tenant}", now)
    storage.add_enrolment(tenant, f"tok-{tenant}", now + 60, now)
    agent = AgentRecord(uuid7(), tenant, "pop", "A" * 43 + "=", None)
    assert storage.enroll(tenant, f"tok-{tenant}", agent, now) == "ok"
    storage.add_kid(tenant, "k000000000001", now)
    storage.push(tenant, [(uuid7(), agent.id, "v1.k000000000001.xx")], now)
    assert storage.use_nonce(tenant, agent.id, "n" * 32, now)
    storage.add_hook_endpoint(tenant, f"hook-{tenant}", "mpesa", "key", now)
    storage.add_webhook(tenant, uuid7(), "mpesa", "x1.sealed", now)
    storage.put_snapshot_part(tenant, uuid7(), agent.id, 1, 1, 0, "v1.k000000000001.yy", now)
    storage.put_wrapped_key(tenant, '{"format": "jasiyo-wrapped-keys-v1"}', now)


def test_service_role_sees_only_the_tenant_of_the_request(scratch: Scratch) -> None:
    storage = open_storage(scratch.app_dsn)
    a, b = uuid7(), uuid7()
    try:
        _fill(storage, a)
        _fill(storage, b)
    finally:
        storage.close()
    with psycopg.connect(scratch.app_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == scratch.app_role
        with conn.transaction():
            conn.execute("SELECT set_config('jasiyo.tenant', %s, true)", (a,))
            for table in TENANT_TABLES:
                # A raw SELECT with no tenant filter at all: the policy filters.
                seen = {r[0] for r in conn.execute(f"SELECT tenant_id FROM {table}")}
                assert seen == {a}, table
        with conn.transaction():
            for table in TENANT_TABLES:  # no tenant set: nothing visible
                assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("SELECT set_config('jasiyo.tenant', %s, true)", (a,))
            conn.execute("INSERT INTO key_ids VALUES (%s, 'k000000000009', 0)", (b,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("ALTER TABLE events DISABLE ROW LEVEL SECURITY")
    # The owner sees every row, which is why the service must never run as the owner.
    with pytest.raises(CloudError, match="refusing to serve"):
        open_storage(scratch.owner_dsn)


def test_two_agents_sync_and_a_wiped_agent_is_restored(cloud: Cloud, tmp_path: Path) -> None:
    isp = Tenant(cloud, tmp_path).setup(2)
    a, b = isp.agents
    s = Store.open(a)
    plans.add(s, plans.build("home", rate="10M/10M", price="1500"), "t")
    for i in range(30):
        subs.add(s, subs.NewSubscriber.build(f"user{i:03d}", password=f"pw-{i}-xyz", plan="home"), "t")
    s.close()
    sync(a, b)
    s = Store.open(b)
    subs.suspend(s, "user007", "pop-b", "unpaid")
    s.close()
    sync(a, b)
    assert snap(a) == snap(b)
    fresh = parse(f'[agent]\ndata_dir = "{tmp_path / "rebuilt"}"\n', tmp_path)
    init_store(fresh)
    cloudlink.enroll_agent(fresh, cloud.url, cloud.enrolment(isp.id, isp.admin))
    tenantkeys.restore_from_cloud(fresh, isp.recovery)
    assert snap(fresh) == snap(a)


def test_long_poll_wakes_through_listen_notify(scratch: Scratch, tmp_path: Path) -> None:
    # Two cloud processes on one database; a pull waiting on one wakes for a push on the
    # other. recheck=60 > wait: without NOTIFY the pull would come back empty.
    settings = CloudSettings(rate=10_000, burst=10_000, recheck=60)
    owner = owner_of(scratch)
    one = start_cloud(open_storage(scratch.app_dsn), settings, owner)
    owner.close()
    two_storage = open_storage(scratch.app_dsn)
    two = ThreadedServer(two_storage, settings).start()
    try:
        isp = Tenant(one, tmp_path).setup(2)
        a, b = isp.agents
        sync(a, b)
        sb = Store.open(b)
        with sb.transaction():
            sb.set_meta("sync.cloud_url", two.url)
        got: list[tuple[int, int]] = []
        with cloudlink.open_client(b, sb) as client:
            waiter = threading.Thread(target=lambda: got.append(client.pull(wait=30)))
            waiter.start()
            time.sleep(0.5)
            s = Store.open(a)
            plans.add(s, plans.build("woke", rate="1M/1M", price="1"), "t")
            s.close()
            syncrun.sync_once(a)
            waiter.join(40)
        sb.close()
        assert got and got[0][1] >= 1
        assert [p["name"] for p in snap(b)["plans"]] == ["woke"]
    finally:
        two.stop()
        two_storage.close()
        one.server.stop()
        one.storage.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE agents SET public_key = 'AAAA'",
        "UPDATE agents SET tenant_id = tenant_id",
        "INSERT INTO operators (id, token_hash, created_at) VALUES ('x', 'y', 0)",
        "SELECT created_at FROM operators",
        "UPDATE tenants SET admin_token_hash = 'mine'",
        "UPDATE tenants SET name = 'renamed'",
        "UPDATE events SET id = id",
        "UPDATE events SET origin = origin",
        "UPDATE events SET seq = seq",
        "UPDATE snapshot_parts SET envelope = 'x'",
        "UPDATE tenants SET last_seq = last_seq, floor_seq = 0, name = name",
        "UPDATE webhooks SET sealed = 'x'",
        "UPDATE hook_endpoints SET public_key = 'attacker'",
        "DELETE FROM agents",
        "UPDATE enrolments SET expires_at = 1e12",
        "TRUNCATE nonces",
        "SELECT * FROM jasiyo_migrations",
    ],
)
def test_service_role_has_only_the_column_grants_it_needs(scratch: Scratch, statement: str) -> None:
    storage = open_storage(scratch.app_dsn)
    tenant = uuid7()
    try:
        _fill(storage, tenant)  # everything the service does still works
        assert storage.get_agent(tenant, storage.pull(tenant, 0, 1)[0][0].origin) is not None
    finally:
        storage.close()
    with psycopg.connect(scratch.app_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("SELECT set_config('jasiyo.tenant', %s, true)", (tenant,))
            conn.execute(statement)


def test_operators_are_created_by_the_owner_not_the_service(scratch: Scratch) -> None:
    from jasiyo.cloud.server import ensure_operator, new_operator_token

    token = new_operator_token()
    storage = open_storage(scratch.app_dsn)
    try:
        with pytest.raises(CloudError, match="create-operator --from-env"):
            ensure_operator(storage, token)
        owner = owner_of(scratch)
        try:
            assert ensure_operator(owner, token) is True
        finally:
            owner.close()
        assert ensure_operator(storage, token) is False  # known: serve starts fine
    finally:
        storage.close()


def test_hook_long_poll_wakes_through_listen_notify(scratch: Scratch, tmp_path: Path) -> None:
    """A hook list waiting on one cloud process answers when another receives the webhook."""
    settings = CloudSettings(rate=10_000, burst=10_000, recheck=60)
    owner = owner_of(scratch)
    one = start_cloud(open_storage(scratch.app_dsn), settings, owner)
    owner.close()
    two_storage = open_storage(scratch.app_dsn)
    two = ThreadedServer(two_storage, settings).start()
    try:
        isp = Tenant(one, tmp_path).setup(1)
        a = isp.agents[0]
        path = cloudlink.register_webhook(a, "mpesa-stk")["url"].removeprefix(one.url)
        got: list[object] = []
        s = Store.open(a)
        with cloudlink.open_client(a, s) as client:
            waiter = threading.Thread(target=lambda: got.append(client.webhooks(0, wait=25)))
            started = time.monotonic()
            waiter.start()
            time.sleep(0.5)
            import httpx

            r = httpx.post(two.url + path, json={"Body": {"stkCallback": {"ResultCode": 0}}})
            assert r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
            waiter.join(40)
        s.close()
        assert time.monotonic() - started < 20  # woken by NOTIFY, not by the 25 s wait
        hooks, cursor = got[0]  # type: ignore[misc]
        assert [h.provider for h in hooks] == ["mpesa-stk"] and cursor == 1
    finally:
        two.stop()
        two_storage.close()
        one.server.stop()
        one.storage.close()
