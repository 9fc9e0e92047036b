"""`router add/update --pay-page URL --portal-url URL`: the walled garden's options."""

from __future__ import annotations

import json

from jasiyo.config import Config
from tests.agent.agentproc import jasiyo


def options(cfg: Config) -> dict:
    return json.loads(jasiyo(cfg, "--json", "router", "show", "r1").stdout)["options"]


def test_pay_page_and_portal_urls_become_walled_garden_options(cfg: Config) -> None:
    jasiyo(cfg, "router", "add", "r1", "--driver", "mikrotik", "--host", "10.0.0.1",
           "--radius-secret", "abcdefgh123", "--pay-page", "http://10.5.50.2:8080/pay",
           "--portal-url", "http://10.5.50.2:8080")
    assert options(cfg) == {"pay_page": "10.5.50.2", "pay_page_port": 8080,
                            "portal_url": "http://10.5.50.2:8080"}
    r = jasiyo(cfg, "router", "update", "r1", "--pay-page", "http://portal.example/pay",
               check=False)
    assert r.returncode == 1 and "IP address" in r.stderr and "Traceback" not in r.stderr
    assert options(cfg)["pay_page"] == "10.5.50.2"  # untouched
    jasiyo(cfg, "router", "update", "r1", "--pay-page", "", "--portal-url", "")
    assert options(cfg) == {}
