"""The conformance suite every payment provider must pass (like tests/drivers/conformance.py).

A provider joins with a subclass::

    class TestMyProvider(ProviderConformance):
        provider_class = MyProvider
        callback_kind = "webhook"
        declined = Outcome.FAILED

        @pytest.fixture
        def harness(self, receiver) -> Iterator[Harness]: ...   # simulator or sandbox
        def payment_request(self, h, amount_minor): ...
        def finish(self, h, started, pay): ...                  # the customer answers

Everything goes through the real provider client over real HTTP: against the package's
simulator by default, or against the provider's sandbox when its environment variables
are set (then ``h.sim`` is None and the tests needing a simulator, or a customer, skip).
"""

from __future__ import annotations

import inspect
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from jasiyo.payments import get_provider
from jasiyo.payments.base import PaymentProvider
from jasiyo.payments.errors import (
    CallbackError,
    ProviderAuthError,
    ProviderUnavailable,
)
from jasiyo.payments.models import Confirmation, Initiated, Outcome, PaymentRequest, StatusAnswer
from jasiyo.payments.simbase import SimServer
from tests.payments.receiver import Receiver


@dataclass
class Harness:
    provider: PaymentProvider
    receiver: Receiver
    sim: SimServer | None  # None: a real sandbox
    settings: Mapping[str, object]
    callback_path: str  # where on the receiver the provider's callbacks land
    opened: list[PaymentProvider] = field(default_factory=list)

    def close(self) -> None:
        for p in [self.provider, *self.opened]:
            p.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(fn, until, timeout: float = 10.0):
    """Call ``fn`` until ``until(result)`` or the deadline; the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if until(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


class ProviderConformance:
    provider_class: type[PaymentProvider]
    callback_kind: str = ""
    declined: Outcome = Outcome.FAILED  # what a customer saying no looks like
    declined_has_callback: bool = True
    request_path: str = ""  # the simulator path of the payment request
    query_path: str = ""  # the simulator path of a status query prefix

    # -- what a provider supplies ------------------------------------------------------------

    @pytest.fixture
    def harness(self, receiver: Receiver) -> Iterator[Harness]:  # pragma: no cover
        raise NotImplementedError

    def payment_request(self, h: Harness, amount_minor: int = 150000) -> PaymentRequest:
        raise NotImplementedError  # pragma: no cover

    def prepare(self, h: Harness, request: PaymentRequest) -> None:
        """Before the request: make the simulated customer wait (not answer yet)."""

    def finish(self, h: Harness, started: Initiated, pay: bool) -> None:
        raise NotImplementedError  # pragma: no cover

    def sign(self, h: Harness, body: bytes) -> dict[str, str]:
        """Headers that make ``body`` a genuine callback (a signature, where there is one)."""
        return {}

    def hostile_bodies(self) -> list[bytes]:
        return [
            b"",
            b"not json",
            b"[]",
            b"null",
            b"{}",
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
            b'{"x":"' + b"a" * (2 * 1024 * 1024) + b'"}',
            b"\xff\xfe\x00garbage",
        ]

    def make_provider(self, h: Harness, timeout: float = 5.0, **changes: object) -> PaymentProvider:
        p = self.provider_class({**h.settings, **changes}, timeout=timeout, retries=2)
        h.opened.append(p)
        return p

    @staticmethod
    def need_sim(h: Harness) -> SimServer:
        if h.sim is None:
            pytest.skip("needs the simulator (a customer would have to answer on a sandbox)")
        return h.sim

    def start(self, h: Harness, amount_minor: int = 150000) -> tuple[PaymentRequest, Initiated]:
        request = self.payment_request(h, amount_minor)
        if h.sim is not None:
            self.prepare(h, request)
        return request, h.provider.request_payment(request)

    def callbacks(self, h: Harness, n: int = 1, timeout: float = 10.0) -> list[StatusAnswer]:
        got = h.receiver.wait(h.callback_path, n, timeout)
        answers = []
        for r in got:
            parsed = h.provider.parse_callback(self.callback_kind, r.headers, r.body)
            assert isinstance(parsed, StatusAnswer)
            answers.append(parsed)
        return answers

    # -- the contract ----------------------------------------------------------------------

    def test_signatures_match_the_base_class(self) -> None:
        for name in ("__init__", "check", "request_payment", "query", "parse_callback"):
            base = inspect.signature(getattr(PaymentProvider, name))
            mine = inspect.signature(getattr(self.provider_class, name))
            assert list(mine.parameters) == list(base.parameters), name

    def test_found_by_name(self) -> None:
        assert get_provider(self.provider_class.name) is self.provider_class

    def test_check_accepts_the_credentials(self, harness: Harness) -> None:
        assert self.provider_class.name in harness.provider.check()

    def test_wrong_credentials_are_an_auth_error(self, harness: Harness) -> None:
        bad = self.make_provider(harness, **self.wrong_credentials())
        with pytest.raises(ProviderAuthError):
            bad.check()

    def wrong_credentials(self) -> dict[str, object]:
        raise NotImplementedError  # pragma: no cover

    def test_unknown_request_is_unknown(self, harness: Harness) -> None:
        answer = harness.provider.query("nosuchrequest123")
        assert answer.outcome is Outcome.UNKNOWN

    def test_pending_until_the_customer_pays(self, harness: Harness) -> None:
        request, started = self.start(harness)
        assert started.provider == self.provider_class.name and started.request_id
        assert harness.provider.query(started.request_id).outcome is Outcome.PENDING
        self.need_sim(harness)
        self.finish(harness, started, pay=True)
        [answer] = self.callbacks(harness)
        assert answer.outcome is Outcome.PAID and answer.request_id == started.request_id
        conf = answer.confirmation
        assert isinstance(conf, Confirmation)
        assert (conf.amount_minor, conf.currency) == (request.amount_minor, request.currency)
        assert conf.reference and conf.provider == self.provider_class.name
        after = poll(lambda: harness.provider.query(started.request_id), lambda a: a.outcome.final)
        assert after.outcome is Outcome.PAID

    def test_declined_payment(self, harness: Harness) -> None:
        self.need_sim(harness)
        _, started = self.start(harness)
        self.finish(harness, started, pay=False)
        after = poll(lambda: harness.provider.query(started.request_id), lambda a: a.outcome.final)
        assert after.outcome is self.declined and after.confirmation is None
        if self.declined_has_callback:
            [answer] = self.callbacks(harness)
            assert answer.outcome is self.declined and answer.confirmation is None

    def test_duplicate_callbacks_carry_the_same_reference(self, harness: Harness) -> None:
        sim = self.need_sim(harness)
        sim.faults.duplicate_callbacks = 3
        _, started = self.start(harness)
        self.finish(harness, started, pay=True)
        answers = self.callbacks(harness, 3)
        assert len(answers) == 3
        refs = {a.confirmation.reference for a in answers if a.confirmation}
        assert len(refs) == 1  # the key the policy applies the money under exactly once

    def test_lost_callback_the_query_still_tells(self, harness: Harness) -> None:
        sim = self.need_sim(harness)
        sim.faults.lose_next_callbacks(1)
        _, lost = self.start(harness)
        self.finish(harness, lost, pay=True)
        after = poll(lambda: harness.provider.query(lost.request_id), lambda a: a.outcome.final)
        assert after.outcome is Outcome.PAID
        # Callbacks go out in order: once the next one arrives, the lost one never will.
        _, second = self.start(harness)
        self.finish(harness, second, pay=True)
        answers = self.callbacks(harness, 1)
        assert [a.request_id for a in answers] == [second.request_id]

    def test_late_callback(self, harness: Harness) -> None:
        sim = self.need_sim(harness)
        sim.faults.late_s = 1.0
        _, started = self.start(harness)
        finished = time.time()
        self.finish(harness, started, pay=True)
        [answer] = self.callbacks(harness, 1, timeout=15)
        assert answer.outcome is Outcome.PAID
        # A lower bound only: a slow machine makes it later, never earlier.
        # The receiver can see the callback before the simulator has noted it as sent.
        sent = sim.wait_callbacks(1, timeout=10)
        assert sent and sent[-1].at - finished >= 1.0

    def test_wrong_amount_in_the_callback_is_reported_as_sent(self, harness: Harness) -> None:
        sim = self.need_sim(harness)
        sim.faults.wrong_amount_minor = 100
        request, started = self.start(harness)
        self.finish(harness, started, pay=True)
        [answer] = self.callbacks(harness)
        assert answer.confirmation is not None
        # The wire reports what the provider claimed; the policy compares it to the request.
        assert answer.confirmation.amount_minor == request.amount_minor + 100

    def test_5xx_on_a_query_is_retried(self, harness: Harness) -> None:
        sim = self.need_sim(harness)
        _, started = self.start(harness)
        before = len(sim.requests)
        sim.faults.fail_next(2, 503)
        answer = harness.provider.query(started.request_id)
        assert answer.outcome is Outcome.PENDING
        assert len(sim.requests) - before == 3

    def test_5xx_on_a_payment_request_is_not_retried(self, harness: Harness) -> None:
        sim = self.need_sim(harness)
        harness.provider.check()  # the token (if any) first, so only the request can fail
        sim.faults.fail_next(1, 500)
        with pytest.raises(ProviderUnavailable):
            self.start(harness)
        assert len(sim.requests_to(self.request_path)) == 1

    def test_throttled_beyond_the_retries(self, harness: Harness) -> None:
        sim = self.need_sim(harness)
        _, started = self.start(harness)
        sim.faults.throttle_next(10)
        before = len(sim.requests)
        with pytest.raises(ProviderUnavailable):
            harness.provider.query(started.request_id)
        assert len(sim.requests) - before == 3  # one try and two retries, then it gives up

    def test_slow_provider_times_out(self, harness: Harness) -> None:
        sim = self.need_sim(harness)
        _, started = self.start(harness)
        impatient = self.make_provider(harness, timeout=0.2)
        sim.faults.latency_s = 1.0
        with pytest.raises(ProviderUnavailable):
            impatient.query(started.request_id)

    def test_nobody_listening_is_unavailable(self, harness: Harness) -> None:
        down = self.make_provider(harness, base_url=f"http://127.0.0.1:{free_port()}")
        with pytest.raises(ProviderUnavailable):
            down.check()

    def test_hostile_callback_bodies_are_refused(self, harness: Harness) -> None:
        for body in self.hostile_bodies():
            with pytest.raises(CallbackError):
                harness.provider.parse_callback(self.callback_kind, self.sign(harness, body), body)

    def test_unknown_callback_kind_is_refused(self, harness: Harness) -> None:
        with pytest.raises(CallbackError):
            harness.provider.parse_callback("nonsense", {}, b"{}")
