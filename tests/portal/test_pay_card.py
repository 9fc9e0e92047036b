"""The pay page's card option: a Paystack checkout for the address's owner only."""

from __future__ import annotations

import pytest

from tests.agent.money_support import cli_json, full_service, login, until
from tests.portal.support import CLIENT_IP, World, client, csrf_of, open_session

pytestmark = pytest.mark.slow


def test_pay_by_card_opens_a_paystack_checkout_and_restores(world: World) -> None:
    world.paystack.webhook_url = cli_json(world.cfg, "payment", "register-urls")["urls"]["paystack"]
    open_session(world.cfg, "alice", CLIENT_IP)
    with client(world.url) as c:
        page = c.get("/pay")
        assert 'id="card"' in page.text
        r = c.post("/pay/card", data={"csrf": csrf_of(page.text), "email": "alice@example.com"})
        assert r.status_code == 303 and r.headers["location"].startswith(world.paystack.url)
        (req,) = cli_json(world.cfg, "payment", "requests")
        assert (req["provider"], req["username"], req["amount_minor"]) == ("paystack", "alice", 150000)
        world.paystack.paystack_complete(req["request_id"])
        until(lambda: full_service(login(world.cfg)))
        open_session(world.cfg, "alice", CLIENT_IP, session="81c00002")  # back online
        after = c.get("/pay").text
        assert "active" in after and "Nothing is due" in after
