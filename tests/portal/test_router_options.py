"""`router add/update --pay-page URL --portal-url URL`: the walled garden's options."""

from __future__ import annotations

import json

from jasiyo.config import Config
from tests.agent.agentproc import jasiyo


def options(cfg: Config) -> dict:
    return json.loads(jasiyo(cfg, "--json", "router", "show", "r1").stdout)["options"]


def test_pay_page_and_portal_urls_become_walled_garden_options(cfg: Config) -> None:
    jasiyo(
        cfg,
        "router",
        "add",
        "r1",
        "--driver",
        "mikrotik",
        "--host",
        "10.0.0.1",
        "--radius-secret",
        "abcdefgh123",
        "--pay-page",
        "http://10.5.50.2:8080/pay",
        "--portal-url",
        "http://10.5.50.2:8080",
    )
    assert options(cfg) == {
        "pay_page": "10.5.50.2",
        "pay_page_port": 8080,
        "portal_url": "http://10.5.50.2:8080",
    }
    r = jasiyo(cfg, "router", "update", "r1", "--pay-page", "http://portal.example/pay", check=False)
    assert r.returncode == 1 and "IP address" in r.stderr and "Traceback" not in r.stderr
    assert options(cfg)["pay_page"] == "10.5.50.2"  # untouched
    jasiyo(cfg, "router", "update", "r1", "--pay-page", "", "--portal-url", "")
    assert options(cfg) == {}


def test_router_sync_installs_the_portal_walled_garden_and_hotspot_files(cfg: Config) -> None:
    from jasiyo.drivers.mikrotik.sim import RouterOSSim

    sim = RouterOSSim(users={"jasiyo": "api-pass-1"}).start()
    try:
        jasiyo(
            cfg,
            "router",
            "add",
            "hs",
            "--driver",
            "mikrotik",
            "--host",
            "127.0.0.1",
            "--port",
            str(sim.port),
            "--username",
            "jasiyo",
            "--password",
            "api-pass-1",
            "--radius-secret",
            "testing123",
            "--pay-page",
            "http://10.5.50.2:8080/pay",
            "--portal-url",
            "http://10.5.50.2:8080",
        )
        jasiyo(cfg, "router", "sync", "hs")
        assert [r["dst-host"] for r in sim.state.items("/ip/hotspot/walled-garden")] == ["10.5.50.2"]
        files = {f["name"]: f["contents"] for f in sim.state.items("/file")}
        assert "http://10.5.50.2:8080/hotspot" in files["hotspot/login.html"]
        (nat,) = sim.state.items("/ip/firewall/nat")
        assert (nat["to-addresses"], nat["to-ports"]) == ("10.5.50.2", "8080")
        dns = [r for r in sim.state.items("/ip/firewall/filter") if r.get("dst-port") == "53"]
        assert {r["protocol"] for r in dns} == {"udp", "tcp"}
    finally:
        sim.stop()
