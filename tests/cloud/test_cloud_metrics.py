"""Issue 14: the cloud's /metrics (requests, latency, long-polls, webhooks, connections,
per-tenant backlog without tenant names), scraped with the Prometheus text parser."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from jasiyo.agent import plans, syncrun
from jasiyo.agent.store import Store
from tests.agent.test_ops_status import dashboard_expressions, exported_names
from tests.sync.harness import Cloud, Tenant, sqlite_cloud


def scrape(cloud: Cloud) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    r = httpx.get(cloud.url + "/metrics", headers={"authorization": f"Bearer {cloud.operator}"})
    assert r.status_code == 200, r.text
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return r.text, out


def test_metrics_need_the_operator_token(cloud: Cloud) -> None:
    assert httpx.get(cloud.url + "/metrics").status_code == 401
    bad = httpx.get(cloud.url + "/metrics", headers={"authorization": "Bearer jop_nope"})
    assert bad.status_code == 401
    assert httpx.post(cloud.url + "/metrics").status_code == 405


def test_requests_long_polls_webhooks_and_backlog_move(cloud: Cloud, tmp_path: Path) -> None:
    isp = Tenant(cloud, tmp_path / "a").setup(2)
    a, b = isp.agents
    for _ in range(3):
        assert httpx.get(cloud.url + "/v1/health").status_code == 200
    _, m = scrape(cloud)
    key = ("jasiyo_cloud_requests_total", (("method", "GET"), ("route", "/v1/health"), ("status", "200")))
    assert m[key] >= 3
    assert m[("jasiyo_cloud_request_duration_seconds_count", (("route", "/v1/health"),))] >= 3
    assert m[("jasiyo_cloud_connections_cap", ())] > 0

    # A webhook to an unknown endpoint is counted by its status, its token never a label.
    token = "f" * 48
    r = httpx.post(f"{cloud.url}/v1/hooks/{isp.id}/{token}", json={"x": 1})
    assert r.status_code == 404
    text, m = scrape(cloud)
    assert m[("jasiyo_cloud_webhooks_total", (("status", "404"),))] == 1
    assert token not in text and isp.id not in text

    # A long-poll waiting is seen while it waits.
    done = threading.Event()

    def poll() -> None:
        syncrun.sync_once(b, wait=20)
        done.set()

    syncrun.sync_once(b)  # b is level with the cloud first
    t = threading.Thread(target=poll, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while scrape(cloud)[1].get(("jasiyo_cloud_long_polls_waiting", ()), 0) < 1:
        assert time.monotonic() < deadline and not done.is_set()
        time.sleep(0.05)

    # 30 events pushed by a; b is woken and pulls them all: its tenant's backlog is 0
    # again, and before b pulls, a's own pull sees the events it has not pulled yet.
    store = Store.open(a)
    try:
        for i in range(30):
            plans.add(store, plans.build(f"plan{i}", rate="1M/1M", price=str(100 + i)), "t")
    finally:
        store.close()
    syncrun.sync_once(a)
    assert done.wait(20)
    t.join(5)
    text, m = scrape(cloud)
    assert m[("jasiyo_cloud_long_polls_waiting", ())] == 0
    assert m[("jasiyo_cloud_tenant_backlog_events_gcount", ())] == 1
    assert m[("jasiyo_cloud_tenant_backlog_max_events", ())] == 0

    # The dashboard's cloud panels use only names this scrape has.
    names = {n for f in text_string_to_metric_families(text) for n in exported_names(f.name, f.type)}
    used = {n for e in dashboard_expressions() for n in re.findall(r"\b(jasiyo_cloud_[a-z0-9_]+)", e)}
    assert len(used) >= 8 and used <= names, used - names


def test_a_flood_over_the_cap_is_refused_in_accept_and_counted(tmp_path: Path) -> None:
    """Issue 10 item 8: 400 connections at once from one address over its cap all get 503
    (refused inside accept(), no HTTP parser made), /v1/health from another address still
    answers, the refusals are counted, and the accept queue is deep (a flood reconnecting
    at once must not overflow it: Linux would drop the health monitor's handshake too)."""
    import shutil
    import socket
    import subprocess

    from jasiyo.cloud.app import CloudSettings
    from jasiyo.cloud.guard import ACCEPT_QUEUE

    c = sqlite_cloud(tmp_path, CloudSettings(rate=10_000, burst=10_000, max_conns_per_client=2))
    held, flood = [], []
    try:
        port = c.server.port
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
            s.sendall(b"GET /v1/health HTTP/1.1\r\n")
            held.append(s)
        time.sleep(0.2)  # both are registered before the flood
        for _ in range(400):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            flood.append(s)
        answers = []
        for s in flood:
            s.settimeout(10)
            try:
                answers.append(s.recv(64))
            except OSError as exc:
                answers.append(repr(exc).encode())
        assert all(a.startswith(b"HTTP/1.1 503") for a in answers), set(answers)
        assert httpx.get(cloud_url := c.url + "/v1/health").status_code == 200, cloud_url
        _, m = scrape(c)
        assert m[("jasiyo_cloud_connections_limited_total", (("reason", "over_cap"),))] >= 400
        if shutil.which("ss"):
            out = subprocess.run(
                ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True
            ).stdout.split()
            somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
            assert int(out[2]) == min(ACCEPT_QUEUE, somaxconn), out
    finally:
        for s in held + flood:
            s.close()
        c.server.stop()
        c.storage.close()
