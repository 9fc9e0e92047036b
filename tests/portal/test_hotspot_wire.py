"""MikroTik hotspot wire facts, without sockets: octal CHAP values, the HTTP-CHAP response,
the login link check, the files for the router, the page language."""

from __future__ import annotations

import hashlib

import pytest

from jasiyo.errors import ValidationError
from jasiyo.portal import i18n
from jasiyo.portal.hotspot import (
    chap_response,
    check_login_url,
    decode_octal,
    encode_octal,
    hotspot_files,
    parse_login,
    walled_garden_hosts,
)


def test_octal_form_round_trips_and_chap_is_md5_of_id_password_challenge() -> None:
    challenge = bytes(range(240, 256))
    text = encode_octal(challenge)
    assert text.startswith("\\360\\361") and len(text) == 64
    assert decode_octal(text) == challenge
    expected = hashlib.md5(b"\xf9" + b"secret" + challenge).hexdigest()
    assert chap_response(decode_octal("\\371", max_bytes=1), "secret", challenge) == expected


@pytest.mark.parametrize("bad", ["\\999", "\\37", "\\400", "abc", "\\", "\\371x", "\\001" * 65])
def test_anything_but_routeros_octal_form_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        decode_octal(bad)


def test_the_login_link_must_be_the_hotspots_own() -> None:
    assert check_login_url("http://10.5.50.1/login") == "http://10.5.50.1/login"
    assert check_login_url("https://hotspot.isp.example/login", ("hotspot.isp.example",))
    for bad in (
        "http://evil.example/login",
        "http://8.8.8.8/login",
        "ftp://10.5.50.1/",
        "javascript:alert(1)",
        "http://u:p@10.5.50.1/login",
    ):
        with pytest.raises(ValidationError):
            check_login_url(bad)


def test_parse_login_without_chap_posts_the_password_itself() -> None:
    hs = parse_login({"mac": "aa-bb-cc-00-00-01", "link-login-only": "http://10.5.50.1/login"})
    assert hs.mac == "AA:BB:CC:00:00:01" and not hs.chap
    assert hs.login_password("pw") == "pw"
    with pytest.raises(ValidationError):
        parse_login(
            {"mac": "AA:BB:CC:00:00:01", "link-login-only": "http://10.5.50.1/login", "chap-id": "\\371"}
        )  # an id without a challenge


def test_hotspot_files_send_the_router_variables_to_the_portal() -> None:
    files = hotspot_files("http://10.5.50.2:8080/")
    login = files["login.html"]
    assert 'action="http://10.5.50.2:8080/hotspot"' in login
    for var in ("mac", "ip", "link-login-only", "link-orig", "chap-id", "chap-challenge"):
        assert f'name="{var}" value="$({var})"' in login
    assert "$(link-redirect)" in files["alogin.html"]
    with pytest.raises(ValidationError):
        hotspot_files('http://x/"><script>')
    assert walled_garden_hosts("http://10.5.50.2:8080", ("https://checkout.paystack.com",)) == [
        "10.5.50.2",
        "checkout.paystack.com",
    ]


def test_language_from_the_toggle_then_the_browser() -> None:
    assert i18n.choose(None, "sw-KE,sw;q=0.9,en;q=0.8") == "sw"
    assert i18n.choose(None, "fr-FR,en;q=0.5") == "en"
    assert i18n.choose("en", "sw") == "en"
    assert i18n.choose("xx", "x" * 5000) == "en"
    assert i18n.period("24h", "en") == "24 hours" and i18n.period("1h", "sw") == "saa 1"
    assert i18n.period("1mo", "sw") == "mwezi 1" and i18n.period("3mo", "sw") == "miezi 3"
    assert set(i18n.STRINGS["en"]) == set(i18n.STRINGS["sw"])  # every word in both
