"""`/metrics` sits on the listener customers reach (portal, pay page): only the networks in
`[web] metrics_from` may read it, judged by the connecting address, never a header."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from jasiyo.config import parse
from jasiyo.errors import ConfigError
from tests.agent.agentproc import AgentProcess
from tests.conftest import free_tcp_port, make_config
from tests.portal.support import until

pytestmark = pytest.mark.slow


def _get(port: int, source: str, **headers: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as c:
        return c.get(f"http://127.0.0.1:{port}/metrics", headers=headers)


def test_metrics_only_to_the_configured_networks(tmp_path: Path) -> None:
    port = free_tcp_port()
    cfg = make_config(tmp_path, f'[web]\nport = {port}\nmetrics_from = ["127.0.0.1/32"]\n')
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    try:
        until(lambda: "web.start" in agent.log() or agent.proc.poll() is not None, timeout=120)
        assert agent.proc.poll() is None, agent.log()
        ok = _get(port, "127.0.0.1")
        assert ok.status_code == 200 and "jasiyo_" in ok.text
        # Another address on the customer side, even claiming to be the allowed one.
        refused = _get(port, "127.0.0.2", **{"x-forwarded-for": "127.0.0.1"})
        assert refused.status_code == 403 and "jasiyo_" not in refused.text
        assert "web.metrics_refused" in agent.log()
        # The rest of the listener still answers that address.
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport, timeout=10) as c:
            assert c.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        agent.terminate()


def test_a_bad_metrics_network_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[web\] metrics_from: 'prometheus'"):
        parse('[web]\nmetrics_from = ["prometheus"]\n', tmp_path)
