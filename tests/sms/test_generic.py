"""The generic HTTP gateway against a local aggregator stand-in on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from jasiyo.config import parse
from jasiyo.errors import ConfigError
from jasiyo.sms.errors import CallbackError, GatewayRejected
from jasiyo.sms.generic import HttpGateway
from jasiyo.sms.models import Delivery, OutgoingSms


class Aggregator:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.status = 200
        agg = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                agg.seen.append((self.command, self.path, body))
                data = json.dumps({"result": {"id": f"agg-{len(agg.seen)}"}}).encode()
                self.send_response(agg.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def agg() -> Iterator[Aggregator]:
    a = Aggregator()
    yield a
    a.stop()


def test_get_url_template_encodes_every_value(agg: Aggregator) -> None:
    gw = HttpGateway(
        {
            "url_template": agg.url + "/send?u={username}&k={api_key}&to={to}&m={text}&f={sender_id}",
            "username": "isp",
            "api_key": "s&cret",
            "message_id_field": "result.id",
        }
    )
    with gw:
        r = gw.send(OutgoingSms("+254712345678", "Lipa 1,500 & asante?", "ISP"))
    assert r.accepted and r.message_id == "agg-1"
    method, path, _ = agg.seen[0]
    q = parse_qs(urlsplit(path).query)
    assert method == "GET"
    assert q == {
        "u": ["isp"],
        "k": ["s&cret"],
        "to": ["+254712345678"],
        "m": ["Lipa 1,500 & asante?"],
        "f": ["ISP"],
    }


def test_post_json_body_template_escapes_text(agg: Aggregator) -> None:
    gw = HttpGateway(
        {
            "url_template": agg.url + "/api",
            "method": "POST",
            "body_template": '{"to": "{to_digits}", "text": "{text}"}',
        }
    )
    with gw:
        gw.send(OutgoingSms("+254712345678", 'He said "pay"\nnow'))
    _, _, body = agg.seen[0]
    assert json.loads(body) == {"to": "254712345678", "text": 'He said "pay"\nnow'}


def test_a_4xx_is_a_rejection(agg: Aggregator) -> None:
    agg.status = 400
    with HttpGateway({"url_template": agg.url + "/s?to={to}"}) as gw, pytest.raises(GatewayRejected):
        gw.send(OutgoingSms("+254712345678", "x"))


def test_callbacks_in_form_or_json() -> None:
    gw = HttpGateway({"url_template": "http://127.0.0.1/x"})
    r = gw.parse_callback("dlr", {}, b'{"id": "agg-1", "status": "DELIVRD"}')
    assert r.delivery is Delivery.DELIVERED  # type: ignore[union-attr]
    r = gw.parse_callback("dlr", {}, b"id=agg-2&status=UNDELIV")
    assert r.delivery is Delivery.FAILED  # type: ignore[union-attr]
    msg = gw.parse_callback("incoming", {}, b"from=%2B254712345678&text=STOP")
    assert msg.text == "STOP"  # type: ignore[union-attr]
    with pytest.raises(CallbackError):
        gw.parse_callback("dlr", {}, b"{not json")


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ('url_template = "https://a.example/s?to={phone}"', "unknown placeholder {phone}"),
        ('url_template = "ftp://a.example/s?to={to}"', "must be https://"),
        ('url_template = "https://a.example/s?to={to"', "not a valid template"),
        ("", "needs url_template"),
    ],
)
def test_bad_http_gateway_config_is_refused(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("{", r"\{").replace("}", r"\}")):
        parse(f'[sms]\nprovider = "http"\n{extra}\n', tmp_path)
