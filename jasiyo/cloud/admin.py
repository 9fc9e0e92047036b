"""Operator and tenant-admin calls to the cloud API (what `jasiyo cloud ...` runs)."""

from __future__ import annotations

from typing import Any

import httpx

from jasiyo.errors import CloudError
from jasiyo.tls import client_context


def _post(
    url: str,
    path: str,
    token: str,
    body: dict[str, Any] | None,
    transport: httpx.BaseTransport | None,
    ok: int = 201,
    method: str = "POST",
) -> dict[str, Any]:
    try:
        with httpx.Client(
            base_url=url.rstrip("/"), transport=transport, timeout=30, verify=client_context()
        ) as http:
            resp = http.request(method, path, json=body, headers={"authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise CloudError(f"cannot reach the cloud at {url}: {type(exc).__name__}") from None
    if resp.status_code == 401:
        raise CloudError("the cloud refused the token (401): check it is the right one")
    if resp.status_code == 403:
        raise CloudError("that token is for another tenant (403)")
    if resp.status_code == 404:
        raise CloudError("the cloud has no such (active) agent or endpoint (404)")
    if resp.status_code != ok:
        raise CloudError(f"the cloud refused the request (HTTP {resp.status_code})")
    return dict(resp.json())


def create_tenant(
    url: str, operator_token: str, name: str, transport: httpx.BaseTransport | None = None
) -> dict[str, str]:
    """A new tenant: ``{"tenant_id", "admin_token"}``. The admin token is shown once."""
    return _post(url, "/v1/tenants", operator_token, {"name": name}, transport)


def issue_enrolment(
    url: str, admin_token: str, ttl_seconds: int = 86400, transport: httpx.BaseTransport | None = None
) -> dict[str, Any]:
    """A one-time enrolment token for a new agent of the admin's tenant."""
    parts = admin_token.split("_", 2)
    if len(parts) != 3 or parts[0] != "jad":
        raise CloudError("that is not a tenant admin token (they start with jad_)")
    return _post(
        url, f"/v1/tenants/{parts[1]}/enrolments", admin_token, {"ttl_seconds": ttl_seconds}, transport
    )


def _tenant_of(admin_token: str) -> str:
    parts = admin_token.split("_", 2)
    if len(parts) != 3 or parts[0] != "jad":
        raise CloudError("that is not a tenant admin token (they start with jad_)")
    return parts[1]


def revoke_agent(
    url: str, admin_token: str, agent_id: str, transport: httpx.BaseTransport | None = None
) -> dict[str, Any]:
    """Revoke one of the admin's tenant's agents or dashboards: its signed requests are
    refused from the next one on (a waiting long-poll ends with 401)."""
    tenant = _tenant_of(admin_token)
    return _post(url, f"/v1/tenants/{tenant}/agents/{agent_id}/revoke", admin_token, {}, transport, ok=200)


def list_agents(url: str, admin_token: str, transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """The admin's tenant's agents and dashboards: ``{"head", "now", "agents": [{"agent_id",
    "name", "kind", "created_at", "revoked_at", "last_seen", "cursor", "backlog"}]}``."""
    tenant = _tenant_of(admin_token)
    return _post(url, f"/v1/tenants/{tenant}/agents", admin_token, None, transport, ok=200, method="GET")
