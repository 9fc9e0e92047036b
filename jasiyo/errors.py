"""The one exception tree of Jasiyo.

    JasiyoError                  root; ``str(err)`` is a sentence a person can act on
    ├── ConfigError              a bad or unreadable config file (names the key)
    │   └── WrongKey             the agent key is not the one the store was made with
    ├── ValidationError          bad input from a person or a peer (CLI argument, CSV row, webhook)
    ├── StoreError               the local store failed (busy, corrupt, unreadable)
    │   ├── NotFound             no such plan / subscriber / router / ...
    │   └── AlreadyExists        a unique name or reference is taken
    ├── BillingError             a billing rule refused the operation
    ├── RadiusError              RADIUS server or CoA client
    ├── DriverError              talking to a router
    │   ├── ConnectError         unreachable, timed out, TLS or host-key failure
    │   ├── AuthError            login refused
    │   └── CommandError         the router refused a command (carries which one)
    ├── SyncError                the sync client, envelopes, signatures
    └── CloudError               the cloud registry

Errors from libraries (librouteros, paramiko, httpx, sqlite3) are wrapped where they enter
our code (sqlite3's in :mod:`jasiyo.agent.store`: a broken constraint is AlreadyExists or
ValidationError, a busy or failing database StoreError); only ``cli.py`` turns these into
messages and exit codes.
"""

from __future__ import annotations


class JasiyoError(Exception):
    """Root of every error Jasiyo raises on purpose."""


class ConfigError(JasiyoError):
    """The configuration is missing, unreadable or has a bad value."""


class WrongKey(ConfigError):
    """The agent key cannot open the store: it is not the key the store was created with."""


class ValidationError(JasiyoError):
    """Input from a person or a peer was rejected; nothing was changed."""


class StoreError(JasiyoError):
    """The local store failed or refused an operation."""


class NotFound(StoreError):
    """The named object does not exist."""


class AlreadyExists(StoreError):
    """A unique name or reference is already taken."""


class BillingError(JasiyoError):
    """A billing rule refused the operation."""


class RadiusError(JasiyoError):
    """The RADIUS server or the CoA/Disconnect client failed."""


class DriverError(JasiyoError):
    """Talking to a router failed."""


class ConnectError(DriverError):
    """The router is unreachable, timed out, or its identity could not be verified."""


class AuthError(DriverError):
    """The router refused our credentials."""


class CommandError(DriverError):
    """The router refused a command. ``command`` names it."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class SyncError(JasiyoError):
    """Sync with the cloud failed, or an envelope or signature did not verify."""


class CloudError(JasiyoError):
    """The cloud registry refused or failed an operation."""
