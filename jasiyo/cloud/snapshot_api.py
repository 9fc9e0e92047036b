"""Snapshots and compaction in the cloud's API.

An agent uploads a sealed snapshot of the tenant's state in parts, then commits it: the
cloud drops the events the snapshot covers (``seq`` at or below the snapshot's, except the
ids the agent asks it to keep) and older snapshots. A restore, or an agent whose cursor is
below the compacted floor, reads the newest snapshot and then the events after it. The cloud
sees only envelopes, sizes and sequence numbers.
"""

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
MAX_PARTS = 100_000
MAX_KEEP = 50_000


def _whole(value: object) -> object:
    """JSON's 300.0 is the integer 300 (JSON Schema says so too)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


def _part_of(request: Request) -> tuple[str, int]:
    from jasiyo.cloud.app import _ID_RE, Refused

    snap_id, part = request.path_params["snap"], request.path_params["part"]
    if not _ID_RE.match(snap_id) or not part.isdigit() or len(part) > 6:
        raise Refused(404, "malformed snapshot path")
    return snap_id, int(part)


async def put_part(api: Api, request: Request) -> Response:
    from jasiyo.cloud.app import Refused

    snap_id, part = _part_of(request)
    body = await api.body_of(request)
    agent = await api.agent_auth(request, body)
    doc = api.json_of(body)
    seq, parts, env = _whole(doc.get("seq")), _whole(doc.get("parts")), doc.get("envelope")
    if not (isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 2**63
            and isinstance(parts, int) and not isinstance(parts, bool)
            and 0 < parts <= MAX_PARTS):
        raise Refused(422, "seq or parts out of range")
    if part >= parts:
        raise Refused(409, "part beyond the snapshot's parts")
    if not isinstance(env, str) or len(env) > MAX_ENVELOPE:
        raise Refused(422, "envelope missing or too large")
    try:
        kid = envelope_kid(env)
    except SyncError:
        raise Refused(422, "envelope malformed") from None
    if kid not in await api.db(api.storage.kids, agent.tenant_id):
        raise Refused(409, "envelope names an unregistered key id")
    await api.db(api.storage.put_snapshot_part, agent.tenant_id, snap_id, agent.id, seq,
                 parts, part, env, time.time())
    return JSONResponse({"part": part})


async def commit(api: Api, request: Request) -> Response:
    from jasiyo.cloud.app import _ID_RE, Refused

    snap_id = request.path_params["snap"]
    if not _ID_RE.match(snap_id):
        raise Refused(404, "malformed snapshot path")
    body = await api.body_of(request)
    agent = await api.agent_auth(request, body)
    keep = api.json_of(body).get("keep", [])
    if not (isinstance(keep, list) and len(keep) <= MAX_KEEP
            and all(isinstance(k, str) and _ID_RE.match(k) for k in keep)):
        raise Refused(422, "keep must be a list of event ids")
    dropped = await api.db(api.storage.commit_snapshot, agent.tenant_id, snap_id, agent.id,
                           keep, time.time())
    if dropped is None:
        raise Refused(409, "snapshot unknown, another agent's, or missing parts")
    event(log, "cloud.compacted", tenant=agent.tenant_id, snapshot=snap_id, dropped=dropped)
    return JSONResponse({"snapshot": snap_id, "dropped": dropped})


async def latest(api: Api, request: Request) -> Response:
    from jasiyo.cloud.app import Refused

    agent = await api.agent_auth(request, b"")
    found = await api.db(api.storage.latest_snapshot, agent.tenant_id)
    if found is None:
        raise Refused(404, "no snapshot")
    snap_id, origin, seq, parts = found
    return JSONResponse({"id": snap_id, "origin": origin, "seq": seq, "parts": parts})


async def get_part(api: Api, request: Request) -> Response:
    from jasiyo.cloud.app import Refused

    snap_id, part = _part_of(request)
    agent = await api.agent_auth(request, b"")
    env = await api.db(api.storage.snapshot_part, agent.tenant_id, snap_id, part)
    if env is None:
        raise Refused(404, "no such snapshot part")
    return JSONResponse({"envelope": env})
