"""The shared vectors hold against the real Python code (the browser runs the same file:
test_vectors_browser.py), and the committed files are what the generator makes."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jasiyo.agent.fold import ENTITIES, apply_events
from jasiyo.agent.store import Store
from jasiyo.agent.synclog import AgentLog
from jasiyo.errors import ConfigError, SyncError
from jasiyo.sync import envelope, snapshotfmt
from jasiyo.sync.client import RemoteEvent, SyncClient, _plain
from jasiyo.sync.envelope import b64d, open_envelope
from jasiyo.sync.foldspec import entities_js
from jasiyo.sync.hlc import bounded
from jasiyo.sync.keyring import Keyring
from jasiyo.sync.signing import canonical, load_public_key, public_key_text, sign_headers, verify
from jasiyo.sync.vectors import ENTITIES_JS, VECTORS, vectors_text
from jasiyo.sync.wrapped import unwrap, wrap

DOC: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))


def test_the_committed_vectors_and_fold_rules_are_what_the_generator_makes() -> None:
    assert VECTORS.read_text(encoding="utf-8") == vectors_text(), "run: python -m jasiyo.sync.vectors"
    assert ENTITIES_JS.read_text(encoding="utf-8") == entities_js(), "run: python -m jasiyo.sync.vectors"


@pytest.mark.parametrize("case", DOC["envelope"], ids=lambda c: c["name"])
def test_envelope(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {kid: b64d(k) for kid, k in case["keys"].items()}
    args = (keys, case["tenant_id"], case["envelope"], case["event_id"], case["origin"])
    if "error" in case:
        with pytest.raises(SyncError, match=case["error"]):
            open_envelope(*args)
        return
    assert open_envelope(*args).decode() == case["plaintext"]
    nonce = b64d(case["nonce"])
    monkeypatch.setattr(envelope.os, "urandom", lambda n: nonce)
    kid = case["kid"]
    sealed = envelope.seal(
        keys[kid], kid, case["tenant_id"], case["plaintext"].encode(), case["event_id"], case["origin"]
    )
    assert sealed == case["envelope"]


@pytest.mark.parametrize("case", DOC["plain"], ids=lambda c: c["event"]["entity"])
def test_event_plaintext(case: dict[str, Any]) -> None:
    assert _plain(RemoteEvent(**case["event"])).decode() == case["plaintext"]


@pytest.mark.parametrize("case", DOC["signature"], ids=lambda c: c["name"])
def test_request_signature(case: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.from_private_bytes(b64d(case["seed"]))
    assert public_key_text(key) == case["public_key"]
    body = case["body"].encode()
    args = (
        case["method"],
        case["target"],
        body,
        case["timestamp"],
        case["nonce"],
        case["tenant_id"],
        case["agent_id"],
    )
    assert canonical(*args).decode() == case["canonical"]
    headers = sign_headers(
        key,
        case["tenant_id"],
        case["agent_id"],
        case["method"],
        case["target"],
        body,
        now=float(case["timestamp"]),
        nonce=case["nonce"],
    )
    assert headers["x-jasiyo-signature"] == case["signature"]
    verify(
        load_public_key(case["public_key"]),
        case["method"],
        case["target"],
        body,
        headers,
        now=float(case["timestamp"]),
    )


@pytest.mark.parametrize("case", DOC["wrapped"], ids=lambda c: c["name"])
def test_wrapped_keyring(case: dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(SyncError, match=case["error"]):
            unwrap(case["wrapped"], case["passphrase"], case["tenant_id"])
        return
    doc = wrap(
        case["recovery"],
        case["passphrase"],
        case["tenant_id"],
        iterations=case["iterations"],
        salt=b64d(case["salt"]),
        iv=b64d(case["iv"]),
    )
    assert doc == case["wrapped"]
    text = unwrap(doc, case["passphrase"], case["tenant_id"])
    assert text == case["recovery"]
    assert Keyring.from_json(json.loads(text), "the vector").tenant_id == case["tenant_id"]


@pytest.mark.parametrize("case", DOC["recovery"], ids=lambda c: c["name"])
def test_recovery_file(case: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "tenant.keys"
    path.write_text(case["text"])
    path.chmod(0o600)
    if "error" in case:
        with pytest.raises(ConfigError, match="not a Jasiyo tenant key or recovery file"):
            Keyring.load(path)
        return
    ring = Keyring.load(path)
    assert (ring.tenant_id, ring.current, sorted(ring.keys)) == (
        case["tenant_id"],
        case["current"],
        case["kids"],
    )


@pytest.mark.parametrize("case", DOC["hlc"], ids=lambda c: c["hlc"][:24])
def test_bounded_clock(case: dict[str, Any]) -> None:
    assert bounded(case["hlc"], case["received_at"]) == case["bounded"]


# ------------------------------------------------------------------ fold


def _row(store: Store, entity: str, key: str) -> dict[str, Any] | None:
    """A row as the dashboard shows it: references by name, no secret columns."""
    spec = ENTITIES[entity]
    if entity == "ledger":
        kind, reference = key.split(":", 1)
        row = store.one("SELECT * FROM ledger WHERE kind = ? AND reference = ?", (kind, reference))
    else:
        row = store.one(f"SELECT * FROM {spec.table} WHERE {spec.key_column} = ?", (key,))
    if row is None:
        return None
    hidden = {c for c, _ in spec.secrets.values()} | {r.column for r in spec.refs.values()}
    out = {c: v for c, v in row.items() if c not in hidden}
    for name, ref in spec.refs.items():
        out[name] = store.scalar(f"SELECT {ref.key_column} FROM {ref.table} WHERE id = ?", (row[ref.column],))
    return out


def _check(store: Store, expect: dict[str, Any], where: str) -> None:
    for entity, rows in expect.items():
        for key, fields in rows.items():
            row = _row(store, entity, key)
            if fields is None:
                assert row is None, f"{where}: {entity} {key} should not exist: {row}"
                continue
            assert row is not None, f"{where}: {entity} {key} is missing"
            for name, want in fields.items():
                got = json.loads(row[name]) if isinstance(want, dict | list) else row[name]
                assert got == want, f"{where}: {entity} {key}.{name} is {got!r}, not {want!r}"


def _open_all(
    store: Store, ring: Keyring, items: list[dict[str, Any]]
) -> tuple[list[RemoteEvent], list[str]]:
    signer = Ed25519PrivateKey.from_private_bytes(bytes(32))
    client = SyncClient(AgentLog(store), ring, signer, base_url="http://127.0.0.1:9")
    out, refused = [], []
    try:
        for item in items:
            try:
                ev = client._open(item)
            except SyncError:
                refused.append(item["id"])
                continue
            if ev is not None:
                out.append(ev)
    finally:
        client.close()
    return out, refused


@pytest.mark.parametrize("case", DOC["fold"], ids=lambda c: c["name"])
def test_fold(case: dict[str, Any], store: Store) -> None:
    ring = Keyring.from_json(case["keyring"], "the vector") if "keyring" in case else None
    refused: list[str] = []
    for i, step in enumerate(case["steps"]):
        if "raw" in step:
            assert ring is not None
            events, bad = _open_all(store, ring, step["raw"])
            refused += bad
        else:
            events = [RemoteEvent(**e) for e in step["events"]]
        apply_events(store, events)
        _check(store, step.get("expect", {}), f"after step {i + 1}")
    _check(store, case["expect"], "at the end")
    assert refused == case.get("refused", [])
    for entity, n in case.get("count", {}).items():
        assert store.scalar(f"SELECT COUNT(*) FROM {ENTITIES[entity].table}") == n, entity
    for username, balance in case.get("balances", {}).items():
        got = store.scalar(
            "SELECT SUM(l.amount_minor) FROM ledger l JOIN subscribers s ON s.id = l.subscriber_id "
            "WHERE s.username = ?",
            (username,),
        )
        assert got == balance, username
    for entity, rows in case.get("absent", {}).items():
        for key, names in rows.items():
            row = _row(store, entity, key)
            assert row is not None, f"{entity} {key} is missing"
            assert not set(names) & set(row), f"{entity} {key} shows {set(names) & set(row)}"
    for entity, rows in case.get("details", {}).items():
        for key, fields in rows.items():
            first = store.one(
                "SELECT id, data FROM events WHERE entity = ? AND key = ? ORDER BY hlc, id LIMIT 1",
                (entity, key),
            )
            assert first is not None, f"{entity} {key} has no event"
            data = store.event_data(first)
            assert {k: data.get(k) for k in fields} == fields, f"{entity} {key}"
    for secret in case.get("secrets", []):
        for table in {s.table for s in ENTITIES.values()}:
            for stored in store.all(f"SELECT * FROM {table}"):
                for v in stored.values():
                    assert not (isinstance(v, str) and secret in v), f"{secret} in {table}"
                    assert not (isinstance(v, bytes) and secret.encode() in v), f"{secret} in {table}"


def test_os_urandom_is_what_envelopes_use() -> None:
    # The seal vectors fix the nonce by replacing envelope.os.urandom: it must be the one.
    assert envelope.os is os


@pytest.mark.parametrize("case", DOC["snapshot"], ids=lambda c: c["name"])
def test_snapshot(case: dict[str, Any]) -> None:
    keys = {kid: b64d(k) for kid, k in case["keys"].items()}
    ring = Keyring(case["tenant_id"], next(iter(keys)), keys)
    chunks = [
        ring.open(env, f"snapshot:{case['id']}:{i}", case["origin"]) for i, env in enumerate(case["parts"])
    ]
    assert snapshotfmt.decode(chunks) == case["events"]
    assert gzip.decompress(b"".join(snapshotfmt.encode(case["events"]))) == gzip.decompress(b"".join(chunks))
    with pytest.raises(SyncError, match="failed authentication"):  # a part cannot be moved
        ring.open(case["parts"][0], f"snapshot:{case['id']}:1", case["origin"])
