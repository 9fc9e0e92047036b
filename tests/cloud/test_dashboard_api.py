"""The cloud side of the tenant dashboard, on SQLite and on PostgreSQL.

A dashboard here is what the browser is to the cloud: its own Ed25519 key and UUIDv7 id,
enrolled with ``kind: "dashboard"``, signing every request as an agent does (the Python
signing code is the reference the browser's must match). The tests show it pulling and
pushing the same sealed log as the POPs, the agents list it reads (kinds, last contact,
backlog), the passphrase-wrapped keyring the cloud keeps but cannot open, revocation, and
the static app's files and headers.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from jasiyo.agent import plans as plans_mod
from jasiyo.agent import syncrun
from jasiyo.agent.store import Store
from jasiyo.cloud.app import CloudSettings
from jasiyo.cloud.appfiles import CSP, WEBAPP
from jasiyo.cloud.backend import open_storage
from jasiyo.cloud.guard import Guard, listening_socket
from jasiyo.sync.hlc import HybridClock
from jasiyo.sync.ids import uuid7
from jasiyo.sync.keyring import Keyring
from jasiyo.sync.signing import public_key_text, sign_headers
from tests.cloud.pgutil import Scratch, reachable_or_skip, scratch_database
from tests.support.cli import run_cli
from tests.sync.harness import FAST, Cloud, Tenant, snap, sqlite_cloud, start_cloud


@pytest.fixture(scope="module")
def pg_scratch() -> Iterator[Scratch]:
    with scratch_database(reachable_or_skip()) as s:
        yield s


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cloud]:
    """A cloud on a real socket over SQLite, then over PostgreSQL (as the service role)."""
    if request.param == "sqlite":
        c = sqlite_cloud(tmp_path)
    else:
        scratch: Scratch = request.getfixturevalue("pg_scratch")
        owner = open_storage(scratch.owner_dsn, owner=True)
        c = start_cloud(open_storage(scratch.app_dsn), FAST, owner)
        owner.close()
    yield c
    c.server.stop()
    c.storage.close()


class Dashboard:
    """A browser's identity in the cloud: a key, an id, signed requests."""

    def __init__(self, cloud: Cloud, tenant: str, name: str = "office browser") -> None:
        self.cloud, self.tenant, self.name = cloud, tenant, name
        self.key = Ed25519PrivateKey.generate()
        self.id = uuid7()

    def enroll(self, token: str) -> httpx.Response:
        body = {
            "token": token,
            "agent_id": self.id,
            "name": self.name,
            "public_key": public_key_text(self.key),
            "kind": "dashboard",
        }
        with self.cloud.http() as h:
            return h.post("/v1/agents/enroll", json=body)

    def request(self, method: str, target: str, doc: Any = None, timeout: float = 30) -> httpx.Response:
        body = b"" if doc is None else json.dumps(doc).encode()
        headers = sign_headers(self.key, self.tenant, self.id, method, target, body)
        with httpx.Client(base_url=self.cloud.url, timeout=timeout) as h:
            return h.request(method, target, content=body, headers=headers)

    def pull(self, after: int = 0, wait: float = 0, timeout: float = 30) -> httpx.Response:
        return self.request(
            "GET", f"/v1/tenants/{self.tenant}/events?after={after}&limit=1000&wait={wait}", timeout=timeout
        )

    def agents(self) -> httpx.Response:
        return self.request("GET", f"/v1/tenants/{self.tenant}/agents")


def admin_get(cloud: Cloud, path: str, admin: str) -> httpx.Response:
    with cloud.http() as h:
        return h.get(path, headers={"authorization": f"Bearer {admin}"})


def enrolled(isp: Tenant, name: str = "office browser") -> Dashboard:
    d = Dashboard(isp.cloud, isp.id, name)
    r = d.enroll(isp.cloud.enrolment(isp.id, isp.admin))
    assert r.status_code == 201, r.text
    assert r.json() == {"tenant_id": isp.id, "agent_id": d.id, "kind": "dashboard"}
    return d


def opened(ring: Keyring, tenant: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"id": e["id"], "origin": e["origin"], **json.loads(ring.open(e["envelope"], e["id"], e["origin"]))}
        for e in events
    ]


def agent_id(cfg: Any) -> str:
    s = Store.open(cfg)
    try:
        return s.agent_id
    finally:
        s.close()


def test_a_dashboard_reads_the_log_and_its_change_reaches_a_pop(any_cloud: Cloud, tmp_path: Path) -> None:
    isp = Tenant(any_cloud, tmp_path).setup(1)
    pop = isp.agents[0]
    s = Store.open(pop)
    plans_mod.add(s, plans_mod.build("home", rate="10M/10M", price="1500"), "t")
    s.close()
    syncrun.sync_once(pop)

    d = enrolled(isp)
    r = d.pull()
    assert r.status_code == 200, r.text
    ring = Keyring.load(isp.recovery)  # the tenant keys, as the browser unlocks them
    events = opened(ring, isp.id, r.json()["events"])
    plan = next(e for e in events if e["entity"] == "plan" and e["key"] == "home")
    assert plan["data"]["price_minor"] == 150000

    # The browser seals a change as an agent would, under its own origin, and pushes it.
    clock = HybridClock(d.id)
    for e in events:
        clock.observe(e["hlc"])
    ev_id, hlc = uuid7(), clock.now()
    plain = {"hlc": hlc, "entity": "plan", "key": "home", "op": "upsert", "data": {"price_minor": 200000}}
    text = json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()
    push = {"events": [{"id": ev_id, "origin": d.id, "envelope": ring.seal(text, ev_id, d.id)}]}
    r = d.request("POST", f"/v1/tenants/{isp.id}/events", push)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    # Only as itself: an event claiming the POP's origin is refused.
    forged = {"events": [{**push["events"][0], "id": uuid7(), "origin": agent_id(pop)}]}
    assert d.request("POST", f"/v1/tenants/{isp.id}/events", forged).status_code == 403

    syncrun.sync_once(pop)
    assert [p["price_minor"] for p in snap(pop)["plans"]] == [200000]

    # A POP's other powers are not a dashboard's: no key ids, snapshots or compaction,
    # erasure, webhooks.
    t, snap_id = f"/v1/tenants/{isp.id}", uuid7()
    for method, target, doc in (
        ("POST", f"{t}/keys", {"kid": ring.current}),
        ("POST", f"{t}/snapshots/{snap_id}/parts/0", {"seq": 1, "parts": 1, "envelope": "v1.x.y"}),
        ("POST", f"{t}/snapshots/{snap_id}/commit", {}),
        ("POST", f"{t}/events/redact", {"events": [], "hooks": []}),
        ("POST", f"{t}/hook-endpoints", {"provider": "mpesa", "public_key": "A" * 43 + "="}),
        ("GET", f"{t}/hooks?after=0", None),
    ):
        r = d.request(method, target, doc)
        assert (r.status_code, r.json()) == (403, {"error": "forbidden"}), target
    assert d.request("GET", f"{t}/snapshot").status_code == 404  # reading one is allowed: none yet


def test_the_agents_list_shows_kinds_last_contact_and_backlog(any_cloud: Cloud, tmp_path: Path) -> None:
    isp = Tenant(any_cloud, tmp_path).setup(2)
    pop0, pop1 = isp.agents
    s = Store.open(pop0)
    for i in range(3):
        plans_mod.add(s, plans_mod.build(f"p{i}", rate="5M/5M", price="900"), "t")
    s.close()
    syncrun.sync_once(pop0)
    d = enrolled(isp)
    before = time.time()
    head = d.pull(after=0).json()["head"]
    assert head >= 3

    listed = admin_get(any_cloud, f"/v1/tenants/{isp.id}/agents", isp.admin)
    assert listed.status_code == 200, listed.text
    doc = listed.json()
    assert doc["head"] == head
    assert [a["kind"] for a in doc["agents"]] == ["agent", "agent", "dashboard"]  # oldest first
    by_id = {a["agent_id"]: a for a in doc["agents"]}
    me = by_id[d.id]
    assert me["name"] == "office browser" and me["revoked_at"] is None
    assert me["cursor"] == head and me["backlog"] == 0  # it has been sent everything
    assert me["last_seen"] >= before - 1
    assert by_id[agent_id(pop0)]["backlog"] == 0  # its sync pulled up to head
    assert by_id[agent_id(pop1)]["cursor"] is None  # never pulled
    assert by_id[agent_id(pop1)]["backlog"] is None
    # The row is written at most every 30 s: once, as the pull began (from 0). The list
    # still shows where the pull ended.
    stored = any_cloud.storage.get_agent(isp.id, d.id)
    assert stored is not None and stored.kind == "dashboard" and stored.cursor == 0

    # Two more plans at the first POP: the dashboard (listing, signed, as the browser does)
    # and the second POP are behind by those events until they pull.
    s = Store.open(pop0)
    for i in range(3, 5):
        plans_mod.add(s, plans_mod.build(f"p{i}", rate="5M/5M", price="900"), "t")
    s.close()
    syncrun.sync_once(pop0)
    doc = d.agents().json()
    new = doc["head"] - head
    assert new >= 2
    by_id = {a["agent_id"]: a for a in doc["agents"]}
    assert (by_id[d.id]["backlog"], by_id[agent_id(pop0)]["backlog"]) == (new, 0)
    syncrun.sync_once(pop1)
    assert {a["agent_id"]: a for a in d.agents().json()["agents"]}[agent_id(pop1)]["backlog"] == 0

    # Nobody else's: no credentials, another tenant's admin, another tenant's agent.
    other = Tenant(any_cloud, tmp_path / "other").setup(1)
    with any_cloud.http() as h:
        assert h.get(f"/v1/tenants/{isp.id}/agents").status_code == 401
    assert admin_get(any_cloud, f"/v1/tenants/{isp.id}/agents", other.admin).status_code == 403
    stranger = enrolled(other, "their browser")
    stranger.tenant = isp.id
    assert stranger.agents().status_code == 401  # not enrolled in this tenant

    # /metrics counts dashboards by kind, never by tenant; a dashboard reading the log a
    # page at a time is not a tenant's sync backlog (the POPs are caught up).
    assert d.request("GET", f"/v1/tenants/{isp.id}/events?after=0&limit=1").json()["cursor"] == 1
    with any_cloud.http() as h:
        text = h.get("/metrics", headers={"authorization": f"Bearer {any_cloud.operator}"}).text
    line = next(x for x in text.splitlines() if x.startswith('jasiyo_cloud_clients_active{kind="dashboard"}'))
    assert float(line.split()[-1]) == 1
    assert "\njasiyo_cloud_tenant_backlog_max_events 0.0\n" in text
    assert isp.id not in text and other.id not in text


def _wrap(recovery: bytes, passphrase: str, tenant: str, iterations: int = 600_000) -> dict[str, Any]:
    """What the browser's keys.js makes (the contract's scheme, here with Python's crypto)."""
    salt, iv = os.urandom(16), os.urandom(12)
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    key = kdf.derive(passphrase.encode())
    sealed = AESGCM(key).encrypt(iv, recovery, f"jasiyo-wrapped-keys-v1|{tenant}".encode())

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {
        "format": "jasiyo-wrapped-keys-v1",
        "kdf": "PBKDF2-SHA256",
        "iterations": iterations,
        "salt": b64(salt),
        "iv": b64(iv),
        "ciphertext": b64(sealed),
    }


def _unwrap(doc: dict[str, Any], passphrase: str, tenant: str) -> bytes:
    def raw(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=32, salt=raw(doc["salt"]), iterations=doc["iterations"]
    )
    key = kdf.derive(passphrase.encode())
    aad = f"jasiyo-wrapped-keys-v1|{tenant}".encode()
    return AESGCM(key).decrypt(raw(doc["iv"]), raw(doc["ciphertext"]), aad)


def test_the_cloud_keeps_the_wrapped_keyring_but_checks_only_its_shape(
    any_cloud: Cloud, tmp_path: Path
) -> None:
    isp = Tenant(any_cloud, tmp_path).setup(1)
    path = f"/v1/tenants/{isp.id}/wrapped-key"
    auth = {"authorization": f"Bearer {isp.admin}"}
    recovery = isp.recovery.read_bytes()
    with any_cloud.http() as h:
        assert h.get(path, headers=auth).status_code == 404
        assert h.get(path, headers=auth).json() == {"error": "not_found"}
        doc = _wrap(recovery, "correct horse battery staple", isp.id)
        r = h.put(path, json={"wrapped": doc}, headers=auth)
        assert r.status_code == 200, r.text
        got = h.get(path, headers=auth).json()
    assert got["wrapped"] == doc
    assert _unwrap(got["wrapped"], "correct horse battery staple", isp.id) == recovery
    with pytest.raises(InvalidTag):  # what the browser shows as "wrong passphrase"
        _unwrap(got["wrapped"], "correct horse battery stapler", isp.id)

    # Shapes refused, each with 422 (or 413), leaving the stored copy as it was.
    def bad(**change: Any) -> dict[str, Any]:
        return {k: v for k, v in {**doc, **change}.items() if v is not None}

    refused = [
        bad(iterations=599_999),
        bad(iterations="600000"),
        bad(iterations=True),
        bad(format="jasiyo-wrapped-keys-v2"),
        bad(kdf="scrypt"),
        bad(salt="c2hvcnQ"),  # 5 bytes
        bad(iv=doc["iv"][:-2]),  # 10 bytes
        bad(ciphertext="not base64url!"),
        bad(ciphertext="abcde"),  # a length base64 cannot have
        bad(ciphertext=None),
        {**doc, "passphrase_hint": "the horse one"},
        "a string",
    ]
    with any_cloud.http() as h:
        for wrapped in refused:
            r = h.put(path, json={"wrapped": wrapped}, headers=auth)
            assert (r.status_code, r.json()) == (422, {"error": "unprocessable"}), wrapped
        assert h.put(path, json={"wrapped": doc, "extra": 1}, headers=auth).status_code == 422
        huge = bad(ciphertext="A" * 70_000)
        assert h.put(path, json={"wrapped": huge}, headers=auth).status_code == 413
        assert h.put(path, json={"wrapped": doc}).status_code == 401
        assert h.get(path, headers=auth).json()["wrapped"] == doc  # untouched

        # A new passphrase replaces it.
        doc2 = _wrap(recovery, "a new passphrase", isp.id)
        assert h.put(path, json={"wrapped": doc2}, headers=auth).status_code == 200
        assert h.get(path, headers=auth).json()["wrapped"] == doc2

        # Another tenant's admin can neither read nor overwrite it; a dashboard's
        # signature is not the admin token.
        other = Tenant(any_cloud, tmp_path / "other").setup(1)
        theirs = {"authorization": f"Bearer {other.admin}"}
        assert h.get(path, headers=theirs).status_code == 403
        assert h.put(path, json={"wrapped": doc}, headers=theirs).status_code == 403
        assert h.get(f"/v1/tenants/{other.id}/wrapped-key", headers=theirs).status_code == 404
    assert enrolled(isp).request("GET", path).status_code == 401
    assert any_cloud.storage.wrapped_key(other.id) is None


@pytest.mark.postgres
def test_row_level_security_and_grants_cover_dashboards(pg_scratch: Scratch, tmp_path: Path) -> None:
    owner = open_storage(pg_scratch.owner_dsn, owner=True)
    c = start_cloud(open_storage(pg_scratch.app_dsn), FAST, owner)
    owner.close()
    try:
        a = Tenant(c, tmp_path / "a").setup(1)
        b = Tenant(c, tmp_path / "b").setup(1)
        for isp in (a, b):
            doc = _wrap(isp.recovery.read_bytes(), "pass phrase", isp.id)
            r = httpx.put(
                f"{c.url}/v1/tenants/{isp.id}/wrapped-key",
                json={"wrapped": doc},
                headers={"authorization": f"Bearer {isp.admin}"},
            )
            assert r.status_code == 200
            enrolled(isp)
    finally:
        c.server.stop()
        c.storage.close()
    with psycopg.connect(pg_scratch.app_dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('jasiyo.tenant', %s, true)", (a.id,))
            rows = conn.execute("SELECT tenant_id FROM wrapped_keys").fetchall()  # no filter: RLS
            assert {r[0] for r in rows} == {a.id}
            kinds = conn.execute("SELECT kind FROM agents").fetchall()
            assert sorted(r[0] for r in kinds) == ["agent", "dashboard"]
        for statement in (
            "UPDATE agents SET kind = 'agent'",  # a dashboard never becomes a POP
            "DELETE FROM wrapped_keys",
            "UPDATE wrapped_keys SET tenant_id = tenant_id",
            f"INSERT INTO wrapped_keys VALUES ('{b.id}', '{{}}', 0)",  # another tenant's row
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("SELECT set_config('jasiyo.tenant', %s, true)", (a.id,))
                conn.execute(statement)


def test_a_revoked_dashboard_is_refused_even_while_it_waits(any_cloud: Cloud, tmp_path: Path) -> None:
    isp = Tenant(any_cloud, tmp_path).setup(1)
    d = enrolled(isp)
    head = d.pull().json()["head"]
    got: list[httpx.Response] = []
    waiter = threading.Thread(target=lambda: got.append(d.pull(after=head, wait=25)))
    waiter.start()
    deadline = time.monotonic() + 10
    while any_cloud.long_polls_waiting() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)

    began = time.monotonic()
    result = run_cli(None, "cloud", "revoke-agent", any_cloud.url, d.id, "--token", isp.admin)
    assert result.returncode == 0, result.stderr
    waiter.join(15)
    assert got and got[0].status_code == 401
    assert time.monotonic() - began < 10  # woken by the revocation, not by the 25 s timeout
    assert d.pull().status_code == 401
    assert d.agents().status_code == 401
    listed = admin_get(any_cloud, f"/v1/tenants/{isp.id}/agents", isp.admin).json()["agents"]
    assert next(a for a in listed if a["agent_id"] == d.id)["revoked_at"] is not None
    syncrun.sync_once(isp.agents[0])  # the POP carries on


def test_cloud_agents_lists_pops_and_dashboards(cloud: Cloud, tmp_path: Path) -> None:
    isp = Tenant(cloud, tmp_path).setup(1)
    d = enrolled(isp, "front desk")
    d.pull()
    out = run_cli(None, "cloud", "agents", cloud.url, "--token", isp.admin, check=True).stdout
    header, _rule, *lines = out.splitlines()
    assert header.split() == ["id", "name", "kind", "last_seen", "backlog", "revoked"]
    desk = next(line for line in lines if d.id in line).split()
    assert desk[1:3] == ["front", "desk"] and desk[3] == "dashboard" and desk[-1] == "no"
    assert time.strftime("%Y-%m-%d") in " ".join(desk)  # last seen, local time
    rows = json.loads(run_cli(None, "--json", "cloud", "agents", cloud.url, "--token", isp.admin).stdout)
    assert {r["kind"] for r in rows} == {"agent", "dashboard"}
    assert next(r for r in rows if r["id"] == d.id)["backlog"] == 0
    bad = run_cli(None, "cloud", "agents", cloud.url, "--token", "jad_nope")
    assert bad.returncode != 0 and "admin token" in bad.stderr and "Traceback" not in bad.stderr


# ------------------------------------------------------------------ the static app


def raw_get(url: str, target: str) -> tuple[int, str]:
    """A GET with the target sent exactly as given (httpx would normalise ``..`` away)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def test_the_shipped_app_is_served_with_its_headers(cloud: Cloud) -> None:
    with cloud.http() as h:
        r = h.get("/app", follow_redirects=False)
        assert r.status_code == 308 and r.headers["location"] == "/app/"
        r = h.get("/app/")
        assert r.status_code == 200
        assert r.content == (WEBAPP / "index.html").read_bytes()
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.headers["content-security-policy"] == CSP
        assert "script-src 'self';" in CSP and "'unsafe-inline'" not in CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-cache"
        again = h.get("/app/index.html", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert h.head("/app/").status_code == 200
        assert h.post("/app/").status_code == 405


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Cloud]:
    root = tmp_path / "webapp"
    (root / "js" / "core").mkdir(parents=True)
    (root / "vectors").mkdir()
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "js" / "core" / "b64.js").write_text("export const x = 1;\n")
    (root / "vectors" / "sync-vectors.json").write_text('{"envelope": []}')
    (root / "app.css").write_text("body { margin: 0 }")
    (root / ".env.js").write_text("hidden")
    (root / "notes.py").write_text("print('not served')")
    (tmp_path / "secret.js").write_text("the tenant's secret")
    (root / "escape.js").symlink_to(tmp_path / "secret.js")
    c = sqlite_cloud(tmp_path, CloudSettings(rate=10_000, burst=10_000, webapp=root))
    yield c
    c.server.stop()
    c.storage.close()


def test_app_files_have_their_types_and_nothing_outside_is_served(site: Cloud) -> None:
    with site.http() as h:
        for path, ctype in (
            ("/app/js/core/b64.js", "text/javascript; charset=utf-8"),
            ("/app/vectors/sync-vectors.json", "application/json"),
            ("/app/app.css", "text/css; charset=utf-8"),
        ):
            r = h.get(path)
            assert (r.status_code, r.headers["content-type"]) == (200, ctype), path
            assert r.headers["content-security-policy"] == CSP
    for target in (
        "/app/js/",  # a directory: never listed
        "/app/js",
        "/app/../cloud.db",
        "/app/js/../../secret.js",
        "/app/%2e%2e/secret.js",
        "/app/js/%2e%2e/%2e%2e/secret.js",
        "/app/..%2fsecret.js",
        "/app//etc/passwd",
        "/app/escape.js",  # a symlink out of the folder
        "/app/.env.js",
        "/app/notes.py",  # not a type the app has
        "/app/index.html%00.js",
        "/app/missing.js",
    ):
        status, body = raw_get(site.url, target)
        assert status == 404, target
        assert "secret" not in body and "<" not in body, target


def test_the_cloud_listens_as_tcp_so_each_connection_gets_nodelay() -> None:
    """asyncio sets TCP_NODELAY on an accepted connection only when the listening socket
    says IPPROTO_TCP; without it Nagle and delayed ACKs add 40 ms to each small answer (a
    dashboard's page of modules, a POP's pushes). The cloud's own socket, served by asyncio."""

    async def accept_one() -> int:
        got: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                got.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = listening_socket("127.0.0.1", 0, Guard())
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(got, 5)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accept_one()) == 1
