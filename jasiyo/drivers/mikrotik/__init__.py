"""MikroTik RouterOS driver (API on librouteros) and the RouterOS API simulator."""

from jasiyo.drivers.mikrotik.driver import MikrotikDriver

__all__ = ["MikrotikDriver"]
