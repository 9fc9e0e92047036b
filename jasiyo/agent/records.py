"""Typed views of the agent's records, as the library hands them to the CLI and others."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    rate: str
    burst: str | None
    price_minor: int
    currency: str
    period: str
    billing: str = "prepaid"
    grace_days: int | None = None
    tax_rate_bp: int = 0
    quota_bytes: int | None = None
    fup_rate: str | None = None
    #: True: the price includes the tax (VAT-inclusive); False: tax is added on top.
    tax_inclusive: bool = False
    #: The package also ends once this much data (bytes, both directions) is used.
    data_bytes: int | None = None
    #: Sessions allowed at once (Simultaneous-Use).
    devices: int = 1
    #: Sold on the hotspot captive portal.
    portal: bool = False
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Subscriber:
    username: str
    plan: str
    service: str
    status: str
    ip: str | None = None
    phone: str | None = None
    name: str | None = None
    sms_consent: bool = False
    status_reason: str | None = None
    paid_until: float | None = None
    created_at: float = 0.0
    tax_pin: str | None = None
    #: The one device allowed (Calling-Station-Id, as ``AA:BB:CC:DD:EE:FF``), if bound.
    mac: str | None = None
    #: The paid time starts at the first login, not at payment (a portal purchase).
    clock_pending: bool = False
    #: Home router and POP: where its billing clock and reconcile run
    home_router: str | None = None
    home_pop: str | None = None
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Router:
    name: str
    driver: str
    host: str
    port: int | None
    username: str | None
    nas_ip: str
    require_message_authenticator: bool
    coa_port: int
    has_password: bool
    options: dict[str, Any]
    #: SHA-256 of its RadSec client certificate (lower-case hex), if pinned
    radsec_fingerprint: str | None = None
    #: The POP that added it and drives it; None: from before POPs
    pop: str | None = None
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    nas_ip: str
    acct_session_id: str
    status: str
    started_at: float
    last_update_at: float
    stopped_at: float | None
    framed_ip: str | None
    calling_station_id: str | None
    session_time: int
    input_octets: int
    output_octets: int
    terminate_cause: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
