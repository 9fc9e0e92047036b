"""SMS gateways: one contract (:mod:`jasiyo.sms.base`), one module per gateway.

    from jasiyo.sms import get_gateway
    gw = get_gateway("africastalking")(settings)

Africa's Talking ships a simulator speaking its real shapes (``jasiyo dev sms-sim``,
:mod:`jasiyo.sms.sim`).
"""

from __future__ import annotations

from importlib import import_module

from jasiyo.errors import ConfigError
from jasiyo.sms.base import SmsGateway

__all__ = ["GATEWAYS", "SmsGateway", "get_gateway"]

GATEWAYS: dict[str, str] = {
    "africastalking": "jasiyo.sms.africastalking:AfricasTalkingGateway",
    "http": "jasiyo.sms.generic:HttpGateway",
}


def get_gateway(name: str) -> type[SmsGateway]:
    key = name.strip().lower()
    if key not in GATEWAYS:
        raise ConfigError(f"unknown SMS provider {name!r}; known: {', '.join(sorted(GATEWAYS))}")
    module_name, _, class_name = GATEWAYS[key].partition(":")
    cls: type[SmsGateway] = getattr(import_module(module_name), class_name)
    return cls
