"""Envelopes, the tenant keyring file and request signatures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jasiyo.errors import ConfigError, SyncError
from jasiyo.sync import signing
from jasiyo.sync.envelope import envelope_kid
from jasiyo.sync.keyring import Keyring


def test_envelope_binds_tenant_event_and_origin() -> None:
    ring = Keyring.create("tenant-a")
    env = ring.seal(b"payload", "ev-1", "agent-1")
    assert envelope_kid(env) == ring.current and b"payload" not in env.encode()
    assert ring.open(env, "ev-1", "agent-1") == b"payload"
    for event_id, origin in (("ev-2", "agent-1"), ("ev-1", "agent-2")):
        with pytest.raises(SyncError, match="failed authentication"):
            ring.open(env, event_id, origin)
    other = Keyring("tenant-b", ring.current, dict(ring.keys))
    with pytest.raises(SyncError, match="failed authentication"):
        other.open(env, "ev-1", "agent-1")
    with pytest.raises(SyncError, match="malformed"):
        ring.open("v2.kabc.xyz", "ev-1", "agent-1")


def test_rotation_keeps_old_keys_and_file_is_private(tmp_path: Path) -> None:
    ring = Keyring.create("t")
    old = ring.seal(b"old", "e1", "a")
    new_kid = ring.rotate()
    assert envelope_kid(ring.seal(b"new", "e2", "a")) == new_kid
    path = tmp_path / "tenant.keys"
    ring.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = Keyring.load(path)
    assert loaded.open(old, "e1", "a") == b"old" and loaded.current == new_kid
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Keyring.load(path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    os.chmod(bad, 0o600)
    with pytest.raises(ConfigError, match="not a Jasiyo tenant key"):
        Keyring.load(bad)


def test_request_signature_covers_method_target_body_and_time() -> None:
    key = Ed25519PrivateKey.generate()
    pub = signing.load_public_key(signing.public_key_text(key))
    h = signing.sign_headers(key, "t", "a", "POST", "/v1/x?y=1", b"body", now=1000.0)
    signing.verify(pub, "POST", "/v1/x?y=1", b"body", h, now=1100.0)
    for method, target, body, now in (
        ("GET", "/v1/x?y=1", b"body", 1000.0),
        ("POST", "/v1/x?y=2", b"body", 1000.0),
        ("POST", "/v1/x?y=1", b"bodY", 1000.0),
        ("POST", "/v1/x?y=1", b"body", 1000.0 + 301),
    ):
        with pytest.raises(SyncError):
            signing.verify(pub, method, target, body, h, now=now)
    with pytest.raises(SyncError, match="not signed"):
        signing.verify(pub, "POST", "/v1/x?y=1", b"body", {}, now=1000.0)


def test_sealed_to_tenant_public_key_opens_only_with_its_private_key() -> None:
    from jasiyo.sync import sealed

    priv = sealed.generate()
    env = sealed.seal_to(sealed.public_of(priv), b"callback", sealed.hook_context("t", "h1"))
    assert sealed.open_sealed(priv, env, sealed.hook_context("t", "h1")) == b"callback"
    with pytest.raises(SyncError, match="does not open"):
        sealed.open_sealed(priv, env, sealed.hook_context("t", "h2"))
    with pytest.raises(SyncError, match="does not open"):
        sealed.open_sealed(sealed.generate(), env, sealed.hook_context("t", "h1"))
