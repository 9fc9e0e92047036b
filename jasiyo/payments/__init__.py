"""Payment providers: one contract (:mod:`jasiyo.payments.base`), one package per provider.

    from jasiyo.payments import get_provider
    provider = get_provider("mpesa")(settings)

Each provider package also ships a simulator speaking the provider's real JSON shapes
(``jasiyo dev daraja-sim``, ``jasiyo dev paystack-sim``).
"""

from __future__ import annotations

from importlib import import_module

from jasiyo.errors import ConfigError
from jasiyo.payments.base import PaymentProvider

__all__ = ["PROVIDERS", "PaymentProvider", "get_provider"]

#: Provider name -> "module:Class", imported lazily.
PROVIDERS: dict[str, str] = {
    "mpesa": "jasiyo.payments.mpesa:DarajaProvider",
    "paystack": "jasiyo.payments.paystack:PaystackProvider",
}


def get_provider(name: str) -> type[PaymentProvider]:
    """The provider class for ``name`` (``"mpesa"``, ``"paystack"``); ConfigError if unknown."""
    key = name.strip().lower()
    if key not in PROVIDERS:
        raise ConfigError(f"unknown payment provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")
    module_name, _, class_name = PROVIDERS[key].partition(":")
    cls: type[PaymentProvider] = getattr(import_module(module_name), class_name)
    return cls
