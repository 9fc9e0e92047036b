"""What `jasiyo sms ...` does: one message, a broadcast, retries, the callback URLs.

Every path queues through ``notify.queue`` and so needs recorded consent and a phone; the
sender checks consent again when it sends.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jasiyo.agent import charge, collect, notify, smsbox
from jasiyo.agent.ledger import subscriber_row
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ConfigError, ValidationError
from jasiyo.network import Status
from jasiyo.sms.encoding import segments
from jasiyo.sync.ids import uuid7

MAX_TEXT = 918  # six GSM-7 parts: longer is a letter, not a text message


def _check_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValidationError("the message is empty")
    if len(text) > MAX_TEXT:
        raise ValidationError(f"the message has {len(text)} characters; at most {MAX_TEXT}")
    return text


def send_one(store: Store, username: str, text: str, actor: str) -> bool:
    """Queue ``text`` for one subscriber; ValidationError without consent or phone."""
    text = _check_text(text)
    with store.transaction():
        sub = subscriber_row(store, username)
        if not sub["sms_consent"]:
            raise ValidationError(
                f"{username} has not consented to SMS; nothing queued "
                "(record consent with `jasiyo subscriber update "
                f"{username} --sms-consent`)"
            )
        if not sub["phone"]:
            raise ValidationError(f"{username} has no phone number; nothing queued")
        added = notify.queue(store, sub, "manual", f"manual:{uuid7()}", text, store.now())
        store.audit(actor, "sms.send", f"subscriber:{username}")
    return added


@dataclass(frozen=True, slots=True)
class Broadcast:
    recipients: int
    skipped_no_consent: int
    parts_each: int
    encoding: str
    estimated_cost_minor: int | None
    currency: str
    queued: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _part_cost(store: Store) -> tuple[int | None, str]:
    row = store.one(
        "SELECT SUM(cost_minor) AS c, SUM(parts) AS p, MAX(cost_currency) AS cur "
        "FROM notifications WHERE cost_minor IS NOT NULL AND parts > 0"
    )
    if row is None or not row["p"]:
        return None, ""
    return round(row["c"] / row["p"]), row["cur"] or ""


def broadcast(
    store: Store,
    text: str,
    actor: str,
    *,
    plan: str | None = None,
    status: str | None = None,
    dry_run: bool = False,
) -> Broadcast:
    """Queue ``text`` for every consenting subscriber on ``plan`` / with ``status``."""
    text = _check_text(text)
    if not plan and not status:
        raise ValidationError("give --plan or --status: a broadcast to everyone is a mistake")
    if status:
        try:
            Status(status)
        except ValueError:
            raise ValidationError(
                f"bad status {status!r}: use active, grace, suspended or terminated"
            ) from None
    where, args = ["s.phone IS NOT NULL", "s.phone != ''"], []
    if plan:
        if store.scalar("SELECT 1 FROM plans WHERE name = ?", (plan,)) is None:
            raise ValidationError(f"no plan named {plan!r}")
        where.append("p.name = ?")
        args.append(plan)
    if status:
        where.append("s.status = ?")
        args.append(status)
    base = (
        "SELECT s.*, p.name AS plan FROM subscribers s JOIN plans p ON p.id = s.plan_id "
        f"WHERE {' AND '.join(where)}"
    )
    everyone = store.all(base, tuple(args))
    chosen = [r for r in everyone if r["sms_consent"]]
    seg = segments(text)
    part_cost, currency = _part_cost(store)
    cost = None if part_cost is None else part_cost * seg.parts * len(chosen)
    if not dry_run:
        tag = uuid7()
        with store.transaction():
            now = store.now()
            for sub in chosen:
                notify.queue(store, sub, "broadcast", f"broadcast:{tag}:{sub['username']}", text, now)
            store.audit(actor, "sms.broadcast", f"plan:{plan or '*'}", status=status, recipients=len(chosen))
    return Broadcast(
        len(chosen), len(everyone) - len(chosen), seg.parts, seg.encoding, cost, currency, not dry_run
    )


def retry(store: Store, key: str | None = None) -> int:
    """Queue failed messages again (one by key, else every failed one that is not stale)."""
    with store.transaction():
        now = store.now()
        sql = (
            "UPDATE notifications SET status = 'queued', attempts = 0, next_attempt_at = ?, "
            "detail = 'retry requested' WHERE status = 'failed' "
            "AND (not_after IS NULL OR not_after > ?)"
        )
        args: tuple[Any, ...] = (now, now)
        if key:
            sql += " AND key = ?"
            args += (key,)
        count = store.execute(sql, args).rowcount
    if key and not count:
        raise ValidationError(f"no failed message {key!r} that can still be sent")
    return count


def callback_urls(store: Store, cfg: Config, register: Any = None) -> dict[str, str]:
    """The delivery-report and incoming-message URLs for the gateway's dashboard: the
    tenant's cloud endpoints (registered once, remembered) or this agent's listener."""
    out = {}
    for base in smsbox.ENDPOINTS:
        url = store.meta(f"sms.url.{base}")
        if not url and register is not None:
            url = register(f"{base}-{collect.agent_suffix(store)}")
            with store.transaction():
                store.set_meta(f"sms.url.{base}", url)
        if not url and cfg.web.public_url:
            url = (
                f"{cfg.web.public_url.rstrip('/')}/hooks/{charge.local_token(store)}/"
                f"{smsbox.LOCAL_PATHS[base]}"
            )
        if not url:
            raise ConfigError(
                "no callback URL for SMS: enrol this agent with the cloud, or set "
                "[web] public_url to how the internet reaches this agent"
            )
        out[base] = str(url)
    return out
