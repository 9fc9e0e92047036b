"""The customer's side in a real browser (Chromium, headless, a 360x640 phone)."""

from __future__ import annotations

import pytest

from tests.agent.money_support import PHONE, full_service, login, until
from tests.portal.browser import phone_page
from tests.portal.support import CLIENT_IP, World, open_session

pytestmark = pytest.mark.slow


def test_pay_page_restores_a_suspended_pppoe_customer(world: World) -> None:
    open_session(world.cfg, "alice", CLIENT_IP)  # alice's session has this browser's address
    assert not full_service(login(world.cfg))
    with phone_page("pay_page") as page:
        page.goto(world.url + "/some/page/she/asked/for")  # the walled garden's redirect
        assert page.url == world.url + "/pay"
        assert page.inner_text("#account") == "alice"
        assert "1,500.00" in page.inner_text("#amount")
        page.shots("pay")
        page.fill("#phone", "0712 345 678")
        page.click("#pay")
        page.wait_for_url(world.url + "/pay/wait")
        page.shots("wait")
        page.wait_for_selector("#restored")
        page.shots("restored")
        assert "payment was received" in page.inner_text("h1")
    (push,) = world.daraja.pushes.values()
    assert (push.phone, push.amount, push.account) == (PHONE, 1500, "alice")
    until(lambda: full_service(login(world.cfg)))


def test_pay_page_in_swahili_from_the_browser_language(world: World) -> None:
    open_session(world.cfg, "alice", CLIENT_IP)
    with phone_page("pay_page_sw", locale="sw-KE") as page:
        page.goto(world.url + "/pay")
        assert page.inner_text("h1") == "Lipa bili yako"
        page.shots("pay-sw")
        page.click("a.lang")  # the toggle
        assert page.inner_text("h1") == "Pay your bill"
        page.goto(world.url + "/pay")  # remembered
        assert page.inner_text("h1") == "Pay your bill"
