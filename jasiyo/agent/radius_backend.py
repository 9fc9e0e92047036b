"""The agent's :class:`~jasiyo.radius.backend.RadiusBackend`: the store, behind a cache.

Authentication is answered from memory: subscribers and routers are cached and the cache
is dropped whenever the store's ``auth_rev`` counter moves (triggers bump it on any change
to plans, subscribers or routers, from this process or the CLI). The counter is read at
most every ``refresh_interval`` seconds, so a change reaches RADIUS within that time.

Accounting is written in the group-commit writer's thread, on its own connection with
``synchronous=FULL``: when :meth:`record_accounting` returns, the batch is on disk.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from jasiyo.agent import pops
from jasiyo.agent.acct_rows import (
    ACCT_INSERT,
    ACCT_ROW,
    SESSION_INSERT,
    SESSION_ROW,
    SESSION_UPSERT,
    acct_params,
    event_time,
    session_params,
    start_time,
    store_batch,
)
from jasiyo.agent.desired import DESIRED_SQL, desired_state
from jasiyo.agent.keys import SecretBox
from jasiyo.agent.routers import secret_context
from jasiyo.agent.session_ips import address_nases, queue_address_reconcile
from jasiyo.agent.store import Row, Store
from jasiyo.agent.subscribers import password_context
from jasiyo.config import Config
from jasiyo.errors import StoreError
from jasiyo.log import event, get_logger
from jasiyo.network import normalize_mac
from jasiyo.radius.backend import AcctRecord, AuthSubject, NasClient, Usage
from jasiyo.radius.vendors import Vendor, vendor_of_driver

log = get_logger(__name__)

_SUBJECT_SQL = DESIRED_SQL.replace("SELECT ", "SELECT s.password_enc, ", 1)


def nas_vendor(row: Row) -> dict[str, Any]:
    """The :class:`NasClient` fields a router's driver decides: the reply dialect, whether
    it can hold a suspended subscriber in a walled garden, and its suspended Framed-Pool.

    MikroTik fences by address list (a RADIUS attribute); an EdgeRouter only through its
    driver, so only when the agent has its credentials; a generic NAS never.
    """
    vendor = vendor_of_driver(row["driver"])
    options = json.loads(row["options"] or "{}")
    fences = vendor is Vendor.MIKROTIK or (vendor is Vendor.EDGEOS and row["password_enc"] is not None)
    return {
        "vendor": vendor.value,
        "walled_garden": fences,
        "suspended_pool": str(options.get("suspended_pool") or ""),
    }


class StoreBackend:
    def __init__(self, cfg: Config, box: SecretBox, refresh_interval: float = 0.25) -> None:
        self.cfg = cfg
        self.box = box
        self.refresh_interval = refresh_interval
        self._local = threading.local()
        self._subjects: dict[str, AuthSubject | None] = {}
        self._nases: dict[str, NasClient | None] | None = None
        #: RadSec: fingerprint -> NAS, and name (lower case) -> (NAS, pinned fingerprint)
        self._radsec_pins: dict[str, NasClient] = {}
        self._radsec_names: dict[str, tuple[NasClient, str | None]] = {}
        self._rev: str | None = None
        self._checked = 0.0
        self._warned_ma: set[str] = set()
        #: a session not heard from for this long is stale (it does not hold a device slot)
        self._stale_after = cfg.radius.interim_interval * cfg.radius.stale_after_missed_interims
        self._acct_gen = 0
        #: the writer's: auth_rev when ``_by_address`` (NASes whose sessions' addresses
        #: matter, :func:`address_nases`) was read
        self._writer_rev: str | None = None
        self._by_address: frozenset[str] = frozenset()

    def _store(self, *, writer: bool = False) -> Store:
        attr = "writer" if writer else "reader"
        s = getattr(self._local, attr, None)
        if s is None:
            s = Store(self.cfg.db_path, self.box, synchronous="FULL" if writer else "NORMAL")
            if writer:
                # A long CLI import holds the write lock for seconds; accounting waits for it
                # (unanswered meanwhile, so routers retransmit) rather than fail the batch.
                s.execute("PRAGMA busy_timeout = 120000")
            setattr(self._local, attr, s)
        return s

    def close(self) -> None:
        for attr in ("reader", "writer"):
            s = getattr(self._local, attr, None)
            if s is not None:
                s.close()
                setattr(self._local, attr, None)

    # ------------------------------------------------------------ cache

    def _fresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.refresh_interval:
            return
        self._checked = now
        rev = self._store().meta("auth_rev")
        if rev != self._rev:
            self._rev = rev
            self._subjects = {}
            self._nases = None
            self._radsec_pins = {}
            self._radsec_names = {}

    def warm(self) -> int:
        """Load every subscriber into the cache (at start-up). Returns how many."""
        self._fresh()
        store = self._store()
        for row in store.all(_SUBJECT_SQL):
            try:
                self._subjects[row["username"]] = self._subject(row)
            except (StoreError, ValueError) as exc:  # one bad row must not stop RADIUS
                event(log, "radius.subscriber_unreadable", level=40, user=row["username"], error=str(exc))
        return len(self._subjects)

    def _subject(self, row: dict) -> AuthSubject:
        password = self.box.open_str(row["password_enc"], password_context(row["username"]))
        return AuthSubject(row["username"], password, desired_state(row, self.cfg.radius))

    # ------------------------------------------------------------ RadiusBackend

    def nas(self, address: str) -> NasClient | None:
        self._fresh()
        if self._nases is None:
            nases: dict[str, NasClient | None] = {}
            pins: dict[str, NasClient] = {}
            names: dict[str, tuple[NasClient, str | None]] = {}
            for row in self._store().all("SELECT * FROM routers"):
                require = bool(row["require_message_authenticator"]) and (
                    self.cfg.radius.require_message_authenticator
                )
                try:
                    secret = self.box.open(
                        row["radius_secret_enc"], secret_context(row["name"], "radius_secret")
                    )
                except (StoreError, TypeError) as exc:  # drop this router, not every one
                    event(log, "radius.nas_unreadable", level=40, router=row["name"], error=str(exc))
                    continue
                client = nases[row["nas_ip"]] = NasClient(
                    name=row["name"],
                    address=row["nas_ip"],
                    secret=secret,
                    require_message_authenticator=require,
                    coa_port=row["coa_port"],
                    **nas_vendor(row),
                )
                pin = row["radsec_fingerprint"]
                if pin:
                    pins[pin] = client
                names[row["name"].lower()] = (client, pin)
                if not require and row["name"] not in self._warned_ma:
                    self._warned_ma.add(row["name"])
                    event(
                        log,
                        "radius.nas.message_authenticator_optional",
                        level=30,
                        router=row["name"],
                        nas=row["nas_ip"],
                        risk="BlastRADIUS (CVE-2024-3596)",
                    )
            self._nases = nases
            self._radsec_pins = pins
            self._radsec_names = names
        return self._nases.get(address)

    def radsec_nas(self, fingerprint: str, names: Sequence[str]) -> NasClient | None:
        self.nas("")  # loads (or refreshes) the routers
        client = self._radsec_pins.get(fingerprint)
        if client is not None:
            return client
        for name in names:
            found = self._radsec_names.get(name.lower())
            if found is not None and found[1] is None:  # a pinned router takes only its pin
                return found[0]
        return None

    def subject(self, username: str) -> AuthSubject | None:
        self._fresh()
        try:
            return self._subjects[username]
        except KeyError:
            pass
        row = self._store().one(f"{_SUBJECT_SQL} WHERE s.username = ?", (username,))
        try:
            subject = self._subject(row) if row else self._voucher(username)
        except (StoreError, ValueError) as exc:
            event(log, "radius.subscriber_unreadable", level=40, user=username, error=str(exc))
            subject = None
        if len(self._subjects) < 1_000_000:  # bound the cache of unknown names
            self._subjects[username] = subject
        return subject

    def _voucher(self, username: str) -> AuthSubject | None:
        """A voucher typed at the login page: its password is the code as typed."""
        from jasiyo.agent import vouchers

        row = vouchers.subject_row(self._store(), username)
        if row is None:
            return None
        return AuthSubject(row["code"], username, vouchers.state(row, self.cfg.radius))

    def usage(self, username: str, since: float | None) -> Usage:
        """Open sessions and data used, remembered until sessions or usage summaries change
        (the ``usage_rev`` counter their triggers move; other commits, such as the SMS
        sender's, keep the cache) or for 30 s (sessions go stale in minutes). Accounting
        written by this backend is seen at once; by other processes within
        ``refresh_interval``."""
        now = time.time()
        local = self._local
        cache = getattr(local, "usage", None)
        if (
            cache is None
            or cache[0] != self._acct_gen
            or now - local.usage_checked >= (self.refresh_interval)
        ):
            local.usage_checked = now
            version = self._store().scalar("SELECT n FROM usage_rev")
            if cache is None or cache[0] != self._acct_gen or version != local.usage_version:
                local.usage_version = version
                entries: dict[tuple[str, float | None], tuple[float, Usage]] = {}
                cache = local.usage = (self._acct_gen, entries)
        hit = cache[1].get((username, since))
        if hit is not None and hit[0] > now:
            return hit[1]
        found = self._usage(self._store(), username, since, now)
        if len(cache[1]) >= 100_000:
            cache[1].clear()
        cache[1][(username, since)] = (now + 30.0, found)
        return found

    def _usage(self, store: Store, username: str, since: float | None, now: float) -> Usage:
        from jasiyo.agent.usage import cycle_usage

        cutoff = now - self._stale_after
        macs = tuple(
            normalize_mac(r[0]) or ""
            for r in store.execute(
                # by user first: the (status, last_update_at) index would scan every session
                "SELECT calling_station_id FROM radius_sessions INDEXED BY radius_sessions_user "
                "WHERE username = ? AND status = 'active' AND last_update_at >= ?",
                (username, cutoff),
            )
        )
        used = cycle_usage(store, username, since) if since is not None else 0
        return Usage(sessions=macs, used_bytes=used)

    def record_accounting(self, records: Sequence[AcctRecord]) -> None:
        store = self._store(writer=True)
        with store.transaction():
            rev = store.meta("auth_rev")  # any change to routers moves it
            if rev != self._writer_rev or self._writer_rev is None:
                self._by_address = address_nases(store)
                self._writer_rev = rev
            by_address = self._by_address
            store_batch(
                store, records, by_address, lambda r: _store_accounting(store, r, self.cfg, by_address)
            )
        self._acct_gen += 1  # what usage() remembered is out of date


def _store_accounting(
    store: Store, r: AcctRecord, cfg: Config | None = None, by_address: frozenset[str] | None = None
) -> None:
    """Store one record in the caller's transaction. ``by_address``: the NASes of
    :func:`address_nases`, if the caller knows them (else each Start and Stop asks)."""
    from jasiyo.agent import hotspot, vouchers

    username = vouchers.account_name(store, r.username) if r.username else r.username
    cur = store.execute(ACCT_INSERT + ACCT_ROW, acct_params(r))
    if cur.rowcount == 0:
        return  # seen before: a retransmission
    if r.status_type in ("Accounting-On", "Accounting-Off"):
        at = event_time(r)
        store.execute(
            "UPDATE radius_sessions SET status = 'closed', stopped_at = ?, "
            "terminate_cause = 'NAS-Reboot', last_update_at = ? "
            "WHERE nas_ip = ? AND status = 'active'",
            (at, at, r.nas_address),
        )
        return
    if not r.acct_session_id:
        return
    start = r.status_type == "Start"
    clock = True  # hotspot.start_clock may have something to do
    if start and username and username == r.username:
        # one read for both: a subscriber without a home gets this NAS's router, one whose
        # clock waits for the first login gets it started (both rare; they read again)
        row = store.one("SELECT home_router, clock_pending FROM subscribers WHERE username = ?", (username,))
        if row is not None and row["home_router"] is None:
            pops.learn_home(store, r.username, r.nas_address)
        clock = (row is not None and row["clock_pending"] == 1) or vouchers.canonical(username) == username
    elif start:
        pops.learn_home(store, r.username, r.nas_address)
    stop = r.status_type == "Stop"
    values = session_params(r, username)
    store.execute(SESSION_INSERT + SESSION_ROW + SESSION_UPSERT, values)
    if start and clock and cfg is not None:
        hotspot.start_clock(store, cfg, username, r.calling_station_id or None, start_time(r))
    if r.framed_ip and (start or stop) and (by_address is None or r.nas_address in by_address):
        # An EdgeRouter shapes and fences by address: let it follow this one.
        queue_address_reconcile(
            store, r.nas_address, event_time(r), f"session {r.status_type.lower()} {r.framed_ip}"
        )


def open_backend(cfg: Config) -> StoreBackend:
    """A StoreBackend with the agent's key: what an authentication worker process opens
    (a module-level function, so ``functools.partial(open_backend, cfg)`` pickles)."""
    from jasiyo.agent.keys import load_key

    return StoreBackend(cfg, SecretBox(load_key(cfg.key_path)))
