"""Webhooks in the cloud's API: an agent creates an unguessable endpoint for a provider
(M-Pesa Daraja, Paystack, Africa's Talking) with the tenant's public box key; what a
provider posts there is sealed to that key at once and kept for the tenant's agents to pull.
The cloud cannot open what it keeps."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jasiyo.errors import SyncError
from jasiyo.log import event, get_logger
from jasiyo.sync.ids import uuid7
from jasiyo.sync.sealed import hook_context, seal_to

if TYPE_CHECKING:
    from jasiyo.cloud.app import Api

log = get_logger(__name__)


async def add_endpoint(api: Api, request: Request) -> Response:
    from jasiyo.cloud.app import _PROVIDER_RE, Refused, token_hash

    body = await api.body_of(request)
    agent = await api.agent_auth(request, body)
    doc = api.json_of(body)
    provider, public_key = doc.get("provider"), doc.get("public_key")
    if not (isinstance(provider, str) and _PROVIDER_RE.match(provider) and isinstance(public_key, str)):
        raise Refused(422, "provider or public key malformed")
    try:
        seal_to(public_key, b"", b"check")
    except SyncError:
        raise Refused(422, "public key malformed") from None
    # Hex: Daraja refuses callback URLs containing words such as 'exe', 'cmd' or 'sql',
    # which a base64 token can spell by chance.
    token = secrets.token_hex(24)
    await api.db(
        api.storage.add_hook_endpoint,
        agent.tenant_id,
        token_hash(token),
        provider,
        public_key,
        time.time(),
        agent.id,
    )
    return JSONResponse({"path": f"/v1/hooks/{agent.tenant_id}/{token}"}, 201)


async def receive(api: Api, request: Request) -> Response:
    from jasiyo.cloud.app import _HOOK_HEADERS, _ID_RE, Refused, token_hash

    tenant, token = request.path_params["tenant"], request.path_params["token"]
    if not _ID_RE.match(tenant) or not 16 <= len(token) <= 64:
        raise Refused(404, "malformed webhook path")
    raw = await api.body_of(request, api.cfg.max_hook_body, "webhook body too large")
    found = await api.db(api.storage.hook_endpoint, tenant, token_hash(token))
    if found is None:
        raise Refused(404, "unknown webhook endpoint")
    provider, public_key = found
    hook_id = uuid7()
    now = time.time()
    doc = {
        "provider": provider,
        "received_at": now,
        "remote": request.client.host if request.client else None,
        "headers": {k: v for k, v in request.headers.items() if k in _HOOK_HEADERS},
        "body": base64.b64encode(raw).decode(),
    }
    sealed = seal_to(public_key, json.dumps(doc).encode(), hook_context(tenant, hook_id))
    await api.db(api.storage.add_webhook, tenant, hook_id, provider, sealed, now)
    event(log, "cloud.webhook", tenant=tenant, provider=provider, id=hook_id)
    api.notifier.notify(tenant)  # wakes waiting hook pulls (PostgreSQL: NOTIFY, in add_webhook)
    if provider.startswith("mpesa"):  # Daraja wants this exact acknowledgement
        return JSONResponse({"ResultCode": 0, "ResultDesc": "Accepted"})
    return JSONResponse({"ok": True})


async def list_(api: Api, request: Request) -> Response:
    agent = await api.agent_auth(request, b"")
    after, limit, wait = api.cursor_query(request, 100)
    rows = await api.long_poll(
        agent, wait, lambda: api.db(api.storage.webhooks, agent.tenant_id, after, limit)
    )
    return JSONResponse(
        {
            "hooks": [{"seq": r[0], "id": r[1], "provider": r[2], "sealed": r[3]} for r in rows],
            "cursor": rows[-1][0] if rows else after,
        }
    )
