"""The cloud's log, its parser limits, revocation of a waiting poll, hook long-poll."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from jasiyo.agent import cloudlink, plans, syncrun
from jasiyo.agent.store import Store
from jasiyo.cloud import admin
from jasiyo.errors import SyncError
from tests.cloud.test_api import ident, refused, signed
from tests.support.wait import until
from tests.sync.harness import Cloud, Tenant, sqlite_cloud


@pytest.fixture
def isp(cloud: Cloud, tmp_path: Path) -> Tenant:
    return Tenant(cloud, tmp_path / "a").setup(2)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cloud_serve_logs_its_own_events_and_never_a_webhook_token(tmp_path: Path) -> None:
    """Items 9 and 10: `cloud serve` logs cloud.refused/cloud.webhook; tokens are masked."""
    port = _port()
    err = tmp_path / "stderr"
    op = "jop_" + "t" * 40
    with err.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jasiyo.cli", "cloud", "serve", "--db",
             str(tmp_path / "c.db"), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=fh, env={"JASIYO_OPERATOR_TOKEN": op,
                                                        "PATH": "/usr/bin:/bin"})
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(base + "/v1/health")
                    break
                except httpx.ConnectError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.2)
            tenant = admin.create_tenant(base, op, "isp")["tenant_id"]
            token = "S3cr3tW3bh00kT0k3nXYZ"
            r = httpx.post(f"{base}/v1/hooks/{tenant}/{token}", content=b"{}")
            assert r.status_code == 404  # unknown endpoint: refused and logged
            deadline = time.monotonic() + 10
            while b"cloud.refused" not in err.read_bytes() or b"/v1/hooks" not in err.read_bytes():
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(30)
    text = err.read_text()
    assert "cloud.refused" in text and "cloud.tenant_created" in text
    assert "/v1/hooks/" in text  # the access line is there ...
    assert token not in text  # ... but never the token


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"token": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"token": "x", "agent_id": ' + b"9" * 5000 + b"}",
    b'{"token": NaN}',
])
def test_hostile_json_on_enroll_is_400_not_500(cloud: Cloud, body: bytes) -> None:
    with cloud.http() as h:
        refused(h.post("/v1/agents/enroll", content=body), 400, "bad_request")
        # brackets inside strings are text, not nesting
        inside = json.dumps({"token": "[" * 1000, "agent_id": "x"}).encode()
        refused(h.post("/v1/agents/enroll", content=inside), 422, "unprocessable")


def test_huge_timestamp_or_odd_content_length_is_4xx(isp: Tenant, cloud: Cloud) -> None:
    a = isp.agents[0]
    tenant, _ = ident(a)
    path = f"/v1/tenants/{tenant}/events?after=0"
    with cloud.http() as h:
        headers = signed(a, "GET", path)
        headers["x-jasiyo-timestamp"] = "9" * 400
        refused(h.get(path, headers=headers), 401, "unauthorized")
        headers = signed(a, "GET", path)
        headers["x-jasiyo-timestamp"] = "١٢٣"  # Arabic-Indic digits: int() takes them
        r = h.get(path, headers={k: v.encode() if k == "x-jasiyo-timestamp" else v
                                 for k, v in headers.items()})
        assert r.status_code == 401
        r = h.post("/v1/agents/enroll", content=b"{}",
                   headers={"content-length": "2", "x-pad": "1"})
        assert r.status_code == 422
        for query in (f"after={'1' * 400}", f"limit={'1' * 400}", f"wait={'1' * 400}"):
            p = f"/v1/tenants/{tenant}/events?{query}"
            refused(h.get(p, headers=signed(a, "GET", p)), 400, "bad_request")


def test_revocation_ends_a_long_poll_already_waiting(isp: Tenant, cloud: Cloud) -> None:
    """Item 7: a pull waiting when its agent is revoked gets 401, not the next event."""
    a, b = isp.agents
    syncrun.sync_once(b)
    got: list[object] = []

    def wait_on_b() -> None:
        try:
            got.append(syncrun.sync_once(b, wait=20))
        except SyncError as exc:
            got.append(exc)

    t = threading.Thread(target=wait_on_b)
    t.start()
    until(lambda: cloud.long_polls_waiting() >= 1)  # B's pull waits (a later revoke is tested)
    _, b_id = ident(b)
    admin.revoke_agent(cloud.url, isp.admin, b_id)
    s = Store.open(a)
    plans.add(s, plans.build("after-revoke", rate="5M/5M", price="100"), "t")
    s.close()
    syncrun.sync_once(a)
    t.join(30)
    assert not t.is_alive()
    assert isinstance(got[0], SyncError) and "401" in str(got[0])
    s = Store.open(b)
    assert s.scalar("SELECT count(*) FROM plans WHERE name = 'after-revoke'") == 0
    s.close()


def _hooks(cfg, after: int = 0, wait: float = 0.0):
    s = Store.open(cfg)
    try:
        with cloudlink.open_client(cfg, s) as client:
            return client.webhooks(after, wait=wait)
    finally:
        s.close()


def test_webhook_long_poll_returns_when_a_webhook_arrives(isp: Tenant, cloud: Cloud) -> None:
    """Item A: `wait` on the hook list answers as soon as a callback is received."""
    a, b = isp.agents
    url = cloudlink.register_webhook(a, "mpesa-stk")["url"]
    assert _hooks(b) == ([], 0)
    started = time.monotonic()
    assert _hooks(b, wait=0.5) == ([], 0)  # nothing arrives: the wait runs out
    assert time.monotonic() - started >= 0.4
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(_hooks(b, wait=25)))
    started = time.monotonic()
    t.start()
    until(lambda: cloud.long_polls_waiting() >= 1)  # the hook pull waits: wake it
    with cloud.http() as h:
        assert h.post(url, json={"Body": {"stkCallback": {"ResultCode": 0}}}).status_code == 200
    t.join(30)
    assert time.monotonic() - started < 20  # woken, not timed out
    hooks, cursor = result[0]  # type: ignore[misc]
    assert [w.provider for w in hooks] == ["mpesa-stk"] and cursor == 1


@pytest.mark.parametrize("provider", ["mpesa", "mpesa-stk", "mpesa-c2b-confirmation",
                                      "mpesa-c2b-validation"])
def test_every_mpesa_endpoint_gets_the_daraja_acknowledgement(isp: Tenant, cloud: Cloud,
                                                              provider: str) -> None:
    url = cloudlink.register_webhook(isp.agents[0], provider)["url"]
    with cloud.http() as h:
        r = h.post(url, json={"TransID": "QX99ZZ"})
    assert r.status_code == 200 and r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}


def test_revoking_an_agent_closes_its_webhook_endpoints_only(isp: Tenant,
                                                             cloud: Cloud) -> None:
    """A revoked POP's endpoints close with it (404); the other POPs' keep working."""
    a, b = isp.agents
    url_a = cloudlink.register_webhook(a, "paystack")["url"]
    url_b = cloudlink.register_webhook(b, "mpesa-stk")["url"]
    admin.revoke_agent(cloud.url, isp.admin, ident(b)[1])
    with cloud.http() as h:
        assert h.post(url_a, content=b"{}").status_code == 200
        assert h.post(url_b, content=b"{}").status_code == 404
    assert [w.provider for w in _hooks(a)[0]] == ["paystack"]
    with pytest.raises(SyncError, match="401"):
        _hooks(b)  # the revoked POP can no longer read them




def _slow_socket(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    return s


def _closed_within(s: socket.socket, seconds: float) -> bytes:
    """What the server sent before closing ``s`` (fails if it kept it open longer)."""
    s.settimeout(seconds)
    got = b""
    try:
        while chunk := s.recv(4096):
            got += chunk
    except TimeoutError:
        pytest.fail(f"the server kept a slow connection open for more than {seconds} s")
    return got


def test_slow_headers_and_bodies_are_cut_off(tmp_path: Path) -> None:
    """Item 8: a request trickling its headers or body is closed; health keeps answering."""
    from jasiyo.cloud.app import CloudSettings

    c = sqlite_cloud(tmp_path, CloudSettings(rate=10_000, burst=10_000, header_timeout=0.5,
                                             body_timeout=0.5))
    try:
        port = c.server.port
        s = _slow_socket(port)
        for _ in range(3):  # a byte at a time does not keep it alive
            time.sleep(0.2)
            s.sendall(b"X")
        _closed_within(s, 5)
        s.close()
        body = socket.create_connection(("127.0.0.1", port), timeout=10)
        body.sendall(b"POST /v1/agents/enroll HTTP/1.1\r\nHost: x\r\n"
                     b"content-length: 1000\r\n\r\n{")
        _closed_within(body, 5)
        body.close()
        with c.http() as h:
            assert h.get("/v1/health").status_code == 200
    finally:
        c.server.stop()
        c.storage.close()


def test_connections_per_client_address_are_capped(tmp_path: Path) -> None:
    from jasiyo.cloud.app import CloudSettings

    c = sqlite_cloud(tmp_path, CloudSettings(rate=10_000, burst=10_000,
                                             max_conns_per_client=3))
    try:
        port = c.server.port
        held = [_slow_socket(port, "127.0.0.2") for _ in range(3)]
        extra = socket.create_connection(("127.0.0.1", port), timeout=10,
                                         source_address=("127.0.0.2", 0))
        assert _closed_within(extra, 5).startswith(b"HTTP/1.1 503")
        extra.close()
        with c.http() as h:  # another address is unaffected
            assert h.get("/v1/health").status_code == 200
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the freed slot is usable again
            again = socket.create_connection(("127.0.0.1", port), timeout=10,
                                             source_address=("127.0.0.2", 0))
            again.settimeout(0.3)
            try:
                refused_now = again.recv(1).startswith(b"H")
            except TimeoutError:
                refused_now = False
            again.close()
            if not refused_now:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for s in held:
            s.close()
    finally:
        c.server.stop()
        c.storage.close()


@pytest.mark.slow
def test_health_answers_under_1100_slow_connections_and_600_long_polls(tmp_path: Path) -> None:
    """Item 8 acceptance (figures: bench/cloud_slowloris.py). Generous deadlines only."""
    import asyncio
    import resource

    from tests.cloud.slowload import cloud_process, raise_own_fd_limit, run_load

    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 4000:
        pytest.skip("the load needs 4,000 open files in this process (hard ulimit -n)")
    raise_own_fd_limit(4000)
    with cloud_process(tmp_path, nofile=1024) as target:
        r = asyncio.run(run_load(target, slow=1100, polls=600, probes=10))
        log = (tmp_path / "cloud.log").read_text()
    assert r.health_failed == 0 and len(r.health_ms) == 10
    assert max(r.health_ms) < 5000
    assert r.polls_answered == 600  # every long-poll got the pushed event
    assert "Too many open files" not in log
