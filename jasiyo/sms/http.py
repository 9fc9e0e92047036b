"""The one HTTP client the SMS gateways use: explicit timeouts, no automatic retries.

httpx errors are converted here and nowhere else:

    connection refused / DNS failure                  -> GatewayUnavailable(sent=False)
    timeout, other network error, 5xx, 429             -> GatewayUnavailable
    401, 403                                           -> GatewayAuthError
    any other 4xx                                      -> GatewayRejected
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from jasiyo.sms.errors import GatewayAuthError, GatewayRejected, GatewayUnavailable, SmsError
from jasiyo.tls import client_context

_MAX_BODY = 256 * 1024


class HttpClient:
    def __init__(
        self,
        gateway: str,
        base_url: str = "",
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.gateway = gateway
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            transport=transport,
            verify=client_context(),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": "jasiyo-sms"},
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send once; the status and the decoded JSON body (or the text) of a 2xx answer."""
        try:
            resp = self._client.request(method, url, data=data, content=content, headers=headers)
        except httpx.ConnectError as exc:
            raise GatewayUnavailable(
                f"{self.gateway}: cannot connect ({type(exc).__name__})", self.gateway, sent=False
            ) from exc
        except httpx.TimeoutException as exc:
            raise GatewayUnavailable(f"{self.gateway}: {method} timed out", self.gateway) from exc
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(
                f"{self.gateway}: {method} failed: {type(exc).__name__}", self.gateway
            ) from exc
        raw = resp.content[:_MAX_BODY]
        try:
            body: Any = json.loads(raw)
        except (ValueError, RecursionError):
            body = raw.decode("utf-8", errors="replace")
        if resp.is_success:
            return resp.status_code, body
        text = body if isinstance(body, str) else json.dumps(body)[:200]
        message = f"{self.gateway}: answered {resp.status_code}: {text.strip()[:200] or 'error'}"
        cls: type[SmsError]
        if resp.status_code in (401, 403):
            cls = GatewayAuthError
        elif resp.status_code == 429 or resp.status_code >= 500 or resp.status_code < 400:
            cls = GatewayUnavailable
        else:
            cls = GatewayRejected
        raise cls(message, self.gateway, str(resp.status_code))
