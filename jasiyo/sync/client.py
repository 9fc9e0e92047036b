"""The sync client: push the outbox, pull after the cursor, apply, with retry and backoff.

The client knows nothing of the agent's tables: it talks to an :class:`EventLog` (the agent
provides one over its store, ``jasiyo.agent.synclog.AgentLog``) and to the cloud through an
httpx transport that the caller may inject (``httpx.ASGITransport`` in tests, the default
network transport otherwise). Every request is signed (:mod:`.signing`); every event is
sealed with the tenant key before it leaves (:mod:`.envelope`).

State kept in the log's meta: ``sync.cloud_url``, ``sync.tenant_id``, ``sync.cursor`` (last
sequence applied), ``sync.head`` (the cloud's last sequence when we last looked),
``sync.last_ok_at``, ``sync.last_error``, ``sync.last_error_at``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jasiyo.errors import SyncError
from jasiyo.log import event, get_logger
from jasiyo.sync.envelope import b64d, b64e
from jasiyo.sync.hlc import bounded
from jasiyo.sync.keyring import Keyring
from jasiyo.sync.sealed import hook_context, open_sealed, public_of
from jasiyo.sync.signing import AgentAuth, public_key_text
from jasiyo.tls import client_context

log = get_logger(__name__)

#: A pseudo-entity carrying a rotated tenant key, sealed under the previous key.
KEY_ENTITY = "_tenant_key"
#: meta key: ids of the key-sharing events in the log (compaction keeps them).
KEY_EVENTS = "sync.key_events"
#: Meta key prefix of a quarantined event (one row per event: ``<prefix><event id>``).
QUARANTINE = "sync.quarantine."
_RETRY_STATUS = {429, 500, 502, 503, 504}


class CloudRefused(SyncError):
    """The cloud answered with a refusal (``status``) that retrying will not change."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RemoteEvent:
    """An event as it travels between agents (decrypted)."""

    id: str
    hlc: str
    origin: str
    entity: str
    key: str
    op: str
    data: dict[str, Any]


@dataclass(frozen=True)
class LocalEvent(RemoteEvent):
    created_at: float = 0.0


class EventLog(Protocol):
    """What the client needs from the agent's store."""

    @property
    def agent_id(self) -> str: ...

    def outbox(self, limit: int) -> list[LocalEvent]: ...

    def mark_pushed(self, ids: list[str]) -> None: ...

    def backlog(self) -> tuple[int, float | None]: ...

    def get(self, key: str) -> str | None: ...

    def put(self, values: dict[str, str]) -> None: ...

    def apply(self, events: list[RemoteEvent], meta: dict[str, str] | None = None) -> int: ...

    def quarantined(self) -> list[Quarantined]: ...

    def release(self, ids: list[str]) -> None:
        """Forget quarantined events (applied after all, or skipped by an engineer)."""


@dataclass(frozen=True)
class Webhook:
    """A payment provider's callback as the cloud received it, opened by this agent.

    Not yet trusted: the agent verifies it with the provider (Paystack HMAC over ``body``
    with the ISP's secret, M-Pesa transaction status query) before acting on it.
    """

    seq: int
    id: str
    provider: str
    received_at: float
    remote: str | None
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Quarantined:
    """A pulled event that would not open: kept aside so the rest of the log flows.

    The causes: a tenant key this agent does not hold yet (import the recovery file, then
    ``jasiyo sync quarantine retry``), or an envelope that was tampered with or sealed over
    something that is not an event (``jasiyo sync quarantine skip ID``).
    """

    seq: int
    id: str
    origin: str
    envelope: str
    error: str
    at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Quarantined:
        d = json.loads(text)
        return cls(
            int(d["seq"]), str(d["id"]), str(d["origin"]), str(d["envelope"]), str(d["error"]), float(d["at"])
        )


@dataclass(frozen=True)
class SyncStatus:
    cloud_url: str
    tenant_id: str
    agent_id: str
    cursor: int
    head: int
    lag_events: int
    backlog: int
    oldest_unpushed_age: float | None
    last_ok_at: float | None
    last_error: str | None
    #: Pulled events that would not open, set aside (``jasiyo sync quarantine list``).
    quarantined: int = 0
    #: The cloud's clock minus ours at the last pull (seconds); far from 0: fix this clock.
    clock_offset: float | None = None
    #: Agents whose events came with a clock ahead of the cloud's (bounded), and how many.
    skewed_origins: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SyncResult:
    pushed: int
    pulled: int
    applied: int


def _plain(ev: RemoteEvent) -> bytes:
    return json.dumps(
        {"hlc": ev.hlc, "entity": ev.entity, "key": ev.key, "op": ev.op, "data": ev.data},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode()


def enroll(
    url: str,
    token: str,
    agent_id: str,
    name: str,
    key: Ed25519PrivateKey,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> str:
    """Register this agent's public key with a one-time token; returns the tenant id."""
    try:
        with httpx.Client(
            base_url=url, transport=transport, timeout=timeout, verify=client_context()
        ) as http:
            resp = http.post(
                "/v1/agents/enroll",
                json={"token": token, "agent_id": agent_id, "name": name, "public_key": public_key_text(key)},
            )
    except httpx.HTTPError as exc:
        raise SyncError(f"cannot reach the cloud at {url}: {type(exc).__name__}") from None
    if resp.status_code == 401:
        raise SyncError(
            "the enrolment token is unknown, already used or expired; ask the tenant admin for a new one"
        )
    if resp.status_code == 409:
        raise SyncError("this agent is already enrolled")
    if resp.status_code != 201:
        raise SyncError(f"the cloud refused the enrolment (HTTP {resp.status_code})")
    return str(resp.json()["tenant_id"])


class SyncClient:
    """One agent's connection to the cloud. Not thread-safe: one per sync thread."""

    def __init__(
        self,
        log_: EventLog,
        keyring: Keyring,
        signer: Ed25519PrivateKey,
        *,
        base_url: str,
        transport: httpx.BaseTransport | None = None,
        batch: int = 500,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        save_keyring: Callable[[Keyring], None] | None = None,
    ) -> None:
        self.log = log_
        self.keyring = keyring
        self.tenant_id = keyring.tenant_id
        self.base_url = base_url
        self.batch = batch
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.save_keyring = save_keyring
        self.timeout = timeout
        #: Origin agent -> events whose clock was ahead of the cloud's and was bounded.
        try:
            self._skewed: dict[str, int] = dict(json.loads(log_.get("sync.skewed_origins") or "{}"))
        except (ValueError, TypeError):
            self._skewed = {}
        self.http = httpx.Client(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            verify=client_context(),
            auth=AgentAuth(signer, keyring.tenant_id, log_.agent_id),
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One API call with retries on network errors, 429 and 5xx. SyncError otherwise."""
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"content-type": "application/json"} if content is not None else None
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                resp = self.http.request(
                    method,
                    path,
                    content=content,
                    params=params,
                    headers=headers,
                    timeout=timeout if timeout else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.HTTPError as exc:
                problem = f"cannot reach the cloud at {self.base_url} ({type(exc).__name__})"
            else:
                if resp.status_code < 300:
                    return resp.json()
                code = _code(resp)
                problem = f"the cloud answered HTTP {resp.status_code} {code} to {method} {path}"
                if resp.status_code not in _RETRY_STATUS:
                    raise CloudRefused(problem + _hint(resp.status_code), resp.status_code)
            if attempt < self.retries:
                self.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise SyncError(problem)

    # ------------------------------------------------------------ operations

    def register_key(self, kid: str) -> None:
        """Tell the cloud a key id is in use (it refuses envelopes naming unknown ids)."""
        self._request("POST", f"/v1/tenants/{self.tenant_id}/keys", body={"kid": kid})

    def push(self) -> int:
        """Send the whole outbox in batches; each batch is marked pushed once acknowledged."""
        total = 0
        while True:
            batch = self.log.outbox(self.batch)
            if not batch:
                return total
            events = [
                {"id": e.id, "origin": e.origin, "envelope": self.keyring.seal(_plain(e), e.id, e.origin)}
                for e in batch
            ]
            try:
                self._request("POST", f"/v1/tenants/{self.tenant_id}/events", body={"events": events})
            except CloudRefused as exc:
                if exc.status != 413 or len(batch) == 1:
                    raise
                self.batch = max(1, len(batch) // 2)  # large events: smaller batches
                continue
            self.log.mark_pushed([e.id for e in batch])
            total += len(batch)

    def redact(self) -> int:
        """Send what erasures owe the cloud: held events re-sealed without the person's
        data (same id and origin), and webhook ids whose bodies it must drop."""
        owed = getattr(self.log, "redactions", None)
        if owed is None:
            return 0
        total = 0
        while True:
            events, hooks = owed(500)
            if not events and not hooks:
                return total
            self._request(
                "POST",
                f"/v1/tenants/{self.tenant_id}/events/redact",
                body={
                    "events": [
                        {
                            "id": e.id,
                            "origin": e.origin,
                            "envelope": self.keyring.seal(_plain(e), e.id, e.origin),
                        }
                        for e in events
                    ],
                    "hooks": hooks,
                },
            )
            self.log.mark_redacted([e.id for e in events], hooks)  # type: ignore[attr-defined]
            total += len(events) + len(hooks)

    def _owes_redactions(self) -> bool:
        return bool(getattr(self.log, "redactions_owed", lambda: 0)())

    def publish_key(self, kid: str, sealed_with: str) -> None:
        """Share a rotated key with the other agents, sealed under the key they already hold.

        Whoever can read the log can read the new key: rotation limits how much one key
        seals, it does not shut out a holder of the old key (re-enrol POPs for that).
        """
        from jasiyo.sync.ids import uuid7

        ev_id = uuid7()
        plain = json.dumps(
            {
                "hlc": "",
                "entity": KEY_ENTITY,
                "key": kid,
                "op": "append",
                "data": {"kid": kid, "key": b64e(self.keyring.keys[kid])},
            }
        ).encode()
        envelope = self.keyring.seal(plain, ev_id, self.log.agent_id, kid=sealed_with)
        self._request(
            "POST",
            f"/v1/tenants/{self.tenant_id}/events",
            body={"events": [{"id": ev_id, "origin": self.log.agent_id, "envelope": envelope}]},
        )
        self.log.put({KEY_EVENTS: self._key_events([ev_id])})

    def _key_events(self, new: list[str]) -> str:
        """The ids of key-sharing events seen so far, with ``new``: a snapshot keeps them."""
        held = json.loads(self.log.get(KEY_EVENTS) or "[]")
        return json.dumps(sorted(set(held) | set(new)))

    # ------------------------------------------------------------ snapshots

    def upload_snapshot(self, snap_id: str, seq: int, chunks: list[bytes], keep: list[str]) -> int:
        """Send a snapshot in sealed parts and commit it (:mod:`jasiyo.sync.snapshots`)."""
        from jasiyo.sync.snapshots import upload

        return upload(self, snap_id, seq, chunks, keep)

    def load_snapshot(self) -> int:
        """Apply the newest snapshot; the cursor after it (:mod:`jasiyo.sync.snapshots`)."""
        from jasiyo.sync.snapshots import load

        return load(self)

    def register_webhook(self, provider: str) -> str:
        """A new unguessable webhook path for ``provider`` (give it to the provider)."""
        if not self.keyring.box_key:
            raise SyncError(
                "the tenant keys have no webhook key; recreate them with a newer `jasiyo tenant init`"
            )
        doc = self._request(
            "POST",
            f"/v1/tenants/{self.tenant_id}/hook-endpoints",
            body={"provider": provider, "public_key": public_of(self.keyring.box_key)},
        )
        return str(doc["path"])

    def webhooks(self, after: int = 0, limit: int = 100, wait: float = 0.0) -> tuple[list[Webhook], int]:
        """Webhooks received after sequence ``after``, opened; and the new cursor.

        ``wait`` long-polls: the cloud answers as soon as a webhook arrives for the tenant,
        or after ``wait`` seconds (it caps the wait at its ``max_wait``, 30 s by default).
        The caller keeps the cursor and advances it only once it has handled them.
        """
        if not self.keyring.box_key:
            raise SyncError("the tenant keys have no webhook key")
        doc = self._request(
            "GET",
            f"/v1/tenants/{self.tenant_id}/hooks",
            params={"after": after, "limit": limit, "wait": wait},
            timeout=self.timeout + wait,
        )
        out = []
        for item in doc["hooks"]:
            plain = open_sealed(
                self.keyring.box_key, item["sealed"], hook_context(self.tenant_id, item["id"])
            )
            d = json.loads(plain)
            out.append(
                Webhook(
                    int(item["seq"]),
                    item["id"],
                    d["provider"],
                    d["received_at"],
                    d.get("remote"),
                    dict(d["headers"]),
                    base64.b64decode(d["body"]),
                )
            )
        return out, int(doc["cursor"])

    def _open(self, item: dict[str, Any]) -> RemoteEvent | None:
        doc = json.loads(self.keyring.open(item["envelope"], item["id"], item["origin"]))
        _check_shape(doc)
        if doc.get("entity") == KEY_ENTITY:
            # Saved (a file rewrite and fsync) only when new: a restore replays every key.
            if self.keyring.add(doc["data"]["kid"], b64d(doc["data"]["key"])) and self.save_keyring:
                self.save_keyring(self.keyring)
            return None
        hlc = bounded(doc["hlc"], item.get("received_at"))
        if hlc != doc["hlc"]:
            self._skewed[item["origin"]] = self._skewed.get(item["origin"], 0) + 1
        return RemoteEvent(item["id"], hlc, item["origin"], doc["entity"], doc["key"], doc["op"], doc["data"])

    def pull(self, wait: float = 0.0, limit: int = 1000) -> tuple[int, int]:
        """Fetch and apply everything after the cursor. (events received, events applied).

        ``wait`` long-polls the first request. An event that does not open is quarantined
        (kept in the log's meta, counted in the status, logged) and the cursor moves past
        it, in the same transaction as the events applied with it: one bad event from one
        agent must not halt every POP. Nothing is dropped silently.
        """
        received = applied = 0
        cursor = int(self.log.get("sync.cursor") or 0)
        first = True
        while True:
            params = {"after": cursor, "limit": limit, "wait": wait if first else 0}
            doc = self._request(
                "GET",
                f"/v1/tenants/{self.tenant_id}/events",
                params=params,
                timeout=self.timeout + (wait if first else 0),
            )
            first = False
            items, head = doc["events"], int(doc["head"])
            floor = int(doc.get("floor") or 0)
            then_snapshot = False
            if floor > cursor:
                # The events up to the floor were compacted into the newest snapshot. The
                # few kept below it (shared tenant keys, another POP's quarantine) come
                # first, so the snapshot opens with every key; then the snapshot, then on.
                low = [i for i in items if int(i["seq"]) <= floor]
                if len(low) < len(items) or len(items) < limit:
                    items, then_snapshot = low, True
            good: list[RemoteEvent] = []
            keys_seen: list[str] = []
            last = cursor
            meta = {"sync.head": str(head)}
            for item in items:
                try:
                    ev = self._open(item)
                except (SyncError, ValueError, KeyError, TypeError, AttributeError) as exc:
                    bad = self._quarantine(item, exc)
                    meta[QUARANTINE + bad.id] = bad.to_json()
                    ev = None
                if ev is not None:
                    good.append(ev)
                elif QUARANTINE + str(item.get("id")) not in meta:
                    keys_seen.append(str(item["id"]))  # a shared tenant key: never compacted
                last = int(item["seq"])
            meta["sync.cursor"] = str(last)
            if isinstance(doc.get("now"), int | float):
                meta["sync.clock_offset"] = f"{float(doc['now']) - time.time():.1f}"
            if self._skewed:
                meta["sync.skewed_origins"] = json.dumps(self._skewed, sort_keys=True)
            if keys_seen:
                meta[KEY_EVENTS] = self._key_events(keys_seen)
            applied += self.log.apply(good, meta)
            received += len(good)
            cursor = last
            if then_snapshot:
                cursor = self.load_snapshot()
                if cursor < floor:
                    raise SyncError(
                        "the cloud's newest snapshot does not reach its compacted floor; try again later"
                    )
                continue
            if len(items) < limit or cursor >= head:
                return received, applied

    def _quarantine(self, item: dict[str, Any], exc: Exception) -> Quarantined:
        reason = str(exc) if isinstance(exc, SyncError) else "malformed payload"
        bad = Quarantined(
            int(item["seq"]),
            str(item.get("id")),
            str(item.get("origin")),
            str(item.get("envelope")),
            reason,
            time.time(),
        )
        event(log, "sync.quarantined", level=30, id=bad.id, origin=bad.origin, seq=bad.seq, error=reason)
        return bad

    def retry_quarantined(self) -> tuple[int, int]:
        """Open quarantined events again (after a recovery file brought a missing key);
        apply those that open now. (opened, still quarantined)."""
        held = self.log.quarantined()
        good: list[RemoteEvent] = []
        opened: list[str] = []
        for bad in held:
            try:
                ev = self._open({"id": bad.id, "origin": bad.origin, "envelope": bad.envelope})
            except (SyncError, ValueError, KeyError, TypeError, AttributeError):
                continue
            opened.append(bad.id)
            if ev is not None:
                good.append(ev)
        if opened:
            # Applying twice is harmless (event ids are unique), so a crash between the two
            # steps only repeats the retry.
            self.log.apply(good)
            self.log.release(opened)
        return len(opened), len(held) - len(opened)

    def sync_now(self, wait: float = 0.0) -> SyncResult:
        """Push the outbox, then pull and apply. Records the outcome in meta."""
        try:
            pushed = self.push()
            received, applied = self.pull(wait)
            self.redact()  # what the events just applied (an erasure) owe the cloud
        except SyncError as exc:
            self._record(exc)
            raise
        self.log.put({"sync.last_error": "", "sync.last_ok_at": str(time.time())})
        return SyncResult(pushed, received, applied)

    def status(self) -> SyncStatus:
        return status_of(self.log, self.base_url, self.tenant_id)

    def _record(self, exc: SyncError) -> None:
        self.log.put({"sync.last_error": str(exc), "sync.last_error_at": str(time.time())})
        event(log, "sync.failed", error=str(exc))

    def run_pusher(self, stop: threading.Event, poll: float = 0.5, max_backoff: float = 60.0) -> None:
        """Until ``stop``: whenever the outbox is not empty, push it. Backs off on failure."""
        delay = 1.0
        while not stop.is_set():
            try:
                if self.log.backlog()[0]:
                    self.push()
                if self._owes_redactions():
                    self.redact()
                delay = 1.0
                stop.wait(poll)
            except Exception as exc:  # noqa: BLE001 - the puller must outlive any bad batch
                self._record(
                    exc
                    if isinstance(exc, SyncError)
                    else SyncError(f"applying pulled events failed: {type(exc).__name__}: {exc}")
                )
                stop.wait(delay)
                delay = min(delay * 2, max_backoff)

    def run_puller(self, stop: threading.Event, wait: float = 25.0, max_backoff: float = 60.0) -> None:
        """Until ``stop``: long-poll for new events and apply them. Backs off on failure."""
        delay = 1.0
        while not stop.is_set():
            try:
                self.pull(wait=wait)
                self.log.put({"sync.last_error": "", "sync.last_ok_at": str(time.time())})
                delay = 1.0
            except Exception as exc:  # noqa: BLE001 - the puller must outlive any bad batch
                self._record(
                    exc
                    if isinstance(exc, SyncError)
                    else SyncError(f"applying pulled events failed: {type(exc).__name__}: {exc}")
                )
                stop.wait(delay)
                delay = min(delay * 2, max_backoff)


def _check_shape(doc: Any) -> None:
    """A decrypted event must look like one; anything else is a SyncError, never a crash."""
    if not isinstance(doc, dict):
        raise SyncError("a pulled event is not a JSON object")
    for name in ("hlc", "entity", "key", "op"):
        if not isinstance(doc.get(name), str):
            raise SyncError(f"a pulled event has no valid {name!r}")
    if not isinstance(doc.get("data"), dict):
        raise SyncError("a pulled event's data is not an object")


def status_of(log_: EventLog, cloud_url: str, tenant_id: str) -> SyncStatus:
    """Sync status from the log's meta, without contacting the cloud."""
    cursor = int(log_.get("sync.cursor") or 0)
    head = max(int(log_.get("sync.head") or 0), cursor)
    backlog, oldest = log_.backlog()
    ok = log_.get("sync.last_ok_at")
    return SyncStatus(
        cloud_url=cloud_url,
        tenant_id=tenant_id,
        agent_id=log_.agent_id,
        cursor=cursor,
        head=head,
        lag_events=head - cursor,
        backlog=backlog,
        oldest_unpushed_age=(time.time() - oldest) if oldest else None,
        last_ok_at=float(ok) if ok else None,
        last_error=log_.get("sync.last_error") or None,
        quarantined=len(log_.quarantined()),
        clock_offset=float(off) if (off := log_.get("sync.clock_offset")) else None,
        skewed_origins=_skewed_of(log_.get("sync.skewed_origins")),
    )


def _skewed_of(raw: str | None) -> dict[str, int]:
    try:
        return {str(k): int(v) for k, v in json.loads(raw or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _code(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("error", ""))
    except ValueError:
        return ""


def _hint(status: int) -> str:
    return {
        401: ": the cloud does not accept this agent's signature (enrolled? clock right?)",
        403: ": this agent is not allowed to use that tenant",
        413: ": the batch is too large; lower the batch size",
        409: ": the cloud does not know the tenant key id (run `jasiyo tenant init`)",
        422: ": the cloud refused the request as malformed",
    }.get(status, "")
