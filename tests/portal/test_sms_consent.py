"""SMS consent on the portal: the buy form's box is unticked unless the customer ticks it;
ticked, the consent is recorded as given on the portal, with when and from where."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tests.agent.agentproc import jasiyo
from tests.portal.support import World, client, csrf_of

pytestmark = pytest.mark.slow

HOTSPOT = {
    "mac": "AA:BB:CC:00:00:01",
    "ip": "10.5.50.20",
    "link-login-only": "http://10.5.50.1/login",
    "link-orig": "http://example.com/",
    "chap-id": "\\371",
    "chap-challenge": "\\357\\015\\330" + "\\001" * 13,
}


def _buy(world: World, phone: str, mac: str, tick: bool) -> str:
    """Buy the package from the form; returns the pending subscriber's username."""
    params = HOTSPOT | {"mac": mac}
    with client(world.url) as c:
        page = c.get("/hotspot?" + urlencode(params)).text
        assert 'name="sms" value="yes" id="sms">' in page  # offered, not pre-ticked
        form = {**params, "csrf": csrf_of(page), "plan": "1hour", "phone": phone}
        if tick:
            form["sms"] = "yes"
        assert c.post("/buy", data=form).status_code == 303
    (account,) = [
        p.account for p in world.daraja.pushes.values() if p.phone == "254" + phone[1:].replace(" ", "")
    ]
    return account


def test_the_sms_box_records_consent_only_when_ticked(world: World) -> None:
    jasiyo(
        world.cfg, "plan", "add", "1hour", "--rate", "5M/5M", "--price", "10", "--period", "1h", "--portal"
    )
    ticked = _buy(world, "0711 000 001", "AA:BB:CC:00:00:01", tick=True)
    unticked = _buy(world, "0711 000 002", "AA:BB:CC:00:00:02", tick=False)

    shown = json.loads(jasiyo(world.cfg, "--json", "subscriber", "show", ticked).stdout)
    assert shown["sms_consent"] is True
    store = world.store()
    try:
        (row,) = store.all(
            "SELECT c.given, c.how, c.actor, c.source FROM sms_consent c "
            "JOIN subscribers s ON s.id = c.subscriber_id WHERE s.username = ?",
            (ticked,),
        )
        assert (row["given"], row["how"], row["actor"]) == (1, "portal", "portal:AA:BB:CC:00:00:01")
        assert "hotspot buy form" in row["source"]
        assert (
            store.all(
                "SELECT 1 FROM sms_consent c JOIN subscribers s ON "
                "s.id = c.subscriber_id WHERE s.username = ?",
                (unticked,),
            )
            == []
        )
    finally:
        store.close()
    shown = json.loads(jasiyo(world.cfg, "--json", "subscriber", "show", unticked).stdout)
    assert shown["sms_consent"] is False
