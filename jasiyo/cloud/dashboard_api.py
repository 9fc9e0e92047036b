"""The cloud's part in the tenant dashboard: the agents list, the wrapped keyring, presence.

The dashboard is a browser that enrols and signs like an agent (``kind: "dashboard"``), so
the cloud can list and revoke it. It signs in with the tenant admin token and the tenant
keyring, which it may keep here wrapped under a passphrase: the cloud checks only the
document's shape (it holds no key that opens it) and never logs it.

Presence: every signed request notes the agent's last contact, and every pull its cursor:
the last event the cloud has sent it (or the ``after`` it asked from, if higher), so the
backlog, head less cursor, is what it has yet to pull. They are kept in memory and
written to storage at most once per :data:`SEEN_EVERY` seconds per agent, so a long-polling
POP costs no extra write per request; the agents list reads both, and another cloud process
sharing a PostgreSQL database is at most that far behind.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jasiyo.cloud.snapshot_api import _whole
from jasiyo.cloud.storage import AgentRecord
from jasiyo.log import event, get_logger

if TYPE_CHECKING:
    from jasiyo.cloud.app import Api

log = get_logger(__name__)

#: Seconds between writes of one agent's last contact and cursor.
SEEN_EVERY = 30.0
#: The wrapped keyring document (the browser's ``keys.js`` writes it).
WRAPPED_FORMAT = "jasiyo-wrapped-keys-v1"
WRAPPED_KDF = "PBKDF2-SHA256"
MAX_WRAPPED = 64 * 1024
#: OWASP's 2023 figure for PBKDF2-HMAC-SHA256; WebCrypto takes at most 2**32 - 1.
MIN_ITERATIONS = 600_000
MAX_ITERATIONS = 2**32 - 1
#: Characters of base64url ciphertext (about 45 KB: a keyring of hundreds of keys).
MAX_CIPHERTEXT = 60_000
_WRAPPED_FIELDS = frozenset({"format", "kdf", "iterations", "salt", "iv", "ciphertext"})
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: What a dashboard's signature is good for: reading and appending to the log, reading the
#: snapshot, listing agents. Not registering key ids, snapshots and compaction, erasure or
#: webhooks: those are a POP's (a browser left signed in should not be able to drop events).
_DASHBOARD_MAY = re.compile(
    rf"^(?:(?:GET|POST) /v1/tenants/{_UUID}/events|GET /v1/tenants/{_UUID}/(?:snapshot|agents)"
    rf"|GET /v1/tenants/{_UUID}/snapshots/{_UUID}/parts/[0-9]{{1,6}})$"
)


@dataclass
class _Seen:
    last: float
    cursor: int | None
    written: float
    kind: str


class Presence:
    """Agents' last contact and pull cursors in this process (see the module docstring)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], _Seen] = {}

    def note(self, agent: AgentRecord, now: float, cursor: int | None = None) -> _Seen | None:
        """Record a request; what to write to storage when a write is due, else None."""
        key = (agent.tenant_id, agent.id)
        s = self._seen.get(key)
        if s is None:
            stored = agent.last_seen or 0.0
            s = self._seen[key] = _Seen(stored, agent.cursor, stored, agent.kind)
            if len(self._seen) > 100_000:  # forget agents gone quiet rather than grow
                self._seen = {k: v for k, v in self._seen.items() if now - v.last < 3600}
                self._seen[key] = s
        s.last = max(s.last, now)
        if cursor is not None and (s.cursor is None or cursor > s.cursor):
            s.cursor = cursor
        if now - s.written < SEEN_EVERY:
            return None
        s.written = now
        return s

    def merged(self, agent: AgentRecord) -> AgentRecord:
        """``agent`` as stored, with anything newer this process saw."""
        s = self._seen.get((agent.tenant_id, agent.id))
        if s is None:
            return agent
        last = max(agent.last_seen or 0.0, s.last) or None
        cursor = agent.cursor if s.cursor is None else max(agent.cursor or 0, s.cursor)
        return replace(agent, last_seen=last, cursor=cursor)

    def kind_of(self, tenant: str, agent_id: str) -> str | None:
        """``agent`` or ``dashboard``, if this process has seen it sign a request."""
        s = self._seen.get((tenant, agent_id))
        return s.kind if s is not None else None

    def active(self, now: float, window: float = 3600.0) -> dict[str, int]:
        """How many agents and dashboards made a signed request in the last ``window`` s."""
        counts = {"agent": 0, "dashboard": 0}
        for s in list(self._seen.values()):
            if now - s.last < window:
                counts[s.kind] = counts.get(s.kind, 0) + 1
        return counts


def dashboard_may(method: str, path: str) -> bool:
    """Whether a request signed by a dashboard may be answered."""
    return _DASHBOARD_MAY.match(f"{method} {path}") is not None


async def note_seen(api: Api, agent: AgentRecord, cursor: int | None = None) -> None:
    due = api.presence.note(agent, time.time(), cursor)
    if due is not None:
        await api.db(api.storage.note_seen, agent.tenant_id, agent.id, due.last, due.cursor)


def _agent_row(agent: AgentRecord, head: int) -> dict[str, Any]:
    return {
        "agent_id": agent.id,
        "name": agent.name,
        "kind": agent.kind,
        "created_at": agent.created_at,
        "revoked_at": agent.revoked_at,
        "last_seen": agent.last_seen,
        "cursor": agent.cursor,
        # None: it never pulled. A cursor below the compacted floor still counts the events
        # it lacks (it will read them from the snapshot).
        "backlog": None if agent.cursor is None else max(0, head - agent.cursor),
    }


async def list_agents(api: Api, request: Request) -> Response:
    """``GET /v1/tenants/{t}/agents``: the tenant admin's bearer token, or any enrolled
    agent or dashboard of the tenant, signed."""
    if "authorization" in request.headers:
        tenant = await api.admin_of(request)
    else:
        tenant = (await api.agent_auth(request, b"")).tenant_id
    agents, head = await api.db(api.storage.agents, tenant)
    rows = [_agent_row(api.presence.merged(a), head) for a in agents]
    return JSONResponse({"head": head, "now": time.time(), "agents": rows})


def _b64url_bytes(value: object) -> int | None:
    """How many bytes unpadded base64url ``value`` holds; None if it is not that."""
    if not isinstance(value, str) or not _B64URL.match(value) or len(value) % 4 == 1:
        return None
    return len(value) * 3 // 4


def wrapped_problem(doc: object) -> str | None:
    """Why ``doc`` is not a wrapped keyring document (its shape only), or None."""
    if not isinstance(doc, dict):
        return "wrapped is not an object"
    if set(doc) != _WRAPPED_FIELDS:
        return "wrapped has missing or unknown fields"
    if doc["format"] != WRAPPED_FORMAT or doc["kdf"] != WRAPPED_KDF:
        return "wrapped names an unknown format or kdf"
    iterations = _whole(doc["iterations"])
    if not (
        isinstance(iterations, int)
        and not isinstance(iterations, bool)
        and MIN_ITERATIONS <= iterations <= MAX_ITERATIONS
    ):
        return f"iterations must be a whole number from {MIN_ITERATIONS}"
    salt, iv, ciphertext = (_b64url_bytes(doc[k]) for k in ("salt", "iv", "ciphertext"))
    if salt is None or not 16 <= salt <= 1024:
        return "salt must be 16 to 1024 bytes, base64url"
    if iv != 12:
        return "iv must be 12 bytes, base64url"
    if ciphertext is None or ciphertext < 16 or len(doc["ciphertext"]) > MAX_CIPHERTEXT:
        return "ciphertext must be base64url, from 16 bytes (the AES-GCM tag)"
    return None


async def put_wrapped(api: Api, request: Request) -> Response:
    from jasiyo.cloud.app import Refused

    tenant = await api.admin_of(request)
    body = await api.body_of(request, MAX_WRAPPED, "wrapped key too large")
    doc = api.json_of(body)
    if set(doc) != {"wrapped"}:
        raise Refused(422, "body must be {wrapped: document}")
    problem = wrapped_problem(doc["wrapped"])
    if problem is not None:
        raise Refused(422, problem)
    now = time.time()
    wrapped = {**doc["wrapped"], "iterations": _whole(doc["wrapped"]["iterations"])}
    text = json.dumps(wrapped, sort_keys=True, separators=(",", ":"))
    await api.db(api.storage.put_wrapped_key, tenant, text, now)
    event(log, "cloud.wrapped_key_stored", tenant=tenant, bytes=len(text))
    return JSONResponse({"updated_at": now})


async def get_wrapped(api: Api, request: Request) -> Response:
    from jasiyo.cloud.app import Refused

    tenant = await api.admin_of(request)
    found = await api.db(api.storage.wrapped_key, tenant)
    if found is None:
        raise Refused(404, "no wrapped key stored")
    text, updated = found
    return JSONResponse({"wrapped": json.loads(text), "updated_at": updated})


async def wrapped_key(api: Api, request: Request) -> Response:
    return await (put_wrapped(api, request) if request.method == "PUT" else get_wrapped(api, request))
