"""The billing clock: prepaid expiry and renewal, postpaid invoicing, grace, suspension.

State machine per subscriber (``subscribers.status``)::

    active --(prepaid expiry, no wallet / postpaid invoice overdue)--> grace
    grace  --(grace days over)--> suspended --(terminate_after_days)--> terminated
    grace/suspended --(payment covers what is due)--> active

Rules the code keeps:

- **Event time, not tick time.** :func:`advance` applies every transition of a subscriber
  that fell due at or before ``now``, in order, each stamped with the time it fell due.
  An agent that was off for three days therefore writes the same ledger, invoices and
  status history as one that ticked every minute, and applies each transition once.
- **Due rows only.** ``billing_state.next_action_at`` (indexed) holds when a subscriber next
  needs attention; :func:`tick` selects ``next_action_at <= now`` and nothing else. Store
  triggers pull it to "now" whenever plan, status, paid-through time or consent change.
- **Manual suspension is a person's decision.** A subscriber suspended by hand
  (``manual_suspend``) has no billing clock: payments are credited to the wallet but do not
  restore service and buy nothing; ``subscriber resume`` lifts it, after which the normal
  rules apply at once (an expired prepaid subscriber with no wallet is suspended again).
- **Terminated is final for automation**: payments go to the wallet, nothing is restored.
- Prepaid grace is the plan's ``grace_days`` (default none: suspended at expiry); postpaid
  grace is the plan's, else ``[billing] grace_days``. Grace counts from when it starts.
- Tax (the plan's rate) is added on top of the price of every invoiced period.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jasiyo.agent import invoices, ledger, notify
from jasiyo.agent import plans as plans_mod
from jasiyo.agent import subscribers as subs_mod
from jasiyo.agent.cycles import DAY, local_day, period_end, prorate, round_div
from jasiyo.agent.store import Row, Store
from jasiyo.config import BillingSection, Config
from jasiyo.errors import BillingError, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.money import format_money
from jasiyo.network import Status
from jasiyo.sync.ids import uuid7

log = get_logger(__name__)

ACTOR = "billing"
#: A subscriber whose advance failed is looked at again after this long (seconds).
RETRY_AFTER = 300.0
#: Upper bound on transitions applied to one subscriber in one call (a guard, not a rule).
MAX_STEPS = 2000


@dataclass
class TickReport:
    """What one tick did. ``transitions`` counts new statuses (``{"suspended": 3}``)."""

    at: float
    examined: int = 0
    invoices: int = 0
    renewals: int = 0
    reminders: int = 0
    fup_on: int = 0
    errors: int = 0
    transitions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=8)
def _tz(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def grace_days(sub: Row, bcfg: BillingSection) -> int:
    if sub["grace_days"] is not None:
        return int(sub["grace_days"])
    return bcfg.grace_days if sub["billing"] == "postpaid" else 0


def _state(store: Store, sub_id: int) -> Row:
    row = store.one("SELECT * FROM billing_state WHERE subscriber_id = ?", (sub_id,))
    if row is None:  # a subscriber written before the trigger existed (or by hand)
        store.execute("INSERT INTO billing_state (subscriber_id) VALUES (?)", (sub_id,))
        row = {"subscriber_id": sub_id, "next_action_at": None, "cycle_end": None,
               "anchor_day": None, "reminded_until": None, "fup_until": None}
    return row


def _set_state(store: Store, sub_id: int, **values: Any) -> None:
    store.execute(
        f"UPDATE billing_state SET {', '.join(f'{k} = ?' for k in values)} "
        "WHERE subscriber_id = ?", (*values.values(), sub_id),
    )


def _sub(store: Store, sub_id: int) -> Row:
    row = store.one(
        "SELECT s.*, p.name AS plan, p.price_minor, p.currency, p.period, p.billing, "
        "p.grace_days, p.tax_rate_bp, p.tax_inclusive, p.quota_bytes, p.fup_rate "
        "FROM subscribers s JOIN plans p ON p.id = s.plan_id WHERE s.id = ?", (sub_id,),
    )
    if row is None:
        raise BillingError(f"subscriber #{sub_id} disappeared during billing")
    return row


# ------------------------------------------------------------------ what is due next


@dataclass(frozen=True, slots=True)
class _Event:
    at: float
    order: int
    kind: str
    arg: int = 0


def _next_event(store: Store, cfg: Config, sub: Row, st: Row, now: float) -> _Event | None:
    """The earliest transition this subscriber is waiting for, or None (nothing scheduled)."""
    if sub["manual_suspend"]:
        return None
    status = sub["status"]
    changed = sub["status_changed_at"] or sub["created_at"]
    b = cfg.billing
    if status == "terminated":
        return None
    if status == "suspended":
        if _nothing_owed(store, sub, now):
            return _Event(max(changed, now), 0, "restore")
        if b.terminate_after_days > 0:
            return _Event(changed + b.terminate_after_days * DAY, 5, "terminate")
        return None
    if sub["billing"] == "prepaid":
        ev = _next_prepaid(cfg, sub, st, status, changed, now)
    else:
        ev = _next_postpaid(store, cfg, sub, st, status, changed, now)
    if sub["fup_active"] and st.get("fup_until") is not None:
        reset = _Event(st["fup_until"], -1, "fup_reset")
        ev = reset if ev is None or (reset.at, reset.order) < (ev.at, ev.order) else ev
    return ev


def _next_prepaid(
    cfg: Config, sub: Row, st: Row, status: str, changed: float, now: float,
) -> _Event | None:
    paid_until = sub["paid_until"]
    if paid_until is None:
        return None  # billing starts with the first payment (imports keep working)
    if status == "grace":
        if paid_until > now:
            return _Event(max(changed, now), 0, "restore")
        return _Event(changed + grace_days(sub, cfg.billing) * DAY, 4, "grace_end")
    events = [_Event(max(paid_until, changed), 3, "expire")]
    if sub["sms_consent"] and sub["phone"]:
        done = st["reminded_until"] if st["reminded_until"] is not None else float("-inf")
        for days in cfg.billing.reminder_days:
            t = paid_until - days * DAY
            if done < t < paid_until:
                events.append(_Event(t, 1, "remind", days))
    return min(events, key=lambda e: (e.at, e.order))


def _next_postpaid(
    store: Store, cfg: Config, sub: Row, st: Row, status: str, changed: float, now: float,
) -> _Event | None:
    start = st["cycle_end"]
    if start is None:
        # First postpaid cycle: from sign-up, but never over time already charged (a plan
        # that was prepaid, or invoices from before): cycles must not overlap.
        last = store.scalar("SELECT MAX(cycle_end) FROM invoices WHERE subscriber_id = ? "
                            "AND status != 'void'", (sub["id"],))
        start = max(sub["created_at"], last or 0.0, sub["paid_until"] or 0.0)
    if status in ("active", "grace") and sub["status_reason"] == "resumed" and start < changed:
        # Resumed after a suspension that outlived the cycle: no invoices for the suspended
        # time; the next cycle starts at the resume.
        return _Event(changed, -2, "restart")
    events = [_Event(start, 0, "invoice")]
    oldest = invoices.oldest_open(store, sub["id"])
    if status == "active" and oldest is not None:
        events.append(_Event(max(oldest["due_at"], changed), 2, "overdue"))
    if status == "grace":
        if oldest is None or oldest["due_at"] > now:
            events.append(_Event(max(changed, now), 1, "restore"))
        else:
            events.append(_Event(changed + grace_days(sub, cfg.billing) * DAY, 4, "grace_end"))
    return min(events, key=lambda e: (e.at, e.order))


def _nothing_owed(store: Store, sub: Row, now: float) -> bool:
    """True when a (non-manually) suspended subscriber has paid what suspended them."""
    if sub["billing"] == "prepaid":
        return sub["paid_until"] is not None and sub["paid_until"] > now
    overdue = store.scalar(
        "SELECT 1 FROM invoices WHERE subscriber_id = ? AND status = 'open' AND due_at <= ?",
        (sub["id"], now),
    )
    return overdue is None and sub["status_reason"] != "manual"


# ------------------------------------------------------------------ applying transitions


def _transition(store: Store, sub: Row, status: Status, reason: str, at: float,
                report: TickReport | None) -> None:
    subs_mod.set_status(store, sub["username"], status, ACTOR, reason, at=at)
    if report is not None:
        report.transitions[status.value] = report.transitions.get(status.value, 0) + 1
    event(log, "billing.transition", user=sub["username"], old=sub["status"], new=status.value,
          reason=reason)
    if status is Status.SUSPENDED:
        notify.queue(
            store, sub, "suspension", f"suspension:{sub['username']}:{int(at)}",
            f"Your {sub['plan']} internet service is suspended ({reason}). "
            f"Pay to restore it; it comes back within a minute of payment.", at,
            values={"name": sub["name"] or sub["username"], "plan": sub["plan"],
                    "reason": reason, "account": sub["username"],
                    "amount": format_money(invoices.cost(sub)[2], sub["currency"])},
        )


def _reset_fup(store: Store, sub: Row) -> None:
    """A new cycle starts with a fresh quota: the fair-usage throttle is lifted."""
    _set_state(store, sub["id"], fup_until=None)
    if sub["fup_active"]:
        store.execute("UPDATE subscribers SET fup_active = 0, updated_at = ? WHERE id = ?",
                           (store.now(), sub["id"]))
        store.emit("subscriber", sub["username"], "upsert", {"fup_active": False})
        store.audit(ACTOR, "subscriber.fup", f"subscriber:{sub['username']}", active=False)


def _set_paid_until(store: Store, sub: Row, value: float | None) -> None:
    store.execute("UPDATE subscribers SET paid_until = ?, updated_at = ? WHERE id = ?",
                       (value, store.now(), sub["id"]))
    store.emit("subscriber", sub["username"], "upsert", {"paid_until": value})


def _cycle_key(sub: Row, start: float) -> str:
    """The purchase a cycle the clock bills is: the same at every POP, so a cycle billed by
    two POPs at once (a subscriber handed over before they synced) is charged once and its
    second invoice voided as a duplicate (``fold._one_document_per_purchase``)."""
    return f"cycle:{sub['username']}:{int(start)}"


def _run_clock_event(store: Store, cfg: Config, sub: Row, st: Row, ev: _Event,
           report: TickReport | None) -> None:
    tz = _tz(cfg.billing.timezone)
    if ev.kind == "remind":
        expiry = sub["paid_until"]
        _, _, total = invoices.cost(sub)
        # No reminder when the wallet will renew the period anyway.
        covered = total > 0 and ledger.balance(store, sub["id"]) >= total
        added = not covered and notify.queue(
            store, sub, "reminder", f"reminder:{sub['username']}:{int(expiry)}:{ev.arg}",
            f"Your {sub['plan']} internet expires in {ev.arg} day(s), on "
            f"{datetime.fromtimestamp(expiry, tz):%Y-%m-%d %H:%M}. "
            f"Pay {format_money(total, sub['currency'])} to stay connected.",
            ev.at, not_after=expiry,
            values={"name": sub["name"] or sub["username"], "plan": sub["plan"],
                    "amount": format_money(total, sub["currency"]), "days": ev.arg,
                    "due_date": f"{datetime.fromtimestamp(expiry, tz):%Y-%m-%d %H:%M}",
                    "account": sub["username"], "expiry": expiry},
        )
        _set_state(store, sub["id"], reminded_until=ev.at)
        if report is not None and added:
            report.reminders += 1
    elif ev.kind == "expire":
        _, _, total = invoices.cost(sub)
        if total > 0 and ledger.balance(store, sub["id"]) >= total:
            start = ev.at
            fresh = start != sub["paid_until"]
            anchor = local_day(start, tz) if fresh or st["anchor_day"] is None else st["anchor_day"]
            end = period_end(start, sub["period"], tz, anchor)
            invoices.issue(store, cfg, sub, start, end, at=start, due_at=start, paid=True,
                           purchase=_cycle_key(sub, start))
            _set_paid_until(store, sub, end)
            _set_state(store, sub["id"], anchor_day=anchor, reminded_until=start)
            _reset_fup(store, sub)
            if report is not None:
                report.renewals += 1
                report.invoices += 1
        elif grace_days(sub, cfg.billing) > 0:
            _transition(store, sub, Status.GRACE, "expired", ev.at, report)
        else:
            _transition(store, sub, Status.SUSPENDED, "expired", ev.at, report)
    elif ev.kind == "invoice":
        start = ev.at
        anchor = st["anchor_day"] or local_day(start, tz)
        end = period_end(start, sub["period"], tz, anchor)
        due = start + cfg.billing.invoice_due_days * DAY
        invoices.issue(store, cfg, sub, start, end, at=start, due_at=due,
                       purchase=_cycle_key(sub, start))
        _set_state(store, sub["id"], cycle_end=end, anchor_day=anchor)
        invoices.settle(store, sub, start)
        _reset_fup(store, sub)
        if report is not None:
            report.invoices += 1
    elif ev.kind == "overdue":
        oldest = invoices.oldest_open(store, sub["id"])
        reason = f"invoice {oldest['number']} overdue" if oldest else "invoice overdue"
        if grace_days(sub, cfg.billing) > 0:
            _transition(store, sub, Status.GRACE, reason, ev.at, report)
        else:
            _transition(store, sub, Status.SUSPENDED, reason, ev.at, report)
    elif ev.kind == "grace_end":
        _transition(store, sub, Status.SUSPENDED, "grace period ended", ev.at, report)
    elif ev.kind == "terminate":
        _transition(store, sub, Status.TERMINATED,
                    f"suspended for {cfg.billing.terminate_after_days} days", ev.at, report)
    elif ev.kind == "fup_reset":
        _reset_fup(store, sub)
    elif ev.kind == "restart":
        _set_state(store, sub["id"], cycle_end=ev.at, anchor_day=local_day(ev.at, tz))
    elif ev.kind == "restore":
        _restore(store, sub, st, ev.at, tz, report)
    else:  # pragma: no cover - our bug
        raise BillingError(f"unknown billing event {ev.kind!r}")


def _restore(store: Store, sub: Row, st: Row, at: float, tz: ZoneInfo,
             report: TickReport | None) -> None:
    _transition(store, sub, Status.ACTIVE, "payment received", at, report)
    if sub["billing"] == "postpaid" and st["cycle_end"] is not None and st["cycle_end"] < at:
        # No invoices were issued while suspended; the next cycle starts on restoring.
        _set_state(store, sub["id"], cycle_end=at, anchor_day=local_day(at, tz))


def advance(store: Store, cfg: Config, sub_id: int, now: float,
            report: TickReport | None = None) -> float | None:
    """Apply, in order, every transition of one subscriber due at or before ``now``.

    Runs in one transaction; reschedules ``next_action_at`` to the next thing due (or None).
    Returns that time.
    """
    with store.transaction():
        for _ in range(MAX_STEPS):
            sub = _sub(store, sub_id)
            st = _state(store, sub_id)
            ev = _next_event(store, cfg, sub, st, now)
            if ev is None or ev.at > now:
                nxt = ev.at if ev else None
                _set_state(store, sub_id, next_action_at=nxt)
                return nxt
            _run_clock_event(store, cfg, sub, st, ev, report)
        raise BillingError(f"subscriber {sub['username']!r}: too many billing steps at once")


def _merge(into: TickReport, part: TickReport) -> None:
    for name in ("invoices", "renewals", "reminders"):
        setattr(into, name, getattr(into, name) + getattr(part, name))
    for status, n in part.transitions.items():
        into.transitions[status] = into.transitions.get(status, 0) + n


def tick(store: Store, cfg: Config, now: float | None = None, batch: int = 100) -> TickReport:
    """One run of the billing clock at ``now`` (default: the store's clock).

    Idempotent and catch-up safe: only due subscribers are read (an indexed range), and
    running it twice at the same ``now`` changes nothing the second time. Subscribers are
    committed ``batch`` at a time (one write lock held briefly, not one commit each); a
    subscriber that fails rolls back alone (a savepoint) and is retried later. Also turns
    the fair-usage throttle on where quotas ran out.
    """
    from jasiyo.agent import pops, usage

    started = time.perf_counter()
    now = store.now() if now is None else now
    report = TickReport(at=now)
    # Only subscribers homed here (or homeless): another POP's are its to bill.
    me = pops.local(store)
    while True:
        ids = [r[0] for r in store.execute(
            "SELECT b.subscriber_id FROM billing_state b JOIN subscribers s "
            "ON s.id = b.subscriber_id WHERE b.next_action_at <= ? AND "
            f"{pops.owned_sql('s')} ORDER BY b.next_action_at, b.subscriber_id LIMIT ?",
            (now, me, me, batch)).fetchall()]
        if not ids:
            break
        with store.transaction():
            for sub_id in ids:
                report.examined += 1
                part = TickReport(at=now)
                try:
                    advance(store, cfg, sub_id, now, part)  # a savepoint inside the batch
                except Exception as exc:  # noqa: BLE001 - one bad row must not stop the clock for all
                    report.errors += 1
                    event(log, "billing.error", logging.ERROR, subscriber_id=sub_id,
                          error=repr(exc))
                    _set_state(store, sub_id, next_action_at=now + RETRY_AFTER)
                else:
                    _merge(report, part)
    report.fup_on = usage.check_quotas(store, now)
    from jasiyo.agent.hotspot import enforce_limits

    enforce_limits(store, now)  # packages over their time or data: Disconnect (a backstop)
    report.seconds = time.perf_counter() - started
    if report.examined or report.fup_on or report.errors:
        event(log, "billing.tick", examined=report.examined, invoices=report.invoices,
              renewals=report.renewals, reminders=report.reminders, fup_on=report.fup_on,
              errors=report.errors, seconds=f"{report.seconds:.3f}",
              **{f"to_{k}": v for k, v in report.transitions.items()})
    return report


# ------------------------------------------------------------------ payments and plan changes


def apply_payment(store: Store, cfg: Config, sub_id: int, now: float,
                  reference: str | None = None) -> tuple[int, bool]:
    """After money came in: buy prepaid periods / settle invoices, restore if now covered.

    Runs inside the payment's transaction. Returns (periods bought, restored). With the
    payment's ``reference``, each period bought is a purchase of that payment
    (``<reference>#1``, ``#2``...): the same receipt applied at two POPs before they synced
    buys once, because both charges carry the same key (see ``invoices.issue``).
    """
    sub = _sub(store, sub_id)
    st = _state(store, sub_id)
    tz = _tz(cfg.billing.timezone)
    # Money settles invoices whatever the status. A prepaid subscriber has open invoices only
    # from postpaid time before a switch; the time they cover counts once paid.
    settled = invoices.settle(store, sub, now)
    if sub["billing"] == "prepaid" and settled:
        through = store.scalar(
            f"SELECT MAX(cycle_end) FROM invoices WHERE subscriber_id = ? AND number IN "
            f"({', '.join('?' * len(settled))})", (sub_id, *settled))
        if through is not None and through > now and (
                sub["paid_until"] is None or through > sub["paid_until"]):
            _set_paid_until(store, sub, through)
            sub = _sub(store, sub_id)
    if sub["manual_suspend"] or sub["status"] == "terminated":
        return 0, False
    bought = 0
    if sub["billing"] == "prepaid":
        _, _, total = invoices.cost(sub)
        paid_until = sub["paid_until"]
        bal = ledger.balance(store, sub_id)
        anchor = st["anchor_day"]
        fresh = paid_until is None or paid_until <= now
        while total > 0 and bal >= total:
            start = paid_until if paid_until is not None and paid_until > now else now
            if start == now:
                anchor = local_day(now, tz)
            end = period_end(start, sub["period"], tz, anchor)
            invoices.issue(store, cfg, sub, start, end, at=now, due_at=now, paid=True,
                           purchase=f"{reference}#{bought + 1}" if reference else None)
            paid_until, bal, bought = end, bal - total, bought + 1
        if bought:
            _set_paid_until(store, sub, paid_until)
            _set_state(store, sub_id, anchor_day=anchor, reminded_until=now)
            if fresh:
                _reset_fup(store, sub)
    return bought, _restore_if_clear(store, cfg, sub_id, now)


def _restore_if_clear(store: Store, cfg: Config, sub_id: int, now: float) -> bool:
    """Restore a subscriber suspended or in grace for non-payment once nothing is owed."""
    sub = _sub(store, sub_id)
    if sub["manual_suspend"] or sub["status"] not in ("grace", "suspended"):
        return False
    if not _nothing_owed(store, sub, now):
        return False
    _restore(store, sub, _state(store, sub_id), now, _tz(cfg.billing.timezone), None)
    return True


def rate_for_cycle(total_minor: int, period: str, cycle_start: float, cycle_end: float,
                   tz: ZoneInfo, anchor_day: int | None = None) -> int:
    """What a whole ``[cycle_start, cycle_end)`` cycle costs at ``total_minor`` per ``period``.

    A plan's price is for one of its own periods. Over a cycle of another length it costs
    ``total x cycle length / period length``, rounded half up to the minor unit; the period's
    length is measured from the cycle's start (so a month is the calendar month starting
    there). A period that reproduces the cycle's bounds costs exactly ``total_minor``.
    """
    length = round(cycle_end - cycle_start)
    if abs(period_end(cycle_start, period, tz, anchor_day) - cycle_end) < 1:
        return total_minor  # the cycle is one of this period (a month keeps its anchor day)
    own = round(period_end(cycle_start, period, tz) - cycle_start)
    return round_div(total_minor * length, own)


@dataclass(frozen=True, slots=True)
class PlanChange:
    username: str
    old_plan: str
    new_plan: str
    credit_minor: int
    charge_minor: int
    currency: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def change_plan(store: Store, username: str, new_plan: str, actor: str, cfg: Config) -> PlanChange:
    """Move ``username`` to ``new_plan`` now, prorated to the minor unit.

    For every charged cycle not yet over (the current one and any prepaid ahead), the unused
    part of what was charged is credited and the same part of the new plan's price (with
    its tax) is charged, over the same cycle bounds. A switch between prepaid and postpaid
    takes effect for billing when the cycles already charged end (or now, if none is
    running), so cycles never overlap. Raises NotFound, ValidationError (same plan) or
    BillingError (another currency); changes nothing then. ``cfg`` gives the time zone
    cycles are counted in and the grace.
    """
    with store.transaction():
        sub = ledger.subscriber_row(store, username)
        new = plans_mod.get(store, new_plan)
        if new.name == sub["plan"]:
            raise ValidationError(f"{username!r} is already on plan {new_plan!r}")
        if new.currency != sub["currency"]:
            raise BillingError(
                f"plan {new_plan!r} bills in {new.currency} but {username!r} is billed in "
                f"{sub['currency']}; a subscriber keeps one currency"
            )
        now = store.now()
        advance(store, cfg, sub["id"], now)
        sub = _sub(store, sub["id"])
        st = _state(store, sub["id"])
        old_plan = sub["plan"]
        same_kind = new.billing == sub["billing"]
        new_row = {**sub, "price_minor": new.price_minor, "tax_rate_bp": new.tax_rate_bp,
                   "tax_inclusive": new.tax_inclusive}
        _, _, new_total = invoices.cost(new_row)
        tz = _tz(cfg.billing.timezone)
        change_id = uuid7(int(now * 1000))
        credit = charge = 0
        billed_until = paid_through = now
        for inv in store.all(
            "SELECT * FROM invoices WHERE subscriber_id = ? AND status != 'void' "
            "AND cycle_end > ? ORDER BY cycle_start", (sub["id"], now),
        ):
            length = round(inv["cycle_end"] - inv["cycle_start"])
            remaining = round(inv["cycle_end"] - max(now, inv["cycle_start"]))
            # Refund at the rate this cycle is charged at now: an earlier switch in the same
            # cycle already replaced the invoice's own total for the rest of it.
            rate = inv["rate_total_minor"]
            back = prorate(inv["total_minor"] if rate is None else rate, remaining, length)
            if back:
                ledger.post(store, sub, "proration", back, f"{change_id}:{inv['number']}:credit",
                            f"unused {sub['plan']} on {inv['number']}", now)
                credit += back
            billed_until = max(billed_until, inv["cycle_end"])
            if inv["status"] == "paid":
                paid_through = max(paid_through, inv["cycle_end"])
            # The new plan's price is for its own period: convert it to this cycle's length
            # first (a week's price is not a month's), then charge the remaining share.
            cycle_rate = rate_for_cycle(new_total, new.period, inv["cycle_start"],
                                        inv["cycle_end"], tz, st.get("anchor_day"))
            owe = prorate(cycle_rate, remaining, length)
            if owe:
                ledger.post(store, sub, "proration", -owe, f"{change_id}:{inv['number']}:charge",
                            f"{new.name} for the rest of {inv['number']}", now)
                charge += owe
            store.execute("UPDATE invoices SET rate_total_minor = ? WHERE id = ?",
                               (cycle_rate, inv["id"]))
        subs_mod.update(store, username, actor, plan=new.name)
        if not same_kind:
            if new.billing == "postpaid":
                _set_paid_until(store, sub, None)
                _set_state(store, sub["id"], cycle_end=billed_until, anchor_day=None)
            else:
                # Only paid time: an open invoice's cycle counts once a payment settles it.
                _set_paid_until(store, sub, paid_through)
                _set_state(store, sub["id"], cycle_end=None, anchor_day=None)
        sub = _sub(store, sub["id"])
        if sub["billing"] == "postpaid":
            invoices.settle(store, sub, now)
        _restore_if_clear(store, cfg, sub["id"], now)
        result = PlanChange(username, old_plan, new.name, credit, charge, sub["currency"])
        store.audit(actor, "subscriber.plan_change", f"subscriber:{username}",
                    old=result.old_plan, new=new.name, credit_minor=credit, charge_minor=charge)
        advance(store, cfg, sub["id"], now)
    return result


def adjust(
    store: Store, cfg: Config, username: str, kind: str, amount_minor: int, reference: str,
    reason: str, actor: str, *, allow_debt: bool = False,
) -> ledger.Entry:
    """A manual credit or refund (see :func:`ledger.adjust`), then what money coming in does.

    A credit to a postpaid subscriber settles the invoices it covers and restores one
    suspended for non-payment once nothing is owed, like a payment. A prepaid wallet credit
    stays in the wallet until the next renewal or payment (it buys no period by itself).
    One transaction: on error nothing is stored.
    """
    with store.transaction():
        entry = ledger.adjust(store, username, kind, amount_minor, reference, reason, actor,
                              allow_debt=allow_debt)
        sub = ledger.subscriber_row(store, username)
        if kind == "credit" and sub["billing"] == "postpaid":
            now = store.now()
            advance(store, cfg, sub["id"], now)
            apply_payment(store, cfg, sub["id"], now)
            advance(store, cfg, sub["id"], now)
    return entry
