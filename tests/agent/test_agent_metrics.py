"""The agent's metrics as the agent's /metrics serves them: AgentMetrics.render() of a
running Agent (two authentication processes, RadSec on), parsed with prometheus_client."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jasiyo.agent.metrics import AgentMetrics
from jasiyo.agent.runtime import Agent
from tests.agent.agentproc import jasiyo
from tests.radius.support import radclient
from tests.support.config import make_config

pytestmark = [pytest.mark.slow, pytest.mark.radclient]


async def _no_parts(agent: Agent) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        return None

    return stop


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_render_counts_every_process(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        radsec_port = s.getsockname()[1]
    cfg = make_config(tmp_path, f"\n[radsec]\nenabled = true\nport = {radsec_port}\n", workers=2)
    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    jasiyo(cfg, "subscriber", "add", "alice", "--plan", "home", "--password", "alice-pw")
    jasiyo(
        cfg,
        "router",
        "add",
        "local",
        "--driver",
        "mikrotik",
        "--host",
        "127.0.0.1",
        "--radius-secret",
        "testing123",
    )
    jasiyo(cfg, "radsec", "ca")

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)  # type: ignore[arg-type]

    agent = Agent(cfg, parts=[_no_parts])
    call(agent.start())
    try:
        metrics = AgentMetrics(agent)
        body, ctype = metrics.render()
        assert ctype.startswith("text/plain") and b"jasiyo_radsec_connections_open" in body
        body_ok = 'User-Name = "alice"\nUser-Password = "alice-pw"\nMessage-Authenticator = 0x00\n'
        for _ in range(8):  # eight source ports: both processes answer some
            assert radclient(cfg.radius.auth_port, "auth", body_ok).code == "Access-Accept"
        key = ("jasiyo_radius_requests_total", (("decision", "accept"), ("type", "access")))
        deadline = time.monotonic() + 20
        while _samples(metrics.render()[0]).get(key) != 8:
            assert time.monotonic() < deadline, metrics.render()[0].decode()
            time.sleep(0.1)
        m = _samples(metrics.render()[0])
        assert m[("jasiyo_radius_auth_latency_seconds_count", ())] == 8
        assert m[("jasiyo_radius_auth_latency_seconds_bucket", (("le", "+Inf"),))] == 8
    finally:
        call(agent.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
