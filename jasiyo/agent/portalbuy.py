"""The agent's side of the customer's pages (``jasiyo.portal.models.PortalBackend``).

* **Buying on the hotspot portal**: ``jasiyo.agent.hotspot.pending_purchase`` creates a
  pending hotspot subscriber for the device; the STK prompt asks for the package's price
  with that subscriber's account number, so the existing money path (callback, STK Query,
  ``payments.record``) activates it exactly once. The prompt is remembered as made by
  ``portal:<MAC>``; only that device may see the purchase's state and its login.
* **Vouchers**: ``jasiyo.agent.vouchers.redeem``.
* **The pay page**: the customer is whoever has an open RADIUS session with that Framed-IP,
  else the subscriber whose static IP it is; nobody else's account is ever read for it.

One lock serialises the calls: they share one store connection (and its transactions)
across the listener's thread pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from jasiyo.agent import charge, ledger
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import NotFound, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.portal.hotspot import normalize_mac
from jasiyo.portal.models import PAID, Due, Login, Offer, RequestState

log = get_logger(__name__)
#: Offers are read again after this many seconds (a page render must not be a query).
OFFERS_TTL = 5.0


def _bytes(n: int | None) -> str:
    if not n:
        return ""
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6)):
        if n >= size:
            value = n / size
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return f"{n}B"


def _actor(mac: str) -> str:
    return f"portal:{mac}"


class PortalOps:
    def __init__(self, store_of: Callable[[], Store], cfg: Config) -> None:
        self._store_of = store_of  # opened on first use, in the listener's thread pool
        self.cfg = cfg
        self._lock = threading.Lock()
        self._offers: tuple[float, list[Offer]] = (0.0, [])

    @property
    def store(self) -> Store:
        return self._store_of()

    # ------------------------------------------------------------------ hotspot

    def offers(self) -> list[Offer]:
        """Plans marked as sold on the portal (``plan add --portal``), cheapest first."""
        now = time.monotonic()
        if now - self._offers[0] < OFFERS_TTL:
            return self._offers[1]
        with self._lock:
            cols = {r["name"] for r in self.store.all("PRAGMA table_info(plans)")}
            found: list[Offer] = []
            if "portal" in cols:  # the column comes with vouchers and short packages
                for r in self.store.all(
                    "SELECT name, price_minor, currency, period, data_bytes "
                    "FROM plans WHERE portal = 1 ORDER BY price_minor, name"
                ):
                    found.append(
                        Offer(
                            r["name"], r["price_minor"], r["currency"], r["period"], _bytes(r["data_bytes"])
                        )
                    )
        self._offers = (now, found)
        return found

    def buy(self, plan: str, phone: str, mac: str, ip: str, sms_consent: bool = False) -> str:
        from jasiyo.agent import consent, hotspot

        mac = normalize_mac(mac)
        if not any(o.plan == plan for o in self.offers()):
            raise ValidationError(f"{plan!r} is not a package sold here")
        with self._lock:
            prov = charge.provider(self.cfg, "mpesa")  # before anything is created
            access = hotspot.pending_purchase(self.store, self.cfg, plan=plan, phone=phone, mac=mac)
            if sms_consent:  # the box on the buy form, ticked by the customer
                consent.set_consent(
                    self.store,
                    access.username,
                    True,
                    "portal",
                    _actor(mac),
                    source=f"hotspot buy form from {ip}"[:200],
                )
            # The amount is one period of the package (with tax), as for any subscriber.
            req = charge.request_stk(
                self.store, self.cfg, prov, access.username, phone=phone, actor=_actor(mac)
            )
        event(log, "portal.stk_sent", user=access.username, plan=plan, request=req.request_id)
        return req.request_id

    def request_state(self, request_id: str, mac: str) -> RequestState:
        with self._lock:
            row = self.store.one(
                "SELECT r.status, r.created_by, s.username FROM payment_requests r "
                "LEFT JOIN subscribers s ON s.id = r.subscriber_id WHERE r.request_id = ?",
                (request_id,),
            )
            if row is None or row["created_by"] != _actor(normalize_mac(mac)):
                raise NotFound("no such purchase from this device")
            if row["status"] != PAID or row["username"] is None:
                return RequestState(row["status"])
            status = self.store.scalar(
                "SELECT status FROM subscribers WHERE username = ?", (row["username"],)
            )
            if status not in ("active", "grace"):
                # Paid, but the money path has not activated the package yet.
                return RequestState("pending")
            password = subs.password_of(self.store, row["username"])
            return RequestState(PAID, Login(row["username"], password))

    def device_login(self, mac: str) -> Login | None:
        from jasiyo.agent import hotspot

        try:
            device = normalize_mac(mac)
        except ValidationError:
            return None
        with self._lock:
            row = self.store.one(
                "SELECT username FROM subscribers WHERE mac = ? AND service = 'hotspot' "
                "AND substr(username, 1, ?) = ? AND status IN ('active', 'grace') "
                "AND (clock_pending = 1 OR paid_until > ?) ORDER BY id DESC LIMIT 1",
                (device, len(hotspot.PREFIX), hotspot.PREFIX, time.time()),
            )
            if row is None:
                return None
            password = subs.password_of(self.store, row["username"])
        event(log, "portal.device_login", user=row["username"])
        return Login(row["username"], password)

    def redeem(self, code: str, mac: str, ip: str) -> Login:
        from jasiyo.agent import vouchers

        with self._lock:
            access = vouchers.redeem(self.store, self.cfg, code, mac=normalize_mac(mac), ip=ip)
        return Login(access.username, access.password)

    # ------------------------------------------------------------------ pay page

    def _who(self, address: str) -> str | None:
        if not address or len(address) > 64:
            return None
        row = self.store.one(
            "SELECT username FROM radius_sessions WHERE framed_ip = ? AND status = 'active' "
            "ORDER BY last_update_at DESC LIMIT 1",
            (address,),
        )
        if row is None:
            row = self.store.one(
                "SELECT username FROM subscribers WHERE ip = ? AND status != 'terminated'", (address,)
            )
        return row["username"] if row else None

    def _identified(self, address: str) -> str:
        username = self._who(address)
        if username is None:
            raise NotFound("this connection is not one of our customers'")
        return username

    def due_for(self, address: str) -> Due | None:
        with self._lock:
            username = self._who(address)
            if username is None:
                return None
            sub = ledger.subscriber_row(self.store, username)
            amount, currency = charge.amount_due(self.store, username)
            if sub["status"] in ("active", "grace") and ledger.balance(self.store, sub["id"]) >= 0:
                amount = 0  # online and not in debt: nothing to pay today
            provs: dict[str, Any] = charge.providers(self.cfg)
            return Due(
                username,
                sub["name"] or "",
                sub["status"],
                max(0, amount),
                currency,
                sub["plan"],
                bool(sub["phone"]),
                "paystack" in provs,
                "mpesa" in provs and currency.upper() == "KES",
            )

    def pay_stk(self, address: str, phone: str) -> str:
        with self._lock:
            username = self._identified(address)
            prov = charge.provider(self.cfg, "mpesa")
            req = charge.request_stk(
                self.store, self.cfg, prov, username, phone=phone or None, actor=f"portal:pay:{address}"
            )
        event(log, "portal.pay_sent", user=username, request=req.request_id)
        return req.request_id

    def pay_link(self, address: str, email: str) -> str:
        with self._lock:
            username = self._identified(address)
            prov = charge.provider(self.cfg, "paystack")
            req = charge.request_link(
                self.store, self.cfg, prov, username, email=email, actor=f"portal:pay:{address}"
            )
        return req.checkout_url

    def pay_state(self, address: str, request_id: str) -> RequestState:
        """A request made from ``address`` (by the request's maker, not today's session:
        the restore disconnects the walled-garden session, and the next may get another
        address)."""
        with self._lock:
            row = self.store.one(
                "SELECT r.status, r.created_by, s.status AS sub_status FROM payment_requests r "
                "LEFT JOIN subscribers s ON s.id = r.subscriber_id WHERE r.request_id = ?",
                (request_id,),
            )
            if row is None or row["created_by"] != f"portal:pay:{address}":
                raise NotFound("no such payment from this connection")
            if row["status"] == PAID:
                return RequestState(PAID if row["sub_status"] in ("active", "grace") else "pending")
            return RequestState(row["status"])
