"""Money in without an engineer: callbacks kept, verified with the provider, applied once.

Every callback a provider sends (through the cloud, sealed, or straight to this agent's web
listener) is first **kept** in ``payment_inbox`` (sealed with the agent key: it holds phone
numbers and names), then processed:

* **M-Pesa STK** (``mpesa-stk``): the callback must answer a request this POP made
  (``payment_requests``); "paid" is believed only once STK Query agrees, and the amount is
  the one we asked for. A request is credited once, whatever arrives later (duplicates, a
  late callback after the query already credited it).
* **M-Pesa C2B paybill/till** (``mpesa-c2b``): only on the secret per-tenant URL; shortcode
  must be ours, amount whole and positive; ``BillRefNumber`` names the account.
* **Paystack** (``paystack``): HMAC signature checked before parsing, then the transaction
  verified by reference; amount and currency must agree.

Money that is verified but matches nobody, or whose currency is not the subscriber's, goes
to ``payment_suspense``: never lost, never guessed (``jasiyo payment unmatched`` /
``allocate``). A callback that fails verification is kept as ``refused`` with the reason,
logged, never credited. ``payments.record`` applies the money in one transaction with the
restore; the enforcement triggers queue the Disconnect/CoA.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from jasiyo.agent import payments, suspense_sync
from jasiyo.agent.store import Row, Store
from jasiyo.config import Config
from jasiyo.errors import JasiyoError, NotFound, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.money import format_money
from jasiyo.payments.base import PaymentProvider
from jasiyo.payments.errors import CallbackError, PaymentError, ProviderUnavailable
from jasiyo.payments.models import Confirmation, Outcome, StatusAnswer
from jasiyo.portal.paths import CALLBACK_PATHS
from jasiyo.sync.ids import uuid7

log = get_logger(__name__)

#: Endpoint base name -> (provider, callback kind given to ``parse_callback``).
ENDPOINTS: dict[str, tuple[str, str]] = {
    "mpesa-stk": ("mpesa", "stk"),
    "mpesa-c2b": ("mpesa", "c2b/confirmation"),
    "mpesa-val": ("mpesa", "c2b/validation"),
    "paystack": ("paystack", "webhook"),
}
#: Endpoint name -> its path segment on this agent's own listener.
LOCAL_PATHS: dict[str, str] = {name: seg for seg, name in CALLBACK_PATHS.items() if name in ENDPOINTS}
#: A callback whose processing failed for a reason that may pass (provider down) is tried
#: again after this many seconds, doubling, up to RETRY_MAX.
RETRY_FIRST, RETRY_MAX = 5.0, 600.0
#: While one processor works on an inbox item, others leave it alone this long.
LEASE = 60.0
MAX_BODY = 64 * 1024
#: An STK callback for a request not (yet) known is retried this long before it is refused:
#: a fast callback can overtake the write of the request it answers.
OVERTAKE = 10.0


def agent_suffix(store: Store) -> str:
    """This agent's endpoint suffix: endpoints it registered end in it (``mpesa-stk-1a2b3c4d``)."""
    return (store.agent_id or "local").replace("-", "")[-8:]


def split_endpoint(store: Store, name: str) -> tuple[str, bool] | None:
    """(base, ours) for an endpoint name, or None if it is not a payment endpoint."""
    for base in ENDPOINTS:
        if name == base:
            return base, True
        if name.startswith(base + "-"):
            return base, name[len(base) + 1 :] == agent_suffix(store)
    return None


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    source: str
    endpoint: str
    provider: str
    kind: str
    received_at: float
    status: str
    detail: str
    reference: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _item(row: Row) -> InboxItem:
    return InboxItem(
        row["id"],
        row["source"],
        row["endpoint"],
        row["provider"],
        row["kind"],
        row["received_at"],
        row["status"],
        row["detail"] or "",
        row["reference"] or "",
    )


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
    """Keep one callback (idempotent on ``source``: the cloud's hook id, or a local id).

    Returns the inbox id, or None when ``source`` was kept before. Runs in the caller's
    transaction if there is one (the cloud cursor advances in the same one).
    """
    detail: str | None
    split = split_endpoint(store, endpoint)
    if split is None:
        provider, kind, status, detail = "unknown", "unknown", "refused", "unknown endpoint"
    else:
        base, ours = split
        provider, kind = ENDPOINTS[base]
        status, detail = ("new", None) if ours else ("other_pop", "registered by another POP")
    if len(body) > MAX_BODY:
        status, detail, body = "refused", f"body of {len(body)} bytes is too large", body[:0]
    doc = json.dumps(
        {"headers": {k.lower(): v for k, v in headers.items()}, "body": base64.b64encode(body).decode()}
    )
    with store.transaction():
        if store.one("SELECT 1 FROM payment_inbox WHERE source = ?", (source,)):
            return None
        cur = store.execute(
            "INSERT INTO payment_inbox (source, endpoint, provider, kind, received_at, remote, "
            "sealed, status, detail, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                source,
                endpoint,
                provider,
                kind,
                received_at,
                remote,
                store.seal(doc, f"inbox:{source}"),
                status,
                detail,
                received_at,
            ),
        )
        inbox_id = int(cur.lastrowid or 0)
    event(log, "payments.callback", id=inbox_id, endpoint=endpoint, status=status)
    return inbox_id


def receive_local(
    store: Store, endpoint: str, headers: Mapping[str, str], body: bytes, remote: str | None
) -> int | None:
    """A callback straight to this agent's web listener (no cloud in between)."""
    return receive(
        store,
        source=f"local:{uuid7()}",
        endpoint=endpoint,
        headers=headers,
        body=body,
        received_at=store.now(),
        remote=remote,
    )


def inbox(store: Store, status: str | None = None, limit: int = 200) -> list[InboxItem]:
    if status:
        rows = store.all(
            "SELECT * FROM payment_inbox WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit)
        )
    else:
        rows = store.all("SELECT * FROM payment_inbox ORDER BY id DESC LIMIT ?", (limit,))
    return [_item(r) for r in rows]


# ------------------------------------------------------------------ processing


class _Refuse(Exception):
    """Keep the callback as refused with this reason; never credit it."""


class _Later(Exception):
    """Try this callback again later (the provider could not be asked now)."""


def _finish(store: Store, inbox_id: int, status: str, detail: str = "", reference: str = "") -> None:
    store.execute(
        "UPDATE payment_inbox SET status = ?, detail = ?, reference = ?, processed_at = ?, "
        "next_attempt_at = NULL WHERE id = ?",
        (status, detail[:500] or None, reference or None, store.now(), inbox_id),
    )


def _claim(store: Store, now: float, inbox_id: int | None = None) -> list[Row]:
    """Take due inbox items for LEASE seconds (another processor then leaves them alone)."""
    with store.transaction():
        if inbox_id is None:
            rows = store.all(
                "SELECT * FROM payment_inbox WHERE status IN ('new', 'retry') AND "
                "next_attempt_at <= ? ORDER BY id LIMIT 100",
                (now,),
            )
        else:
            rows = store.all(
                "SELECT * FROM payment_inbox WHERE id = ? AND status IN "
                "('new', 'retry') AND next_attempt_at <= ?",
                (inbox_id, now),
            )
        for r in rows:
            store.execute(
                "UPDATE payment_inbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id = ?",
                (now + LEASE, r["id"]),
            )
    return rows


def process_due(
    store: Store, cfg: Config, providers: Mapping[str, PaymentProvider], inbox_id: int | None = None
) -> int:
    """Process every due callback (or just ``inbox_id``); returns how many were handled."""
    done = 0
    for row in _claim(store, store.now(), inbox_id):
        _process(store, cfg, providers, row)
        done += 1
    return done


def _process(store: Store, cfg: Config, providers: Mapping[str, PaymentProvider], row: Row) -> None:
    inbox_id = row["id"]
    provider = providers.get(row["provider"])
    try:
        if provider is None:
            raise _Later(
                f"no {row['provider']} credentials on this POP ([payments.{row['provider']}] in the config)"
            )
        doc = json.loads(store.unseal(row["sealed"], f"inbox:{row['source']}"))
        body = base64.b64decode(doc["body"])
        try:
            parsed = provider.parse_callback(row["kind"], doc["headers"], body)
        except CallbackError as exc:
            raise _Refuse(str(exc)) from None
        if row["kind"] == "c2b/validation":
            with store.transaction():
                _finish(store, inbox_id, "closed", "validation request (no money moves)")
            return
        if isinstance(parsed, Confirmation):
            status, detail, ref = _c2b(store, cfg, inbox_id, parsed)
        else:
            status, detail, ref = _answer(store, cfg, provider, row, parsed)
        event(log, "payments.processed", id=inbox_id, status=status, reference=ref, detail=detail)
    except _Refuse as exc:
        with store.transaction():
            _finish(store, inbox_id, "refused", str(exc))
        event(log, "payments.refused", id=inbox_id, endpoint=row["endpoint"], reason=str(exc))
    except (_Later, ProviderUnavailable) as exc:
        delay = min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, row["attempts"]))
        with store.transaction():
            store.execute(
                "UPDATE payment_inbox SET status = 'retry', detail = ?, next_attempt_at = ? WHERE id = ?",
                (str(exc)[:500], store.now() + delay, inbox_id),
            )
        event(log, "payments.retry", id=inbox_id, reason=str(exc), after=f"{delay:.0f}s")
    except PaymentError as exc:  # the provider refused our question: a person must look
        with store.transaction():
            _finish(store, inbox_id, "refused", f"{row['provider']} refused the check: {exc}")
        event(log, "payments.refused", id=inbox_id, reason=str(exc))


def _answer(
    store: Store, cfg: Config, provider: PaymentProvider, row: Row, answer: StatusAnswer
) -> tuple[str, str, str]:
    """An STK callback or a Paystack charge event: the answer to a request (ours or not)."""
    inbox_id = row["id"]
    req = store.one(
        "SELECT * FROM payment_requests WHERE provider = ? AND request_id = ?",
        (provider.name, answer.request_id),
    )
    if provider.name == "mpesa" and req is None and store.now() - row["received_at"] < OVERTAKE:
        # The prompt is remembered right after Daraja accepts it: a very fast callback can
        # overtake that write. Only an old callback with no request is a stranger's.
        raise _Later(f"no request {answer.request_id!r} yet")
    if provider.name == "mpesa" and req is None:
        raise _Refuse(f"callback for CheckoutRequestID {answer.request_id!r}, which this POP never issued")
    if req is not None and req["status"] == "paid":
        with store.transaction():
            _finish(
                store,
                inbox_id,
                "duplicate",
                f"request already credited as {req['receipt']}",
                req["receipt"] or "",
            )
        return "duplicate", "already credited", req["receipt"] or ""
    if answer.outcome is not Outcome.PAID:
        if req is not None:
            with store.transaction():
                _settle_request(store, req, answer)
                _finish(store, inbox_id, "closed", f"{answer.outcome.value}: {answer.description}")
        else:
            with store.transaction():
                _finish(store, inbox_id, "closed", f"{answer.outcome.value} (no request here)")
        return "closed", answer.outcome.value, ""
    conf = answer.confirmation
    if conf is None:
        raise _Refuse("callback says paid but carries no receipt or amount")
    if req is not None and provider.name == "mpesa" and conf.amount_minor != req["amount_minor"]:
        raise _Refuse(
            f"callback amount {conf.amount_minor} differs from the {req['amount_minor']} this POP asked for"
        )
    verified = provider.query(answer.request_id)  # ProviderUnavailable: try again later
    if verified.outcome is Outcome.PENDING:
        raise _Later(f"{provider.name} does not confirm {answer.request_id} yet")
    if verified.outcome is not Outcome.PAID:
        raise _Refuse(
            f"callback says paid, but {provider.name} says "
            f"{verified.outcome.value} ({verified.code} {verified.description})"
        )
    if provider.name == "paystack":
        v = verified.confirmation
        if v is None or (v.amount_minor, v.currency.upper()) != (conf.amount_minor, conf.currency.upper()):
            got = f"{v.amount_minor} {v.currency}" if v else "nothing"
            raise _Refuse(f"webhook says {conf.amount_minor} {conf.currency}, Paystack verify says {got}")
        conf = v
    if req is not None:
        return _credit_request(store, cfg, req, conf.reference or req["request_id"], inbox_id)
    return _credit_unrequested(store, cfg, inbox_id, conf)


def _settle_request(store: Store, req: Row, answer: StatusAnswer) -> None:
    status = answer.outcome.value if answer.outcome.final else "pending"
    store.execute(
        "UPDATE payment_requests SET status = ?, result_code = ?, result_desc = ?, "
        "updated_at = ? WHERE id = ? AND status = 'pending'",
        (status, answer.code or None, answer.description[:200] or None, store.now(), req["id"]),
    )


def _credit_request(
    store: Store, cfg: Config, req: Row, receipt: str, inbox_id: int | None
) -> tuple[str, str, str]:
    """Credit a request of ours once: the request row is the guard (a query that already
    credited it, a duplicate callback, another processor)."""
    ref = payments.normalize_reference(receipt)
    with store.transaction():
        fresh = store.one(
            "SELECT r.*, s.username FROM payment_requests r LEFT JOIN subscribers "
            "s ON s.id = r.subscriber_id WHERE r.id = ?",
            (req["id"],),
        )
        assert fresh is not None
        if fresh["status"] == "paid":
            if inbox_id is not None:
                _finish(
                    store,
                    inbox_id,
                    "duplicate",
                    f"already credited as {fresh['receipt']}",
                    fresh["receipt"] or "",
                )
            return "duplicate", "already credited", fresh["receipt"] or ""
        store.execute(
            "UPDATE payment_requests SET status = 'paid', receipt = ?, updated_at = ?, "
            "next_query_at = NULL WHERE id = ?",
            (ref, store.now(), req["id"]),
        )
        conf = Confirmation(
            provider=req["provider"],
            kind="request",
            reference=ref,
            amount_minor=req["amount_minor"],
            currency=req["currency"],
            account=req["account"],
            phone=req["phone"] or "",
            request_id=req["request_id"],
        )
        if fresh["username"] is None:
            status, detail = _to_suspense(store, conf, "the subscriber was removed", inbox_id)
        else:
            status, detail = _record(store, cfg, fresh["username"], conf, inbox_id)
    return status, detail, ref


def _credit_unrequested(store: Store, cfg: Config, inbox_id: int, conf: Confirmation) -> tuple[str, str, str]:
    ref = payments.normalize_reference(conf.reference)
    with store.transaction():
        username = match_account(store, conf.account)
        if username is None:
            status, detail = _to_suspense(
                store, conf, f"no subscriber with account {conf.account!r}", inbox_id
            )
        else:
            status, detail = _record(store, cfg, username, conf, inbox_id)
    return status, detail, ref


def _c2b(store: Store, cfg: Config, inbox_id: int, conf: Confirmation) -> tuple[str, str, str]:
    """Paybill/till money nobody asked for: trusted for coming to the secret URL with our
    shortcode (Daraja has no synchronous status check for C2B)."""
    ours = {cfg.payments.mpesa.shortcode, cfg.payments.mpesa.till_number} - {""}
    if conf.shortcode not in ours:
        raise _Refuse(
            f"C2B payment for shortcode {conf.shortcode!r}, not this ISP's "
            f"({', '.join(sorted(ours)) or 'none configured'})"
        )
    if conf.amount_minor <= 0 or conf.amount_minor % 100:
        raise _Refuse(f"C2B amount {conf.amount_minor} is not a whole positive shilling amount")
    return _credit_unrequested(store, cfg, inbox_id, conf)


def _record(
    store: Store, cfg: Config, username: str, conf: Confirmation, inbox_id: int | None
) -> tuple[str, str]:
    """Apply verified money to ``username`` (inside the caller's transaction)."""
    ref = payments.normalize_reference(conf.reference)
    sub = store.one(
        "SELECT p.currency FROM subscribers s JOIN plans p ON p.id = s.plan_id WHERE s.username = ?",
        (username,),
    )
    if sub is None or sub["currency"].upper() != conf.currency.upper():
        have = sub["currency"] if sub else "?"
        return _to_suspense(store, conf, f"paid in {conf.currency}, {username} is billed in {have}", inbox_id)
    existing = store.one(
        "SELECT p.amount_minor, s.username FROM payments p JOIN subscribers s "
        "ON s.id = p.subscriber_id WHERE upper(p.reference) = ?",
        (ref,),
    )
    if existing is not None and (existing["username"], existing["amount_minor"]) != (
        username,
        conf.amount_minor,
    ):
        return _to_suspense(
            store, conf, f"reference already credited to {existing['username']} with another amount", inbox_id
        )
    try:
        rec = payments.record(
            store,
            cfg,
            username,
            conf.amount_minor,
            ref,
            method=conf.provider,
            actor=f"{conf.provider}:callback",
        )
    except JasiyoError as exc:
        return _to_suspense(store, conf, str(exc), inbox_id)
    status = "applied" if rec.created else "duplicate"
    detail = f"{format_money(conf.amount_minor, conf.currency)} to {username}" + (
        "" if rec.created else " (already recorded)"
    )
    if inbox_id is not None:
        _finish(store, inbox_id, status, detail, ref)
    return status, detail


# ------------------------------------------------------------------ matching and suspense


def account_key(text: str) -> str:
    """How an account number is compared: case, spaces and dashes ignored."""
    return "".join(c for c in (text or "").lower() if c not in " -")


def match_account(store: Store, account: str) -> str | None:
    key = account_key(account)
    if not key:
        return None
    row = store.one(
        "SELECT username FROM subscribers WHERE lower(replace(replace(username, ' ', ''), '-', '')) = ?",
        (key,),
    )
    return row["username"] if row else None


def _to_suspense(store: Store, conf: Confirmation, reason: str, inbox_id: int | None) -> tuple[str, str]:
    ref = payments.normalize_reference(conf.reference)
    if store.one("SELECT 1 FROM payment_suspense WHERE reference = ?", (ref,)) is None:
        store.execute(
            "INSERT INTO payment_suspense (reference, provider, amount_minor, currency, account, "
            "phone, payer, reason, received_at, inbox_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ref,
                conf.provider,
                conf.amount_minor,
                conf.currency.upper(),
                conf.account or None,
                conf.phone or None,
                conf.payer_name or None,
                reason[:300],
                conf.paid_at or store.now(),
                inbox_id,
            ),
        )
        store.audit(
            f"{conf.provider}:callback",
            "payment.unmatched",
            f"payment:{ref}",
            amount=conf.amount_minor,
            reason=reason[:300],
        )
        suspense_sync.publish(store, ref)
        event(log, "payments.unmatched", reference=ref, amount=conf.amount_minor, reason=reason)
    if inbox_id is not None:
        _finish(store, inbox_id, "unmatched", reason, ref)
    return "unmatched", reason


@dataclass(frozen=True, slots=True)
class Unmatched:
    reference: str
    provider: str
    amount_minor: int
    currency: str
    account: str
    phone: str
    reason: str
    received_at: float
    status: str
    allocated_to: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unmatched(store: Store, include_allocated: bool = False) -> list[Unmatched]:
    where = "" if include_allocated else "WHERE status = 'open'"
    rows = store.all(f"SELECT * FROM payment_suspense {where} ORDER BY received_at DESC")
    return [
        Unmatched(
            r["reference"],
            r["provider"],
            r["amount_minor"],
            r["currency"],
            r["account"] or "",
            r["phone"] or "",
            r["reason"],
            r["received_at"],
            r["status"],
            r["allocated_to"] or "",
        )
        for r in rows
    ]


def allocate(store: Store, cfg: Config, reference: str, username: str, actor: str) -> payments.Recorded:
    """Credit a suspense payment to ``username`` (an engineer's decision, audited)."""
    ref = payments.normalize_reference(reference)
    with store.transaction():
        row = store.one("SELECT * FROM payment_suspense WHERE reference = ?", (ref,))
        if row is None:
            raise NotFound(f"no unmatched payment {ref!r} (see `jasiyo payment unmatched`)")
        if row["status"] != "open":
            raise ValidationError(f"payment {ref} was already allocated to {row['allocated_to']}")
        sub = store.one(
            "SELECT p.currency FROM subscribers s JOIN plans p ON p.id = s.plan_id WHERE s.username = ?",
            (username,),
        )
        if sub is None:
            raise NotFound(f"no subscriber named {username!r}")
        paid = store.one(
            "SELECT s.username, p.amount_minor, p.method FROM payments p JOIN subscribers s ON "
            "s.id = p.subscriber_id WHERE upper(p.reference) = ?",
            (ref,),
        )
        if paid is not None and paid["username"] != username:
            raise ValidationError(
                f"receipt {ref} is credited to {paid['username']}; to move it, refund them "
                f"and credit {username} (`jasiyo billing refund`, `jasiyo billing credit`)"
            )
        if paid is not None:  # a conflict between POPs, settled for the one that was kept
            store.execute(
                "UPDATE payment_suspense SET status = 'allocated', allocated_to = ?, "
                "allocated_at = ?, allocated_by = ? WHERE id = ?",
                (username, store.now(), actor, row["id"]),
            )
            store.audit(actor, "payment.allocate", f"subscriber:{username}", reference=ref)
            suspense_sync.publish(store, ref)
            return payments.record(
                store, cfg, username, paid["amount_minor"], ref, method=paid["method"], actor=actor
            )
        if sub["currency"].upper() != row["currency"]:
            raise ValidationError(
                f"payment {ref} is in {row['currency']}; {username} is billed "
                f"in {sub['currency']}: refund it instead"
            )
        method = row["provider"] if row["provider"] in payments.METHODS else "bank"
        rec = payments.record(store, cfg, username, row["amount_minor"], ref, method=method, actor=actor)
        store.execute(
            "UPDATE payment_suspense SET status = 'allocated', allocated_to = ?, "
            "allocated_at = ?, allocated_by = ? WHERE id = ?",
            (username, store.now(), actor, row["id"]),
        )
        store.audit(actor, "payment.allocate", f"subscriber:{username}", reference=ref)
        suspense_sync.publish(store, ref)
    return rec


def refused(store: Store, limit: int = 100) -> list[InboxItem]:
    return inbox(store, "refused", limit)
