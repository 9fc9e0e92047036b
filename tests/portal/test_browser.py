"""The customer's side in a real browser (Chromium, headless, a 360x640 phone)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from jasiyo.agent import vouchers
from tests.agent.agentproc import jasiyo
from tests.agent.money_support import PHONE, full_service, login, until
from tests.portal.browser import phone_page
from tests.portal.support import CLIENT_IP, HOTSPOT_MAC, World, open_session

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
        assert "imesimamishwa" in page.inner_text("main")  # the status in Swahili too
        assert "suspended" not in page.inner_text("main")
        page.shots("pay-sw")
        page.click("a.lang")  # the toggle
        assert page.inner_text("h1") == "Pay your bill"
        page.goto(world.url + "/pay")  # remembered
        assert page.inner_text("h1") == "Pay your bill"


# ---------------------------------------------------------------------- the hotspot portal


def sell_packages(w: World) -> None:
    jasiyo(w.cfg, "plan", "add", "1hour", "--rate", "5M/5M", "--price", "10", "--period", "1h", "--portal")
    jasiyo(
        w.cfg,
        "plan",
        "add",
        "day",
        "--rate",
        "5M/5M",
        "--price",
        "50",
        "--period",
        "24h",
        "--data",
        "2G",
        "--portal",
    )


def buy(w: World, page, hs, plan: str = "1hour") -> None:  # type: ignore[no-untyped-def]
    page.goto(hs.url + "/login")  # the router's login.html sends the browser to the portal
    page.wait_for_url(w.url + "/hotspot?*")
    assert page.inner_text("h1") == "Choose a package"
    page.shots("packages")
    page.check(f"input[value='{plan}']")
    page.fill("#phone", "0712 345 678")
    page.click("#pay")
    page.wait_for_url(w.url + "/wait")
    page.shots("check-phone")


def test_buy_a_package_with_mpesa_and_be_logged_in_by_the_portal(world: World) -> None:
    sell_packages(world)
    with world.hotspot() as hs, phone_page("hotspot_buy") as page:
        assert (
            "1hour"
            in page.goto(
                world.url
                + "/hotspot?"
                + urlencode({"mac": HOTSPOT_MAC, "link-login-only": hs.url + "/login"})
            ).text()
        )
        buy(world, page, hs)
        page.wait_for_url(hs.url + "/login", wait_until="commit")  # the portal posts the login
        page.wait_for_selector("text=You are connected")
        page.shots("connected")
        host = hs.active[HOTSPOT_MAC]
        assert host.user.startswith("HS")
        page.wait_for_url(hs.url + "/status")
        assert "logged in as " + host.user in page.inner_text("#status")
    (push,) = world.daraja.pushes.values()
    assert (push.phone, push.amount, push.account) == (PHONE, 10, host.user)
    (attempt,) = hs.attempts  # one CHAP login, checked by the agent over RADIUS
    assert attempt.accepted
    assert "Session-Timeout" in host.reply  # the package's time, from the agent
    sub = json.loads(jasiyo(world.cfg, "--json", "subscriber", "show", host.user).stdout)
    assert sub["status"] == "active" and sub["service"] == "hotspot"
    log = world.agent.log()
    assert "hs1-secret-pw" not in log and "0712 345 678" not in log


@pytest.mark.parametrize(
    ("script", "outcome", "words"),
    [
        ("cancel", "cancelled", "You pressed Cancel"),
        ("timeout", "timeout", "was not answered in time"),
        ("insufficient", "failed", "not enough money"),
    ],
)
def test_a_prompt_that_is_not_paid_ends_on_a_clear_page(
    world: World, script: str, outcome: str, words: str
) -> None:
    sell_packages(world)
    world.daraja.script(PHONE, script)
    with world.hotspot() as hs, phone_page(f"hotspot_{outcome}") as page:
        buy(world, page, hs)
        page.wait_for_selector(f"#outcome[data-outcome={outcome}]")
        page.shots(outcome)
        assert words in page.inner_text("main")
        assert "nothing was paid" in page.inner_text("main").lower()
        page.click("text=Try again")  # back to the packages, the router's variables kept
        page.wait_for_url(world.url + "/hotspot?*")
        assert page.inner_text("h1") == "Choose a package"
    assert hs.attempts == [] and hs.active == {}
    assert world.count("SELECT count(*) FROM payments") == 0


def test_a_voucher_redeemed_on_the_portal_logs_the_device_in(world: World) -> None:
    sell_packages(world)
    store = world.store()
    try:
        (code,) = vouchers.generate(store, "1hour", 1, "test")
    finally:
        store.close()
    with world.hotspot() as hs, phone_page("hotspot_voucher", locale="sw") as page:
        page.goto(hs.url + "/login")
        page.wait_for_url(world.url + "/hotspot?*")
        assert page.inner_text("h1") == "Chagua kifurushi"  # a Swahili browser
        page.fill("#code", vouchers.display(code).lower())
        page.shots("voucher")
        page.click("#redeem")
        page.wait_for_selector("text=You are connected")
        page.shots("connected")
        assert hs.active[HOTSPOT_MAC].user == code
        # The same code again (another device would be refused; the same one reconnects).
        page.goto(
            world.url
            + "/hotspot?"
            + urlencode({"mac": "AA:BB:CC:00:00:99", "link-login-only": hs.url + "/login"})
        )
        page.fill("#code", code)
        page.click("#redeem")
        page.wait_for_selector("#message")
        page.shots("voucher-other-device")
        assert "another device" in page.inner_text("main")


def test_the_whole_purchase_works_without_javascript(world: World) -> None:
    """A phone with scripts off: buttons instead of self-submitting forms, the waiting page
    refreshes itself."""
    sell_packages(world)
    with world.hotspot() as hs, phone_page("hotspot_nojs", javascript=False) as page:
        page.goto(hs.url + "/login")
        page.click("input[type=submit]")  # the router's page: "Continue / Endelea"
        page.wait_for_url(world.url + "/hotspot?*")
        page.check("input[value='day']")
        page.fill("#phone", "0712 345 678")
        page.click("#pay")
        page.wait_for_selector("#login button")  # paid: the login form, by a refresh
        page.shots("login-button")
        page.click("#login button")
        page.wait_for_selector("text=You are connected")
        assert hs.active[HOTSPOT_MAC].user.startswith("HS")
        assert hs.active[HOTSPOT_MAC].reply.get("Mikrotik-Total-Limit")  # the 2G package
