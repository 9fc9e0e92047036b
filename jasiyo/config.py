"""Configuration: TOML, validated into frozen dataclasses. Errors name the key."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jasiyo.errors import ConfigError, ValidationError
from jasiyo.network import Rate

ENV_VAR = "JASIYO_CONFIG"
EXAMPLE = Path(__file__).with_name("config.example.toml")


@dataclass(frozen=True)
class AgentSection:
    data_dir: Path = Path("./data")
    name: str = ""
    log_level: str = "info"
    operator: str = ""
    #: The POP's code in invoice numbers (INV-NRB1-2026-000123); default: from ``name``.
    pop: str = ""
    #: The ISP as invoices name it: legal name, address, tax PIN (KRA PIN / TIN).
    business_name: str = ""
    business_address: str = ""
    tax_pin: str = ""
    #: The number customers call for help: on voucher cards and the portal's pages.
    support_phone: str = ""


@dataclass(frozen=True)
class RadiusSection:
    address: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    coa_port: int = 3799
    require_message_authenticator: bool = True
    suspended_action: str = "walled_garden"
    walled_garden_rate: str = "256k/256k"
    suspended_address_list: str = "jasiyo-suspended"
    interim_interval: int = 300
    stale_after_missed_interims: int = 3
    coa_timeout: float = 2.0
    coa_retries: int = 2
    accounting_retention_days: int = 400
    #: processes answering UDP authentication on auth_port; 0 = one per CPU core but one
    workers: int = 0


@dataclass(frozen=True)
class RadsecSection:
    """RADIUS over TLS (RFC 6614). Empty paths mean <data_dir>/radsec/ (filled in by
    :func:`parse`, so code reading the config always sees absolute paths)."""

    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = 2083
    certificate: str = ""
    private_key: str = ""
    ca: str = ""
    idle_timeout: float = 300.0
    max_connections: int = 256


@dataclass(frozen=True)
class BillingSection:
    grace_days: int = 3
    terminate_after_days: int = 90
    reminder_days: list[int] = field(default_factory=lambda: [3, 1])
    tick_minutes: int = 1
    timezone: str = "Africa/Nairobi"
    #: ISO 3166 country of the ISP's customers: how local phone numbers (0712...) are read.
    country: str = "KE"
    invoice_due_days: int = 7
    enforce_interval: float = 0.5


@dataclass(frozen=True)
class RoutersSection:
    reconcile_minutes: int = 5
    timeout: float = 10.0


@dataclass(frozen=True)
class SyncSection:
    cloud_url: str = ""
    interval: int = 10


@dataclass(frozen=True)
class PrivacySection:
    """How long personal data is kept (days; 0 keeps it for ever). Raw accounting is
    ``[radius] accounting_retention_days``. Money records are never deleted, and the sync
    events of money are kept at least ``money_retention_years`` (:mod:`jasiyo.agent.retention`)."""

    event_days: int = 400
    audit_days: int = 730
    sms_days: int = 180
    webhook_days: int = 90
    session_days: int = 400
    snapshot_days: int = 7
    money_retention_years: int = 7


@dataclass(frozen=True)
class WebSection:
    """The agent's own HTTP listener: health, provider callbacks, later the portal."""

    enabled: bool = True
    address: str = "127.0.0.1"
    port: int = 8080
    #: How the internet reaches this listener (for provider callbacks when there is no cloud),
    #: e.g. ``https://pop1.example.co.ke``. Empty: callbacks go through the cloud only.
    public_url: str = ""
    #: Client networks allowed to read ``/metrics`` (the listener faces customers: the
    #: portal and pay page are on it). Add the Prometheus server's address.
    metrics_from: list[str] = field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])


@dataclass(frozen=True)
class PortalSection:
    """The customer's pages on the web listener (docs/portal.md)."""

    enabled: bool = True
    #: Where customers reach the portal (``http://10.5.50.2:8080``): written into the
    #: router's hotspot files and its walled garden. Empty: ``[web] public_url``.
    url: str = ""
    #: Host names (besides private/loopback addresses) the router's ``link-login-only``
    #: may name: the portal posts the login there.
    login_hosts: list[str] = field(default_factory=list)
    #: M-Pesa prompts allowed per hour per phone, per device (MAC) and per client address.
    stk_per_phone: int = 5
    stk_per_mac: int = 5
    stk_per_ip: int = 60
    #: Voucher attempts per hour per address and per device; wrong codes per minute from
    #: everywhere before every attempt waits a minute.
    voucher_per_ip: int = 30
    voucher_per_mac: int = 10
    voucher_failures_per_minute: int = 60
    #: Page requests per second per client address (and the burst).
    page_rate: float = 20.0
    page_burst: int = 200


@dataclass(frozen=True)
class MpesaSettings:
    base_url: str = "https://sandbox.safaricom.co.ke"
    consumer_key: str = ""
    consumer_secret: str = ""
    shortcode: str = ""
    passkey: str = ""
    transaction_type: str = "CustomerPayBillOnline"
    till_number: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.consumer_key and self.consumer_secret and self.shortcode)


@dataclass(frozen=True)
class PaystackSettings:
    base_url: str = "https://api.paystack.co"
    secret_key: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.secret_key)


@dataclass(frozen=True)
class PaymentsSection:
    mpesa: MpesaSettings = field(default_factory=MpesaSettings)
    paystack: PaystackSettings = field(default_factory=PaystackSettings)
    #: Ask the provider about an STK prompt whose callback has not come after this long.
    query_after: float = 45.0
    #: Stop asking (and mark the request expired) after this long.
    request_expiry: float = 900.0
    #: This POP verifies and applies the callbacks of its own requests and of the endpoints
    #: it registered (`jasiyo payment register-urls`).
    process: bool = True
    timeout: float = 10.0
    retries: int = 2


@dataclass(frozen=True)
class SmsTemplates:
    """Message texts per kind and language (``""``: the built-in text). Variables in braces,
    only those of ``jasiyo.sms.templates.VARIABLES``; an unknown one is refused at start."""

    reminder_en: str = ""
    reminder_sw: str = ""
    receipt_en: str = ""
    receipt_sw: str = ""
    suspension_en: str = ""
    suspension_sw: str = ""


@dataclass(frozen=True)
class SmsSection:
    """The SMS gateway and the sender inside `agent run` (docs/sms.md)."""

    #: ``""`` (no SMS is sent), ``"africastalking"`` or ``"http"`` (a URL template).
    provider: str = ""
    #: Empty: Africa's Talking production, or its sandbox when username is "sandbox".
    base_url: str = ""
    username: str = ""
    api_key: str = ""
    #: Approved sender id or short code (``from``); empty: the gateway's default.
    sender_id: str = ""
    #: This POP sends the outbox. Exactly one POP of a tenant may (until home POPs exist).
    send: bool = True
    #: Send from a process of its own at a lower CPU priority (nice 10), so draining the
    #: outbox fast never slows authentication; false: a thread of the agent's process.
    process: bool = True
    language: str = "en"
    rate_per_minute: int = 60
    #: Local times (``[billing] timezone``) between which reminders and notices wait.
    quiet_start: str = "21:00"
    quiet_end: str = "07:00"
    quiet_kinds: list[str] = field(default_factory=lambda: ["reminder", "suspension", "broadcast"])
    max_attempts: int = 8
    retry_first: float = 60.0
    retry_max: float = 3600.0
    timeout: float = 10.0
    #: A pay link for the ``{pay_link}`` variable, e.g. ``https://pay.example/{account}``.
    pay_link: str = ""
    #: The generic HTTP gateway (``provider = "http"``).
    url_template: str = ""
    method: str = "GET"
    body_template: str = ""
    message_id_field: str = ""
    templates: SmsTemplates = field(default_factory=SmsTemplates)

    @property
    def configured(self) -> bool:
        return bool(self.provider)

    def settings(self) -> dict[str, object]:
        """What the gateway class takes."""
        return {
            k: getattr(self, k)
            for k in (
                "base_url",
                "username",
                "api_key",
                "url_template",
                "method",
                "body_template",
                "message_id_field",
            )
        }


@dataclass(frozen=True)
class Config:
    agent: AgentSection = field(default_factory=AgentSection)
    radius: RadiusSection = field(default_factory=RadiusSection)
    radsec: RadsecSection = field(default_factory=RadsecSection)
    billing: BillingSection = field(default_factory=BillingSection)
    routers: RoutersSection = field(default_factory=RoutersSection)
    sync: SyncSection = field(default_factory=SyncSection)
    web: WebSection = field(default_factory=WebSection)
    portal: PortalSection = field(default_factory=PortalSection)
    payments: PaymentsSection = field(default_factory=PaymentsSection)
    sms: SmsSection = field(default_factory=SmsSection)
    privacy: PrivacySection = field(default_factory=PrivacySection)
    path: Path | None = None

    @property
    def data_dir(self) -> Path:
        return self.agent.data_dir

    @property
    def db_path(self) -> Path:
        return self.agent.data_dir / "jasiyo.db"

    @property
    def key_path(self) -> Path:
        return self.agent.data_dir / "agent.key"


_SECTIONS = {f.name: f.type for f in fields(Config) if f.name != "path"}


#: No setting needs a number this large; anything beyond it is a typo or an attack, and
#: would fail later (a 32-bit RADIUS attribute, a date overflow) without naming the key.
_MAX_NUMBER = 2**31 - 1
#: Inclusive (low, high) bounds of numeric settings, checked after coercion.
_BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("radius", "interim_interval"): (60, 86400),
    ("radius", "stale_after_missed_interims"): (1, 100),
    ("radius", "coa_timeout"): (0.001, 60),
    ("radius", "coa_retries"): (0, 10),
    ("radius", "accounting_retention_days"): (0, 36500),
    ("billing", "grace_days"): (0, 3650),
    ("billing", "terminate_after_days"): (0, 3650),
    ("billing", "reminder_days"): (1, 365),
    ("billing", "tick_minutes"): (1, 1440),
    ("billing", "invoice_due_days"): (0, 365),
    ("billing", "enforce_interval"): (0.001, 3600),
    ("routers", "reconcile_minutes"): (1, 1440),
    ("routers", "timeout"): (0.001, 600),
    ("sync", "interval"): (1, 3600),
    ("portal", "stk_per_phone"): (1, 1000),
    ("portal", "stk_per_mac"): (1, 1000),
    ("portal", "stk_per_ip"): (1, 100000),
    ("portal", "voucher_per_ip"): (1, 100000),
    ("portal", "voucher_per_mac"): (1, 1000),
    ("portal", "voucher_failures_per_minute"): (1, 100000),
    ("portal", "page_rate"): (0.1, 100000),
    ("portal", "page_burst"): (1, 1000000),
    ("privacy", "event_days"): (0, 36500),
    ("privacy", "audit_days"): (0, 36500),
    ("privacy", "sms_days"): (0, 36500),
    ("privacy", "webhook_days"): (0, 36500),
    ("privacy", "session_days"): (0, 36500),
    ("privacy", "snapshot_days"): (1, 365),
    ("privacy", "money_retention_years"): (1, 100),
}


def _show(value: Any) -> str:
    """``value`` for an error line: a hostile list can be megabytes deep or long."""
    text = repr(value) if not isinstance(value, list | dict) else "a list or table"
    return text if len(text) <= 60 else text[:57] + "..."


def _coerce(section: str, key: str, value: Any, typ: Any) -> Any:
    where = f"[{section}] {key}"
    origin = get_origin(typ)
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_show(value)}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {_show(value)}")
        if abs(value) > _MAX_NUMBER:
            raise ConfigError(f"{where}: {value} is far too large")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {_show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value}")
        if abs(value) > _MAX_NUMBER:
            raise ConfigError(f"{where}: {value} is far too large")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_show(value)}")
        if value.startswith("env:"):  # a secret kept out of the file
            name = value[4:]
            if not name or name not in os.environ:
                raise ConfigError(f"{where}: environment variable {name!r} is not set")
            return os.environ[name]
        return value
    if isinstance(typ, type) and is_dataclass(typ):
        return _section(f"{section}.{key}", typ, value)
    if typ is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a path, got {_show(value)}")
        return Path(value)
    if origin is list:
        (item,) = get_args(typ)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_show(value)}")
        if len(value) > 100:
            raise ConfigError(f"{where}: at most 100 values")
        return [_coerce(section, key, v, item) for v in value]
    raise ConfigError(f"{where}: unsupported setting type")  # pragma: no cover - our bug


def _section(name: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    hints = get_type_hints(cls)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ConfigError(f"[{name}] {unknown[0]}: unknown setting (known: {', '.join(hints)})")
    return cls(**{k: _coerce(name, k, v, hints[k]) for k, v in raw.items()})


def check_cloud_url(url: str) -> str:
    """The cloud URL, refused unless it is https:// (plain http:// only on loopback).

    Events are sealed and requests signed either way, but the privacy policy promises TLS
    on every link that leaves the host.
    """
    from urllib.parse import urlsplit

    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        raise ConfigError(f"cloud URL {url!r} is not a URL") from None
    try:
        # An address, not a name that starts like one ("127.0.0.1.nip.io" is anywhere).
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and loopback:
        return url
    raise ConfigError(f"cloud URL {url!r} must be https:// (plain http:// only to loopback)")


def _check_bounds(cfg: Config) -> None:
    for (section, key), (low, high) in _BOUNDS.items():
        value = getattr(getattr(cfg, section), key)
        for v in value if isinstance(value, list) else [value]:
            if not low <= v <= high:
                raise ConfigError(f"[{section}] {key}: {v} is out of range ({low:g} to {high:g})")


def _check(cfg: Config) -> None:
    r = cfg.radius
    for key in ("auth_port", "acct_port", "coa_port"):
        port = getattr(r, key)
        if not 0 <= port <= 65535:
            raise ConfigError(f"[radius] {key}: {port} is not a UDP port (0-65535)")
    if r.suspended_action not in ("walled_garden", "reject"):
        raise ConfigError(
            f"[radius] suspended_action: {r.suspended_action!r} must be walled_garden or reject"
        )
    try:
        Rate.parse(r.walled_garden_rate)
    except ValidationError as exc:
        raise ConfigError(f"[radius] walled_garden_rate: {exc}") from None
    if r.interim_interval < 60:
        raise ConfigError("[radius] interim_interval: must be at least 60 seconds")
    if r.stale_after_missed_interims < 1:
        raise ConfigError("[radius] stale_after_missed_interims: must be at least 1")
    if r.workers < 0:
        raise ConfigError("[radius] workers: 0 (one per core but one) or a number of processes")
    rs = cfg.radsec
    if not 0 <= rs.port <= 65535:
        raise ConfigError(f"[radsec] port: {rs.port} is not a TCP port (0-65535)")
    if rs.idle_timeout <= 0 or rs.max_connections < 1:
        raise ConfigError("[radsec] idle_timeout must be above zero and max_connections at least 1")
    if r.coa_timeout <= 0 or r.coa_retries < 0:
        raise ConfigError("[radius] coa_timeout must be above zero and coa_retries not negative")
    if r.accounting_retention_days and r.accounting_retention_days < 62:
        raise ConfigError(
            "[radius] accounting_retention_days: 0 (keep forever) or at least 62, so that "
            "quotas can read two billing cycles"
        )
    if cfg.routers.timeout <= 0 or cfg.routers.reconcile_minutes < 1:
        raise ConfigError("[routers] timeout must be above zero and reconcile_minutes at least 1")
    if cfg.sync.interval < 1:
        raise ConfigError("[sync] interval: must be at least 1 second")
    if cfg.sync.cloud_url:
        try:
            check_cloud_url(cfg.sync.cloud_url)
        except ConfigError as exc:
            raise ConfigError(f"[sync] cloud_url: {exc}") from None
    if cfg.agent.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"[agent] log_level: {cfg.agent.log_level!r} is not a log level")
    if cfg.agent.pop and not re.fullmatch(r"[A-Za-z0-9]{1,8}", cfg.agent.pop):
        raise ConfigError(f"[agent] pop: {cfg.agent.pop!r} must be 1-8 letters or digits, e.g. NRB1")
    if cfg.agent.tax_pin and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{3,19}", cfg.agent.tax_pin):
        raise ConfigError(f"[agent] tax_pin: {cfg.agent.tax_pin!r} is not a tax PIN (e.g. P051234567X)")
    if cfg.agent.support_phone and not re.fullmatch(r"\+?[0-9][0-9 ]{5,19}", cfg.agent.support_phone):
        raise ConfigError(
            f"[agent] support_phone: {cfg.agent.support_phone!r} is not a phone number "
            "(digits and spaces, optionally starting with +, e.g. +254 700 000 000)"
        )
    if cfg.billing.tick_minutes < 1:
        raise ConfigError("[billing] tick_minutes: must be at least 1")
    if cfg.billing.grace_days < 0 or cfg.billing.terminate_after_days < 0:
        raise ConfigError("[billing] grace_days and terminate_after_days cannot be negative")
    if any(d <= 0 for d in cfg.billing.reminder_days):
        raise ConfigError("[billing] reminder_days: every value must be at least 1")
    if not 0 <= cfg.billing.invoice_due_days <= 365:
        raise ConfigError("[billing] invoice_due_days: must be 0-365")
    if cfg.billing.enforce_interval <= 0:
        raise ConfigError("[billing] enforce_interval: must be above zero")
    try:
        ZoneInfo(cfg.billing.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[billing] timezone: {cfg.billing.timezone!r} is not a known time zone") from None
    _check_bounds(cfg)


def _check_payments(cfg: Config) -> None:
    from urllib.parse import urlsplit

    w, p = cfg.web, cfg.payments
    if not 0 <= w.port <= 65535:
        raise ConfigError(f"[web] port: {w.port} is not a TCP port (0-65535)")
    if w.public_url and urlsplit(w.public_url).scheme not in ("https", "http"):
        raise ConfigError(f"[web] public_url: {w.public_url!r} must be an http(s):// URL")
    for net in w.metrics_from:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(
                f"[web] metrics_from: {net!r} is not an address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
            ) from None
    if cfg.portal.url and (
        urlsplit(cfg.portal.url).scheme not in ("https", "http") or not urlsplit(cfg.portal.url).hostname
    ):
        raise ConfigError(f"[portal] url: {cfg.portal.url!r} must be an http(s):// URL")
    for name, url in (("payments.mpesa", p.mpesa.base_url), ("payments.paystack", p.paystack.base_url)):
        parts = urlsplit(url)
        loopback = (parts.hostname or "").startswith("127.") or parts.hostname == "localhost"
        if not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
            raise ConfigError(
                f"[{name}] base_url: {url!r} must be https:// (http:// only to loopback, for the simulators)"
            )
    if p.mpesa.transaction_type not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
        raise ConfigError(
            "[payments.mpesa] transaction_type: must be CustomerPayBillOnline "
            f"(paybill) or CustomerBuyGoodsOnline (till), not {p.mpesa.transaction_type!r}"
        )
    if p.mpesa.shortcode and not p.mpesa.shortcode.isdigit():
        raise ConfigError(f"[payments.mpesa] shortcode: {p.mpesa.shortcode!r} is not a shortcode")
    if not (0 < p.query_after <= 3600 and p.query_after < p.request_expiry <= 7 * 86400):
        raise ConfigError(
            "[payments] query_after must be 1-3600 seconds and below request_expiry (at most 7 days)"
        )
    if not (0 < p.timeout <= 120) or not 0 <= p.retries <= 10:
        raise ConfigError("[payments] timeout must be 1-120 seconds and retries 0-10")
    from jasiyo.phones import COUNTRIES

    if cfg.billing.country.upper() not in COUNTRIES:
        raise ConfigError(
            f"[billing] country: {cfg.billing.country!r} is not one of {', '.join(sorted(COUNTRIES))}"
        )


def _check_sms(cfg: Config) -> None:
    from urllib.parse import urlsplit

    from jasiyo.sms import templates as sms_templates
    from jasiyo.sms.generic import check_template

    s = cfg.sms
    if s.provider not in ("", "africastalking", "http"):
        raise ConfigError(
            f"[sms] provider: {s.provider!r} is not one of africastalking, http (or empty for no SMS)"
        )
    if s.provider == "africastalking" and not (s.username and s.api_key):
        raise ConfigError("[sms] provider = africastalking needs username and api_key")
    urls = [("base_url", s.base_url)] if s.base_url else []
    if s.provider == "http":
        if not s.url_template:
            raise ConfigError("[sms] provider = http needs url_template")
        urls.append(("url_template", s.url_template.split("{", 1)[0] or "x:"))
        for key in ("url_template", "body_template"):
            try:
                check_template(getattr(s, key), f"[sms] {key}")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if s.method.upper() not in ("GET", "POST"):
            raise ConfigError(f"[sms] method: {s.method!r} must be GET or POST")
    for key, url in urls:
        parts = urlsplit(url)
        loopback = (parts.hostname or "").startswith("127.") or parts.hostname == "localhost"
        if not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
            raise ConfigError(
                f"[sms] {key}: {url!r} must be https:// (http:// only to loopback, for the simulator)"
            )
    if s.language not in sms_templates.LANGUAGES:
        raise ConfigError(
            f"[sms] language: {s.language!r} is not one of {', '.join(sms_templates.LANGUAGES)}"
        )
    if not (1 <= s.rate_per_minute <= 60000):
        raise ConfigError("[sms] rate_per_minute must be 1-60000")
    for key in ("quiet_start", "quiet_end"):
        if sms_templates.clock_minutes(getattr(s, key)) is None:
            raise ConfigError(f"[sms] {key}: {getattr(s, key)!r} is not a time like 21:00")
    if not (1 <= s.max_attempts <= 50 and 1 <= s.retry_first <= s.retry_max <= 86400):
        raise ConfigError(
            "[sms] max_attempts must be 1-50 and 1 <= retry_first <= retry_max <= 86400 seconds"
        )
    if not (0 < s.timeout <= 120):
        raise ConfigError("[sms] timeout must be 1-120 seconds")
    try:
        sms_templates.check(s.templates)
        if s.pay_link:
            sms_templates.check_text(s.pay_link, "[sms] pay_link", {"account"})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def parse(text: str, base_dir: Path, path: Path | None = None) -> Config:
    """Parse TOML text; relative paths resolve against ``base_dir``."""
    where = str(path) if path else "config"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise ConfigError(f"{where}: arrays or tables nested too deeply") from None
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"[{unknown[0]}]: unknown section (known: {', '.join(_SECTIONS)})")
    hints = get_type_hints(Config)
    sections = {name: _section(name, hints[name], raw.get(name, {})) for name in _SECTIONS}
    cfg = Config(**sections, path=path)
    data_dir = cfg.agent.data_dir
    if not data_dir.is_absolute():
        data_dir = (base_dir / data_dir).resolve()
    cfg = replace(cfg, agent=replace(cfg.agent, data_dir=data_dir))
    radsec_paths: dict[str, Any] = {}
    for key, default in (("certificate", "server.pem"), ("private_key", "server.key"), ("ca", "ca.pem")):
        value = getattr(cfg.radsec, key)
        path = Path(value) if value else data_dir / "radsec" / default
        radsec_paths[key] = str(path if path.is_absolute() else (base_dir / path).resolve())
    cfg = replace(cfg, radsec=replace(cfg.radsec, **radsec_paths))
    _check(cfg)
    _check_payments(cfg)
    _check_sms(cfg)
    return cfg


def resolve_path(explicit: str | os.PathLike[str] | None) -> Path:
    """The config path: ``--config``, else $JASIYO_CONFIG, else ./jasiyo.toml."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return Path("jasiyo.toml")


def load(explicit: str | os.PathLike[str] | None = None) -> Config:
    path = resolve_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; pass --config PATH, set {ENV_VAR}, "
            f"or create one with `jasiyo init --config {path}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot read config file {path}: {reason}") from None
    return parse(text, path.absolute().parent, path)
