"""The hotspot emulator logs a device in the way a MikroTik does: HTTP-CHAP from the login
form, then a real Access-Request with CHAP-Password/CHAP-Challenge to the agent."""

from __future__ import annotations

import re

import httpx
import pytest

from jasiyo.portal.hotspot import chap_response, decode_octal
from tests.portal.support import HOTSPOT_MAC, World

pytestmark = pytest.mark.slow


def _chap(html: str) -> tuple[bytes, bytes]:
    cid = re.search(r'name="chap-id" value="([^"]*)"', html)
    ch = re.search(r'name="chap-challenge" value="([^"]*)"', html)
    assert cid and ch
    return decode_octal(cid.group(1), max_bytes=1), decode_octal(ch.group(1))


def test_chap_login_is_checked_by_the_agent_over_radius(world: World) -> None:
    with world.hotspot() as hs, httpx.Client(base_url=hs.url, timeout=10) as c:
        page = c.get("/login").text
        assert f'action="{world.url}/hotspot"' in page  # the uploaded login.html
        chap_id, challenge = _chap(page)
        r = c.post(
            "/login",
            data={
                "username": "hs1",
                "dst": "http://example.com/",
                "password": chap_response(chap_id, "wrong", challenge),
            },
        )
        assert 'name="error" value="Authentication failed"' in r.text  # the Reply-Message
        assert HOTSPOT_MAC not in hs.active
        chap_id, challenge = _chap(c.get("/login").text)
        r = c.post(
            "/login",
            data={
                "username": "hs1",
                "dst": "http://example.com/",
                "password": chap_response(chap_id, "hs1-secret-pw", challenge),
            },
        )
        assert "connected" in r.text
        assert hs.active[HOTSPOT_MAC].user == "hs1"
        assert [a.accepted for a in hs.attempts] == [False, True]
