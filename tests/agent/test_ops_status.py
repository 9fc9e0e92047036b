"""Issue 14: the agent's /metrics beyond RADIUS (enforcement, jobs, sync, SMS), scraped over
HTTP from a real `agent run`; `jasiyo agent status` (human and --json) beside it; and the
Grafana dashboard in docs/ uses only metric names such a scrape has."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.agent.agentproc import AgentProcess, jasiyo
from tests.conftest import free_tcp_port, make_config
from tests.radius.conftest import radclient

pytestmark = [pytest.mark.slow, pytest.mark.radclient]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"


def _scrape(port: int) -> tuple[set[str], dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    names, samples = set(), {}
    for fam in text_string_to_metric_families(text):
        names |= exported_names(fam.name, fam.type)
        for s in fam.samples:
            names.add(s.name)
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return names, samples


def _silent_udp_port() -> tuple[socket.socket, int]:
    """A bound UDP socket that never answers: a NAS whose CoA port is dead."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def test_metrics_and_status_of_a_running_agent(tmp_path: Path) -> None:
    web = free_tcp_port()
    silent, coa = _silent_udp_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        radsec = s.getsockname()[1]
    cfg = make_config(
        tmp_path,
        f"[web]\nport = {web}\n[billing]\nenforce_interval = 0.2\n"
        f"[radsec]\nenabled = true\nport = {radsec}\n",
        workers=2,
    )
    jasiyo(cfg, "radsec", "ca")
    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    jasiyo(
        cfg,
        "subscriber",
        "add",
        "alice",
        "--plan",
        "home",
        "--password",
        "alice-pw",
        "--phone",
        "0712 345 678",
        "--sms-consent",
    )
    jasiyo(
        cfg,
        "router",
        "add",
        "edge1",
        "--driver",
        "mikrotik",
        "--host",
        "127.0.0.1",
        "--radius-secret",
        "testing123",
        "--coa-port",
        str(coa),
    )
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                names, m = _scrape(web)
                if m.get(("jasiyo_job_duration_seconds_count", (("job", "billing-tick"),))):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, agent.log()
            time.sleep(0.1)
        assert m[("jasiyo_radius_processes", ())] == 2
        assert m[("jasiyo_sync_enrolled", ())] == 0
        assert m[("jasiyo_sync_backlog_events", ())] > 0  # the CLI changes, never pushed
        base_sms = sum(v for (n, _), v in m.items() if n == "jasiyo_sms_messages")

        # A session at edge1, then a suspension: a Disconnect waits at the silent NAS.
        start = (
            'User-Name = "alice"\nAcct-Status-Type = Start\nAcct-Session-Id = "s1"\n'
            "NAS-IP-Address = 127.0.0.1\nFramed-IP-Address = 10.0.0.9\n"
        )
        assert radclient(cfg.radius.acct_port, "acct", start).code == "Accounting-Response"
        jasiyo(cfg, "subscriber", "suspend", "alice")
        jasiyo(cfg, "sms", "send", "alice", "hello from the NOC")
        key = ("jasiyo_enforce_queue", (("action", "disconnect"), ("nas", "edge1")))
        while True:
            names, m = _scrape(web)
            if m.get(key) == 1 and m.get(("jasiyo_enforce_oldest_pending_age_seconds", ())):
                break
            assert time.monotonic() < deadline + 30, agent.log()
            time.sleep(0.1)
        assert sum(v for (n, _), v in m.items() if n == "jasiyo_sms_messages") == base_sms + 1
        text = httpx.get(f"http://127.0.0.1:{web}/metrics").text
        # No personal data in names or labels. Sample values are numbers that may hold any
        # digits by chance (a timestamp held "0712" once), so the phone is matched whole.
        assert "alice" not in text
        assert not re.search(r"(?<![\d.])(\+?254|0)?712 ?345 ?678(?![\d.])", text)

        # `agent status`, for a person and as JSON.
        out = jasiyo(cfg, "agent", "status").stdout
        assert "state: running" in out and "pending: 1" in out, out
        doc = json.loads(jasiyo(cfg, "--json", "agent", "status").stdout)
        assert doc["agent"]["state"] == "running" and doc["agent"]["auth_processes"] == 2
        assert doc["agent"]["pop"].endswith("(stand-alone: bills every subscriber)")
        assert doc["radius"]["auth_port"] == cfg.radius.auth_port
        assert doc["radius"]["auth_listening"] is True
        assert doc["web"]["state"] == "answering" and doc["web"]["port"] == web
        assert doc["cloud"]["link"].startswith("stand-alone") and doc["cloud"]["backlog"] > 0
        assert doc["enforcement"]["pending"] == 1
        assert doc["enforcement"]["busiest_nas"] == {"edge1": 1}
        assert doc["sms"]["by_status"]
        assert doc["store"]["subscribers"] == 1 and doc["store"]["online_sessions"] == 1

        # Every metric name the dashboard uses is in this scrape (or the cloud's, below).
        _check_dashboard(names, "jasiyo_cloud_")
    finally:
        assert agent.terminate() == 0
        silent.close()
    after = json.loads(jasiyo(cfg, "--json", "agent", "status").stdout)
    assert after["agent"]["state"] == "not running" and after["web"]["state"] == "not listening"


def _check_dashboard(names: set[str], skip_prefix: str) -> None:
    """Each panel expression's metric names exist (names under ``skip_prefix`` are checked
    against the cloud's scrape in tests/cloud/test_cloud_metrics.py)."""
    exprs = dashboard_expressions()
    assert len(exprs) >= 10
    for expr in exprs:
        for name in re.findall(r"\b(jasiyo_[a-z0-9_]+)", expr):
            if name.startswith(skip_prefix):
                continue
            assert name in names, f"dashboard uses {name!r}, which /metrics does not export"


SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("_count", "_sum"),
}


def exported_names(family: str, kind: str) -> set[str]:
    """The sample names a family of this type has in a scrape, even before any sample."""
    return {family, *(family + s for s in SUFFIXES.get(kind, ()))}


def dashboard_expressions() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                out.append(node["expr"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    return out


def test_status_of_an_agent_that_was_killed(tmp_path: Path) -> None:
    """A runtime file whose process is gone (SIGKILL, a crash): `agent status` says so."""
    import subprocess
    import sys

    cfg = make_config(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (cfg.data_dir / "agent.runtime.json").write_text(
        json.dumps(
            {
                "pid": dead.pid,
                "started_at": time.time() - 60,
                "radius": {"address": "127.0.0.1", "auth_port": 1, "acct_port": 2, "workers": []},
                "radsec": None,
                "web": None,
            }
        )
    )
    out = jasiyo(cfg, "agent", "status").stdout
    assert "state: not running (stopped without cleaning up" in out, out
    doc = json.loads(jasiyo(cfg, "--json", "agent", "status").stdout)
    assert doc["agent"]["pid"] is None and doc["agent"]["auth_processes"] == 0
    assert doc["enforcement"]["pending"] == 0 and doc["sms"]["queued"] == 0
