"""Africa's Talking through the simulator: real form posts, real answers, real callbacks."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import pytest

from jasiyo.sms.africastalking import AfricasTalkingGateway, parse_cost
from jasiyo.sms.errors import CallbackError, GatewayAuthError, GatewayUnavailable
from jasiyo.sms.models import Delivery, DeliveryReport, IncomingSms, OutgoingSms
from jasiyo.sms.sim import AfricasTalkingSim
from tests.payments.receiver import Receiver

PHONE = "+254712345678"


def test_a_send_is_the_form_africas_talking_reads(
    at: AfricasTalkingGateway, at_sim: AfricasTalkingSim
) -> None:
    result = at.send(OutgoingSms(PHONE, "Habari, lipa sasa", sender_id="JASIYO"))
    assert result.accepted and result.status_code == "101" and result.status == "Success"
    assert result.message_id.startswith("ATXid_")
    assert (result.cost_minor, result.currency, result.parts) == (80, "KES", 1)
    (req,) = at_sim.requests_to("/version1/messaging")
    assert req.headers["apikey"] == at_sim.api_key
    assert req.headers["accept"] == "application/json"
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(req.body.decode())
    assert form == {
        "username": ["sandbox"],
        "to": [PHONE],
        "message": ["Habari, lipa sasa"],
        "from": ["JASIYO"],
    }


def test_a_long_message_is_billed_per_part(at: AfricasTalkingGateway) -> None:
    result = at.send(OutgoingSms(PHONE, "x" * 200))
    assert (result.parts, result.cost_minor) == (2, 160)


def test_per_recipient_refusals_are_final_or_retryable(
    at: AfricasTalkingGateway, at_sim: AfricasTalkingSim
) -> None:
    bad = at.send(OutgoingSms("0712", "hi"))
    assert not bad.accepted and bad.status_code == "403" and not bad.retryable
    assert bad.message_id == "" and bad.cost_minor == 0
    at_sim.blacklist.add(PHONE)
    listed = at.send(OutgoingSms(PHONE, "hi"))
    assert (listed.accepted, listed.status, listed.retryable) == (False, "UserInBlacklist", False)
    at_sim.blacklist.clear()
    at_sim.balance_minor = 50
    broke = at.send(OutgoingSms(PHONE, "hi"))
    assert (broke.accepted, broke.status_code, broke.retryable) == (False, "405", True)


def test_wrong_api_key_is_an_auth_error(at_sim: AfricasTalkingSim) -> None:
    gw = AfricasTalkingGateway({"base_url": at_sim.url, "username": "sandbox", "api_key": "wrong"})
    with gw, pytest.raises(GatewayAuthError, match="401"):
        gw.send(OutgoingSms(PHONE, "hi"))
    assert at_sim.accepted() == []


def test_outages_are_unavailable_and_say_whether_the_request_left(
    at: AfricasTalkingGateway, at_sim: AfricasTalkingSim
) -> None:
    at_sim.faults.fail_next(1, status=500)
    with pytest.raises(GatewayUnavailable) as exc:
        at.send(OutgoingSms(PHONE, "hi"))
    assert exc.value.sent
    at_sim.faults.throttle_next(1)
    with pytest.raises(GatewayUnavailable, match="429"):
        at.send(OutgoingSms(PHONE, "hi"))
    at_sim.rate_per_minute = 1
    at.send(OutgoingSms(PHONE, "one"))
    with pytest.raises(GatewayUnavailable, match="429"):
        at.send(OutgoingSms(PHONE, "two"))
    url = at_sim.url
    at_sim.stop()
    gw = AfricasTalkingGateway({"base_url": url, "username": "sandbox", "api_key": "k"}, timeout=2)
    with gw, pytest.raises(GatewayUnavailable) as down:
        gw.send(OutgoingSms(PHONE, "hi"))
    assert not down.value.sent  # connection refused: certainly not sent


def test_delivery_reports_reach_the_callback_url_and_parse(
    at: AfricasTalkingGateway, at_sim: AfricasTalkingSim, receiver: Receiver
) -> None:
    ok = at.send(OutgoingSms(PHONE, "hi"))
    at_sim.script("+254712000001", "absent")
    gone = at.send(OutgoingSms("+254712000001", "hi"))
    got = receiver.wait("/dlr", 2)
    reports = [at.parse_callback("dlr", r.headers, r.body) for r in got]
    by_id = {r.message_id: r for r in reports if isinstance(r, DeliveryReport)}
    assert by_id[ok.message_id].delivery is Delivery.DELIVERED
    assert by_id[gone.message_id].delivery is Delivery.FAILED
    assert by_id[gone.message_id].reason == "AbsentSubscriber"
    assert got[0].headers["content-type"] == "application/x-www-form-urlencoded"


def test_incoming_messages_parse(
    at: AfricasTalkingGateway, at_sim: AfricasTalkingSim, receiver: Receiver
) -> None:
    at_sim.incoming(PHONE, "ACHA")
    (r,) = receiver.wait("/in", 1)
    msg = at.parse_callback("incoming", r.headers, r.body)
    assert isinstance(msg, IncomingSms)
    assert (msg.phone, msg.text, msg.to) == (PHONE, "ACHA", "22384")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"id=ATXid_1",
        b"status=Success",
        b"id=x&status=Nonsense",
        b"\xff\xfe",
        b"a=" + b"x" * 20000,
    ],
)
def test_hostile_delivery_reports_are_refused(at: AfricasTalkingGateway, body: bytes) -> None:
    with pytest.raises(CallbackError):
        at.parse_callback("dlr", {}, body)


def test_hostile_incoming_bodies_are_refused(at: AfricasTalkingGateway) -> None:
    with pytest.raises(CallbackError):
        at.parse_callback("incoming", {}, urlencode({"text": "STOP"}).encode())
    with pytest.raises(CallbackError):
        at.parse_callback("other", {}, b"from=1&text=2")


@pytest.mark.parametrize(
    ("text", "minor", "currency"),
    [
        ("KES 0.8000", 80, "KES"),
        ("NGN 2.2000", 220, "NGN"),
        ("KES 0.8050", 81, "KES"),
        ("0", 0, ""),
        ("KES abc", None, ""),
        ("KES -1", None, ""),
        (None, None, ""),
        ("KES NaN", None, ""),
        ("KES 1e400", None, ""),
    ],
)
def test_costs(text: object, minor: int | None, currency: str) -> None:
    assert parse_cost(text) == (minor, currency)
