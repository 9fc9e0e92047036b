"""The tenant keyring wrapped under a passphrase: the copy the cloud keeps for the dashboard.

The browser wraps and unwraps it (``jasiyo/cloud/webapp/js/core/keys.js``); this is the
same format in Python, the reference the shared vectors are checked against::

    {"format": "jasiyo-wrapped-keys-v1", "kdf": "PBKDF2-SHA256", "iterations": N,
     "salt": b64url, "iv": b64url (12 bytes), "ciphertext": b64url}

key = PBKDF2-HMAC-SHA256(passphrase UTF-8, salt, N, 32 bytes); ciphertext = AES-256-GCM(iv,
recovery file JSON UTF-8, AAD ``jasiyo-wrapped-keys-v1|<tenant_id>``). The cloud checks only
the shape: without the passphrase it cannot unwrap it.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from jasiyo.errors import SyncError
from jasiyo.sync.envelope import b64d, b64e

FORMAT = "jasiyo-wrapped-keys-v1"
KDF = "PBKDF2-SHA256"
#: What the cloud requires of a stored document (OWASP's 2023 figure for PBKDF2-SHA256).
MIN_ITERATIONS = 600_000


def _aad(tenant_id: str) -> bytes:
    return f"{FORMAT}|{tenant_id}".encode()


def _key(passphrase: str, salt: bytes, iterations: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    return kdf.derive(passphrase.encode())


def wrap(
    recovery_text: str,
    passphrase: str,
    tenant_id: str,
    *,
    iterations: int = MIN_ITERATIONS,
    salt: bytes | None = None,
    iv: bytes | None = None,
) -> dict[str, Any]:
    """The wrapped document of a recovery file (``salt`` and ``iv`` only for test vectors)."""
    salt = salt if salt is not None else os.urandom(16)
    iv = iv if iv is not None else os.urandom(12)
    ct = AESGCM(_key(passphrase, salt, iterations)).encrypt(iv, recovery_text.encode(), _aad(tenant_id))
    return {
        "format": FORMAT,
        "kdf": KDF,
        "iterations": iterations,
        "salt": b64e(salt),
        "iv": b64e(iv),
        "ciphertext": b64e(ct),
    }


def unwrap(doc: dict[str, Any], passphrase: str, tenant_id: str) -> str:
    """The recovery file's text; SyncError("wrong passphrase…") if it does not unlock."""
    try:
        if doc["format"] != FORMAT or doc["kdf"] != KDF:
            raise ValueError("format")
        iterations = doc["iterations"]
        if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
            raise ValueError("iterations")
        salt, iv, ct = b64d(doc["salt"]), b64d(doc["iv"]), b64d(doc["ciphertext"])
    except (KeyError, TypeError, ValueError):
        raise SyncError("the stored tenant keys are not a wrapped keyring") from None
    try:
        plain = AESGCM(_key(passphrase, salt, iterations)).decrypt(iv, ct, _aad(tenant_id))
    except InvalidTag:
        raise SyncError("wrong passphrase: the tenant keys did not unlock") from None
    return plain.decode()
