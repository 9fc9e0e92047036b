"""The cloud API refuses what it must, with the right status and no detail."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from jasiyo.agent import cloudlink, plans, syncrun, tenantkeys
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.cloud.app import CloudSettings
from jasiyo.config import Config
from jasiyo.errors import SyncError
from jasiyo.sync.ids import uuid7
from jasiyo.sync.keyring import Keyring
from jasiyo.sync.signing import load_signing_key, sign_headers
from tests.sync.harness import Cloud, Tenant, snap, sqlite_cloud, sync


@pytest.fixture
def isp(cloud: Cloud, tmp_path: Path) -> Tenant:
    return Tenant(cloud, tmp_path / "a").setup(2)


def ident(cfg: Config) -> tuple[str, str]:
    s = Store.open(cfg)
    try:
        return s.meta("sync.tenant_id") or "", s.agent_id
    finally:
        s.close()


def signed(cfg: Config, method: str, target: str, body: bytes = b"",
           **kw: Any) -> dict[str, str]:
    tenant, agent = ident(cfg)
    key = load_signing_key(cloudlink.signing_key_path(cfg))
    return sign_headers(key, kw.pop("tenant", tenant), kw.pop("agent", agent), method, target,
                        body, **kw)


def refused(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status
    assert resp.json() == {"error": code}  # nothing else: no reason, no stack, no ids


def test_health_and_openapi(cloud: Cloud) -> None:
    with cloud.http() as h:
        assert h.get("/v1/health").json()["status"] == "ok"
        doc = h.get("/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"get", "post"} <= set(doc["paths"]["/v1/tenants/{tenant}/events"])


def test_unsigned_stale_tampered_and_replayed_requests_are_401(isp: Tenant,
                                                                cloud: Cloud) -> None:
    a = isp.agents[0]
    path = f"/v1/tenants/{isp.id}/events?after=0&limit=10&wait=0"
    with cloud.http() as h:
        refused(h.get(path), 401, "unauthorized")
        stale = signed(a, "GET", path, now=time.time() - 600)
        refused(h.get(path, headers=stale), 401, "unauthorized")
        good = signed(a, "GET", path)
        assert h.get(path, headers=good).status_code == 200
        refused(h.get(path, headers=good), 401, "unauthorized")  # the same request, replayed
        body = json.dumps({"events": []}).encode()
        tampered = signed(a, "POST", f"/v1/tenants/{isp.id}/events", body)
        refused(h.post(f"/v1/tenants/{isp.id}/events", content=body.replace(b"[]", b"[1]"),
                       headers=tampered), 401, "unauthorized")
        # Agent B's key cannot speak for agent A.
        b_tenant, b_agent = ident(isp.agents[1])
        _, a_agent = ident(a)
        forged = signed(isp.agents[1], "GET", path, agent=a_agent)
        refused(h.get(path, headers=forged), 401, "unauthorized")


def test_agent_of_tenant_a_cannot_read_tenant_b(isp: Tenant, cloud: Cloud,
                                                tmp_path: Path) -> None:
    other = Tenant(cloud, tmp_path / "b").setup(1)
    s = Store.open(other.agents[0])
    plans.add(s, plans.build("secret-plan", rate="1M/1M", price="1"), "t")
    s.close()
    sync(other.agents[0])
    a = isp.agents[0]
    path = f"/v1/tenants/{other.id}/events?after=0"
    with cloud.http() as h:
        refused(h.get(path, headers=signed(a, "GET", path)), 403, "forbidden")
        # Claiming to belong to tenant B does not help: A is not an agent of B.
        refused(h.get(path, headers=signed(a, "GET", path, tenant=other.id)), 401,
                "unauthorized")
        body = json.dumps({"ttl_seconds": 60}).encode()
        r = h.post(f"/v1/tenants/{other.id}/enrolments", content=body,
                   headers={"authorization": f"Bearer {isp.admin}"})
        refused(r, 403, "forbidden")
    assert "secret-plan" not in json.dumps(snap(a))


def test_push_with_unregistered_key_id_is_409_and_foreign_origin_403(isp: Tenant,
                                                                     cloud: Cloud) -> None:
    a = isp.agents[0]
    _, agent = ident(a)
    rogue = Keyring.create(isp.id)  # a key id the tenant never registered
    ev = uuid7()
    path = f"/v1/tenants/{isp.id}/events"
    with cloud.http() as h:
        body = json.dumps({"events": [{"id": ev, "origin": agent,
                                       "envelope": rogue.seal(b"{}", ev, agent)}]}).encode()
        refused(h.post(path, content=body, headers=signed(a, "POST", path, body)), 409,
                "conflict")
        ring = Keyring.load(cloudlink.keyring_path(a))
        body = json.dumps({"events": [{"id": ev, "origin": uuid7(),
                                       "envelope": ring.seal(b"{}", ev, agent)}]}).encode()
        refused(h.post(path, content=body, headers=signed(a, "POST", path, body)), 403,
                "forbidden")


def test_tampered_ciphertext_in_the_cloud_is_quarantined_by_agents(isp: Tenant,
                                                                   cloud: Cloud) -> None:
    a, b = isp.agents
    s = Store.open(a)
    plans.add(s, plans.build("home", rate="5M/5M", price="100"), "t")
    subs.add(s, subs.NewSubscriber.build("alice", password="pw-alice-1", plan="home"), "t")
    s.close()
    syncrun.sync_once(a)
    db = sqlite3.connect(cloud.storage.path)  # type: ignore[attr-defined]
    # A's last event is the subscriber (before it: the POP's announcement and the plan).
    last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
    env = db.execute("SELECT envelope FROM events WHERE seq = ?", (last,)).fetchone()[0]
    flipped = env[:-5] + ("A" if env[-5] != "A" else "B") + env[-4:]
    db.execute("UPDATE events SET envelope = ? WHERE seq = ?", (flipped, last))
    db.commit()
    syncrun.sync_once(b)  # the tampered event is set aside, it does not halt the pull
    total = db.execute("SELECT max(seq) FROM events").fetchone()[0]  # with B's own
    db.close()
    st = syncrun.sync_status(b)
    assert st.cursor == total and st.quarantined == 1
    held = syncrun.quarantine_list(b)
    assert [q.seq for q in held] == [last] and "failed authentication" in held[0].error
    assert [p["name"] for p in snap(b)["plans"]] == ["home"] and snap(b)["subscribers"] == []
    assert syncrun.quarantine_retry(b) == {"applied": 0, "quarantined": 1}  # still tampered


def test_event_under_a_key_the_agent_lacks_waits_in_quarantine(isp: Tenant, cloud: Cloud,
                                                               tmp_path: Path) -> None:
    a, b = isp.agents
    extra = Keyring.create(isp.id)
    s = Store.open(a)
    with cloudlink.open_client(a, s) as client:
        client.register_key(extra.current)  # known to the cloud, not yet shared with B
        client.keyring.keys[extra.current] = extra.keys[extra.current]
        client.keyring.current = extra.current
        plans.add(s, plans.build("home", rate="5M/5M", price="100"), "t")
        client.push()
        client.keyring.save(cloudlink.keyring_path(a))
    s.close()
    syncrun.sync_once(b)
    assert snap(b)["plans"] == []
    held = syncrun.quarantine_list(b)  # the plan and A's POP announcement, both under the key
    assert len(held) == 2 and all("does not hold" in q.error for q in held)
    recovery = tmp_path / "recovery.keys"
    tenantkeys.export_recovery(a, recovery)
    tenantkeys.import_recovery(b, recovery)
    assert syncrun.quarantine_retry(b) == {"applied": 2, "quarantined": 0}
    assert [p["name"] for p in snap(b)["plans"]] == ["home"]
    assert syncrun.sync_status(b).quarantined == 0


def test_tokens_enrolment_once_bad_operator(cloud: Cloud, isp: Tenant) -> None:
    with cloud.http() as h:
        r = h.post("/v1/tenants", json={"name": "x"},
                   headers={"authorization": "Bearer jop_not-the-token-at-all-xxxxxxxx"})
        refused(r, 401, "unauthorized")
        refused(h.post("/v1/tenants", json={"name": "x"}), 401, "unauthorized")
        token = cloud.enrolment(isp.id, isp.admin)
        key = "A" * 43 + "="
        body = {"token": token, "agent_id": uuid7(), "name": "x", "public_key": key}
        assert h.post("/v1/agents/enroll", json=body).status_code == 201
        body["agent_id"] = uuid7()
        refused(h.post("/v1/agents/enroll", json=body), 401, "unauthorized")  # used already
        refused(h.post("/v1/agents/enroll", content=b"{not json"), 400, "bad_request")
        refused(h.get("/v1/nothing-here"), 404, "not_found")


def test_body_limit_413_and_rate_limit_429(tmp_path: Path) -> None:
    c = sqlite_cloud(tmp_path, CloudSettings(max_body=1024, rate=0.1, burst=5))
    try:
        with c.http() as h:
            refused(h.post("/v1/agents/enroll", content=b"x" * 4096), 413, "payload_too_large")
            codes = [h.get("/v1/health").status_code for _ in range(10)]
        assert codes[:4] == [200] * 4 and codes[-1] == 429
    finally:
        c.server.stop()
        c.storage.close()


def test_revoked_agent_is_refused(isp: Tenant, cloud: Cloud) -> None:
    from jasiyo.cloud import admin
    from jasiyo.errors import CloudError

    a, b = isp.agents
    _, agent = ident(b)
    other_admin = cloud.tenant("other")[1]
    with cloud.http() as h:  # another ISP's admin cannot revoke this ISP's agents
        r = h.post(f"/v1/tenants/{isp.id}/agents/{agent}/revoke",
                   headers={"authorization": f"Bearer {other_admin}"})
        refused(r, 403, "forbidden")
    assert admin.revoke_agent(cloud.url, isp.admin, agent)["revoked"] is True
    with pytest.raises(SyncError, match="401"):
        syncrun.sync_once(b)
    syncrun.sync_once(a)  # the other POP is unaffected
    with pytest.raises(CloudError, match="404"):
        admin.revoke_agent(cloud.url, isp.admin, agent)  # already revoked


def test_nonsense_pull_parameters_are_400_not_endless(isp: Tenant, cloud: Cloud) -> None:
    a = isp.agents[0]
    tenant, _ = ident(a)
    with cloud.http() as h:
        for query in ("after=0&wait=nan", f"after={2**70}", "after=-1"):
            path = f"/v1/tenants/{tenant}/events?{query}"
            refused(h.get(path, headers=signed(a, "GET", path)), 400, "bad_request")


def test_the_cloud_sqlite_database_is_private(tmp_path: Path) -> None:
    import os

    from jasiyo.cloud.backend import open_storage

    old = os.umask(0o022)
    try:
        storage = open_storage(str(tmp_path / "new-cloud.db"))
        storage.migrate()
        storage.close()
    finally:
        os.umask(old)
    for name in ("new-cloud.db", "new-cloud.db-wal", "new-cloud.db-shm"):
        f = tmp_path / name
        if f.exists():
            assert f.stat().st_mode & 0o777 == 0o600, name
