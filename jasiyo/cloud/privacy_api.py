"""The cloud's part in erasure: agents replace events they re-sealed without a person's data,
and drop the webhook bodies of that person's payments. The cloud cannot read either; it
checks only the shape, the key id and that the event is the tenant's."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jasiyo.errors import SyncError
from jasiyo.log import event, get_logger
from jasiyo.sync.envelope import MAX_ENVELOPE, envelope_kid

if TYPE_CHECKING:
    from jasiyo.cloud.app import Api

log = get_logger(__name__)


async def redact(api: Api, request: Request) -> Response:
    from jasiyo.cloud.app import _ID_RE, Refused

    body = await api.body_of(request)
    agent = await api.agent_auth(request, body)
    doc = api.json_of(body)
    events, hooks = doc.get("events", []), doc.get("hooks", [])
    if not (isinstance(events, list) and isinstance(hooks, list)
            and len(events) <= api.cfg.max_batch and len(hooks) <= api.cfg.max_batch):
        raise Refused(422, "events or hooks not lists, or batch too large")
    kids = await api.db(api.storage.kids, agent.tenant_id)
    rows = []
    for ev in events:
        if not isinstance(ev, dict):
            raise Refused(422, "event is not an object")
        ev_id, origin, env = ev.get("id"), ev.get("origin"), ev.get("envelope")
        if not (isinstance(ev_id, str) and _ID_RE.match(ev_id) and isinstance(origin, str)
                and _ID_RE.match(origin)):
            raise Refused(422, "event id or origin malformed")
        if not isinstance(env, str) or len(env) > MAX_ENVELOPE:
            raise Refused(422, "envelope missing or too large")
        try:
            kid = envelope_kid(env)
        except SyncError:
            raise Refused(422, "envelope malformed") from None
        if kid not in kids:
            raise Refused(409, "envelope names an unregistered key id")
        rows.append((ev_id, origin, env))
    if not all(isinstance(h, str) and _ID_RE.match(h) for h in hooks):
        raise Refused(422, "hook id malformed")
    replaced, dropped = await api.db(api.storage.redact, agent.tenant_id, rows, hooks)
    event(log, "cloud.redacted", tenant=agent.tenant_id, agent=agent.id, events=replaced,
          hooks=dropped, at=time.time())
    return JSONResponse({"replaced": replaced, "dropped": dropped})
