"""Jasiyo: billing and network provisioning for Internet Service Providers."""

__version__ = "0.1.0"
