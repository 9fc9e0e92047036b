"""The ISP's name and its support number on the customer's pages (``[agent] business_name``,
``support_phone``), in both languages."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from jasiyo.agent.web import StoreBackend
from jasiyo.portal.app import create_app
from jasiyo.serving import ServerThread
from tests.support.config import make_config


def _serve(tmp_path: Path, brand: tuple[str, str]) -> Iterator[str]:
    cfg = make_config(tmp_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    app = create_app(StoreBackend(cfg), brand=brand)
    server = ServerThread(uvicorn.Config(app, log_config=None, lifespan="on"), sock, "brand-test")
    assert server.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.stop()


@pytest.fixture
def branded(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, ("Kilele Net", "+254 700 123 456"))


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, ("", ""))


def test_every_page_names_the_isp_and_the_number_to_call(branded: str) -> None:
    # The hotspot page without the router's parameters, and the pay page from an address
    # that is nobody's: both are error pages, which is where a customer most needs the number.
    for path, lang, words in (
        ("/hotspot", "en", "Need help? Call"),
        ("/pay", "en", "Need help? Call"),
        ("/pay?lang=sw", "sw", "Unahitaji msaada? Piga simu"),
    ):
        page = httpx.get(branded + path, timeout=10).text
        assert '<span class="brand">Kilele Net</span>' in page, path
        assert f'{words} <a href="tel:+254700123456">+254 700 123 456</a>' in page, (path, lang)


def test_without_them_the_pages_say_internet_and_show_no_number(plain: str) -> None:
    page = httpx.get(plain + "/pay", timeout=10).text
    assert '<span class="brand">Internet</span>' in page and "tel:" not in page
