"""An in-memory :class:`~jasiyo.radius.backend.RadiusBackend`: tests, the demo, trying things.

It keeps the same promises as the agent's SQLite backend: accounting batches are applied
all-or-nothing, retransmitted records are ignored, and Accounting-On/Off closes the NAS's
open sessions. Only durability is missing, by design.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from jasiyo.network import normalize_mac
from jasiyo.radius.backend import AcctRecord, AuthSubject, NasClient, Usage


@dataclass(slots=True)
class MemorySession:
    """One session as accounting last described it."""

    nas_address: str
    acct_session_id: str
    username: str
    started_at: float
    updated_at: float
    input_octets: int = 0
    output_octets: int = 0
    session_time: int = 0
    framed_ip: str = ""
    calling_station_id: str = ""
    open: bool = True
    terminate_cause: str = ""


def record_key(r: AcctRecord) -> tuple[object, ...]:
    """What makes two accounting records "the same" (a retransmission).

    Accounting-On/Off carry no session or counters, so they are told apart by when the NAS
    sent them (arrival minus Acct-Delay-Time): a reboot next week is a new event.
    """
    if r.status_type in ("Accounting-On", "Accounting-Off"):
        return (r.nas_address, r.status_type, round(r.received_at - r.delay_time))
    return (
        r.nas_address,
        r.acct_session_id,
        r.status_type,
        r.input_octets,
        r.output_octets,
        r.session_time,
    )


@dataclass
class MemoryBackend:
    """Routers, subscribers and accounting in dictionaries, safe to use from two threads."""

    nases: dict[str, NasClient] = field(default_factory=dict)
    subjects: dict[str, AuthSubject] = field(default_factory=dict)
    #: every record stored, in arrival order (retransmissions excluded)
    records: list[AcctRecord] = field(default_factory=list)
    sessions: dict[tuple[str, str], MemorySession] = field(default_factory=dict)
    #: how many times record_accounting was called (one per group commit)
    batches: int = 0
    #: RadSec certificate fingerprint -> NAS address
    radsec_pins: dict[str, str] = field(default_factory=dict)
    _seen: set[tuple[object, ...]] = field(default_factory=set, repr=False)
    #: username -> keys of its sessions (usage() must not scan every session)
    _by_user: dict[str, list[tuple[str, str]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ------------------------------------------------------------ setup helpers

    def add_nas(self, nas: NasClient) -> None:
        with self._lock:
            self.nases[nas.address] = nas

    def add_subject(self, subject: AuthSubject) -> None:
        with self._lock:
            self.subjects[subject.username] = subject

    # ------------------------------------------------------------ RadiusBackend

    def nas(self, address: str) -> NasClient | None:
        """The NAS at ``address`` or None."""
        return self.nases.get(address)

    def radsec_nas(self, fingerprint: str, names: Sequence[str]) -> NasClient | None:
        """The NAS pinned to ``fingerprint``, else the unpinned one named in ``names``."""
        address = self.radsec_pins.get(fingerprint)
        if address is not None:
            return self.nases.get(address)
        pinned = set(self.radsec_pins.values())
        wanted = {n.lower() for n in names}
        for nas in self.nases.values():
            if nas.name.lower() in wanted and nas.address not in pinned:
                return nas
        return None

    def subject(self, username: str) -> AuthSubject | None:
        """The subscriber ``username`` or None."""
        return self.subjects.get(username)

    def usage(self, username: str, since: float | None) -> Usage:
        """Open sessions of ``username`` and their traffic since ``since`` (whole sessions
        updated since then: the memory backend keeps no per-record history)."""
        with self._lock:
            mine = [self.sessions[k] for k in self._by_user.get(username, ())]
            return Usage(
                sessions=tuple(normalize_mac(s.calling_station_id) or "" for s in mine if s.open),
                used_bytes=sum(
                    s.input_octets + s.output_octets for s in mine if since is None or s.updated_at >= since
                ),
            )

    def record_accounting(self, records: Sequence[AcctRecord]) -> None:
        """Apply a batch: new records stored once, sessions opened, updated, closed."""
        with self._lock:
            self.batches += 1
            for r in records:
                key = record_key(r)
                if key in self._seen:
                    if r.status_type in ("Accounting-On", "Accounting-Off"):
                        self._track_session(r)  # closing closed sessions again changes nothing
                    continue
                self._seen.add(key)
                self.records.append(r)
                self._track_session(r)

    def _track_session(self, r: AcctRecord) -> None:
        s: MemorySession | None
        if r.status_type in ("Accounting-On", "Accounting-Off"):
            for s in self.sessions.values():
                if s.nas_address == r.nas_address and s.open:
                    s.open = False
                    s.terminate_cause = "NAS-Reboot"
                    s.updated_at = r.received_at
            return
        key = (r.nas_address, r.acct_session_id)
        s = self.sessions.get(key)
        if s is None:
            s = self.sessions[key] = MemorySession(
                r.nas_address, r.acct_session_id, r.username, r.received_at, r.received_at
            )
            self._by_user.setdefault(r.username, []).append(key)
        s.updated_at = r.received_at
        # counters only grow within a session; a late Interim must not roll them back
        s.input_octets = max(s.input_octets, r.input_octets)
        s.output_octets = max(s.output_octets, r.output_octets)
        s.session_time = max(s.session_time, r.session_time)
        s.framed_ip = r.framed_ip or s.framed_ip
        s.calling_station_id = r.calling_station_id or s.calling_station_id
        if r.status_type == "Stop":
            s.open = False
            s.terminate_cause = r.terminate_cause

    # ------------------------------------------------------------ reading

    def open_sessions(self) -> list[MemorySession]:
        with self._lock:
            return [s for s in self.sessions.values() if s.open]
