"""Sealing to the tenant's X25519 public key: for data the cloud receives but must not read.

Payment webhooks (M-Pesa, Paystack) arrive at the cloud from the internet. The cloud seals
each one to the tenant's public key before storing it; only agents (holding the private key
in the tenant keyring) can open it, and they verify it with the provider themselves.

Envelope: ``"x1.<base64url ephemeral public key>.<base64url nonce || AES-256-GCM>"``; the
AES key is HKDF-SHA256 over the X25519 shared secret, salted with both public keys.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from jasiyo.errors import SyncError
from jasiyo.sync.envelope import b64d, b64e

_INFO = b"jasiyo-seal-v1"


def hook_context(tenant: str, hook_id: str) -> bytes:
    """Associated data of a sealed webhook: it cannot be moved to another tenant or id."""
    return f"jasiyo-hook-v1|{tenant}|{hook_id}".encode()


def generate() -> bytes:
    """A new X25519 private key, raw 32 bytes."""
    return X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def public_of(private_raw: bytes) -> str:
    """The public key (base64) of a raw private key."""
    pub = X25519PrivateKey.from_private_bytes(private_raw).public_key()
    return base64.b64encode(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _key(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=eph_pub + recipient_pub, info=_INFO).derive(shared)


def seal_to(public_b64: str, plaintext: bytes, context: bytes) -> str:
    """Encrypt for the holder of the private key of ``public_b64``; ``context`` is bound."""
    try:
        recipient = base64.b64decode(public_b64, validate=True)
        pub = X25519PublicKey.from_public_bytes(recipient)
    except ValueError:
        raise SyncError("the tenant public key is not a base64 X25519 key") from None
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        shared = eph.exchange(pub)
    except ValueError:  # a low-order point (all zeros, ...): no secret can be agreed
        raise SyncError("the tenant public key is not a usable X25519 key") from None
    key = _key(shared, eph_pub, recipient)
    nonce = os.urandom(12)
    return f"x1.{b64e(eph_pub)}.{b64e(nonce + AESGCM(key).encrypt(nonce, plaintext, context))}"


def open_sealed(private_raw: bytes, envelope: str, context: bytes) -> bytes:
    """Decrypt a sealed envelope; SyncError if it was altered or is not for this key."""
    try:
        prefix, eph_text, body_text = envelope.split(".", 2)
        if prefix != "x1":
            raise ValueError(prefix)
        eph_pub, body = b64d(eph_text), b64d(body_text)
        priv = X25519PrivateKey.from_private_bytes(private_raw)
        recipient = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        key = _key(priv.exchange(X25519PublicKey.from_public_bytes(eph_pub)), eph_pub, recipient)
        return AESGCM(key).decrypt(body[:12], body[12:], context)
    except (ValueError, InvalidTag):
        raise SyncError("a sealed payload does not open: altered, or not for this tenant") from None
