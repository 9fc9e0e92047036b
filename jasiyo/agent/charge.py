"""Asking customers for money: STK prompts, Paystack links, and chasing the answers.

The provider clients come from the config (``[payments.mpesa]``, ``[payments.paystack]``);
callback URLs are the tenant's webhook endpoints on the cloud (created once, remembered in
meta) or, for an agent without a cloud, this agent's own web listener (``[web]
public_url``). A request is remembered in ``payment_requests`` *before* the customer can
answer it, so the callback always finds it; one with no callback after ``[payments]
query_after`` seconds is asked about (STK Query, Paystack verify) until it is final or
``request_expiry`` passes: a lost callback still credits the customer.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from jasiyo.agent import collect, invoices, ledger
from jasiyo.agent.store import Row, Store
from jasiyo.config import Config
from jasiyo.errors import ConfigError, JasiyoError, NotFound, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.payments import get_provider
from jasiyo.payments.base import PaymentProvider
from jasiyo.payments.errors import PaymentError, ProviderUnavailable
from jasiyo.payments.models import Outcome, PaymentRequest, StatusAnswer
from jasiyo.phones import msisdn
from jasiyo.phones import normalize as normalize_phone
from jasiyo.sync.ids import uuid7

log = get_logger(__name__)


def providers(cfg: Config) -> dict[str, PaymentProvider]:
    """The providers this POP has credentials for, by name."""
    p = cfg.payments
    out: dict[str, PaymentProvider] = {}
    kw: dict[str, Any] = {"timeout": p.timeout, "retries": p.retries}
    if p.mpesa.configured:
        out["mpesa"] = get_provider("mpesa")(asdict(p.mpesa), **kw)
    if p.paystack.configured:
        out["paystack"] = get_provider("paystack")(asdict(p.paystack), **kw)
    return out


def provider(cfg: Config, name: str) -> PaymentProvider:
    found = providers(cfg).get(name)
    if found is None:
        keys = "consumer_key, consumer_secret, shortcode, passkey" if name == "mpesa" else "secret_key"
        raise ConfigError(f"{name} is not configured: set [payments.{name}] {keys} in the config")
    return found


# ------------------------------------------------------------------ callback URLs


def local_token(store: Store) -> str:
    """The secret path segment of this agent's own callback URLs (made once)."""
    token = store.meta("web.hook_token")
    if not token:
        with store.transaction():
            token = store.meta("web.hook_token") or secrets.token_hex(20)
            store.set_meta("web.hook_token", token)
    return token


def callback_url(store: Store, cfg: Config, base: str, *, register: Any = None) -> str:
    """Where ``base`` (``mpesa-stk``, ``mpesa-c2b``, ``mpesa-val``, ``paystack``) callbacks go.

    The cloud endpoint remembered in meta; else, with ``register`` (a callable making a
    cloud endpoint for a name and returning its URL), a new one; else this agent's listener.
    """
    url = store.meta(f"payments.url.{base}")
    if url:
        return url
    if register is not None:
        url = register(f"{base}-{collect.agent_suffix(store)}")
        with store.transaction():
            store.set_meta(f"payments.url.{base}", url)
        return str(url)
    if cfg.web.public_url:
        return f"{cfg.web.public_url.rstrip('/')}/hooks/{local_token(store)}/{collect.LOCAL_PATHS[base]}"
    raise ConfigError(
        f"no callback URL for {base}: enrol this agent with the cloud and run `jasiyo payment "
        "register-urls`, or set [web] public_url to how the internet reaches this agent"
    )


# ------------------------------------------------------------------ requests


@dataclass(frozen=True, slots=True)
class Request:
    provider: str
    request_id: str
    username: str
    amount_minor: int
    currency: str
    phone: str
    status: str
    receipt: str
    checkout_url: str
    message: str
    created_at: float
    result: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _request(row: Row) -> Request:
    return Request(
        row["provider"],
        row["request_id"],
        row["username"] or "",
        row["amount_minor"],
        row["currency"],
        row["phone"] or "",
        row["status"],
        row["receipt"] or "",
        row["checkout_url"] or "",
        "",
        row["created_at"],
        " ".join(x for x in (row["result_code"], row["result_desc"]) if x),
    )


_REQ_SELECT = (
    "SELECT r.*, s.username FROM payment_requests r LEFT JOIN subscribers s ON s.id = r.subscriber_id"
)


def get_request(store: Store, request_id: str) -> Request:
    row = store.one(f"{_REQ_SELECT} WHERE r.request_id = ?", (request_id,))
    if row is None:
        raise NotFound(f"no payment request {request_id!r}")
    return _request(row)


def list_requests(store: Store, username: str | None = None, limit: int = 100) -> list[Request]:
    if username:
        rows = store.all(f"{_REQ_SELECT} WHERE s.username = ? ORDER BY r.id DESC LIMIT ?", (username, limit))
    else:
        rows = store.all(f"{_REQ_SELECT} ORDER BY r.id DESC LIMIT ?", (limit,))
    return [_request(r) for r in rows]


def amount_due(store: Store, username: str) -> tuple[int, str]:
    """What to ask for by default: the debt, else one period of the plan (with tax)."""
    sub = ledger.subscriber_row(store, username)
    bal = ledger.balance(store, sub["id"])
    due = -bal if bal < 0 else invoices.cost(sub)[2]
    return due, sub["currency"]


def _amount(store: Store, username: str, amount: int | None) -> tuple[Row, int]:
    sub = ledger.subscriber_row(store, username)
    if amount is None:
        amount, _ = amount_due(store, username)
    if amount <= 0:
        raise ValidationError(f"nothing to ask {username} for: the balance covers the plan; give --amount")
    return sub, amount


def request_stk(
    store: Store,
    cfg: Config,
    prov: PaymentProvider,
    username: str,
    *,
    amount_minor: int | None = None,
    phone: str | None = None,
    actor: str,
    register: Any = None,
) -> Request:
    """Send an M-Pesa STK prompt to the customer's phone; remember it before they answer."""
    sub, amount = _amount(store, username, amount_minor)
    if sub["currency"].upper() != "KES":
        raise ValidationError(f"{username} is billed in {sub['currency']}; M-Pesa takes KES")
    if amount % 100:
        amount += 100 - amount % 100  # M-Pesa takes whole shillings: round up, never down
    number = normalize_phone(phone, store.country) if phone else sub["phone"]
    if not number:
        raise ValidationError(f"{username} has no phone number: give --phone")
    url = callback_url(store, cfg, "mpesa-stk", register=register)
    started = prov.request_payment(
        PaymentRequest(
            account=username[:12],
            amount_minor=amount,
            currency="KES",
            phone=msisdn(number),
            description="Internet",
            callback_url=url,
        )
    )
    now = store.now()
    with store.transaction():
        store.execute(
            "INSERT INTO payment_requests (provider, request_id, merchant_request_id, "
            "subscriber_id, account, phone, amount_minor, currency, created_by, created_at, "
            "updated_at, next_query_at) VALUES ('mpesa', ?, ?, ?, ?, ?, ?, 'KES', ?, ?, ?, ?)",
            (
                started.request_id,
                started.merchant_request_id or None,
                sub["id"],
                username,
                number,
                amount,
                actor,
                now,
                now,
                now + cfg.payments.query_after,
            ),
        )
        store.audit(actor, "payment.request", f"subscriber:{username}", provider="mpesa", amount=amount)
    event(log, "payments.stk_sent", user=username, request=started.request_id, amount=amount)
    out = get_request(store, started.request_id)
    return Request(**{**out.to_dict(), "message": started.customer_message})


def request_link(
    store: Store,
    cfg: Config,
    prov: PaymentProvider,
    username: str,
    *,
    amount_minor: int | None = None,
    email: str,
    actor: str,
    register: Any = None,
) -> Request:
    """A Paystack checkout link for ``username`` (send it by SMS or show it on the pay page)."""
    sub, amount = _amount(store, username, amount_minor)
    if "@" not in email or len(email) > 200 or any(c.isspace() for c in email):
        raise ValidationError(f"bad email {email!r}: Paystack needs the customer's email")
    reference = f"JSY-{uuid7().replace('-', '')[-20:].upper()}"
    url = ""
    try:
        url = callback_url(store, cfg, "paystack", register=register)
    except ConfigError:
        pass  # the webhook is set in Paystack's dashboard; the redirect URL is optional
    started = prov.request_payment(
        PaymentRequest(
            account=username,
            amount_minor=amount,
            currency=sub["currency"].upper(),
            email=email,
            reference=reference,
            callback_url="",
            metadata={"account": username, "webhook": url},
        )
    )
    now = store.now()
    with store.transaction():
        store.execute(
            "INSERT INTO payment_requests (provider, request_id, subscriber_id, account, "
            "amount_minor, currency, checkout_url, created_by, created_at, updated_at, "
            "next_query_at) VALUES ('paystack', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                started.request_id,
                sub["id"],
                username,
                amount,
                sub["currency"].upper(),
                started.checkout_url,
                actor,
                now,
                now,
                now + cfg.payments.query_after,
            ),
        )
        store.audit(actor, "payment.link", f"subscriber:{username}", provider="paystack", amount=amount)
    return get_request(store, started.request_id)


# ------------------------------------------------------------------ chasing answers


def query_due(
    store: Store,
    cfg: Config,
    provs: Mapping[str, PaymentProvider],
    *,
    all_pending: bool = False,
    since: float | None = None,
) -> dict[str, int]:
    """Ask the provider about pending requests whose callback is late (or all of them)."""
    now = store.now()
    counts: dict[str, int] = {}
    with store.transaction():
        if all_pending:
            rows = store.all(
                "SELECT * FROM payment_requests WHERE status = 'pending' AND "
                "created_at >= ? ORDER BY id LIMIT 500",
                (since or 0,),
            )
        else:
            rows = store.all(
                "SELECT * FROM payment_requests WHERE status = 'pending' AND "
                "next_query_at <= ? ORDER BY next_query_at LIMIT 100",
                (now,),
            )
        for r in rows:  # lease them: another processor leaves them alone meanwhile
            store.execute(
                "UPDATE payment_requests SET next_query_at = ?, queries = queries + 1 WHERE id = ?",
                (now + collect.LEASE, r["id"]),
            )
    for r in rows:
        outcome = _query_one(store, cfg, provs.get(r["provider"]), r, now)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _query_one(store: Store, cfg: Config, prov: PaymentProvider | None, req: Row, now: float) -> str:
    expired = now >= req["created_at"] + cfg.payments.request_expiry
    if prov is None:
        return "no_credentials"
    try:
        answer = prov.query(req["request_id"])
    except ProviderUnavailable as exc:
        _later(store, req, now, expired, str(exc))
        return "unavailable"
    except PaymentError as exc:
        _later(store, req, now, expired, f"{prov.name} refused the query: {exc}")
        return "error"
    if answer.outcome is Outcome.PAID:
        receipt = (answer.confirmation.reference if answer.confirmation else "") or req["request_id"]
        try:
            collect._credit_request(store, cfg, req, receipt, None)
        except JasiyoError as exc:
            _later(store, req, now, expired, str(exc))
            return "error"
        event(log, "payments.recovered", request=req["request_id"], receipt=receipt)
        return "paid"
    if answer.outcome in (Outcome.PENDING, Outcome.UNKNOWN) and not expired:
        _later(store, req, now, False, answer.description)
        return "pending"
    final = StatusAnswer(
        answer.provider,
        answer.request_id,
        Outcome.TIMEOUT if answer.outcome in (Outcome.PENDING, Outcome.UNKNOWN) else answer.outcome,
        answer.code,
        answer.description or "expired",
    )
    with store.transaction():
        collect._settle_request(store, req, final)
    return final.outcome.value


def _later(store: Store, req: Row, now: float, expired: bool, why: str) -> None:
    backoff = min(300.0, 15.0 * 2 ** min(int(req["queries"]), 5))
    with store.transaction():
        if expired:
            store.execute(
                "UPDATE payment_requests SET status = 'timeout', result_desc = ?, updated_at = ?, "
                "next_query_at = NULL WHERE id = ? AND status = 'pending'",
                (f"expired without an answer ({why})"[:200], now, req["id"]),
            )
        else:
            store.execute(
                "UPDATE payment_requests SET next_query_at = ?, result_desc = ? WHERE id = ? "
                "AND status = 'pending'",
                (now + backoff, why[:200] or None, req["id"]),
            )
