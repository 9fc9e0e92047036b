"""The agent's local secret key and the box that encrypts secrets at rest with it.

The key is 32 random bytes in ``<data_dir>/agent.key`` (mode 0600, base64). Every secret in
the store (subscriber passwords, router credentials, RADIUS secrets, event payloads) is
sealed with AES-256-GCM under it; the associated data binds each ciphertext to the row and
column it belongs to, so a ciphertext copied into another row does not decrypt.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jasiyo.errors import ConfigError, StoreError

KEY_FILE = "agent.key"
_VERSION = b"\x01"


def create_key(path: Path) -> bool:
    """Create the key file if absent (0600). True if created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
    return True


def load_key(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode & 0o777
        raw = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"agent key {path} does not exist; run `jasiyo init` first") from None
    except OSError as exc:
        raise ConfigError(f"cannot read agent key {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"agent key {path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"agent key {path} is corrupt: expected 32 base64-encoded bytes")
    return key


class SecretBox:
    """AES-256-GCM with a random 96-bit nonce: ``version || nonce || ciphertext+tag``."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes | str, context: str) -> bytes:
        if isinstance(plaintext, str):
            plaintext = plaintext.encode()
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, blob: bytes, context: str) -> bytes:
        if not blob or blob[:1] != _VERSION or len(blob) < 29:
            raise StoreError(f"stored secret for {context} is corrupt")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], context.encode())
        except InvalidTag:
            raise StoreError(
                f"stored secret for {context} does not decrypt: wrong agent key or tampered store"
            ) from None

    def open_str(self, blob: bytes, context: str) -> str:
        return self.open(blob, context).decode()
