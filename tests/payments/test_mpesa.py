"""M-Pesa (Daraja) through the real DarajaProvider, against DarajaSim or the Daraja sandbox.

Sandbox: set JASIYO_TEST_DARAJA_CONSUMER_KEY, _SECRET, _SHORTCODE, _PASSKEY and _PHONE (a
phone that gets the prompt); tests needing a simulated customer or faults then skip.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from datetime import datetime

import httpx
import pytest

from jasiyo.payments.errors import CallbackError, ProviderRejected
from jasiyo.payments.models import Confirmation, Initiated, Outcome, PaymentRequest, StatusAnswer
from jasiyo.payments.mpesa import DarajaProvider, c2b_accept, c2b_reject, wire
from jasiyo.payments.mpesa.provider import SANDBOX_URL
from jasiyo.payments.mpesa.sim import OUTCOMES, DarajaSim
from tests.payments.conformance import Harness, ProviderConformance, poll
from tests.payments.receiver import Receiver

SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
PHONE = "254708374149"
ENV = "JASIYO_TEST_DARAJA_"


def _sandbox() -> dict[str, str] | None:
    keys = ("CONSUMER_KEY", "CONSUMER_SECRET", "SHORTCODE", "PASSKEY", "PHONE")
    values = {k: os.environ.get(ENV + k, "") for k in keys}
    return values if all(values.values()) else None


@pytest.fixture
def sim() -> Iterator[DarajaSim]:
    s = DarajaSim(callback_delay=0.2).start()
    yield s
    s.stop()


def settings_for(sim: DarajaSim, **more: object) -> dict[str, object]:
    return {
        "base_url": sim.url,
        "consumer_key": sim.consumer_key,
        "consumer_secret": sim.consumer_secret,
        "shortcode": sim.shortcode,
        "passkey": sim.passkey,
        **more,
    }


@pytest.fixture
def make() -> Iterator[Callable[..., DarajaProvider]]:
    """DarajaProvider(settings), closed after the test."""
    made: list[DarajaProvider] = []

    def build(settings: dict[str, object]) -> DarajaProvider:
        made.append(DarajaProvider(settings, timeout=5.0))
        return made[-1]

    yield build
    for p in made:
        p.close()


@pytest.fixture
def provider(sim: DarajaSim, make: Callable[..., DarajaProvider]) -> DarajaProvider:
    return make(settings_for(sim))


def stk(
    receiver: Receiver, amount_minor: int = 150000, phone: str = PHONE, account: str = "alice"
) -> PaymentRequest:
    return PaymentRequest(
        account=account,
        amount_minor=amount_minor,
        currency="KES",
        phone=phone,
        description="Internet",
        callback_url=receiver.url + "/stk",
    )


class TestDarajaConformance(ProviderConformance):
    provider_class = DarajaProvider
    callback_kind = "stk"
    declined = Outcome.CANCELLED
    request_path = "/mpesa/stkpush/v1/processrequest"

    @pytest.fixture
    def harness(self, receiver: Receiver) -> Iterator[Harness]:
        sandbox = _sandbox()
        if sandbox is not None:
            settings: dict[str, object] = {
                "base_url": SANDBOX_URL,
                "consumer_key": sandbox["CONSUMER_KEY"],
                "consumer_secret": sandbox["CONSUMER_SECRET"],
                "shortcode": sandbox["SHORTCODE"],
                "passkey": sandbox["PASSKEY"],
            }
            h = Harness(DarajaProvider(settings, timeout=30.0), receiver, None, settings, "/stk")
            yield h
            h.close()
            return
        s = DarajaSim(callback_delay=0.2).start()
        settings = settings_for(s)
        h = Harness(DarajaProvider(settings, timeout=5.0), receiver, s, settings, "/stk")
        try:
            yield h
        finally:
            h.close()
            s.stop()

    def payment_request(self, h: Harness, amount_minor: int = 150000) -> PaymentRequest:
        if h.sim is None:
            sandbox = _sandbox() or {}
            return PaymentRequest(
                account="jasiyotest",
                amount_minor=100,
                currency="KES",
                phone=sandbox.get("PHONE", ""),
                description="Test",
                callback_url="https://example.com/jasiyo-test/stk",
            )
        return stk(h.receiver, amount_minor)

    def prepare(self, h: Harness, request: PaymentRequest) -> None:
        assert isinstance(h.sim, DarajaSim)
        h.sim.script(request.phone, "pending")

    def finish(self, h: Harness, started: Initiated, pay: bool) -> None:
        assert isinstance(h.sim, DarajaSim)
        h.sim.resolve(started.request_id, "pay" if pay else "cancel")

    def wrong_credentials(self) -> dict[str, object]:
        return {"consumer_secret": "not-the-secret"}


# -- OAuth -----------------------------------------------------------------------------------


def test_one_token_serves_many_calls_and_providers(
    sim: DarajaSim, receiver: Receiver, make: Callable[..., DarajaProvider]
) -> None:
    first = make(settings_for(sim))
    second = make(settings_for(sim))  # another provider for the same app
    for p in (first, second, first):
        p.request_payment(stk(receiver))
    assert sim.tokens_issued == 1
    assert len(sim.requests_to("/oauth/v1/generate")) == 1


def test_concurrent_callers_fetch_one_token(sim: DarajaSim, make: Callable[..., DarajaProvider]) -> None:
    import threading

    providers = [make(settings_for(sim)) for _ in range(6)]
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda p=p: tokens.append(p.token())) for p in providers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(tokens) == 6 and len(set(tokens)) == 1
    assert sim.tokens_issued == 1


def test_token_refused_is_refetched_once_and_the_push_goes_through(
    sim: DarajaSim, provider: DarajaProvider, receiver: Receiver
) -> None:
    provider.check()
    sim.issue_token()  # someone else fetched a token for this app: ours is now invalid
    started = provider.request_payment(stk(receiver))
    assert started.request_id in sim.pushes
    pushes = sim.requests_to("/mpesa/stkpush/v1/processrequest")
    assert len(pushes) == 2  # refused with 404.001.03, then once more with a new token
    assert len(sim.pushes) == 1  # and only one prompt reached the phone
    assert sim.tokens_issued == 3


def test_token_refreshed_before_it_expires(receiver: Receiver, make: Callable[..., DarajaProvider]) -> None:
    sim = DarajaSim(token_lifetime=120).start()  # within the refresh margin at once
    try:
        p = make(settings_for(sim))
        p.request_payment(stk(receiver))
        p.request_payment(stk(receiver))
        assert sim.tokens_issued == 2
        assert len(sim.requests_to("/mpesa/stkpush/v1/processrequest")) == 2  # none refused
    finally:
        sim.stop()


def test_basic_auth_sent_as_daraja_wants(sim: DarajaSim, provider: DarajaProvider) -> None:
    provider.check()
    [req] = sim.requests_to("/oauth/v1/generate")
    expected = base64.b64encode(f"{sim.consumer_key}:{sim.consumer_secret}".encode()).decode()
    assert req.headers["authorization"] == f"Basic {expected}"


# -- STK push bytes --------------------------------------------------------------------------


def test_password_and_timestamp_exact_bytes_for_a_fixed_time(
    receiver: Receiver, make: Callable[..., DarajaProvider]
) -> None:
    # Daraja's own sample: 2021-06-28 09:24:08 in Nairobi is 06:24:08 UTC.
    p = make(
        {
            "base_url": "http://127.0.0.1:9",
            "consumer_key": "k",
            "consumer_secret": "s",
            "shortcode": "174379",
            "passkey": SANDBOX_PASSKEY,
        }
    )
    p.clock = lambda: datetime.fromisoformat("2021-06-28T06:24:08+00:00").timestamp()
    body = p.stk_body(stk(receiver, 100))
    assert body["Timestamp"] == "20210628092408"
    assert body["Password"] == (
        "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJh"
        "ZGExZWQyYzkxOTIwMjEwNjI4MDkyNDA4"
    )
    assert base64.b64decode(body["Password"]) == f"174379{SANDBOX_PASSKEY}20210628092408".encode()
    assert body["Amount"] == 1 and body["PartyB"] == "174379"


def test_the_push_on_the_wire(sim: DarajaSim, provider: DarajaProvider, receiver: Receiver) -> None:
    provider.request_payment(stk(receiver, 150000, account="alice"))
    [req] = sim.requests_to("/mpesa/stkpush/v1/processrequest")
    body = req.json()
    now = datetime.now(wire.NAIROBI).strftime("%Y%m%d%H")
    assert body["Timestamp"][:10] in (now, str(int(now) - 1))  # Nairobi time, not UTC
    assert body["Password"] == wire.password(sim.shortcode, sim.passkey, body["Timestamp"])
    assert body["Amount"] == 1500 and body["PartyA"] == body["PhoneNumber"] == PHONE
    assert body["AccountReference"] == "alice" and body["TransactionDesc"] == "Internet"
    assert req.headers["authorization"].startswith("Bearer ")


def test_buy_goods_sends_the_till_as_party_b(receiver: Receiver, make: Callable[..., DarajaProvider]) -> None:
    sim = DarajaSim(till_number="5566778", callback_delay=0.1).start()
    try:
        p = make(settings_for(sim, transaction_type="CustomerBuyGoodsOnline", till_number="5566778"))
        started = p.request_payment(stk(receiver))
        body = sim.requests_to("/mpesa/stkpush/v1/processrequest")[0].json()
        assert (body["TransactionType"], body["PartyB"]) == ("CustomerBuyGoodsOnline", "5566778")
        got = receiver.wait("/stk")
        answer = p.parse_callback("stk", got[0].headers, got[0].body)
        assert isinstance(answer, StatusAnswer) and answer.outcome is Outcome.PAID
        assert answer.request_id == started.request_id
    finally:
        sim.stop()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"amount_minor": 150050}, "whole shillings"),
        ({"amount_minor": 0}, "whole shillings"),
        ({"phone": "0712345678"}, "2547"),
        ({"account": "a-very-long-account"}, "AccountReference"),
        ({"currency": "NGN"}, "KES"),
    ],
)
def test_refused_before_anything_is_sent(
    sim: DarajaSim, provider: DarajaProvider, receiver: Receiver, change: dict[str, object], words: str
) -> None:
    base = stk(receiver)
    request = PaymentRequest(**{**{f: getattr(base, f) for f in base.__slots__}, **change})
    with pytest.raises(ProviderRejected, match=words):
        provider.request_payment(request)
    assert sim.requests_to("/mpesa/stkpush/v1/processrequest") == []


def test_wrong_passkey_is_refused_by_daraja(
    sim: DarajaSim, receiver: Receiver, make: Callable[..., DarajaProvider]
) -> None:
    from jasiyo.payments.errors import ProviderAuthError

    p = make(settings_for(sim, passkey="wrong"))
    with pytest.raises(ProviderAuthError, match="Wrong credentials"):
        p.request_payment(stk(receiver))


# -- each scripted outcome -------------------------------------------------------------------

EXPECTED = {
    "pay": Outcome.PAID,
    "cancel": Outcome.CANCELLED,
    "insufficient": Outcome.INSUFFICIENT_FUNDS,
    "timeout": Outcome.TIMEOUT,
    "expired": Outcome.TIMEOUT,
    "unreachable": Outcome.UNREACHABLE,
    "wrong_pin": Outcome.WRONG_PIN,
    "duplicate": Outcome.DUPLICATE,
    "failed": Outcome.FAILED,
}


@pytest.mark.parametrize("script", sorted(OUTCOMES))
def test_each_outcome_by_callback_and_by_query(
    sim: DarajaSim, provider: DarajaProvider, receiver: Receiver, script: str
) -> None:
    sim.script(PHONE, script)
    started = provider.request_payment(stk(receiver))
    [got] = receiver.wait("/stk")
    answer = provider.parse_callback("stk", got.headers, got.body)
    assert isinstance(answer, StatusAnswer)
    assert answer.outcome is EXPECTED[script]
    assert answer.code == str(OUTCOMES[script][0])
    assert (answer.confirmation is not None) == (script == "pay")
    queried = poll(lambda: provider.query(started.request_id), lambda a: a.outcome.final)
    assert queried.outcome is EXPECTED[script]


def test_paid_callback_shape(sim: DarajaSim, provider: DarajaProvider, receiver: Receiver) -> None:
    started = provider.request_payment(stk(receiver, 100))
    [got] = receiver.wait("/stk")
    cb = got.json()["Body"]["stkCallback"]
    assert cb["CheckoutRequestID"] == started.request_id
    assert cb["MerchantRequestID"] == started.merchant_request_id
    items = {i["Name"]: i.get("Value") for i in cb["CallbackMetadata"]["Item"]}
    assert items["Amount"] == 1.0 and isinstance(items["PhoneNumber"], int)
    assert (
        isinstance(items["TransactionDate"], int)
        and "Value" not in [i for i in cb["CallbackMetadata"]["Item"] if i["Name"] == "Balance"][0]
    )
    answer = provider.parse_callback("stk", got.headers, got.body)
    assert isinstance(answer, StatusAnswer) and answer.confirmation is not None
    conf = answer.confirmation
    assert conf.amount_minor == 100 and conf.reference == items["MpesaReceiptNumber"]
    assert conf.phone == PHONE and conf.request_id == started.request_id
    assert conf.paid_at == wire.parse_timestamp(items["TransactionDate"])


# -- C2B -------------------------------------------------------------------------------------


def test_c2b_register_then_pay_validation_then_confirmation(
    sim: DarajaSim, provider: DarajaProvider, receiver: Receiver
) -> None:
    assert (
        provider.register_urls(receiver.url + "/c2b/confirmation", receiver.url + "/c2b/validation")
        == "success"
    )
    result = sim.c2b_pay("254712345678", 1500, "alice")
    assert result.accepted and result.result_code == "0"
    [confirmed] = receiver.wait("/c2b/confirmation")
    [validated] = receiver.at("/c2b/validation")
    order = [r.path for r in receiver.received]
    assert order.index("/c2b/validation") < order.index("/c2b/confirmation")
    for r in (validated, confirmed):
        conf = provider.parse_callback(r.path.strip("/"), r.headers, r.body)
        assert isinstance(conf, Confirmation)
        assert (conf.kind, conf.amount_minor, conf.account, conf.reference) == (
            "c2b",
            150000,
            "alice",
            result.trans_id,
        )
        assert conf.phone == "25471****678" and conf.shortcode == sim.shortcode


def test_c2b_refused_at_validation_is_never_confirmed(
    sim: DarajaSim, provider: DarajaProvider, receiver: Receiver
) -> None:
    provider.register_urls(receiver.url + "/c2b/confirmation", receiver.url + "/c2b/validation")
    receiver.answers["/c2b/validation"] = (200, c2b_reject("account"))
    result = sim.c2b_pay("254712345678", 1500, "nobody")
    assert not result.accepted and result.result_code == "C2B00012"
    receiver.answers["/c2b/validation"] = (200, c2b_accept())
    ok = sim.c2b_pay("254712345678", 200, "alice")  # the next one goes through
    [confirmed] = receiver.wait("/c2b/confirmation")
    assert confirmed.json()["TransID"] == ok.trans_id


def test_c2b_register_url_words_daraja_refuses(provider: DarajaProvider, receiver: Receiver) -> None:
    with pytest.raises(ProviderRejected, match="ConfirmationURL"):
        provider.register_urls(receiver.url + "/mpesa/confirm", receiver.url + "/validate")


def test_c2b_over_http_control(sim: DarajaSim, provider: DarajaProvider, receiver: Receiver) -> None:
    provider.register_urls(receiver.url + "/c2b/confirmation", receiver.url + "/c2b/validation")
    answer = httpx.post(
        sim.url + "/sim/c2b", json={"msisdn": "254712345678", "amount": 50, "bill_ref": "bob"}
    ).json()
    assert answer["accepted"] is True
    [confirmed] = receiver.wait("/c2b/confirmation")
    assert confirmed.json()["TransAmount"] == "50.00"
    assert (
        httpx.post(sim.url + "/sim/script", json={"phone": PHONE, "outcome": "wrong_pin"}).status_code == 200
    )
    assert sim.scripts[PHONE] == "wrong_pin"
    assert len(httpx.get(sim.url + "/sim/requests").json()) == len(sim.requests)


def test_c2b_answers() -> None:
    assert c2b_accept() == {"ResultCode": "0", "ResultDesc": "Accepted"}
    assert [
        c2b_reject(r)["ResultCode"] for r in ("msisdn", "account", "amount", "kyc", "shortcode", "other")
    ] == [f"C2B0001{i}" for i in range(1, 7)]


# -- hostile STK / C2B bodies ----------------------------------------------------------------


def _stk_doc(items: list[dict[str, object]] | None = None, code: object = 0) -> bytes:
    cb: dict[str, object] = {
        "MerchantRequestID": "1-2-1",
        "CheckoutRequestID": "ws_CO_1",
        "ResultCode": code,
        "ResultDesc": "ok",
    }
    if items is not None:
        cb["CallbackMetadata"] = {"Item": items}
    return wire.dumps({"Body": {"stkCallback": cb}})


GOOD_ITEMS: list[dict[str, object]] = [
    {"Name": "Amount", "Value": 1.0},
    {"Name": "MpesaReceiptNumber", "Value": "NLJ7RT61SV"},
    {"Name": "Balance"},
    {"Name": "TransactionDate", "Value": 20191219102115},
    {"Name": "PhoneNumber", "Value": 254708374149},
]


def test_items_are_read_by_name_in_any_order() -> None:
    answer = wire.parse_stk_callback(_stk_doc(list(reversed(GOOD_ITEMS))))
    assert answer.confirmation is not None
    assert answer.confirmation.amount_minor == 100
    assert answer.confirmation.reference == "NLJ7RT61SV"
    assert answer.confirmation.paid_at == datetime.fromisoformat("2019-12-19T07:21:15+00:00").timestamp()


def _without(name: str) -> list[dict[str, object]]:
    return [i for i in GOOD_ITEMS if i["Name"] != name]


def _with(name: str, value: object) -> list[dict[str, object]]:
    return [*_without(name), {"Name": name, "Value": value}]


@pytest.mark.parametrize(
    "body",
    [
        _stk_doc(None),  # paid without metadata
        _stk_doc(_without("Amount")),
        _stk_doc(_without("MpesaReceiptNumber")),
        _stk_doc(_with("Amount", "lots")),
        _stk_doc(_with("Amount", -5)),
        _stk_doc(_with("Amount", True)),
        _stk_doc(_with("Amount", 1.005)),
        _stk_doc(_with("TransactionDate", 2019)),
        _stk_doc(_with("TransactionDate", 20191319102115)),  # month 13
        _stk_doc(_with("MpesaReceiptNumber", 12345)),
        _stk_doc([*GOOD_ITEMS, {"Name": "Amount", "Value": 9999.0}]),  # two amounts
        _stk_doc(GOOD_ITEMS, code=None),
        _stk_doc(GOOD_ITEMS, code=[0]),
        b'{"Body":{"stkCallback":"paid"}}',
        b'{"Body":{"stkCallback":{"ResultCode":0}}}',
        b'{"Body":{"stkCallback":{"CheckoutRequestID":"x","ResultCode":0,'
        b'"CallbackMetadata":{"Item":[{"Name":"Amount","Value":NaN}]}}}}',
    ],
)
def test_hostile_stk_callbacks(body: bytes) -> None:
    with pytest.raises(CallbackError):
        wire.parse_stk_callback(body)


def _c2b(**change: object) -> bytes:
    doc: dict[str, object] = {
        "TransactionType": "Pay Bill",
        "TransID": "RKTQDM7W6S",
        "TransTime": "20191122063845",
        "TransAmount": "1500.00",
        "BusinessShortCode": "600638",
        "BillRefNumber": "alice",
        "MSISDN": "25470****149",
        "FirstName": "John",
    }
    doc.update(change)
    return wire.dumps({k: v for k, v in doc.items() if v is not ...})


@pytest.mark.parametrize(
    "body",
    [
        _c2b(TransAmount="NaN"),
        _c2b(TransAmount="-10.00"),
        _c2b(TransAmount="1e3"),
        _c2b(TransAmount="10.001"),
        _c2b(TransAmount=" 10"),
        _c2b(TransAmount="0.00"),
        _c2b(TransAmount=...),
        _c2b(TransID=...),
        _c2b(TransID=""),
        _c2b(TransAmount=None),
        _c2b(BillRefNumber=["alice"]),
        _c2b(TransTime="yesterday"),
        _c2b(MSISDN={"a": 1}),
        b"[1,2,3]",
    ],
)
def test_hostile_c2b_bodies(body: bytes) -> None:
    with pytest.raises(CallbackError):
        wire.parse_c2b(body)
