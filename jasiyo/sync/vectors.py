"""Shared test vectors: one format, two implementations (the agents' Python, the dashboard's JS).

    python -m jasiyo.sync.vectors

writes ``jasiyo/cloud/webapp/vectors/sync-vectors.json`` and the fold rules the browser
reads, ``jasiyo/cloud/webapp/js/core/entities.js`` (:mod:`.foldspec`). Everything is fixed
(keys, nonces, Ed25519 seeds, clocks, ids), so the output is the same on every run and a
test can compare the committed files with it. ``tests/dashboard/test_vectors.py`` checks
every vector against the real Python code; ``tests/dashboard/test_vectors_browser.py``
runs the same file through the browser's modules in Chromium.

The expected results are written here by hand (what a person would expect of the fold),
not computed by the code they check.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jasiyo.sync.client import RemoteEvent, _plain
from jasiyo.sync.envelope import aad, b64e
from jasiyo.sync.hlc import bounded
from jasiyo.sync.signing import canonical, public_key_text, sign_headers
from jasiyo.sync.wrapped import wrap

WEBAPP = Path(__file__).resolve().parent.parent / "cloud" / "webapp"
VECTORS = WEBAPP / "vectors" / "sync-vectors.json"
ENTITIES_JS = WEBAPP / "js" / "core" / "entities.js"

TENANT = "0190a000-0000-7000-8000-0000000000c1"
POP_A = "0190a000-0000-7000-8000-0000000000aa"
POP_B = "0190a000-0000-7000-8000-0000000000bb"
KID_1, KID_2 = "k00000000a001", "k00000000a002"
KEY_1, KEY_2 = bytes(range(32)), bytes(range(100, 132))
#: 2026-12-01 00:00:00 UTC, in ms.
T0 = 1_796_083_200_000


def _nonce(n: int) -> bytes:
    return bytes([n]) * 12


def _id(n: int) -> str:
    return f"0190a000-0000-7000-8000-{n:012x}"


def _hlc(minutes: float, origin: str, counter: int = 0) -> str:
    return f"{T0 + int(minutes * 60_000):015d}.{counter:06d}.{origin}"


def _ev(
    n: int, minutes: float, origin: str, entity: str, key: str, op: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": _id(n),
        "hlc": _hlc(minutes, origin),
        "origin": origin,
        "entity": entity,
        "key": key,
        "op": op,
        "data": data,
    }


def _seal(key: bytes, kid: str, plaintext: bytes, event_id: str, origin: str, nonce: bytes) -> str:
    ct = AESGCM(key).encrypt(nonce, plaintext, aad(TENANT, event_id, origin))
    return f"v1.{kid}.{b64e(nonce + ct)}"


def _plain_of(ev: dict[str, Any]) -> bytes:
    return _plain(RemoteEvent(**ev))


def _recovery(keys: dict[str, bytes], current: str) -> dict[str, Any]:
    return {
        "format": "jasiyo-tenant-keys-v1",
        "tenant_id": TENANT,
        "current": current,
        "created_at": 1796083200.0,
        "keys": {kid: b64e(k) for kid, k in sorted(keys.items())},
    }


# ------------------------------------------------------------------ envelopes


def envelope_vectors() -> list[dict[str, Any]]:
    ev = _ev(
        1, 0, POP_A, "plan", "home", "upsert", {"name": "home", "rate": "10M/10M", "price_minor": 150000}
    )
    plain = _plain_of(ev)
    sealed = _seal(KEY_1, KID_1, plain, ev["id"], POP_A, _nonce(1))
    # One byte of the ciphertext flipped (inside the base64, keeping it valid base64url).
    body = sealed.split(".", 2)[2]
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    common = {"tenant_id": TENANT, "keys": {KID_1: b64e(KEY_1)}, "kid": KID_1, "origin": POP_A}
    return [
        {
            **common,
            "name": "seal and open",
            "event_id": ev["id"],
            "nonce": b64e(_nonce(1)),
            "plaintext": plain.decode(),
            "envelope": sealed,
        },
        {
            **common,
            "name": "non-ASCII plaintext",
            "event_id": _id(2),
            "nonce": b64e(_nonce(2)),
            "plaintext": "Wambũi ✓ 💸",
            "envelope": _seal(KEY_1, KID_1, "Wambũi ✓ 💸".encode(), _id(2), POP_A, _nonce(2)),
        },
        {
            **common,
            "name": "tampered ciphertext",
            "event_id": ev["id"],
            "envelope": f"v1.{KID_1}.{flipped}",
            "error": "failed authentication",
        },
        {
            **common,
            "name": "moved to another event",
            "event_id": _id(99),
            "envelope": sealed,
            "error": "failed authentication",
        },
        {
            **common,
            "name": "moved to another agent",
            "event_id": ev["id"],
            "origin": POP_B,
            "envelope": sealed,
            "error": "failed authentication",
        },
        {
            **common,
            "name": "unknown key id",
            "event_id": ev["id"],
            "envelope": sealed.replace(KID_1, KID_2),
            "error": "does not hold",
        },
    ]


def plain_vectors() -> list[dict[str, Any]]:
    """Event plaintexts as the Python client's ``_plain`` writes them."""
    events = [
        _ev(3, 1, POP_A, "subscriber", "alice", "upsert", {"status": "suspended", "manual_suspend": 1}),
        _ev(
            4,
            2,
            POP_B,
            "payment",
            "QK7H2X",
            "append",
            {
                "username": "wambui",
                "amount_minor": 150000,
                "received_at": 1796083320.25,
                "name": 'Wambũi "Mama" Njeri\n',
                "nested": {"z": [1, True, None], "a": {}},
            },
        ),
    ]
    return [{"event": ev, "plaintext": _plain_of(ev).decode()} for ev in events]


# ------------------------------------------------------------------ signatures


def signature_vectors() -> list[dict[str, Any]]:
    out = []
    cases = [
        ("GET", f"/v1/tenants/{TENANT}/events?after=0&limit=1000&wait=25", b""),
        ("POST", f"/v1/tenants/{TENANT}/events", b'{"events":[]}'),
    ]
    for i, (method, target, body) in enumerate(cases):
        seed = bytes([7 + i]) * 32
        key = Ed25519PrivateKey.from_private_bytes(seed)
        ts, nonce = str(1796083200 + i), f"{i:02d}" * 16
        headers = sign_headers(key, TENANT, POP_A, method, target, body, now=float(ts), nonce=nonce)
        out.append(
            {
                "name": f"{method} {target.split('/')[-1]}",
                "seed": b64e(seed),
                "public_key": public_key_text(key),
                "tenant_id": TENANT,
                "agent_id": POP_A,
                "method": method,
                "target": target,
                "body": body.decode(),
                "timestamp": ts,
                "nonce": nonce,
                "canonical": canonical(method, target, body, ts, nonce, TENANT, POP_A).decode(),
                "signature": headers["x-jasiyo-signature"],
            }
        )
    return out


# ------------------------------------------------------------------ wrapped keyring


def wrapped_vectors() -> list[dict[str, Any]]:
    recovery = json.dumps(_recovery({KID_1: KEY_1, KID_2: KEY_2}, KID_2), indent=2) + "\n"
    doc = wrap(
        recovery, "correct horse battery staple", TENANT, iterations=1000, salt=bytes(range(16)), iv=_nonce(9)
    )
    return [
        {
            "name": "unwrap",
            "tenant_id": TENANT,
            "passphrase": "correct horse battery staple",
            "iterations": 1000,
            "salt": b64e(bytes(range(16))),
            "iv": b64e(_nonce(9)),
            "recovery": recovery,
            "wrapped": doc,
        },
        {
            "name": "wrong passphrase",
            "tenant_id": TENANT,
            "passphrase": "correct horse battery stapler",
            "wrapped": doc,
            "error": "wrong passphrase",
        },
        {
            "name": "another tenant's document",
            "tenant_id": TENANT[:-1] + "2",
            "passphrase": "correct horse battery staple",
            "wrapped": doc,
            "error": "wrong passphrase",
        },
    ]


def recovery_vectors() -> list[dict[str, Any]]:
    good = _recovery({KID_1: KEY_1, KID_2: KEY_2}, KID_2)
    return [
        {
            "name": "recovery file",
            "text": json.dumps(good),
            "tenant_id": TENANT,
            "current": KID_2,
            "kids": [KID_1, KID_2],
        },
        {"name": "not JSON", "text": "hello", "error": "not a recovery file"},
        {
            "name": "current key missing",
            "text": json.dumps({**good, "current": "k0000000000ff"}),
            "error": "not a recovery file",
        },
        {
            "name": "short key",
            "text": json.dumps({**good, "keys": {KID_1: b64e(b"x" * 16)}, "current": KID_1}),
            "error": "not a recovery file",
        },
    ]


def hlc_vectors() -> list[dict[str, Any]]:
    cases = [
        (_hlc(0, POP_A), 1796083200.0),
        (_hlc(5, POP_A, 3), 1796083200.0),
        (_hlc(60 * 24 * 30, POP_B, 7), 1796083200.5),
        (_hlc(1, POP_B), None),
    ]
    return [{"hlc": h, "received_at": r, "bounded": bounded(h, r)} for h, r in cases]


def snapshot_vectors() -> list[dict[str, Any]]:
    """A snapshot in two sealed parts: gzip of JSON lines (as snapshotfmt.encode writes them,
    with the gzip header's time fixed at 0 so the bytes are the same on every run)."""
    snap_id = _id(900)
    events = [
        _ev(
            901,
            0,
            POP_A,
            "plan",
            "home",
            "upsert",
            {"name": "home", "rate": "10M/10M", "price_minor": 150000},
        ),
        _ev(902, 1, POP_B, "subscriber", "wambui", "upsert", {"name": "Wambũi", "paid_until": 1798675200.0}),
    ]
    lines = b"".join(json.dumps(e, sort_keys=True, separators=(",", ":")).encode() + b"\n" for e in events)
    raw = gzip.compress(lines, compresslevel=6, mtime=0)
    chunks = [raw[: len(raw) // 2], raw[len(raw) // 2 :]]
    parts = [
        _seal(KEY_1, KID_1, c, f"snapshot:{snap_id}:{i}", POP_B, _nonce(60 + i)) for i, c in enumerate(chunks)
    ]
    return [
        {
            "name": "two parts",
            "tenant_id": TENANT,
            "keys": {KID_1: b64e(KEY_1)},
            "id": snap_id,
            "origin": POP_B,
            "parts": parts,
            "events": events,
        }
    ]


def vectors() -> dict[str, Any]:
    from jasiyo.sync.vectorfold import fold_vectors  # it uses the helpers above

    return {
        "format": "jasiyo-sync-vectors-v1",
        "about": "Generated by `python -m jasiyo.sync.vectors`; checked by tests/dashboard.",
        "envelope": envelope_vectors(),
        "plain": plain_vectors(),
        "signature": signature_vectors(),
        "wrapped": wrapped_vectors(),
        "recovery": recovery_vectors(),
        "hlc": hlc_vectors(),
        "snapshot": snapshot_vectors(),
        "fold": fold_vectors(),
    }


def vectors_text() -> str:
    return json.dumps(vectors(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    from jasiyo.sync.foldspec import entities_js

    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(vectors_text(), encoding="utf-8")
    ENTITIES_JS.write_text(entities_js(), encoding="utf-8")
    sys.stdout.write(f"wrote {VECTORS} and {ENTITIES_JS}\n")


if __name__ == "__main__":  # pragma: no cover - the command in the docstring
    main()
