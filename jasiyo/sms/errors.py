"""The SMS package's exception tree (wire code only; policy raises ``jasiyo.errors``).

    SmsError                     root (a ``JasiyoError``): talking to an SMS gateway failed
    ├── GatewayUnavailable       network error, timeout, 5xx, throttling: try again later
    ├── GatewayAuthError         the gateway refused our credentials (username, API key)
    ├── GatewayRejected          the gateway refused the request itself (bad number, sender id)
    └── CallbackError            a delivery report or incoming message cannot be parsed

httpx errors are wrapped where they enter (``jasiyo.sms.http``); nothing else from a library
escapes a gateway.
"""

from __future__ import annotations

from jasiyo.errors import JasiyoError


class SmsError(JasiyoError):
    """An SMS gateway could not be used. ``gateway`` names it (``africastalking``, ``http``)."""

    def __init__(self, message: str, gateway: str = "", code: str = "") -> None:
        super().__init__(message)
        self.gateway = gateway
        #: The gateway's own status code when it gave one (``405``), else ``""``.
        self.code = code


class GatewayUnavailable(SmsError):
    """Unreachable, timed out, answered 5xx or throttled us: retrying later may work.

    ``sent`` is False when the request certainly never reached the gateway (connection
    refused): a retry then cannot be a second copy on the customer's phone."""

    def __init__(self, message: str, gateway: str = "", code: str = "", sent: bool = True) -> None:
        super().__init__(message, gateway, code)
        self.sent = sent


class GatewayAuthError(SmsError):
    """The gateway refused our credentials: fix the configuration, retrying will not help."""


class GatewayRejected(SmsError):
    """The gateway refused the request (a bad field or sender id): retrying won't help."""


class CallbackError(SmsError):
    """A delivery report or incoming message body is malformed."""
