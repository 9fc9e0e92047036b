"""Configuration: TOML, validated into frozen dataclasses. Errors name the key."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jasiyo.errors import ConfigError, ValidationError
from jasiyo.models import Rate

ENV_VAR = "JASIYO_CONFIG"
EXAMPLE = Path(__file__).with_name("config.example.toml")


@dataclass(frozen=True)
class AgentSection:
    data_dir: Path = Path("./data")
    name: str = ""
    log_level: str = "info"
    operator: str = ""


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
    #: authentication processes sharing auth_port; 0 = one per CPU core
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
class Config:
    agent: AgentSection = field(default_factory=AgentSection)
    radius: RadiusSection = field(default_factory=RadiusSection)
    radsec: RadsecSection = field(default_factory=RadsecSection)
    billing: BillingSection = field(default_factory=BillingSection)
    routers: RoutersSection = field(default_factory=RoutersSection)
    sync: SyncSection = field(default_factory=SyncSection)
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


def _coerce(section: str, key: str, value: Any, typ: Any) -> Any:
    where = f"[{section}] {key}"
    origin = get_origin(typ)
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if typ is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    if origin is list:
        (item,) = get_args(typ)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
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
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    loopback = host == "localhost" or host == "::1" or host.startswith("127.")
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and loopback:
        return url
    raise ConfigError(f"cloud URL {url!r} must be https:// (plain http:// only to loopback)")


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
        raise ConfigError("[radius] workers: 0 (one per core) or a number of processes")
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
        raise ConfigError(
            f"[billing] timezone: {cfg.billing.timezone!r} is not a known time zone"
        ) from None


def parse(text: str, base_dir: Path, path: Path | None = None) -> Config:
    """Parse TOML text; relative paths resolve against ``base_dir``."""
    where = str(path) if path else "config"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
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
    radsec_paths = {}
    for key, default in (("certificate", "server.pem"), ("private_key", "server.key"),
                         ("ca", "ca.pem")):
        value = getattr(cfg.radsec, key)
        path = Path(value) if value else data_dir / "radsec" / default
        radsec_paths[key] = str(path if path.is_absolute() else (base_dir / path).resolve())
    cfg = replace(cfg, radsec=replace(cfg.radsec, **radsec_paths))
    _check(cfg)
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
