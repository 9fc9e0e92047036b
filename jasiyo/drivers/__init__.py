"""Router drivers: one contract (:mod:`jasiyo.drivers.base`), one package per vendor.

from jasiyo.drivers import get_driver
driver = get_driver("mikrotik")(config)
"""

from __future__ import annotations

from importlib import import_module

from jasiyo.drivers.base import Backoff, RouterDriver
from jasiyo.drivers.routerstate import RouterConfig
from jasiyo.errors import ConfigError

__all__ = ["Backoff", "RouterConfig", "RouterDriver", "DRIVERS", "driver_name", "get_driver"]

#: Driver name -> "module:Class". Imported lazily so a vendor's libraries load only when used.
DRIVERS: dict[str, str] = {
    "mikrotik": "jasiyo.drivers.mikrotik:MikrotikDriver",
    "edgeos": "jasiyo.drivers.edgeos:EdgeOSDriver",
    "generic": "jasiyo.drivers.generic:GenericDriver",
}
#: Other names engineers (and routers stored by older versions) use for a driver.
_ALIASES = {"routeros": "mikrotik", "ubiquiti": "edgeos"}


def driver_name(name: str) -> str:
    """The driver's own name for ``name`` (case-insensitive; ``ubiquiti`` is ``edgeos``).

    Raises ``ConfigError`` naming the known drivers when ``name`` is not one of them.
    """
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DRIVERS:
        known = ", ".join(sorted(DRIVERS))
        raise ConfigError(f"unknown router driver {name!r}; known drivers: {known}")
    return key


def get_driver(name: str) -> type[RouterDriver]:
    """The driver class for ``name`` (``"mikrotik"``, ``"edgeos"``, ``"generic"``; see
    :func:`driver_name`)."""
    key = driver_name(name)
    module_name, _, class_name = DRIVERS[key].partition(":")
    try:
        module = import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"router driver {key!r} is not available in this build: {exc}") from exc
    return cls
