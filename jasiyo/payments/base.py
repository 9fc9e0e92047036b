"""The contract every payment provider keeps.

A provider is wire code only: it knows the provider's HTTP API and callback shapes and
nothing about subscribers or ledgers. The agent's policy (``jasiyo.agent.collect``) decides
what a confirmation means for the money.

    provider = get_provider("mpesa")(settings, transport=None)
    started = provider.request_payment(PaymentRequest(account="alice", amount_minor=150000,
                                                      currency="KES", phone="254712345678",
                                                      callback_url=url))
    answer = provider.query(started.request_id)         # StatusAnswer, Outcome.PAID, ...

Every method raises only :mod:`jasiyo.payments.errors` exceptions. Timeouts are explicit
(``timeout`` seconds per HTTP call); idempotent reads (token, query, verify) are retried on
``ProviderUnavailable`` ``retries`` times with backoff; a payment request is **never**
retried automatically (a retried STK push is a second prompt on the customer's phone).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import httpx

from jasiyo.payments.models import Confirmation, Initiated, PaymentRequest, StatusAnswer


class PaymentProvider(ABC):
    """One provider account (a Daraja app and shortcode; a Paystack secret key)."""

    #: Name ``get_provider`` finds this provider by, also the ``method`` of its payments.
    name: str = ""

    def __init__(
        self,
        settings: Mapping[str, object],
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        retries: int = 2,
    ) -> None:
        self.settings = dict(settings)
        self.transport = transport
        self.timeout = timeout
        self.retries = retries

    @abstractmethod
    def check(self) -> str:
        """Prove the credentials work (fetch a token, list nothing); a one-line summary."""

    @abstractmethod
    def request_payment(self, request: PaymentRequest) -> Initiated:
        """Start a payment: an STK prompt on the customer's phone, or a checkout link."""

    @abstractmethod
    def query(self, request_id: str) -> StatusAnswer:
        """Ask the provider what became of ``request_id`` (STK Query, Paystack verify).
        ``Outcome.UNKNOWN`` when the provider never heard of it."""

    @abstractmethod
    def parse_callback(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> StatusAnswer | Confirmation:
        """Read a callback the provider sent us (raw body, lower-case headers).

        ``path`` is the kind of callback (``"stk"``, ``"c2b/confirmation"``,
        ``"c2b/validation"``, ``"webhook"``). Returns a :class:`StatusAnswer` for the answer
        to a request we made (STK callback, Paystack charge) and a :class:`Confirmation` for
        money nobody asked for (C2B paybill). Signatures are checked **before** parsing;
        ``SignatureError`` / ``CallbackError`` otherwise. Parsing proves nothing about the
        money: policy still confirms with :meth:`query` before crediting.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> PaymentProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
