"""Envelope encryption of events with a tenant data key.

An envelope is the text ``"v1.<kid>.<base64url(nonce || ciphertext+tag)>"``: AES-256-GCM under
the tenant data key named ``kid``, with associated data binding the tenant, the event id and
the origin agent, so the cloud (which only ever sees envelopes) cannot move a ciphertext to
another event, agent or tenant without the receiving agent noticing.

The keys themselves, and the file that holds them, are :mod:`jasiyo.sync.keyring`.
"""

from __future__ import annotations

import base64
import os
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jasiyo.errors import SyncError

_PREFIX = "v1"
KID_RE = re.compile(r"^k[0-9a-f]{12}$")
#: Envelopes larger than this are refused before any decryption is tried.
MAX_ENVELOPE = 256 * 1024


def new_kid() -> str:
    """A fresh key id: ``k`` and 12 hex digits. Not secret; the cloud keeps a list of them."""
    return "k" + secrets.token_hex(6)


def aad(tenant_id: str, event_id: str, origin: str) -> bytes:
    """The associated data of an event envelope."""
    return f"jasiyo-event-v1|{tenant_id}|{event_id}|{origin}".encode()


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def envelope_kid(envelope: str) -> str:
    """The key id named by an envelope, without decrypting it. Raises SyncError if malformed."""
    parts = envelope.split(".", 2) if isinstance(envelope, str) else []
    if len(parts) != 3 or parts[0] != _PREFIX or not KID_RE.match(parts[1]):
        raise SyncError("an event envelope is malformed")
    return parts[1]


def seal(key: bytes, kid: str, tenant_id: str, plaintext: bytes, event_id: str, origin: str) -> str:
    """The envelope of ``plaintext`` under ``key`` (named ``kid``)."""
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, plaintext, aad(tenant_id, event_id, origin))
    return f"{_PREFIX}.{kid}.{b64e(nonce + ct)}"


def open_envelope(keys: dict[str, bytes], tenant_id: str, envelope: str, event_id: str, origin: str) -> bytes:
    """Decrypt an envelope; SyncError (naming the event, never the key) if it does not verify."""
    if len(envelope) > MAX_ENVELOPE:
        raise SyncError(f"event {event_id}: envelope too large")
    kid = envelope_kid(envelope)
    key = keys.get(kid)
    if key is None:
        raise SyncError(
            f"event {event_id} is sealed with tenant key {kid}, which this agent does not "
            "hold; import the latest recovery file (`jasiyo tenant import-recovery`)"
        )
    try:
        raw = b64d(envelope.split(".", 2)[2])
    except ValueError:
        raise SyncError(f"event {event_id}: envelope is malformed") from None
    if len(raw) < 12 + 16:
        raise SyncError(f"event {event_id}: envelope is malformed")
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], aad(tenant_id, event_id, origin))
    except InvalidTag:
        raise SyncError(
            f"event {event_id} from agent {origin} failed authentication: tampered with, "
            "or moved from another event or tenant; refusing it"
        ) from None
