"""The SMS sender inside `agent run`: drains the ``notifications`` outbox through the gateway.

For each queued message, oldest first, when its time has come (``next_attempt_at``):

* **consent** is checked again at send time (withdrawn since queuing: dropped);
* **stale** messages are dropped and recorded as such: past ``not_after`` (a reminder
  after the expiry it warned of), or a reminder for an expiry the customer has since paid
  past;
* **quiet hours** (``[sms] quiet_start``-``quiet_end`` in ``[billing] timezone``) hold the
  kinds in ``quiet_kinds`` until the morning;
* a **per-minute cap** (``rate_per_minute``) spaces sends;
* the text is rendered from the configured template, its GSM-7/UCS-2 **parts** counted,
  and the row marked ``sending`` (committed) before the gateway is called, then ``sent``
  with the gateway's message id, **cost** and parts.

Failures: a gateway that cannot be reached (connection refused, credentials refused) is an
outage, not a failed message: the queue pauses with backoff and no message uses up an
attempt, so an hour of downtime loses nothing and sends nothing twice. A 5xx, a throttle or
a per-recipient "try later" (insufficient balance) counts an attempt and backs the message
off (``retry_first`` doubling to ``retry_max``); after ``max_attempts`` it is ``failed``. A
final refusal (invalid number, blacklisted) fails it at once. A row left ``sending`` by a
crash is marked failed, never resent blindly (it may have gone out): ``jasiyo sms retry``.

Exactly one POP of a tenant sends: ``[sms] send = true`` and, for a POP enrolled with the
cloud, the one that registered the SMS callback URLs (:func:`not_the_sender`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jasiyo.agent import smsbox
from jasiyo.agent.store import Row, Store
from jasiyo.config import Config
from jasiyo.log import event, get_logger
from jasiyo.sms import get_gateway
from jasiyo.sms import templates as tpl
from jasiyo.sms.base import SmsGateway
from jasiyo.sms.encoding import segments
from jasiyo.sms.errors import GatewayAuthError, GatewayRejected, GatewayUnavailable
from jasiyo.sms.models import OutgoingSms

log = get_logger(__name__)


def gateway(cfg: Config) -> SmsGateway | None:
    if not cfg.sms.configured:
        return None
    return get_gateway(cfg.sms.provider)(cfg.sms.settings(), timeout=cfg.sms.timeout)


def text_of(cfg: Config, row: Row) -> str:
    """The text a message goes out with: the configured template of its kind rendered with
    its variables, else the text it was queued with."""
    raw = row["vars"]
    if not raw:
        return str(row["message"])
    text = tpl.template(cfg.sms.templates, row["kind"], cfg.sms.language)
    if text is None:
        return str(row["message"])
    values: dict[str, Any] = json.loads(raw)
    m = cfg.payments.mpesa
    values.setdefault("paybill", m.till_number or m.shortcode)
    if cfg.sms.pay_link:
        values.setdefault("pay_link", tpl.render(cfg.sms.pay_link, {"account": values.get("account", "")}))
    return tpl.render(text, values)


def quiet_until(cfg: Config, now: float) -> float | None:
    """The end of the quiet hours ``now`` falls in (unix time), or None outside them."""
    start = tpl.clock_minutes(cfg.sms.quiet_start) or 0
    end = tpl.clock_minutes(cfg.sms.quiet_end) or 0
    if start == end:
        return None
    local = datetime.fromtimestamp(now, ZoneInfo(cfg.billing.timezone))
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    until = day + timedelta(minutes=end)
    if until <= local:
        until = (day + timedelta(days=1)).replace(hour=end // 60, minute=end % 60)
    return until.timestamp()


@dataclass
class Pass:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    deferred: int = 0
    outage: bool = False
    limited: bool = False  # stopped by the rate cap: more is due


class Sender:
    """One POP's sender: the gateway, a rate cap and the outbox, one pass at a time."""

    def __init__(self, cfg: Config, store: Store, gw: SmsGateway) -> None:
        self.cfg = cfg
        self.store = store
        self.gw = gw
        # Token bucket: rate_per_minute spread over the minute (a burst of at most one
        # second's worth), so a month-end queue neither floods the gateway nor the CPU
        # RADIUS shares with us.
        self._per_s = cfg.sms.rate_per_minute / 60.0
        self._burst = max(1.0, self._per_s)
        self._tokens = self._burst
        self._at = time.monotonic()

    def recover(self) -> int:
        """Rows a crash left ``sending`` may have gone out: failed, for a person to retry."""
        with self.store.transaction():
            cur = self.store.execute(
                "UPDATE notifications SET status = 'failed', finished_at = ?, detail = "
                "'interrupted while sending; not resent in case it went out (jasiyo sms retry)'"
                " WHERE status = 'sending'",
                (self.store.now(),),
            )
        return cur.rowcount

    def _room(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._per_s)
        self._at = now
        return self._tokens >= 1.0

    def next_slot_in(self) -> float:
        """Seconds until the rate cap allows the next send."""
        return max(0.0, (1.0 - self._tokens) / self._per_s)

    def full_in(self) -> float:
        """Seconds until the rate cap allows a whole burst (one second's worth): a capped
        sender waits this long between passes, so a month-end queue costs one outbox
        query a second, not one per message (the CPU RADIUS shares with us)."""
        return max(0.0, (self._burst - self._tokens) / self._per_s)

    def step(self, limit: int = 200) -> Pass:
        s, cfg, out = self.store, self.cfg, Pass()
        now = s.now()
        # A homed subscriber's messages were queued by one POP only (its home, or the one
        # that took its payment): that POP sends them. A homeless subscriber's are queued by
        # every POP alike: only the tenant's SMS sender (``sms_sender``) sends those.
        homeless = "" if sms_sender(s) else "AND sub.home_pop IS NOT NULL "
        rows = s.all(
            "SELECT n.*, sub.sms_consent AS consent, sub.paid_until AS paid_until, "
            "sub.phone AS current_phone FROM notifications n "
            "LEFT JOIN subscribers sub ON sub.username = n.username "
            "WHERE n.status = 'queued' AND COALESCE(n.next_attempt_at, n.created_at) "
            f"<= ? {homeless}ORDER BY n.created_at, n.id LIMIT ?",
            (now, limit),
        )
        quiet = quiet_until(cfg, now)
        for row in rows:
            why = self._drop_reason(row, now)
            if why:
                self._finish(row, "dropped", why)
                out.dropped += 1
                continue
            if quiet is not None and row["kind"] in cfg.sms.quiet_kinds:
                with s.transaction():
                    s.execute("UPDATE notifications SET next_attempt_at = ? WHERE id = ?", (quiet, row["id"]))
                out.deferred += 1
                continue
            if not self._room():
                out.limited = True
                break
            if not self._send(row, out):
                break  # the gateway is down: stop the pass, nothing used an attempt
        return out

    def _drop_reason(self, row: Row, now: float) -> str:
        if row["consent"] is None:
            return "subscriber removed"
        if not row["consent"]:
            return "no SMS consent"
        if not row["current_phone"]:
            return "no phone number"
        if row["not_after"] is not None and row["not_after"] <= now:
            return "stale: past the time it was useful"
        if row["kind"] == "reminder" and row["vars"]:
            expiry = json.loads(row["vars"]).get("expiry")
            if expiry is not None and (row["paid_until"] or 0) > float(expiry):
                return "stale: already paid past the expiry it warned of"
        return ""

    def _finish(self, row: Row, status: str, detail: str) -> None:
        with self.store.transaction():
            self.store.execute(
                "UPDATE notifications SET status = ?, detail = ?, finished_at = ? WHERE id = ?",
                (status, detail[:300], self.store.now(), row["id"]),
            )
        event(log, f"sms.{status}", key=row["key"], reason=detail)

    def _send(self, row: Row, out: Pass) -> bool:
        s, cfg = self.store, self.cfg
        text = text_of(cfg, row)
        seg = segments(text)
        # The subscriber's current number (a changed phone must not get the old one's text).
        phone = row["current_phone"]
        with s.transaction():
            s.execute(
                "UPDATE notifications SET status = 'sending', attempts = attempts + 1, "
                "phone = ?, text_sent = ?, encoding = ?, parts = ?, gateway = ? WHERE id = ?",
                (phone, text, seg.encoding, seg.parts, self.gw.name, row["id"]),
            )
        self._tokens -= 1.0
        attempts = row["attempts"] + 1
        try:
            result = self.gw.send(OutgoingSms(phone, text, cfg.sms.sender_id, row["key"]))
        except (GatewayAuthError, GatewayUnavailable) as exc:
            outage = isinstance(exc, GatewayAuthError) or not getattr(exc, "sent", True)
            if outage:  # it never reached the gateway: back to the queue as it was
                with s.transaction():
                    s.execute(
                        "UPDATE notifications SET status = 'queued', attempts = ?, detail = ? WHERE id = ?",
                        (row["attempts"], f"gateway down: {exc}"[:300], row["id"]),
                    )
                event(log, "sms.gateway_down", reason=str(exc))
                out.outage = True
                return False
            self._later(row, attempts, str(exc), out)
            return True
        except GatewayRejected as exc:
            self._finish(row, "failed", str(exc))
            out.failed += 1
            return True
        if result.accepted:
            with s.transaction():
                s.execute(
                    "UPDATE notifications SET status = 'sent', sent_at = ?, message_id = ?, "
                    "cost_minor = ?, cost_currency = ?, parts = ?, detail = ? WHERE id = ?",
                    (
                        s.now(),
                        result.message_id or None,
                        result.cost_minor,
                        result.currency or None,
                        result.parts or seg.parts,
                        result.status,
                        row["id"],
                    ),
                )
            event(
                log,
                "sms.sent",
                key=row["key"],
                kind=row["kind"],
                parts=result.parts,
                cost=result.cost_minor,
                encoding=seg.encoding,
            )
            out.sent += 1
        elif result.retryable:
            self._later(row, attempts, f"{result.status_code} {result.status}", out)
        else:
            self._finish(row, "failed", f"refused: {result.status_code} {result.status}")
            out.failed += 1
        return True

    def _later(self, row: Row, attempts: int, why: str, out: Pass) -> None:
        sms = self.cfg.sms
        if attempts >= sms.max_attempts:
            self._finish(row, "failed", f"gave up after {attempts} attempts: {why}")
            out.failed += 1
            return
        delay = min(sms.retry_first * 2 ** (attempts - 1), sms.retry_max)
        with self.store.transaction():
            self.store.execute(
                "UPDATE notifications SET status = 'queued', next_attempt_at = ?, detail = ? WHERE id = ?",
                (self.store.now() + delay, f"retry in {delay:.0f}s: {why}"[:300], row["id"]),
            )
        event(log, "sms.retry", key=row["key"], attempt=attempts, delay=f"{delay:.0f}s", reason=why)
        out.deferred += 1


def sms_sender(store: Store) -> bool:
    """Is this POP the tenant's sender for subscribers without a home POP? Every POP queues
    the same reminders for those (each runs their billing clock), so exactly one sends
    them: the one that registered the tenant's SMS callback URLs (``jasiyo sms urls``),
    which also receives the delivery reports. A stand-alone agent is its own tenant."""
    return not store.meta("sync.tenant_id") or bool(store.meta("sms.url.sms-dlr"))


def not_the_sender(cfg: Config) -> str:
    """Why this POP must not run a sender at all (``""`` if it may): it neither is the
    tenant's sender nor is home to any subscriber (a POP sends its own homed
    subscribers' messages)."""
    store = Store.open(cfg)
    try:
        if sms_sender(store):
            return ""
        me = store.meta("pop.name")
        if me and store.scalar("SELECT 1 FROM subscribers WHERE home_pop = ? LIMIT 1", (me,)):
            return ""
        return (
            "this POP is enrolled, did not register the SMS callback URLs and is home to no "
            "subscriber; the POP that ran `jasiyo sms urls` sends"
        )
    finally:
        store.close()


def why_not_sending(cfg: Config) -> str | None:
    """Why this POP does not send SMS (no provider, ``send = false``, another POP sends),
    or None when it does."""
    if not cfg.sms.configured:
        return "no [sms] provider"
    if not cfg.sms.send:
        return "[sms] send = false (another POP sends)"
    return not_the_sender(cfg) or None


class SmsWorker:
    """The sender thread in `agent run`. Library use: ``w = SmsWorker(cfg); w.start()``."""

    def __init__(self, cfg: Config, *, poll: float = 1.0) -> None:
        self.cfg = cfg
        self.poll = poll
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        why = why_not_sending(self.cfg)
        if why:
            event(log, "sms.disabled", reason=why)
            return
        self._thread = threading.Thread(target=self._run, name="jasiyo-sms", daemon=True)
        self._thread.start()
        event(log, "sms.start", provider=self.cfg.sms.provider, rate_per_minute=self.cfg.sms.rate_per_minute)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """The sender loop in the calling thread, until :meth:`stop` (``jasiyo.agent.smsproc``
        runs it in a process of its own)."""
        self._run()

    def _run(self) -> None:
        store = Store.open(self.cfg)
        gw = gateway(self.cfg)
        assert gw is not None
        sender = Sender(self.cfg, store, gw)
        backoff = 1.0
        try:
            sender.recover()
            while not self._stop.is_set():
                self.wake.clear()
                try:
                    smsbox.process_new(store, gw)
                    result = sender.step()
                except Exception as exc:  # one bad row must not stop every message
                    log.exception("sms sender pass failed: %s", exc)
                    result = Pass(outage=True)
                if result.outage:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 60.0)
                    continue
                backoff = 1.0
                if result.limited:
                    self._stop.wait(max(0.01, sender.next_slot_in(), sender.full_in()))
                    continue
                if result.sent or result.dropped:
                    continue  # more may be due: no pause while draining
                self.wake.wait(self.poll)
        finally:
            gw.close()
            store.close()
