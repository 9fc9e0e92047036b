"""What the RADIUS server needs from the agent's store, and nothing more.

The agent implements :class:`RadiusBackend` over SQLite; tests use
:class:`jasiyo.radius.memory.MemoryBackend`. Keeping the interface this small is what
lets the wire code be tested without the agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from jasiyo.network import DesiredState


@dataclass(frozen=True, slots=True)
class NasClient:
    """A router allowed to talk RADIUS to us, keyed by its source address.

    ``vendor`` (``mikrotik``, ``edgeos``, ``generic``) decides the reply attributes;
    ``walled_garden`` says whether a suspended subscriber can be fenced in there, and
    ``suspended_pool`` names the NAS's Framed-Pool for them (see :mod:`.vendors`).
    """

    name: str
    address: str
    secret: bytes
    require_message_authenticator: bool = True
    coa_port: int = 3799
    vendor: str = "mikrotik"
    walled_garden: bool = True
    suspended_pool: str = ""


@dataclass(frozen=True, slots=True)
class AuthSubject:
    """A subscriber as RADIUS authentication sees it.

    ``password`` is the cleartext (decrypted from the store): CHAP and MS-CHAPv2 need it.
    """

    username: str
    password: str
    state: DesiredState


@dataclass(frozen=True, slots=True)
class Usage:
    """What a subscriber is doing now, read for an Access-Request that has limits.

    ``sessions``: the normalised Calling-Station-Id ("" if none) of each open session,
    stale ones excluded; ``used_bytes``: traffic since the package's ``data_since``.
    """

    sessions: tuple[str, ...] = ()
    used_bytes: int = 0


@dataclass(frozen=True, slots=True)
class AcctRecord:
    """One Accounting-Request, decoded. Octet counters already include the gigawords."""

    nas_address: str
    status_type: str  # Start, Interim-Update, Stop, Accounting-On, Accounting-Off
    received_at: float  # unix time the agent received it
    acct_session_id: str = ""
    username: str = ""
    nas_identifier: str = ""
    nas_port_id: str = ""
    framed_ip: str = ""
    calling_station_id: str = ""
    session_time: int = 0
    input_octets: int = 0
    output_octets: int = 0
    input_packets: int = 0
    output_packets: int = 0
    terminate_cause: str = ""
    delay_time: int = 0


class RadiusBackend(Protocol):
    def nas(self, address: str) -> NasClient | None:
        """The NAS whose source address is ``address``, or None (the packet is dropped)."""
        ...

    def radsec_nas(self, fingerprint: str, names: Sequence[str]) -> NasClient | None:
        """The router a verified RadSec client certificate identifies, or None: the one
        pinned to ``fingerprint`` (SHA-256, lower-case hex), else the one whose name is in
        ``names`` (the certificate's CN and DNS names) if no other certificate is pinned
        on it. The returned client's ``address`` is its NAS IP (accounting is keyed by it).
        """
        ...

    def subject(self, username: str) -> AuthSubject | None:
        """The subscriber named ``username`` with their desired state, or None."""
        ...

    def usage(self, username: str, since: float | None) -> Usage:
        """Open sessions of ``username`` (stale excluded) and its traffic since ``since``
        (0 when None). Asked only for subjects with a device or data limit."""
        ...

    def record_accounting(self, records: Sequence[AcctRecord]) -> None:
        """Store a batch durably, in one transaction, before returning.

        Idempotent: a record already stored (same NAS, session, status type and counters)
        is ignored, so a retransmission is never counted twice. Accounting-On/Off close
        every open session of that NAS. Called from a writer thread, never the event loop.
        """
        ...
