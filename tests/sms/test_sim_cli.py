"""`jasiyo dev sms-sim`: a real process a test or curl can drive."""

from __future__ import annotations

import httpx
import pytest

from jasiyo.sms.africastalking import AfricasTalkingGateway
from jasiyo.sms.models import Delivery, OutgoingSms
from tests.payments.receiver import Receiver
from tests.payments.test_sim_cli import run_sim, stop


@pytest.mark.slow
def test_sms_sim_command(receiver: Receiver) -> None:
    proc, url = run_sim(
        "sms-sim",
        "--username",
        "isp",
        "--api-key",
        "k1",
        "--dlr-url",
        receiver.url + "/dlr",
        "--incoming-url",
        receiver.url + "/in",
        "--callback-delay",
        "0",
    )
    try:
        with AfricasTalkingGateway({"base_url": url, "username": "isp", "api_key": "k1"}) as gw:
            sent = gw.send(OutgoingSms("+254712345678", "Habari"))
            [dlr] = receiver.wait("/dlr")
            report = gw.parse_callback("dlr", dlr.headers, dlr.body)
            assert report.message_id == sent.message_id  # type: ignore[union-attr]
            assert report.delivery is Delivery.DELIVERED  # type: ignore[union-attr]
        r = httpx.post(url + "/sim/incoming", json={"from": "+254712345678", "text": "STOP"})
        assert r.json() == {"delivered_status": 200}
        assert b"text=STOP" in receiver.wait("/in")[0].body
        assert [m["text"] for m in httpx.get(url + "/sim/messages").json()] == ["Habari"]
        bad = httpx.post(url + "/sim/config", json={"nonsense": 1})
        assert bad.status_code == 400
    finally:
        stop(proc)
