"""The shared HTTP client: how answers and failures become PaymentError subclasses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jasiyo.payments.errors import (
    PaymentError,
    ProviderAuthError,
    ProviderRejected,
    ProviderUnavailable,
)
from jasiyo.payments.http import HttpClient


class Canned:
    """An HTTP server on 127.0.0.1 answering every request with one canned response."""

    def __init__(self) -> None:
        self.status, self.body, self.hits = 200, b"{}", 0
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                canned.hits += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(canned.status)
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canned() -> Iterator[Canned]:
    c = Canned()
    yield c
    c.close()


@pytest.fixture
def client(canned: Canned) -> Iterator[HttpClient]:
    def read(body: object) -> tuple[str, str]:
        if isinstance(body, dict):
            return str(body.get("errorCode", "")), str(body.get("errorMessage", ""))
        return "", ""

    c = HttpClient("mpesa", canned.url, timeout=2.0, retries=2, backoff=0.01, read_error=read)
    yield c
    c.close()


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (200, b"<html>gateway</html>", ProviderUnavailable, ""),
        (502, b"<html>bad gateway</html>", ProviderUnavailable, ""),
        (503, b'{"errorCode":"503.001.01","errorMessage":"down"}', ProviderUnavailable, "503.001.01"),
        (429, b"{}", ProviderUnavailable, ""),
        (
            401,
            b'{"errorCode":"401.002.01","errorMessage":"Error Occurred - Invalid Access Token"}',
            ProviderAuthError,
            "401.002.01",
        ),
        (403, b"", ProviderAuthError, ""),
        (
            400,
            b'{"errorCode":"400.002.02","errorMessage":"Bad Request - Invalid Amount"}',
            ProviderRejected,
            "400.002.02",
        ),
        (302, b"", ProviderUnavailable, ""),
    ],
)
def test_answers_mapped(
    canned: Canned, client: HttpClient, status: int, body: bytes, error: type[PaymentError], code: str
) -> None:
    canned.status, canned.body = status, body
    with pytest.raises(error) as caught:
        client.request("POST", "/x", idempotent=False, json_body={})
    assert type(caught.value) is error
    assert caught.value.code == code and caught.value.provider == "mpesa"
    assert "\n" not in str(caught.value)  # one line for the person reading it


def test_idempotent_calls_are_retried_and_others_are_not(canned: Canned, client: HttpClient) -> None:
    canned.status, canned.body = 503, b"{}"
    with pytest.raises(ProviderUnavailable):
        client.request("GET", "/token", idempotent=True)
    assert canned.hits == 3
    canned.hits = 0
    with pytest.raises(ProviderUnavailable):
        client.request("POST", "/push", idempotent=False)
    assert canned.hits == 1


def test_rejections_are_never_retried(canned: Canned, client: HttpClient) -> None:
    canned.status, canned.body = 400, b'{"errorCode":"400.002.02","errorMessage":"bad"}'
    with pytest.raises(ProviderRejected, match="400.002.02: bad"):
        client.request("GET", "/query", idempotent=True)
    assert canned.hits == 1


def test_a_json_answer_is_returned(canned: Canned, client: HttpClient) -> None:
    canned.body = b'{"access_token":"abc","expires_in":"3599"}'
    assert client.request("GET", "/t", idempotent=True) == {"access_token": "abc", "expires_in": "3599"}


def test_an_injected_transport_carries_the_requests(canned: Canned) -> None:
    import httpx

    class Counting(httpx.HTTPTransport):
        calls = 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            Counting.calls += 1
            return super().handle_request(request)

    canned.body = b'{"ok":true}'
    client = HttpClient("paystack", canned.url, transport=Counting())
    try:
        assert client.request("GET", "/balance", idempotent=True) == {"ok": True}
    finally:
        client.close()
    assert Counting.calls == 1 and canned.hits == 1
