"""The tenant keyring: the data keys that seal the event log, and the file that holds them.

The keyring lives in ``<data_dir>/tenant.keys`` (JSON, mode 0600): the tenant id, the current
key id and every key ever used (old keys stay so old events still decrypt after a rotation).
A recovery file is the same document; it is what a new POP, or a POP rebuilt after a disk
failure, needs to read the tenant's log.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jasiyo.errors import ConfigError, SyncError
from jasiyo.sync.envelope import KID_RE, b64d, b64e, new_kid, open_envelope, seal

KEYRING_FILE = "tenant.keys"


@dataclass
class Keyring:
    """The tenant's data keys. ``current`` seals; every key in ``keys`` opens."""

    tenant_id: str
    current: str
    keys: dict[str, bytes] = field(default_factory=dict)
    created_at: float = 0.0
    #: X25519 private key (raw) that opens webhooks the cloud sealed to the tenant.
    box_key: bytes | None = None

    @classmethod
    def create(cls, tenant_id: str) -> Keyring:
        from jasiyo.sync.sealed import generate

        kid = new_kid()
        return cls(tenant_id, kid, {kid: AESGCM.generate_key(bit_length=256)}, time.time(), generate())

    def rotate(self) -> str:
        """Add a new key and make it current; old keys are kept to open old events."""
        kid = new_kid()
        self.keys[kid] = AESGCM.generate_key(bit_length=256)
        self.current = kid
        return kid

    def add(self, kid: str, key: bytes) -> bool:
        """Learn a key (a rotation made on another POP); True if it was new. Never replaces
        a different key."""
        if not KID_RE.match(kid) or len(key) != 32:
            raise SyncError("a tenant key received from another agent is malformed")
        if kid in self.keys and self.keys[kid] != key:
            raise SyncError(f"tenant key {kid} conflicts with the key we already hold")
        new = kid not in self.keys
        self.keys[kid] = key
        return new

    # ------------------------------------------------------------ sealing

    def seal(self, plaintext: bytes, event_id: str, origin: str, kid: str | None = None) -> str:
        kid = kid or self.current
        return seal(self.keys[kid], kid, self.tenant_id, plaintext, event_id, origin)

    def open(self, envelope: str, event_id: str, origin: str) -> bytes:
        """Decrypt an envelope; SyncError (naming the event, never the key) if it does not verify."""
        return open_envelope(self.keys, self.tenant_id, envelope, event_id, origin)

    # ------------------------------------------------------------ files

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "jasiyo-tenant-keys-v1",
            "tenant_id": self.tenant_id,
            "current": self.current,
            "created_at": self.created_at,
            "keys": {kid: b64e(k) for kid, k in sorted(self.keys.items())},
            **({"box_key": b64e(self.box_key)} if self.box_key else {}),
        }

    @classmethod
    def from_json(cls, doc: Any, where: str) -> Keyring:
        try:
            if doc.get("format") != "jasiyo-tenant-keys-v1":
                raise ValueError("format")
            keys = {str(k): b64d(v) for k, v in doc["keys"].items()}
            box = b64d(doc["box_key"]) if doc.get("box_key") else None
            if box is not None and len(box) != 32:
                raise ValueError("box_key")
            ring = cls(str(doc["tenant_id"]), str(doc["current"]), {}, float(doc.get("created_at", 0)), box)
            for kid, key in keys.items():
                ring.add(kid, key)
            if ring.current not in ring.keys:
                raise ValueError("current")
        except (AttributeError, KeyError, TypeError, ValueError, SyncError):
            raise ConfigError(f"{where} is not a Jasiyo tenant key or recovery file") from None
        return ring

    def save(self, path: Path) -> None:
        """Write atomically with mode 0600 (the file holds the tenant's keys)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            # A leftover temp file (or a symlink planted there) is never written through.
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(self.to_json(), fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())  # the only copy of a new tenant key: on disk first
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # and the rename too
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise ConfigError(f"cannot write tenant keys to {path}: {exc.strerror}") from None

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            mode = path.stat().st_mode & 0o777
            text = path.read_text()
        except FileNotFoundError:
            raise ConfigError(
                f"tenant keys {path} not found; run `jasiyo tenant init` on the first POP, or "
                "`jasiyo tenant import-recovery FILE` on the others"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read tenant keys {path}: {exc.strerror}") from None
        if mode & 0o077:
            raise ConfigError(
                f"tenant keys {path} are readable by others (mode {mode:o}); run: chmod 600 {path}"
            )
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConfigError(f"{path} is not a Jasiyo tenant key or recovery file") from None
        return cls.from_json(doc, str(path))
