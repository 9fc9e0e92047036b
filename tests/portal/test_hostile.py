"""Hostile input on every form and parameter of the customer's pages: refused with a clear
page, nothing stored, nothing secret echoed; CSRF, headers and rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from jasiyo.payments.mpesa.sim import DarajaSim
from jasiyo.payments.paystack.sim import PaystackSim
from tests.agent.billing_support import NasListener
from tests.portal.support import CLIENT_IP, World, client, csrf_of, open_session, running_world

pytestmark = pytest.mark.slow

GOOD = {
    "mac": "AA:BB:CC:00:00:01",
    "ip": "10.5.50.20",
    "link-login-only": "http://10.5.50.1/login",
    "link-orig": "http://example.com/",
    "chap-id": "\\371",
    "chap-challenge": "\\357\\015\\330" + "\\001" * 13,
}
SCRIPT = "<script>alert(1)</script>"
HOSTILE: list[tuple[str, str]] = [
    ("mac", "x" * 5000),
    ("mac", SCRIPT),
    ("mac", "AA:BB:CC:00:00:01\r\nSet-Cookie: a=b"),
    ("ip", "10.5.50.300"),
    ("ip", SCRIPT),
    ("link-login-only", "javascript:alert(1)"),
    ("link-login-only", "http://evil.example/login"),  # would receive the CHAP response
    ("link-login-only", "http://8.8.8.8/login"),
    ("link-login-only", "http://user@10.5.50.1/login"),
    ("link-login-only", "http://10.5.50.1/" + "a" * 600),
    ("link-orig", 'http://x/"><script>alert(1)</script>'),
    ("link-orig", "javascript:alert(1)"),
    ("chap-id", "\\999"),
    ("chap-id", "\\371\\372"),  # an id is one byte
    ("chap-id", "\\37"),
    ("chap-challenge", "\\400" * 16),
    ("chap-challenge", "\\001" * 65),
    ("chap-challenge", "\\"),
    ("chap-challenge", SCRIPT),
    ("chap-challenge", ""),  # chap-id without a challenge
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    daraja, paystack, nas = DarajaSim(callback_delay=0.3), PaystackSim(callback_delay=0.3), NasListener()
    daraja.start()
    paystack.start()
    tmp: Path = tmp_path_factory.mktemp("hostile")
    try:
        with running_world(tmp, daraja, paystack, nas, portal="stk_per_phone = 2\nvoucher_per_ip = 4\n") as w:
            yield w
    finally:
        daraja.stop()
        paystack.stop()
        nas.close()


def stored(w: World) -> tuple[int, ...]:
    return (
        w.count("SELECT count(*) FROM payment_requests"),
        w.count("SELECT count(*) FROM subscribers"),
        w.count("SELECT count(*) FROM payments"),
        w.count("SELECT count(*) FROM audit"),
    )


def assert_clear_refusal(r, status: int = 400) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text[:300]
    assert "text/html" in r.headers["content-type"]
    assert "<script>alert" not in r.text and "Traceback" not in r.text
    assert 'id="message"' in r.text  # the error page, in words


@pytest.mark.parametrize(("key", "value"), HOSTILE)
def test_hostile_hotspot_parameters_are_refused(world: World, key: str, value: str) -> None:
    before = stored(world)
    with client(world.url) as c:
        r = c.get("/hotspot?" + urlencode({**GOOD, key: value}))
        assert_clear_refusal(r)
        # The same values posted to the forms (with a valid CSRF token) are refused too.
        page = c.get("/hotspot?" + urlencode(GOOD))
        assert page.status_code == 200
        token = csrf_of(page.text)
        for path, extra in (
            ("/buy", {"plan": "home", "phone": "0712345678"}),
            ("/voucher", {"code": "ABCD-EFGH"}),
        ):
            r = c.post(path, data={**GOOD, key: value, "csrf": token, **extra})
            assert r.status_code in (400, 413, 429), r.text[:300]
            assert "<script>alert" not in r.text
    assert stored(world) == before
    assert "alert(1)" not in world.agent.log()


FORM_HOSTILE = [
    ("/buy", {"plan": "home", "phone": SCRIPT}),
    ("/buy", {"plan": "home", "phone": "0712345678" * 10}),
    ("/buy", {"plan": "home", "phone": "０７１２３４５６７８"}),  # full-width digits
    ("/buy", {"plan": SCRIPT, "phone": "0712345678"}),
    ("/buy", {"plan": "x" * 5000, "phone": "0712345678"}),
    ("/buy", {"plan": "home", "phone": "0712345678"}),  # a plan not sold on the portal
    ("/buy", {"phone": "0712345678"}),
    ("/voucher", {"code": SCRIPT}),
    ("/voucher", {"code": "A" * 5000}),
    ("/voucher", {"code": ""}),
    ("/pay/mpesa", {"phone": SCRIPT}),
    ("/pay/card", {"email": SCRIPT}),
]


@pytest.mark.parametrize(("path", "fields"), FORM_HOSTILE)
def test_hostile_form_fields_are_refused(world: World, path: str, fields: dict) -> None:
    before = stored(world)
    with client(world.url) as c:
        token = csrf_of(c.get("/hotspot?" + urlencode(GOOD)).text)
        r = c.post(path, data={**GOOD, "csrf": token, **fields})
        assert r.status_code in (400, 404, 413), r.text[:300]
        assert 'id="message"' in r.text
        assert "<script>alert" not in r.text and "Traceback" not in r.text
    assert stored(world) == before and world.daraja.pushes == {}


def test_the_routers_error_is_shown_only_as_plain_words(world: World) -> None:
    with client(world.url) as c:
        r = c.get("/hotspot?" + urlencode({**GOOD, "error": "invalid username or password"}))
        assert "invalid username or password" in r.text
        r = c.get("/hotspot?" + urlencode({**GOOD, "error": "Pay KES 500 to 0712 000 000"}))
        main = r.text.split("<main>", 1)[1]
        assert "0712" not in main and "login failed" in main


def test_pages_carry_security_headers_and_no_inline_script(world: World) -> None:
    with client(world.url) as c:
        for path in ("/hotspot?" + urlencode(GOOD), "/pay", "/"):
            r = c.get(path)
            csp = r.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert "<script>" not in r.text  # only <script src=...> from ourselves
            assert "fonts.googleapis" not in r.text and "cdn" not in r.text.lower()


def test_posts_without_the_csrf_token_or_from_another_site_are_refused(world: World) -> None:
    before = stored(world)
    with client(world.url) as c:
        token = csrf_of(c.get("/hotspot?" + urlencode(GOOD)).text)
        form = {**GOOD, "plan": "home", "phone": "0712345678"}
        r = c.post("/buy", data=form)  # no token
        assert_clear_refusal(r, 403)
        r = c.post("/buy", data={**form, "csrf": "0" * 32})
        assert_clear_refusal(r, 403)
        r = c.post("/buy", data={**form, "csrf": token}, headers={"origin": "http://evil.example"})
        assert_clear_refusal(r, 403)
        r = c.post(
            "/buy", content=b"x" * 20000, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert_clear_refusal(r, 413)
        r = c.post("/pay/mpesa", json={"phone": "0712345678"})
        assert_clear_refusal(r, 400)
    assert stored(world) == before


def test_the_pay_page_shows_only_the_address_owner(world: World) -> None:
    with client(world.url) as c:
        # No session has this address: nobody's data, whatever the headers claim.
        r = c.get("/pay", headers={"x-forwarded-for": "100.64.0.9", "x-real-ip": "100.64.0.9"})
        assert r.status_code == 404 and 'id="unknown"' in r.text
        assert "alice" not in r.text and "hs1" not in r.text
        token = c.cookies["jsy_csrf"]  # the page has no form; the cookie is set anyway
        before = stored(world)
        r = c.post(
            "/pay/mpesa",
            data={"csrf": token, "phone": "0712345678"},
            headers={"x-forwarded-for": "100.64.0.9"},
        )
        assert_clear_refusal(r, 400)
        assert stored(world) == before and world.daraja.pushes == {}
        # Another customer's payment cannot be watched from here either.
        c.cookies.set("jsy_pay", "not-a-real-one")
        r = c.get("/pay/wait")
        assert_clear_refusal(r, 404)


def test_stk_prompts_are_rate_limited_per_phone(world: World) -> None:
    open_session(world.cfg, "alice", CLIENT_IP, session="81c0rate")
    with client(world.url) as c:
        token = csrf_of(c.get("/pay").text)
        codes = [
            c.post("/pay/mpesa", data={"csrf": token, "phone": "0722 000 111"}).status_code for _ in range(4)
        ]
    assert codes == [303, 303, 429, 429]  # [portal] stk_per_phone = 2
    assert len([p for p in world.daraja.pushes.values() if p.phone == "254722000111"]) == 2
