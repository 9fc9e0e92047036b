"""Paystack through the real PaystackProvider, against PaystackSim or the Paystack test mode.

Test mode: set JASIYO_TEST_PAYSTACK_SECRET_KEY (an sk_test_ key); tests needing a simulated
customer or faults then skip.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterator

import httpx
import pytest

from jasiyo.payments.errors import CallbackError, ProviderRejected, SignatureError
from jasiyo.payments.models import Initiated, Outcome, PaymentRequest, StatusAnswer
from jasiyo.payments.paystack import PaystackProvider, signature
from jasiyo.payments.paystack.sim import PaystackSim
from tests.payments.conformance import Harness, ProviderConformance, poll
from tests.payments.receiver import Receiver

ENV = "JASIYO_TEST_PAYSTACK_SECRET_KEY"


def checkout(started: Initiated, action: str = "success") -> httpx.Response:
    """What the customer's browser does on the checkout page."""
    page = httpx.get(started.checkout_url)
    assert page.status_code == 200 and "<form" in page.text
    return httpx.post(started.checkout_url, data={"action": action})


class TestPaystackConformance(ProviderConformance):
    provider_class = PaystackProvider
    callback_kind = "webhook"
    declined = Outcome.FAILED
    declined_has_callback = False  # Paystack sends webhooks for successful charges only
    request_path = "/transaction/initialize"

    @pytest.fixture
    def harness(self, receiver: Receiver) -> Iterator[Harness]:
        key = os.environ.get(ENV, "")
        if key:
            settings: dict[str, object] = {"secret_key": key}
            h = Harness(PaystackProvider(settings, timeout=30.0), receiver, None, settings, "/webhook")
            yield h
            h.close()
            return
        s = PaystackSim(webhook_url=receiver.url + "/webhook", callback_delay=0.2).start()
        settings = {"base_url": s.url, "secret_key": s.secret_key}
        h = Harness(PaystackProvider(settings, timeout=5.0), receiver, s, settings, "/webhook")
        try:
            yield h
        finally:
            h.close()
            s.stop()

    def payment_request(self, h: Harness, amount_minor: int = 150000) -> PaymentRequest:
        return PaymentRequest(
            account="alice",
            amount_minor=amount_minor,
            currency="NGN",
            email="alice@example.com",
            description="Internet",
            callback_url=h.receiver.url + "/paid",
            reference="jt-" + secrets.token_hex(6),
        )

    def finish(self, h: Harness, started: Initiated, pay: bool) -> None:
        resp = checkout(started, "success" if pay else "failed")
        assert resp.status_code == 303
        assert resp.headers["location"].endswith(f"reference={started.request_id}")

    def sign(self, h: Harness, body: bytes) -> dict[str, str]:
        return {"x-paystack-signature": signature(str(h.settings["secret_key"]), body)}

    def wrong_credentials(self) -> dict[str, object]:
        return {"secret_key": "sk_test_" + "0" * 40}


@pytest.fixture
def sim(receiver: Receiver) -> Iterator[PaystackSim]:
    s = PaystackSim(webhook_url=receiver.url + "/webhook", callback_delay=0.1).start()
    yield s
    s.stop()


@pytest.fixture
def make() -> Iterator[Callable[..., PaystackProvider]]:
    made: list[PaystackProvider] = []

    def build(settings: dict[str, object]) -> PaystackProvider:
        made.append(PaystackProvider(settings, timeout=5.0))
        return made[-1]

    yield build
    for p in made:
        p.close()


@pytest.fixture
def provider(sim: PaystackSim, make: Callable[..., PaystackProvider]) -> PaystackProvider:
    return make({"base_url": sim.url, "secret_key": sim.secret_key})


def request(receiver: Receiver, **change: object) -> PaymentRequest:
    fields: dict[str, object] = {
        "account": "alice",
        "amount_minor": 250000,
        "currency": "KES",
        "email": "alice@example.com",
        "callback_url": receiver.url + "/paid",
        "metadata": {"plan": "home-10"},
    }
    fields.update(change)
    return PaymentRequest(**fields)  # type: ignore[arg-type]


def test_initialize_on_the_wire(sim: PaystackSim, provider: PaystackProvider, receiver: Receiver) -> None:
    started = provider.request_payment(request(receiver, reference="inv-2026-0001"))
    assert started.request_id == "inv-2026-0001"
    assert started.checkout_url.startswith(sim.url + "/checkout/")
    [req] = sim.requests_to("/transaction/initialize")
    assert req.headers["authorization"] == f"Bearer {sim.secret_key}"
    body = req.json()
    assert body == {
        "email": "alice@example.com",
        "amount": "250000",
        "currency": "KES",
        "reference": "inv-2026-0001",
        "callback_url": receiver.url + "/paid",
        "metadata": {"plan": "home-10", "account": "alice"},
    }


def test_webhook_signed_and_parsed(sim: PaystackSim, provider: PaystackProvider, receiver: Receiver) -> None:
    started = provider.request_payment(request(receiver))
    checkout(started)
    [hook] = receiver.wait("/webhook")
    expected = hmac.new(sim.secret_key.encode(), hook.body, hashlib.sha512).hexdigest()
    assert hook.headers["x-paystack-signature"] == expected
    doc = hook.json()
    assert doc["event"] == "charge.success" and doc["data"]["status"] == "success"
    answer = provider.parse_callback("webhook", hook.headers, hook.body)
    assert isinstance(answer, StatusAnswer) and answer.outcome is Outcome.PAID
    conf = answer.confirmation
    assert conf is not None
    assert (conf.reference, conf.amount_minor, conf.currency, conf.account, conf.kind) == (
        started.request_id,
        250000,
        "KES",
        "alice",
        "charge",
    )
    assert conf.paid_at is not None
    verified = provider.query(started.request_id)
    assert verified.outcome is Outcome.PAID and verified.confirmation == conf


def test_forged_signature_is_refused_before_parsing(
    sim: PaystackSim, provider: PaystackProvider, receiver: Receiver
) -> None:
    sim.faults.bad_signature = True
    started = provider.request_payment(request(receiver))
    sim.paystack_complete(started.request_id)
    [hook] = receiver.wait("/webhook")
    with pytest.raises(SignatureError):
        provider.parse_callback("webhook", hook.headers, hook.body)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-paystack-signature": ""},
        {"x-paystack-signature": "00" * 64},
        {"x-paystack-signature": "ü" * 10},
    ],
)
def test_missing_or_wrong_signature(provider: PaystackProvider, headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        provider.parse_callback("webhook", headers, b'{"event":"charge.success"}')


def test_a_tampered_body_fails_the_signature(
    sim: PaystackSim, provider: PaystackProvider, receiver: Receiver
) -> None:
    started = provider.request_payment(request(receiver))
    sim.paystack_complete(started.request_id)
    [hook] = receiver.wait("/webhook")
    tampered = hook.body.replace(b'"amount":250000', b'"amount":2500000')
    assert tampered != hook.body
    with pytest.raises(SignatureError):
        provider.parse_callback("webhook", hook.headers, tampered)
    # Header names may arrive in any case; the genuine body still passes.
    upper = {"X-Paystack-Signature": hook.headers["x-paystack-signature"]}
    assert isinstance(provider.parse_callback("webhook", upper, hook.body), StatusAnswer)


def signed(provider: PaystackProvider, doc: object) -> tuple[dict[str, str], bytes]:
    body = json.dumps(doc).encode()
    return {"x-paystack-signature": signature(provider._secret_key, body)}, body


@pytest.mark.parametrize(
    "data",
    [
        {"status": "failed", "reference": "r1", "amount": 100, "currency": "NGN"},
        {"status": "success", "reference": "r1", "amount": "100", "currency": "NGN"},
        {"status": "success", "reference": "r1", "amount": 100.5, "currency": "NGN"},
        {"status": "success", "reference": "r1", "amount": -100, "currency": "NGN"},
        {"status": "success", "reference": "r1", "amount": True, "currency": "NGN"},
        {"status": "success", "reference": "r1", "amount": 100, "currency": "naira"},
        {"status": "success", "reference": "r 1;drop", "amount": 100, "currency": "NGN"},
        {"status": "success", "amount": 100, "currency": "NGN"},
        "a string",
    ],
)
def test_hostile_charge_success_bodies(provider: PaystackProvider, data: object) -> None:
    headers, body = signed(provider, {"event": "charge.success", "data": data})
    with pytest.raises(CallbackError):
        provider.parse_callback("webhook", headers, body)


def test_other_events(provider: PaystackProvider) -> None:
    headers, body = signed(provider, {"event": "transfer.success", "data": {"reference": "x"}})
    with pytest.raises(CallbackError, match="not about a charge"):
        provider.parse_callback("webhook", headers, body)
    headers, body = signed(
        provider, {"event": "charge.failed", "data": {"reference": "r1", "status": "failed"}}
    )
    answer = provider.parse_callback("webhook", headers, body)
    assert isinstance(answer, StatusAnswer)
    assert (answer.outcome, answer.confirmation) == (Outcome.FAILED, None)


def test_metadata_as_a_json_string_still_gives_the_account(provider: PaystackProvider) -> None:
    data = {
        "status": "success",
        "reference": "r1",
        "amount": 100,
        "currency": "GHS",
        "metadata": json.dumps({"account": "bob"}),
        "paid_at": "2026-05-24T10:23:11.000Z",
    }
    headers, body = signed(provider, {"event": "charge.success", "data": data})
    answer = provider.parse_callback("webhook", headers, body)
    assert isinstance(answer, StatusAnswer) and answer.confirmation is not None
    assert answer.confirmation.account == "bob"
    assert answer.confirmation.paid_at == 1779618191.0


def test_declined_on_the_checkout_page(
    sim: PaystackSim, provider: PaystackProvider, receiver: Receiver
) -> None:
    started = provider.request_payment(request(receiver))
    assert provider.query(started.request_id).code == "abandoned"
    checkout(started, "failed")
    assert provider.query(started.request_id).outcome is Outcome.FAILED
    insufficient = provider.request_payment(request(receiver))
    sim.paystack_complete(insufficient.request_id, "failed", gateway_response="Insufficient Funds")
    assert provider.query(insufficient.request_id).outcome is Outcome.INSUFFICIENT_FUNDS


def test_a_checkout_completes_once(sim: PaystackSim, provider: PaystackProvider, receiver: Receiver) -> None:
    started = provider.request_payment(request(receiver))
    checkout(started)
    checkout(started, "failed")  # a second click changes nothing
    assert poll(lambda: provider.query(started.request_id), lambda a: a.outcome.final).outcome is Outcome.PAID
    assert len(receiver.wait("/webhook")) == 1


def test_duplicate_reference_is_refused(provider: PaystackProvider, receiver: Receiver) -> None:
    provider.request_payment(request(receiver, reference="inv-7"))
    with pytest.raises(ProviderRejected, match="Duplicate"):
        provider.request_payment(request(receiver, reference="INV-7"))


@pytest.mark.parametrize(
    ("change", "words"),
    [({"email": ""}, "email"), ({"amount_minor": 0}, "positive"), ({"reference": "has space"}, "reference")],
)
def test_refused_before_anything_is_sent(
    sim: PaystackSim, provider: PaystackProvider, receiver: Receiver, change: dict[str, object], words: str
) -> None:
    with pytest.raises(ProviderRejected, match=words):
        provider.request_payment(request(receiver, **change))
    assert sim.requests_to("/transaction/initialize") == []


def test_control_over_http(sim: PaystackSim, provider: PaystackProvider, receiver: Receiver) -> None:
    started = provider.request_payment(request(receiver))
    resp = httpx.post(sim.url + "/sim/complete", json={"reference": started.request_id})
    assert resp.status_code == 200 and resp.json()["status"] == "success"
    assert len(receiver.wait("/webhook")) == 1
    assert httpx.post(sim.url + "/sim/faults", json={"bad_signature": True}).json()["bad_signature"] is True
    assert httpx.post(sim.url + "/sim/faults", json={"nonsense": 1}).status_code == 400
    assert httpx.post(sim.url + "/sim/complete", json={}).status_code == 400
