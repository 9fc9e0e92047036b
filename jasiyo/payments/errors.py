"""The payments package's exception tree (wire code only; policy raises ``jasiyo.errors``).

    PaymentError                 root (a ``JasiyoError``): talking to a payment provider failed
    ├── ProviderUnavailable      network error, timeout, 5xx, throttling: try again later
    ├── ProviderAuthError        the provider refused our credentials (consumer key, secret key)
    ├── ProviderRejected         the provider refused the request itself (bad field, bad phone)
    └── CallbackError            a callback or webhook body cannot be trusted or parsed
        └── SignatureError       its signature is missing or wrong (Paystack HMAC)

httpx errors are wrapped where they enter (``jasiyo.payments.http``); nothing else from a
library escapes a provider.
"""

from __future__ import annotations

from jasiyo.errors import JasiyoError


class PaymentError(JasiyoError):
    """A payment provider could not be used. ``provider`` names it (``mpesa``, ``paystack``)."""

    def __init__(self, message: str, provider: str = "", code: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        #: The provider's own error code when it gave one (``500.001.1001``), else ``""``.
        self.code = code


class ProviderUnavailable(PaymentError):
    """Unreachable, timed out, answered 5xx or throttled us: retrying later may work."""


class ProviderAuthError(PaymentError):
    """The provider refused our credentials: fix the configuration, retrying will not help."""


class ProviderRejected(PaymentError):
    """The provider refused the request (a bad field, phone or amount): retrying won't help."""


class CallbackError(PaymentError):
    """A callback body is malformed or does not say what a provider callback says."""


class SignatureError(CallbackError):
    """A webhook's signature is missing or does not match the body."""
