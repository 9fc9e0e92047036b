"""Ed25519 request signing between agents and the cloud.

Each agent holds an Ed25519 private key in ``<data_dir>/agent_sign.key`` (mode 0600) and
enrolls its public key once. Every request carries::

    X-Jasiyo-Tenant, X-Jasiyo-Agent, X-Jasiyo-Timestamp (unix seconds), X-Jasiyo-Nonce,
    X-Jasiyo-Signature = Ed25519 over canonical(method, target, sha256(body), timestamp, nonce)

The cloud refuses a request whose clock is more than :data:`MAX_SKEW` away from its own, or
whose nonce it has already seen for that agent (a replay).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Generator
from pathlib import Path

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from jasiyo.errors import ConfigError, SyncError

SIGN_KEY_FILE = "agent_sign.key"
MAX_SKEW = 300
H_TENANT = "x-jasiyo-tenant"
H_AGENT = "x-jasiyo-agent"
H_TS = "x-jasiyo-timestamp"
H_NONCE = "x-jasiyo-nonce"
H_SIG = "x-jasiyo-signature"


def canonical(
    method: str, target: str, body: bytes, timestamp: str, nonce: str, tenant_id: str, agent_id: str
) -> bytes:
    """The exact bytes that are signed. ``target`` is the path plus ``?query`` if any."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(
        ["jasiyo-req-v1", method.upper(), target, digest, timestamp, nonce, tenant_id, agent_id]
    ).encode()


def public_key_text(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise SyncError("the public key is not a base64 Ed25519 key") from None


def create_signing_key(path: Path) -> bool:
    """Create the agent's Ed25519 key file (0600) if absent. True if created."""
    if path.exists():
        return False
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(raw).decode() + "\n")
    return True


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"agent signing key {path} not found; enroll first: `jasiyo agent enroll URL TOKEN`"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read agent signing key {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(
            f"agent signing key {path} is readable by others (mode {mode:o}); run: chmod 600 {path}"
        )
    try:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except ValueError:
        raise ConfigError(f"agent signing key {path} is corrupt") from None


def sign_headers(
    key: Ed25519PrivateKey,
    tenant_id: str,
    agent_id: str,
    method: str,
    target: str,
    body: bytes,
    *,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that authenticate one request."""
    ts = str(int(time.time() if now is None else now))
    nonce = nonce or secrets.token_hex(16)
    sig = key.sign(canonical(method, target, body, ts, nonce, tenant_id, agent_id))
    return {
        H_TENANT: tenant_id,
        H_AGENT: agent_id,
        H_TS: ts,
        H_NONCE: nonce,
        H_SIG: base64.b64encode(sig).decode(),
    }


def verify(
    public: Ed25519PublicKey, method: str, target: str, body: bytes, headers: dict[str, str], *, now: float
) -> None:
    """Raise SyncError unless the signature verifies and the timestamp is fresh.

    Replay (nonce reuse) is checked by the caller, who owns the nonce store.
    """
    try:
        stamp = headers[H_TS]
        # Unix seconds fit in 11 digits; a longer number would overflow the skew check.
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise ValueError("timestamp")
        ts = int(stamp)
        nonce = headers[H_NONCE]
        sig = base64.b64decode(headers[H_SIG], validate=True)
    except (KeyError, ValueError):
        raise SyncError("request is not signed") from None
    if abs(now - ts) > MAX_SKEW:
        raise SyncError("request timestamp is stale")
    if not 16 <= len(nonce) <= 64:
        raise SyncError("request nonce is malformed")
    try:
        public.verify(
            sig,
            canonical(
                method,
                target,
                body,
                headers[H_TS],
                nonce,
                headers.get(H_TENANT, ""),
                headers.get(H_AGENT, ""),
            ),
        )
    except InvalidSignature:
        raise SyncError("request signature does not verify") from None


def request_target(url: httpx.URL) -> str:
    query = url.query.decode()
    return url.path + ("?" + query if query else "")


class AgentAuth(httpx.Auth):
    """httpx auth flow that signs every request with the agent's key."""

    requires_request_body = True

    def __init__(
        self, key: Ed25519PrivateKey, tenant_id: str, agent_id: str, now: Callable[[], float] = time.time
    ) -> None:
        self.key = key
        self.tenant_id = tenant_id
        self.agent_id = agent_id
        self.now = now

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = sign_headers(
            self.key,
            self.tenant_id,
            self.agent_id,
            request.method,
            request_target(request.url),
            request.content,
            now=self.now(),
        )
        request.headers.update(headers)
        yield request
