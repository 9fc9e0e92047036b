"""Changes the tenant dashboard asks of the agents, carried out once by the right POP.

The dashboard (a browser holding the tenant key, enrolled in the cloud like an agent) cannot
run billing: for a payment, an allocation, a plan change, a new subscriber or a resume it
pushes a sealed ``request`` event (key: a UUIDv7 it makes; data: ``action``, ``by``, ``at``
and the action's fields). Every agent folds it (:mod:`.fold`, kept once per key); after a
batch is applied, and only once this agent has pulled the whole log (so the result of a
request carried out elsewhere, or before a restore, is known here), :func:`run` looks at the
new ones:

* The request is this POP's to carry out if the subscriber's home POP is this one (for
  ``subscriber.add``: the POP of ``router``). A subscriber without a home, an unknown
  subscriber or router, and a request that makes no sense fall to one POP: the first by
  name of those not retired (with one POP, that POP; a stand-alone agent does all).
* It is carried out through the library functions the CLI calls (``payments.record``,
  ``collect.allocate``, ``accounts.update``, ``subscribers.add`` with ``pops.set_home``,
  ``subscribers.resume``), so the usual events, audit lines (actor ``dashboard:<by>``),
  receipts and enforcement follow, in one transaction with this POP's record of having
  done it (``dashboard_runs``) and a ``request_result`` event (``done``, a message a person
  reads, this POP's name, the time). A payment without a reference gets the receipt
  ``CASH-<the request key>``: made again, it would be the same payment, never a second.
* Every field is checked first (types, sizes, shapes as the CLI checks them): a request
  that fails, or that the library refuses (unknown subscriber, already active, ...), is
  refused for good and the refusal published. A store error (busy, disk) is retried later.
* Any other POP records that the request is not its own (``elsewhere``) and leaves it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from jasiyo.agent import fold, popname
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import AlreadyExists, JasiyoError, NotFound, StoreError, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.money import format_money

log = get_logger(__name__)

ACTIONS = ("payment", "allocate", "plan", "subscriber.add", "resume")
#: The largest payment a dashboard may record, in minor units (100 million in major units).
MAX_AMOUNT_MINOR = 10**10
MAX_REQUEST_BYTES = 4096
#: A store error is retried after this many seconds, doubling, up to RETRY_MAX.
RETRY_FIRST, RETRY_MAX = 5.0, 600.0
_CURSOR = "requests.cursor"
_KEY_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_COMMON = {"action", "by", "at"}
#: action -> (required fields, optional fields) besides action, by and at.
FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "payment": (frozenset({"username", "amount_minor"}), frozenset({"method", "reference", "note"})),
    "allocate": (frozenset({"reference", "username"}), frozenset()),
    "plan": (frozenset({"username", "plan"}), frozenset()),
    "subscriber.add": (
        frozenset({"username", "password", "plan", "router"}),
        frozenset({"phone", "name", "ip", "service"}),
    ),
    "resume": (frozenset({"username"}), frozenset()),
}


class Refused(ValidationError):
    """A request that will never be carried out, with the reason a person reads."""


def _text(data: dict[str, Any], name: str, limit: int = 200, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise Refused(f"{name} must be a text" + ("" if required else " (or absent)"))
    if len(value) > limit:
        raise Refused(f"{name} is longer than {limit} characters")
    return value


def check(data: Any, country: str = "KE") -> dict[str, Any]:
    """The request's fields, checked as the CLI checks them; raises Refused (or the
    ValidationError of the check that failed) naming the field."""
    from jasiyo.agent import payments, validate
    from jasiyo.agent import subscribers as subs

    if not isinstance(data, dict):
        raise Refused("the request is not an object")
    if len(json.dumps(data, default=str)) > MAX_REQUEST_BYTES:
        raise Refused(f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    action = data.get("action")
    if not isinstance(action, str) or action not in FIELDS:
        raise Refused(f"unknown action {str(action)[:40]!r}: use {', '.join(ACTIONS)}")
    required, optional = FIELDS[action]
    unknown = set(data) - required - optional - _COMMON
    if unknown:
        raise Refused(f"unknown field(s) for {action}: {', '.join(sorted(str(u)[:40] for u in unknown))}")
    by = validate.text(_text(data, "by", 64), "dashboard name (by)", 64)
    at = data.get("at")
    if at is not None and (
        not isinstance(at, int | float) or isinstance(at, bool) or not math.isfinite(at) or not 0 <= at < 1e11
    ):
        raise Refused("at must be a time in unix seconds")
    out: dict[str, Any] = {"action": action, "by": by}
    if "username" in required:
        out["username"] = validate.username(_text(data, "username", 128) or "")
    if action == "payment":
        amount = data.get("amount_minor")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise Refused("amount_minor must be a whole number of minor units (cents)")
        if not 0 < amount <= MAX_AMOUNT_MINOR:
            raise Refused(f"amount_minor must be above 0 and at most {MAX_AMOUNT_MINOR}")
        method = data.get("method", "cash")
        if method != "cash":
            raise Refused("a dashboard records cash payments only (method 'cash')")
        ref = _text(data, "reference", 100, required=False)
        out.update(
            amount_minor=amount,
            reference=payments.normalize_reference(ref) if ref else None,
            note=validate.text(_text(data, "note", 200, required=False), "note"),
        )
    elif action == "allocate":
        out["reference"] = payments.normalize_reference(_text(data, "reference", 100) or "")
    elif action == "plan":
        out["plan"] = validate.name(_text(data, "plan", 64) or "", "plan name")
    elif action == "subscriber.add":
        out["router"] = validate.name(_text(data, "router", 64) or "", "router name")
        out["new"] = subs.NewSubscriber.build(
            out["username"],
            password=_text(data, "password", 128) or "",
            plan=_text(data, "plan", 64) or "",
            service=_text(data, "service", 16, required=False) or "pppoe",
            ip=_text(data, "ip", 64, required=False),
            phone=_text(data, "phone", 32, required=False),
            name=_text(data, "name", 200, required=False),
            country=country,
        )
    return out


# ------------------------------------------------------------------ who carries it out


def _first_pop(store: Store, me: str) -> str:
    return store.scalar("SELECT min(name) FROM pops WHERE retired = 0") or me


def executor(store: Store, data: Any) -> str | None:
    """The POP that carries this request out (None: this stand-alone agent). Read loosely:
    a request that names nothing known falls to the first POP, which refuses it."""
    me = popname.local(store)
    if me is None:
        return None
    pop: str | None = None
    if isinstance(data, dict):
        if data.get("action") == "subscriber.add" and isinstance(data.get("router"), str):
            pop = store.scalar("SELECT pop FROM routers WHERE name = ?", (data["router"],))
        elif isinstance(data.get("username"), str):
            pop = store.scalar("SELECT home_pop FROM subscribers WHERE username = ?", (data["username"],))
    if pop is not None and not store.scalar("SELECT retired FROM pops WHERE name = ?", (pop,)):
        return str(pop)
    return _first_pop(store, me)


# ------------------------------------------------------------------ carrying it out


def _carry_out(store: Store, cfg: Config, key: str, req: dict[str, Any]) -> str:
    """Do what ``req`` (checked) asks, inside the caller's transaction; the message."""
    from jasiyo.agent import accounts, collect, payments, pops
    from jasiyo.agent import subscribers as subs

    actor = f"dashboard:{req['by']}"
    user = req["username"]
    action = req["action"]
    if action == "payment":
        ref = req["reference"] or f"CASH-{key.replace('-', '').upper()}"
        r = payments.record(store, cfg, user, req["amount_minor"], ref, method="cash", actor=actor)
        money = format_money(r.payment.amount_minor, r.payment.currency)
        msg = f"{money} from {user} recorded as {r.payment.reference}"
        if not r.created:
            msg += " (it was recorded before: nothing changed)"
        elif r.restored:
            msg += "; service restored"
        return msg + f"; status {r.status}"
    if action == "allocate":
        r = collect.allocate(store, cfg, req["reference"], user, actor)
        money = format_money(r.payment.amount_minor, r.payment.currency)
        return f"payment {r.payment.reference} ({money}) allocated to {user}; status {r.status}"
    if action == "plan":
        sub = accounts.update(store, cfg, user, actor, plan=req["plan"])
        return f"{user} moved to plan {sub.plan}"
    if action == "subscriber.add":
        sub = subs.add(store, req["new"], actor)
        pops.set_home(store, user, req["router"], actor)
        return f"subscriber {user} added on plan {sub.plan}, home router {req['router']}"
    sub = subs.resume(store, user, actor)
    return f"subscriber {user} resumed; status {sub.status}"


def _record(
    store: Store,
    key: str,
    outcome: str,
    pop: str,
    message: str,
    *,
    attempts: int = 0,
    retry_at: float | None = None,
) -> None:
    store.execute(
        "INSERT INTO dashboard_runs (key, outcome, pop, message, attempts, next_attempt_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET outcome = excluded.outcome, "
        "pop = excluded.pop, message = excluded.message, attempts = excluded.attempts, "
        "next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
        (key, outcome, pop, message[:500], attempts, retry_at, store.now()),
    )


def _publish(store: Store, key: str, status: str, message: str, pop: str) -> None:
    data = {"status": status, "message": message[:500], "pop": pop, "at": store.now()}
    store.emit("request_result", key, "append", data)
    fold.insert_append(store, "request_result", key, data)


def _decided(store: Store, key: str) -> bool:
    return store.one("SELECT 1 FROM dashboard_runs WHERE key = ? AND outcome != 'retry'", (key,)) is not None


def _handle(store: Store, cfg: Config, key: str) -> str:
    """Decide one request; returns the outcome recorded (done, refused, retry, elsewhere)."""
    me = popname.local(store) or store.meta(popname.NAME_KEY) or store.agent_id
    with store.transaction():
        run = store.one("SELECT outcome, attempts FROM dashboard_runs WHERE key = ?", (key,))
        if run is not None and run["outcome"] != "retry":
            return str(run["outcome"])
        result = store.one("SELECT status, pop FROM dashboard_results WHERE key = ?", (key,))
        if result is not None:  # carried out before (elsewhere, or before a restore)
            outcome = "refused" if result["status"] == "refused" else "done"
            _record(store, key, outcome, str(result["pop"] or ""), "result known")
            return outcome
        row = store.one(
            "SELECT id, data FROM events WHERE entity = 'request' AND key = ? AND op = 'append' "
            "ORDER BY hlc, id LIMIT 1",
            (key,),
        )
        data = store.event_data(row) if row else None
        target = executor(store, data)
        if target is not None and target != me:
            _record(store, key, "elsewhere", target, f"for POP {target}")
            return "elsewhere"
        if not _KEY_RE.match(key):
            _record(store, key, "refused", me, "the request key is not a UUID")
            event(log, "dashboard.request_refused", level=30, key=key[:64], reason="key is not a UUID")
            return "refused"
    actor = "dashboard:?"
    try:
        req = check(data, cfg.billing.country)
        actor = f"dashboard:{req['by']}"
        with store.transaction():
            if _decided(store, key):  # another process (`jasiyo sync now`) was quicker
                return "done"
            message = _carry_out(store, cfg, key, req)
            store.audit(
                actor, "dashboard.request", f"request:{key}", request=req["action"], note=req.get("note")
            )
            _record(store, key, "done", me, message)
            _publish(store, key, "done", message, me)
        event(log, "dashboard.request_done", key=key, action=req["action"], actor=actor)
        return "done"
    except JasiyoError as exc:  # refused by the check or by the library: final
        if isinstance(exc, StoreError) and not isinstance(exc, NotFound | AlreadyExists):
            raise  # the store busy or failing; nothing was written: retried later (_guarded)
        message = f"refused: {exc}"[:500]
        with store.transaction():
            if _decided(store, key):
                return "refused"
            _record(store, key, "refused", me, message)
            _publish(store, key, "refused", message, me)
            store.audit(actor, "dashboard.refused", f"request:{key}", reason=message)
        event(log, "dashboard.request_refused", key=key, actor=actor, reason=message)
        return "refused"


def caught_up(store: Store) -> bool:
    """Has this agent applied the whole log as the cloud last reported it?"""
    try:
        return int(store.meta("sync.cursor") or 0) >= int(store.meta("sync.head") or 0)
    except ValueError:
        return False


def run(store: Store, cfg: Config, *, only_caught_up: bool = True, limit: int = 200) -> dict[str, int]:
    """Decide the requests that arrived since the last run and those due a retry.

    Cheap when there is nothing (two indexed reads): called after every pulled batch.
    """
    counts: dict[str, int] = {}
    try:
        if only_caught_up and not caught_up(store):
            return counts
        last = int(store.meta(_CURSOR) or 0)
        fresh = store.all(
            "SELECT id, key FROM dashboard_requests WHERE id > ? ORDER BY id LIMIT ?", (last, limit)
        )
        due = store.all(
            "SELECT key FROM dashboard_runs WHERE outcome = 'retry' AND next_attempt_at <= ? LIMIT ?",
            (store.now(), limit),
        )
    except JasiyoError as exc:  # the store busy: the next batch looks again
        event(log, "dashboard.requests_skipped", level=30, error=str(exc))
        return counts
    for r in fresh:
        outcome = _guarded(store, cfg, r["key"])
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "failed":
            break  # not even recorded: the next batch starts here again
        with store.transaction():
            store.set_meta(_CURSOR, str(r["id"]))
    for r in due:
        outcome = _guarded(store, cfg, r["key"])
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _guarded(store: Store, cfg: Config, key: str) -> str:
    """:func:`_handle`; a store error (busy, disk), or a failure of our own (a bug, logged as
    such), is recorded for a retry with backoff, never raised into the sync loop. "failed":
    not even that could be written (the next batch starts from this request again)."""
    try:
        return _handle(store, cfg, key)
    except StoreError as exc:
        reason, level = str(exc), 30
    except Exception as exc:  # noqa: BLE001 - one bad request must not stop sync
        reason, level = f"{type(exc).__name__}: {exc}", 40
    try:
        with store.transaction():
            attempts = int(store.scalar("SELECT attempts FROM dashboard_runs WHERE key = ?", (key,)) or 0)
            delay = min(RETRY_MAX, RETRY_FIRST * 2**attempts)
            _record(
                store, key, "retry", "", reason[:300], attempts=attempts + 1, retry_at=store.now() + delay
            )
    except JasiyoError:
        event(log, "dashboard.request_failed", level=level, key=key[:64], error=reason[:300])
        return "failed"
    event(
        log, "dashboard.request_retry", level=level, key=key[:64], error=reason[:300], after=f"{delay:.0f}s"
    )
    return "retry"
