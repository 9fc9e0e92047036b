"""Ubiquiti EdgeRouter (EdgeOS) driver over SSH, and its simulator (:mod:`.sim`)."""

from jasiyo.drivers.edgeos.driver import EdgeOSDriver

__all__ = ["EdgeOSDriver"]
