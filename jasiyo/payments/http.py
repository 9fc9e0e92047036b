"""The one HTTP client both providers use: explicit timeouts, retries only where safe.

httpx errors are converted here and nowhere else (the httpx habit of mapping the lower
library's exceptions at the transport boundary):

    network error, timeout, 5xx, 429, non-JSON answer  -> ProviderUnavailable
    401, 403                                           -> ProviderAuthError
    any other 4xx                                      -> ProviderRejected (provider's code)

``idempotent=True`` calls (token, STK Query, Paystack verify) are retried on
``ProviderUnavailable`` with exponential backoff. A payment request is sent exactly once:
retrying an STK push would put a second prompt on the customer's phone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from jasiyo.payments.errors import (
    PaymentError,
    ProviderAuthError,
    ProviderRejected,
    ProviderUnavailable,
)
from jasiyo.tls import client_context

log = logging.getLogger(__name__)

#: Reads a provider's error body into (code, message); both may be "".
ErrorReader = Callable[[Any], tuple[str, str]]
#: Given (HTTP status, provider code, message), the error to raise instead of the default
#: mapping, or None to keep it (Daraja answers "wrong credentials" with a 500).
Classifier = Callable[[int, str, str], type[PaymentError] | None]

_MAX_BODY = 1024 * 1024  # a provider's JSON answer is a few hundred bytes


def _no_error_fields(_body: Any) -> tuple[str, str]:
    return "", ""


class HttpClient:
    """A small synchronous JSON client for one provider's base URL."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.25,
        read_error: ErrorReader = _no_error_fields,
        classify: Classifier | None = None,
    ) -> None:
        self.provider = provider
        self.retries = max(0, retries)
        self.backoff = backoff
        self.read_error = read_error
        self.classify = classify
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            transport=transport,
            verify=client_context(),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "jasiyo-payments"},
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        retry_if: Callable[[ProviderUnavailable], bool] | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer (a 2xx).

        ``retry_if`` can veto a retry of an idempotent call (an STK Query answered "still
        being processed" is an answer, not an outage)."""
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            try:
                return self._once(method, path, json_body, headers, params)
            except ProviderUnavailable as exc:
                last = attempt == attempts - 1
                if last or (retry_if is not None and not retry_if(exc)):
                    raise
                delay = self.backoff * (2**attempt)
                log.info(
                    "%s %s %s unavailable (%s); retry %d/%d in %.2fs",
                    self.provider,
                    method,
                    path,
                    exc,
                    attempt + 1,
                    attempts - 1,
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _once(
        self,
        method: str,
        path: str,
        json_body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
    ) -> Any:
        try:
            resp = self._client.request(method, path, json=json_body, headers=headers, params=params)
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"{self.provider}: {method} {path} timed out", self.provider) from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"{self.provider}: {method} {path} failed: {type(exc).__name__}", self.provider
            ) from exc
        body = self._decode(resp)
        if resp.is_success:
            if body is _NOT_JSON:
                raise ProviderUnavailable(
                    f"{self.provider}: {method} {path} answered {resp.status_code} with a body "
                    "that is not JSON",
                    self.provider,
                )
            return body
        code, message = self.read_error(body) if body is not _NOT_JSON else ("", "")
        message = message or resp.reason_phrase or "error"
        text = f"{self.provider}: {method} {path} answered {resp.status_code}"
        text += f" {code}: {message}" if code else f": {message}"
        cls: type[PaymentError]
        if resp.status_code in (401, 403):
            cls = ProviderAuthError
        elif resp.status_code == 429 or resp.status_code >= 500 or resp.status_code < 400:
            cls = ProviderUnavailable
        else:
            cls = ProviderRejected
        if self.classify is not None:
            cls = self.classify(resp.status_code, code, message) or cls
        raise cls(text, self.provider, code)

    @staticmethod
    def _decode(resp: httpx.Response) -> Any:
        raw = resp.content
        if len(raw) > _MAX_BODY:
            return _NOT_JSON
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            return _NOT_JSON


class _NotJson:
    """Marker for an answer that could not be decoded."""


_NOT_JSON: Any = _NotJson()
