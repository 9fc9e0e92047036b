"""Typed values that cross the driver boundary: config in, state / diff / reports out.

Every driver (MikroTik, EdgeOS, ...) speaks in these types, so the agent and the conformance
suite never see a vendor's wire format. Vendor specifics live in two places only:
``RouterObject.kind`` names (e.g. ``"ppp-secret"``, ``"queue"``) and the string fields of an
object, which are the router's own property names and values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from jasiyo.network import Service

#: Prefix of the comment (MikroTik) or description (EdgeOS) of every object the agent owns.
#: Objects without it are never changed or removed.
TAG_PREFIX = "jasiyo:"

Mode = Literal["radius", "api"]


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """How to reach one router and what the agent manages on it.

    ``mode="radius"``: PPP/hotspot users authenticate against our RADIUS server, so the driver
    manages only queues (static-IP customers), the suspended address list and the walled
    garden. ``mode="api"``: the driver also keeps PPP secrets / hotspot users and one profile
    per plan on the router itself (routers that do not use RADIUS).

    TLS: ``tls=True`` uses the vendor's TLS API port; the certificate is verified against
    ``ca_file`` or, for self-signed router certificates, pinned by ``fingerprint`` (SHA-256 of
    the DER certificate, hex, colons optional). With neither, the system CA store is used.
    """

    host: str
    username: str
    password: str = field(repr=False)
    name: str = ""
    port: int | None = None  # None: the vendor default (8728 plain / 8729 TLS for RouterOS)
    tls: bool = False
    ca_file: str | None = None
    fingerprint: str | None = None
    timeout: float = 10.0
    mode: Mode = "radius"
    address_list: str = "jasiyo-suspended"
    #: Address customers in the walled garden are redirected to (the pay page), or None for
    #: drop-only. HTTP (tcp/80) is redirected there; everything else from the list is dropped.
    pay_page: str | None = None
    pay_page_port: int = 80
    #: Take over untagged objects whose name matches a desired one (after ``router import``).
    #: Off by default: an untagged object with the same name is reported as a conflict.
    adopt_existing: bool = False
    #: Vendor-specific extras (documented by each driver); unknown keys are ignored.
    options: Mapping[str, str] = field(default_factory=dict)

    def label(self) -> str:
        """A name for messages and logs: the configured name, else host[:port]."""
        if self.name:
            return self.name
        return f"{self.host}:{self.port}" if self.port else self.host


@dataclass(frozen=True, slots=True)
class RouterFacts:
    """Who the router is. ``version`` as the vendor prints it (RouterOS: ``"7.16"``)."""

    vendor: str
    identity: str
    version: str
    model: str
    uptime: str = ""


@dataclass(frozen=True, slots=True)
class RouterObject:
    """One configuration object on the router, as read.

    ``kind`` is a driver-defined menu name (MikroTik: ``ppp-secret``, ``ppp-profile``,
    ``hotspot-user``, ``hotspot-profile``, ``queue``, ``address-list``, ``nat``, ``filter``).
    ``key`` is the agent's name for it: the value after ``jasiyo:<tag>=`` in its comment for
    managed objects, its natural name (secret name, queue name, list address) for unmanaged
    ones. ``object_id`` is the router's handle (``*1A``). ``fields`` holds the properties the
    driver manages, as strings exactly as the router printed them.
    """

    kind: str
    key: str
    object_id: str
    fields: Mapping[str, str]
    managed: bool = True


@dataclass(frozen=True, slots=True)
class RouterState:
    """What the router has that the agent cares about, read in one pass.

    Holds every managed (tagged) object, plus the untagged objects whose names could collide
    with ours (so a plan can report a conflict instead of tripping over a duplicate).
    ``api_calls`` is how many commands the read took (constant, not per subscriber).
    """

    objects: tuple[RouterObject, ...]
    api_calls: int = 0

    def managed(self, kind: str) -> dict[str, RouterObject]:
        """Managed objects of ``kind`` by key. Duplicated keys: the first one read wins."""
        out: dict[str, RouterObject] = {}
        for obj in self.objects:
            if obj.kind == kind and obj.managed:
                out.setdefault(obj.key, obj)
        return out

    def unmanaged(self, kind: str) -> dict[str, RouterObject]:
        """Untagged objects of ``kind`` by natural key (name / address)."""
        return {o.key: o for o in self.objects if o.kind == kind and not o.managed}


class Action(StrEnum):
    ADD = "add"
    UPDATE = "update"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class Change:
    """One step of a diff.

    ``add``: ``fields`` are all properties of the new object. ``update``: ``fields`` are only
    the properties that differ (new values), ``before`` their current values. ``remove``:
    ``before`` is the object as read. ``subscriber`` names the customer the change serves,
    if any; ``reason`` says why, in words (``"missing"``, ``"drift"``, ``"not desired"``).
    """

    action: Action
    kind: str
    key: str
    fields: Mapping[str, str] = field(default_factory=dict)
    before: Mapping[str, str] = field(default_factory=dict)
    object_id: str | None = None
    subscriber: str | None = None
    reason: str = ""

    def describe(self) -> str:
        """One line for tables and logs, without any password value."""
        shown = {k: ("***" if "password" in k else v) for k, v in self.fields.items()}
        props = " ".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.action} {self.kind} {self.key}" + (f" {props}" if props else "")


@dataclass(frozen=True, slots=True)
class Conflict:
    """A desired object the driver will not create or change: an untagged object holds it."""

    kind: str
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class Diff:
    """Ordered changes that take the router from its current state to the desired one.

    Applying them in order is safe: profiles are added before the secrets that use them,
    and removed after.
    """

    changes: tuple[Change, ...] = ()
    conflicts: tuple[Conflict, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to apply (conflicts alone change nothing)."""
        return not self.changes

    def counts(self) -> dict[str, int]:
        """``{"add": n, "update": n, "remove": n, "conflict": n}``."""
        out = {a.value: 0 for a in Action}
        for c in self.changes:
            out[c.action.value] += 1
        out["conflict"] = len(self.conflicts)
        return out


@dataclass(frozen=True, slots=True)
class Failure:
    """A change the router refused or that could not be sent."""

    change: Change
    error: str


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """What ``apply``/``reconcile`` did: every change of the diff is in exactly one of
    ``applied``, ``failed`` or ``not_attempted`` (the connection was lost before it).
    ``conflicts`` are carried over from the diff. ``api_calls`` counts the commands sent,
    including the read when it comes from ``reconcile``.
    """

    applied: tuple[Change, ...] = ()
    failed: tuple[Failure, ...] = ()
    not_attempted: tuple[Change, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    api_calls: int = 0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every change was applied and nothing conflicted."""
        return not (self.failed or self.not_attempted or self.conflicts)

    def summary(self) -> str:
        """``"applied 3, failed 1, not attempted 2, conflicts 0"``."""
        return (
            f"applied {len(self.applied)}, failed {len(self.failed)}, "
            f"not attempted {len(self.not_attempted)}, conflicts {len(self.conflicts)}"
        )


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A connected customer (PPP or hotspot). ``session_id`` is the router's handle."""

    service: Service
    username: str
    address: str
    session_id: str
    caller_id: str = ""
    uptime: str = ""


@dataclass(frozen=True, slots=True)
class RouterAccount:
    """A PPP secret or hotspot user as found on the router, for ``router import``.

    ``managed`` tells whether the agent already owns it (tagged).
    """

    service: Service
    name: str
    password: str = field(repr=False)
    profile: str
    remote_address: str | None = None
    disabled: bool = False
    comment: str = ""
    managed: bool = False
