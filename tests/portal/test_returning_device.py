"""A device that paid for a package on the portal is logged in again when it comes back
(the customer closed the page, or the agent restarted while the prompt was open): the
purchase is in the store, not only in the page that made it."""

from __future__ import annotations

import re

import httpx

from jasiyo.agent import hotspot
from tests.agent.agentproc import jasiyo
from tests.portal.support import HOTSPOT_MAC, World

PHONE = "0712 345 678"


def _router_redirect(hs_url: str) -> dict[str, str]:
    """What the router's login.html sends the browser to the portal with."""
    html = httpx.get(hs_url + "/login", timeout=10).text
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def _hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def test_a_device_that_paid_is_logged_in_again(world: World) -> None:
    jasiyo(
        world.cfg, "plan", "add", "1hour", "--rate", "5M/5M", "--price", "10", "--period", "1h", "--portal"
    )
    store = world.store()
    try:
        access = hotspot.pending_purchase(store, world.cfg, plan="1hour", phone=PHONE, mac=HOTSPOT_MAC)
    finally:
        store.close()
    with world.hotspot() as hs, httpx.Client(base_url=world.url, timeout=10) as portal:
        # Not paid yet: the device is offered the packages, not a login.
        page = portal.get("/hotspot", params=_router_redirect(hs.url)).text
        assert "Choose a package" in page and access.username not in page

        jasiyo(world.cfg, "payment", "record", access.username, "10", "--ref", "QRT1AB2CD3")
        page = portal.get("/hotspot", params=_router_redirect(hs.url)).text
        fields = _hidden(page)
        assert fields["username"] == access.username
        assert access.password not in page  # only the CHAP response goes to the browser
        # The browser posts that form to the router, which checks it over RADIUS.
        r = httpx.post(hs.url + "/login", data=fields, timeout=10)
        assert "connected" in r.text and hs.active[HOTSPOT_MAC].user == access.username

        # After the router refused a login (it says so in `error`), no automatic retry.
        params = _router_redirect(hs.url) | {"error": "session limit reached"}
        assert "Choose a package" in portal.get("/hotspot", params=params).text

        # Another device is never handed this package.
        params = _router_redirect(hs.url) | {"mac": "AA:BB:CC:00:00:99"}
        page = portal.get("/hotspot", params=params).text
        assert "Choose a package" in page and access.username not in page
