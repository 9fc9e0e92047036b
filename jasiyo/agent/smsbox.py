"""Delivery reports and replies in: kept in ``sms_inbox`` first, then applied.

Africa's Talking posts delivery reports and incoming messages to URLs set in its dashboard:
the tenant's cloud webhook endpoints ``sms-dlr-<suffix>`` / ``sms-in-<suffix>`` (sealed by
the cloud like payment callbacks, pulled by the same puller) or this agent's own listener
(``/hooks/<token>/sms-dlr``, ``/hooks/<token>/sms-in``). Each is kept sealed (they hold
phone numbers) keyed by its source, so a repeat is a no-op, then processed:

* a **delivery report** marks the message it names (by the gateway's ``messageId``)
  delivered or failed; a report for a message we never sent changes nothing, so every POP
  applies every report (each to its own messages), whichever POP registered the URLs;
* an **incoming message** whose first word is an opt-out keyword (STOP, ACHA, ...) withdraws
  the consent of every subscriber with that phone at once (recorded with time and source);
  an opt-in keyword (START, ANZA, ...) gives it back. Other texts are kept for the ISP.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass

from jasiyo.agent import collect, consent
from jasiyo.agent.store import Store
from jasiyo.errors import ValidationError
from jasiyo.log import event, get_logger
from jasiyo.phones import normalize
from jasiyo.sms.base import SmsGateway
from jasiyo.sms.errors import SmsError
from jasiyo.sms.models import Delivery, DeliveryReport, IncomingSms
from jasiyo.sync.ids import uuid7

log = get_logger(__name__)
#: Endpoint base -> the callback kind given to ``parse_callback``.
ENDPOINTS = {"sms-dlr": "dlr", "sms-in": "incoming"}
#: The path segment on this agent's own listener.
LOCAL_PATHS = {"sms-dlr": "sms-dlr", "sms-in": "sms-in"}
#: First word of a reply, upper-cased. Swahili: acha (stop), sitisha (discontinue),
#: simamisha (halt), ondoa (remove me); anza (start), endelea (continue), rudisha (restore).
OPT_OUT = frozenset(
    {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "OPTOUT",
        "ACHA",
        "SITISHA",
        "SIMAMISHA",
        "ONDOA",
    }
)
OPT_IN = frozenset({"START", "UNSTOP", "SUBSCRIBE", "ANZA", "ENDELEA", "RUDISHA"})
MAX_BODY = collect.MAX_BODY


def is_sms_endpoint(name: str) -> bool:
    return any(name == b or name.startswith(b + "-") for b in ENDPOINTS)


def _split(store: Store, name: str) -> tuple[str, bool] | None:
    for base in ENDPOINTS:
        if name == base:
            return base, True
        if name.startswith(base + "-"):
            return base, name[len(base) + 1 :] == collect.agent_suffix(store)
    return None


def receive(
    store: Store,
    *,
    source: str,
    endpoint: str,
    headers: Mapping[str, str],
    body: bytes,
    received_at: float,
    remote: str | None = None,
) -> int | None:
    """Keep one callback (idempotent on ``source``); the inbox id or None if kept before.
    Runs in the caller's transaction if there is one."""
    detail: str | None
    split = _split(store, endpoint)
    if split is None:
        kind, status, detail = "unknown", "refused", "unknown endpoint"
    else:
        base, ours = split
        kind = ENDPOINTS[base]
        # A delivery report names one message by the gateway's id: every POP applies it to
        # the messages it sent (the POP that registered the URLs is not the only sender,
        # issue 17); a reply changes consent, so only the POP that registered takes it.
        mine = ours or kind == "dlr"
        status, detail = ("new", None) if mine else ("other_pop", "registered by another POP")
    if len(body) > MAX_BODY:
        status, detail, body = "refused", f"body of {len(body)} bytes is too large", b""
    doc = json.dumps(
        {"headers": {k.lower(): v for k, v in headers.items()}, "body": base64.b64encode(body).decode()}
    )
    with store.transaction():
        if store.one("SELECT 1 FROM sms_inbox WHERE source = ?", (source,)):
            return None
        cur = store.execute(
            "INSERT INTO sms_inbox (source, endpoint, kind, received_at, remote, sealed, "
            "status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                source,
                endpoint,
                kind,
                received_at,
                remote,
                store.seal(doc, f"sms-inbox:{source}"),
                status,
                detail,
            ),
        )
        return cur.lastrowid


def receive_local(
    store: Store, endpoint: str, headers: Mapping[str, str], body: bytes, remote: str | None
) -> int | None:
    return receive(
        store,
        source=f"local:{uuid7()}",
        endpoint=endpoint,
        headers=headers,
        body=body,
        received_at=store.now(),
        remote=remote,
    )


@dataclass(frozen=True, slots=True)
class Processed:
    reports: int = 0
    replies: int = 0
    refused: int = 0


def process_new(store: Store, gateway: SmsGateway, limit: int = 200) -> Processed:
    """Apply every new inbox item; each ends ``done`` or ``refused`` with the reason."""
    reports = replies = refused = 0
    for row in store.all("SELECT * FROM sms_inbox WHERE status = 'new' ORDER BY id LIMIT ?", (limit,)):
        doc = json.loads(store.unseal(row["sealed"], f"sms-inbox:{row['source']}"))
        body = base64.b64decode(doc["body"])
        try:
            parsed = gateway.parse_callback(row["kind"], doc["headers"], body)
        except SmsError as exc:
            _finish(store, row["id"], "refused", str(exc))
            event(log, "sms.callback_refused", endpoint=row["endpoint"], reason=str(exc))
            refused += 1
            continue
        with store.transaction():
            if isinstance(parsed, DeliveryReport):
                detail = apply_report(store, parsed)
                reports += 1
            else:
                detail = apply_reply(store, parsed, row["source"])
                replies += 1
            _finish(store, row["id"], "done", detail)
    return Processed(reports, replies, refused)


def _finish(store: Store, item: int, status: str, detail: str) -> None:
    store.execute(
        "UPDATE sms_inbox SET status = ?, detail = ?, processed_at = ? WHERE id = ?",
        (status, detail[:300], store.now(), item),
    )


def apply_report(store: Store, report: DeliveryReport) -> str:
    row = store.one("SELECT id, key, status FROM notifications WHERE message_id = ?", (report.message_id,))
    if row is None:
        return "no message with this id"
    if report.delivery is Delivery.PENDING or row["status"] == "delivered":
        return f"{report.status}: no change"
    now = store.now()
    if report.delivery is Delivery.DELIVERED:
        store.execute(
            "UPDATE notifications SET status = 'delivered', finished_at = ?, detail = ? WHERE id = ?",
            (now, report.status, row["id"]),
        )
    else:
        store.execute(
            "UPDATE notifications SET status = 'failed', finished_at = ?, detail = ? WHERE id = ?",
            (now, f"not delivered: {report.reason or report.status}"[:300], row["id"]),
        )
    event(log, "sms.delivery", key=row["key"], delivery=report.delivery.value, status=report.status)
    return f"{row['key']}: {report.delivery.value}"


def keyword(text: str) -> str:
    words = text.strip().split()
    return words[0].strip(".!,;:").upper() if words else ""


def apply_reply(store: Store, msg: IncomingSms, source: str) -> str:
    word = keyword(msg.text)
    if word not in OPT_OUT and word not in OPT_IN:
        event(log, "sms.reply", keyword=word[:20] or "(empty)")
        return "reply kept (no keyword)"
    given = word in OPT_IN
    try:
        phone = normalize(msg.phone, store.country)
    except ValidationError:  # a number we cannot read names nobody
        return f"{word}: unreadable number"
    users = [
        r["username"]
        for r in store.all("SELECT username FROM subscribers WHERE phone = ? ORDER BY username", (phone,))
    ]
    changed = 0
    for username in users:
        if (
            consent.set_consent(
                store, username, given, "keyword", f"sms:{phone}", source=f"{word} via {source}"
            )
            is not None
        ):
            changed += 1
    return f"{word}: consent {'given' if given else 'withdrawn'} for {changed} of {len(users)}"
