"""The fold cases of the shared vectors (:mod:`.vectors`): batches of events and what every
agent, and the dashboard, must hold after folding them.

A case is ``{"name", "steps": [{"events": [...]} or {"raw": [...]}, "expect"?], "keyring"?,
"expect", "count"?, "balances"?, "secrets"?, "absent"?, "refused"?}``:

- ``events`` are opened events; ``raw`` are pulled items ``{seq, id, origin, envelope,
  received_at}`` opened with ``keyring`` (a recovery file's document) first;
- ``expect``: ``{entity: {key: {field: value} | null}}`` (null: no such row); references
  by name (a subscriber's ``plan``, a payment's ``username``), JSON fields as values;
- ``count``: rows per entity; ``balances``: ledger sum per username (positive = credit);
- ``secrets``: strings that must appear in no row; ``absent``: fields a row must not show;
- ``details``: fields of an entity's earliest event that the agents read from the event
  (a request's username, amount) and the dashboard's row shows;
- ``refused``: ids of raw events that must not open (the rest still fold).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jasiyo.sync.envelope import b64e
from jasiyo.sync.vectors import (
    KEY_1,
    KEY_2,
    KID_1,
    KID_2,
    POP_A,
    POP_B,
    T0,
    _ev,
    _id,
    _nonce,
    _plain_of,
    _recovery,
    _seal,
)

S0 = T0 / 1000  # seconds

PLAN_HOME = {
    "billing": "prepaid",
    "burst": None,
    "currency": "KES",
    "data_bytes": None,
    "devices": 1,
    "fup_rate": None,
    "grace_days": None,
    "name": "home",
    "period": "30d",
    "portal": 0,
    "price_minor": 150000,
    "quota_bytes": None,
    "rate": "10M/10M",
    "tax_inclusive": 0,
    "tax_rate_bp": 0,
}


def _plan(name: str, **fields: Any) -> dict[str, Any]:
    return {**PLAN_HOME, "name": name, **fields}


def _sub(
    username: str, *, password: str = "alice-pw-1", phone: str | None = None, name: str | None = None
) -> dict[str, Any]:
    return {
        "ip": None,
        "mac": None,
        "name": name,
        "password": password,
        "phone": phone,
        "plan": "home",
        "service": "pppoe",
        "sms_consent": False,
        "status": "active",
        "tax_pin": None,
        "username": username,
    }


def _pay(username: str, ref: str, amount: int, at: float, method: str = "mpesa") -> dict[str, Any]:
    return {
        "amount_minor": amount,
        "currency": "KES",
        "method": method,
        "received_at": at,
        "recorded_by": "t",
        "reference": ref,
        "username": username,
    }


def _entry(
    username: str, kind: str, ref: str, amount: int, at: float, description: str = ""
) -> dict[str, Any]:
    return {
        "amount_minor": amount,
        "at": at,
        "currency": "KES",
        "description": description or f"{kind} {ref}",
        "kind": kind,
        "reference": ref,
        "username": username,
    }


def _lww() -> list[dict[str, Any]]:
    return [
        _ev(1, 0, POP_A, "plan", "home", "upsert", PLAN_HOME),
        _ev(2, 2, POP_B, "plan", "home", "upsert", {"rate": "20M/20M"}),
        _ev(3, 1, POP_A, "plan", "home", "upsert", {"rate": "5M/5M", "price_minor": 200000}),
    ]


LWW_EXPECT = {"plan": {"home": {"rate": "20M/20M", "price_minor": 200000, "currency": "KES", "burst": None}}}


def _base(n: int = 100) -> list[dict[str, Any]]:
    """A plan and a subscriber on it (ids from ``n``)."""
    return [
        _ev(n, 0, POP_A, "plan", "home", "upsert", PLAN_HOME),
        _ev(n + 1, 0.5, POP_A, "subscriber", "alice", "upsert", _sub("alice", phone="+254712345678")),
    ]


REQ_1 = "0190a000-0000-7000-8000-00000000f001"
REQ_2 = "0190a000-0000-7000-8000-00000000f002"


def _suspense(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "reference": "QK7SUSP01",
        "provider": "mpesa",
        "amount_minor": 70000,
        "currency": "KES",
        "account": "alise",
        "phone": "+254712345678",
        "reason": "no subscriber named 'alise'",
        "received_at": S0 + 30,
        "status": status,
        "allocated_to": None,
        "allocated_at": None,
        "allocated_by": None,
        "pop": "nairobi-1",
        **fields,
    }


def _dashboard_case() -> dict[str, Any]:
    request = {
        "action": "payment",
        "by": "front desk",
        "at": S0 + 10,
        "username": "alice",
        "amount_minor": 50000,
    }
    done = {"status": "done", "message": "KES 500.00 from alice recorded", "pop": "nairobi-1", "at": S0 + 70}
    return {
        "name": "the dashboard's requests, their results and unmatched payments",
        "steps": [
            {
                "events": [
                    _ev(90, 0.2, POP_B, "request", REQ_1, "append", request),
                    _ev(91, 1, POP_A, "request_result", REQ_1, "append", done),
                    _ev(92, 0.5, POP_A, "suspense", "QK7SUSP01", "upsert", _suspense("open")),
                ]
            },
            {
                "events": [
                    # A second result, later, from another POP: the first one stands.
                    _ev(93, 4, POP_B, "request_result", REQ_1, "append", {**done, "pop": "mombasa-1"}),
                    _ev(
                        94,
                        2,
                        POP_A,
                        "suspense",
                        "QK7SUSP01",
                        "upsert",
                        _suspense("allocated", allocated_to="alice", allocated_at=S0 + 120, allocated_by="t"),
                    ),
                ]
            },
            # A status the agents' table does not know: refused there, so here too.
            {"events": [_ev(95, 3, POP_B, "suspense", "QK7SUSP01", "upsert", {"status": "closed"})]},
        ],
        "expect": {
            "request": {REQ_1: {"action": "payment", "at": S0 + 10}},
            "request_result": {REQ_1: {"status": "done", "pop": "nairobi-1", "message": done["message"]}},
            "suspense": {
                "QK7SUSP01": {"status": "allocated", "allocated_to": "alice", "amount_minor": 70000}
            },
        },
        # What the request asked: not columns of the agents' table, read from its event by
        # the POP that carries it out; the dashboard's row keeps them (never a password).
        "details": {"request": {REQ_1: {"username": "alice", "amount_minor": 50000, "by": "front desk"}}},
    }


def _rotation_case() -> dict[str, Any]:
    key_event = {
        "hlc": "",
        "entity": "_tenant_key",
        "key": KID_2,
        "op": "append",
        "data": {"kid": KID_2, "key": b64e(KEY_2)},
    }
    items: list[dict[str, Any]] = []

    def item(seq: int, ev_id: str, origin: str, plain: bytes, key: bytes, kid: str, received: float) -> None:
        env = _seal(key, kid, plain, ev_id, origin, _nonce(40 + seq))
        items.append({"seq": seq, "id": ev_id, "origin": origin, "envelope": env, "received_at": received})

    # As SyncClient.publish_key writes it: json.dumps with the default separators.
    item(1, _id(201), POP_A, json.dumps(key_event).encode(), KEY_1, KID_1, S0 + 10)
    plan = _ev(202, 1, POP_A, "plan", "home", "upsert", PLAN_HOME)
    item(2, plan["id"], POP_A, _plain_of(plan), KEY_2, KID_2, S0 + 70)
    # A POP whose clock runs 30 days fast: bounded to the cloud's clock + 6 minutes.
    fast = _ev(203, 60 * 24 * 30, POP_B, "plan", "home", "upsert", {"rate": "99M/99M"})
    item(3, fast["id"], POP_B, _plain_of(fast), KEY_2, KID_2, S0 + 120)
    honest = _ev(204, 10, POP_A, "plan", "home", "upsert", {"rate": "25M/25M"})
    item(4, honest["id"], POP_A, _plain_of(honest), KEY_2, KID_2, S0 + 600)
    sub = _ev(205, 11, POP_A, "subscriber", "alice", "upsert", _sub("alice"))
    item(5, sub["id"], POP_A, _plain_of(sub), KEY_2, KID_2, S0 + 660)
    # Tampered with in the cloud: one character of the ciphertext changed.
    evil = _ev(206, 12, POP_A, "subscriber", "alice", "upsert", {"status": "terminated"})
    item(6, evil["id"], POP_A, _plain_of(evil), KEY_2, KID_2, S0 + 720)
    head, body = items[-1]["envelope"].rsplit(".", 1)
    items[-1]["envelope"] = head + "." + body[:30] + ("A" if body[30] != "A" else "B") + body[31:]
    # Moved: another event's envelope under a new id.
    items.append({**items[4], "seq": 7, "id": _id(207)})
    return {
        "name": "tenant key rotation, then events sealed under the new key",
        "keyring": _recovery({KID_1: KEY_1}, KID_1),
        "steps": [{"raw": items}],
        "expect": {
            "plan": {"home": {"rate": "25M/25M", "price_minor": 150000}},
            "subscriber": {"alice": {"status": "active", "plan": "home"}},
        },
        "refused": [_id(206), _id(207)],
        "secrets": ["alice-pw-1"],
    }


def _erasure_case() -> dict[str, Any]:
    pseudonym = "erased-0123456789ab"
    at = S0 + 120
    erase = {
        "subject": hashlib.sha256(b"jasiyo-erasure|alice").hexdigest(),
        "reason": "asked in writing",
        "by": "admin",
        "at": S0 + 3600,
        "password": "fresh-random-pw-42",
        "status": "terminated",
        "status_reason": "erased",
        "sms_consent": False,
        "name": None,
        "phone": None,
        "ip": None,
        "tax_pin": None,
        "mac": None,
    }
    return {
        "name": "an erasure moves the person's row and money to the pseudonym",
        "steps": [
            {
                "events": [
                    _ev(300, 0, POP_A, "plan", "home", "upsert", PLAN_HOME),
                    _ev(
                        301,
                        0.5,
                        POP_A,
                        "subscriber",
                        "alice",
                        "upsert",
                        _sub("alice", phone="+254712345678", name="Alice Wanjiru"),
                    ),
                    _ev(
                        302, 2, POP_A, "payment", "QK1ERASE", "append", _pay("alice", "QK1ERASE", 150000, at)
                    ),
                    _ev(
                        303,
                        2,
                        POP_A,
                        "ledger",
                        "payment:QK1ERASE",
                        "append",
                        _entry("alice", "payment", "QK1ERASE", 150000, at, "M-Pesa from Alice Wanjiru"),
                    ),
                ]
            },
            {
                "events": [
                    _ev(
                        305,
                        30,
                        POP_A,
                        "usage",
                        f"alice|{S0}|{POP_A}",
                        "upsert",
                        {
                            "username": "alice",
                            "cycle_start": S0,
                            "agent": POP_A,
                            "pop": "nairobi-1",
                            "input_octets": 1000,
                            "output_octets": 5000,
                            "session_time": 600,
                        },
                    )
                ]
            },
            {
                "events": [
                    _ev(
                        306,
                        40,
                        POP_B,
                        "request",
                        REQ_2,
                        "append",
                        {
                            "action": "plan",
                            "by": "front desk",
                            "at": S0 + 2400,
                            "username": "alice",
                            "plan": "home",
                        },
                    ),
                    _ev(
                        307,
                        41,
                        POP_A,
                        "request_result",
                        REQ_2,
                        "append",
                        {
                            "status": "done",
                            "message": "alice moved to plan home",
                            "pop": "nairobi-1",
                            "at": S0 + 2460,
                        },
                    ),
                    _ev(
                        308,
                        42,
                        POP_A,
                        "suspense",
                        "QK7SUSP02",
                        "upsert",
                        _suspense(
                            "open",
                            reference="QK7SUSP02",
                            account="alice",
                            reason="account alice is terminated",
                        ),
                    ),
                ]
            },
            {"events": [_ev(304, 60, POP_B, "subscriber", pseudonym, "erase", erase)]},
        ],
        "expect": {
            "subscriber": {
                "alice": None,
                pseudonym: {
                    "status": "terminated",
                    "status_reason": "erased",
                    "name": None,
                    "phone": None,
                    "plan": "home",
                },
            },
            "payment": {"QK1ERASE": {"username": pseudonym, "amount_minor": 150000}},
            "request_result": {REQ_2: {"message": f"{pseudonym} moved to plan home"}},
            "suspense": {"QK7SUSP02": {"account": pseudonym, "phone": None}},
            "usage": {
                f"alice|{S0}|{POP_A}": None,
                f"{pseudonym}|{S0}|{POP_A}": {"username": pseudonym, "output_octets": 5000},
            },
        },
        "details": {"request": {REQ_2: {"username": pseudonym, "plan": "home"}}},
        "balances": {pseudonym: 150000},
        "secrets": ["fresh-random-pw-42", "alice-pw-1"],
    }


def fold_vectors() -> list[dict[str, Any]]:
    lww = _lww()
    return [
        {
            "name": "last writer wins, per field",
            "steps": [{"events": lww}],
            "expect": LWW_EXPECT,
        },
        {
            "name": "out-of-order arrival folds to the same row",
            "steps": [
                {"events": [lww[2]], "expect": {"plan": {"home": None}}},
                {"events": [lww[1]], "expect": {"plan": {"home": None}}},
                {"events": [lww[0]]},
            ],
            "expect": LWW_EXPECT,
        },
        {
            "name": "a delete clears earlier writes; an older write arriving later stays deleted",
            "steps": [
                {
                    "events": [
                        _ev(10, 0, POP_A, "plan", "basic", "upsert", _plan("basic", rate="2M/2M")),
                        _ev(11, 3, POP_B, "plan", "basic", "delete", {}),
                        _ev(12, 0, POP_A, "plan", "edge", "upsert", _plan("edge")),
                        _ev(13, 1, POP_A, "plan", "edge", "delete", {}),
                        _ev(14, 2, POP_B, "plan", "edge", "upsert", {"rate": "8M/8M"}),
                        _ev(15, 0, POP_A, "plan", "home", "upsert", _plan("home", burst="20M/20M")),
                        _ev(16, 1, POP_A, "plan", "home", "delete", {}),
                        _ev(17, 2, POP_B, "plan", "home", "upsert", _plan("home", rate="4M/4M")),
                    ],
                    "expect": {
                        "plan": {"basic": None, "edge": None, "home": {"rate": "4M/4M", "burst": None}}
                    },
                },
                {"events": [_ev(18, 2, POP_A, "plan", "basic", "upsert", {"rate": "3M/3M"})]},
            ],
            "expect": {"plan": {"basic": None, "edge": None, "home": {"rate": "4M/4M", "burst": None}}},
            "count": {"plan": 1},
        },
        {
            "name": "duplicate events apply once",
            "steps": [
                {
                    "events": [
                        *_base(20),
                        _ev(
                            22,
                            1,
                            POP_A,
                            "payment",
                            "QK7DUP",
                            "append",
                            _pay("alice", "QK7DUP", 150000, S0 + 60),
                        ),
                        _ev(
                            23,
                            1,
                            POP_A,
                            "ledger",
                            "payment:QK7DUP",
                            "append",
                            _entry("alice", "payment", "QK7DUP", 150000, S0 + 60),
                        ),
                        _ev(
                            24,
                            5,
                            POP_B,
                            "subscriber",
                            "alice",
                            "upsert",
                            {"status": "suspended", "status_reason": "manual", "manual_suspend": 1},
                        ),
                    ]
                },
                {
                    "events": [
                        _ev(
                            22,
                            1,
                            POP_A,
                            "payment",
                            "QK7DUP",
                            "append",
                            _pay("alice", "QK7DUP", 150000, S0 + 60),
                        ),
                        _ev(
                            23,
                            1,
                            POP_A,
                            "ledger",
                            "payment:QK7DUP",
                            "append",
                            _entry("alice", "payment", "QK7DUP", 150000, S0 + 60),
                        ),
                        _ev(
                            21,
                            0.5,
                            POP_A,
                            "subscriber",
                            "alice",
                            "upsert",
                            _sub("alice", phone="+254712345678"),
                        ),
                    ]
                },
            ],
            "expect": {
                "subscriber": {
                    "alice": {"status": "suspended", "manual_suspend": 1, "status_reason": "manual"}
                },
                "payment": {"QK7DUP": {"amount_minor": 150000, "username": "alice", "method": "mpesa"}},
            },
            "count": {"payment": 1, "ledger": 1},
            "balances": {"alice": 150000},
        },
        {
            "name": "one payment per reference, whatever its case",
            "steps": [
                {
                    "events": [
                        *_base(30),
                        _ev(
                            32,
                            1,
                            POP_A,
                            "payment",
                            "QK7H2X",
                            "append",
                            _pay("alice", "QK7H2X", 150000, S0 + 60),
                        ),
                        _ev(
                            33,
                            1,
                            POP_A,
                            "ledger",
                            "payment:QK7H2X",
                            "append",
                            _entry("alice", "payment", "QK7H2X", 150000, S0 + 60),
                        ),
                    ]
                },
                {
                    "events": [
                        _ev(
                            34,
                            2,
                            POP_B,
                            "payment",
                            "qk7h2x",
                            "append",
                            _pay("alice", "qk7h2x", 150000, S0 + 90),
                        ),
                        _ev(
                            35,
                            2,
                            POP_B,
                            "ledger",
                            "payment:qk7h2x",
                            "append",
                            _entry("alice", "payment", "qk7h2x", 150000, S0 + 90),
                        ),
                    ]
                },
            ],
            # The same receipt: one payment, one ledger entry (the row of the case seen last).
            "expect": {"payment": {"qk7h2x": {"amount_minor": 150000, "username": "alice"}, "QK7H2X": None}},
            "count": {"payment": 1, "ledger": 1},
            "balances": {"alice": 150000},
        },
        {
            "name": "a wrongly typed field is dropped, the rest applies",
            "steps": [
                {
                    "events": [
                        *_base(40),
                        _ev(42, 1, POP_A, "subscriber", "alice", "upsert", {"paid_until": S0 + 30 * 86400.0}),
                    ]
                },
                {
                    "events": [
                        _ev(
                            43,
                            2,
                            POP_B,
                            "subscriber",
                            "alice",
                            "upsert",
                            {
                                "paid_until": "next week",
                                "phone": 254700000000,
                                "manual_suspend": 1.0,
                                "name": "Alice Wanjiru",
                                "sms_consent": True,
                                "status_changed_at": 1.0,
                                "plan_id": 999,
                            },
                        ),
                        _ev(44, 2, POP_B, "plan", "home", "upsert", {"price_minor": 12.5}),
                        _ev(45, 3, POP_B, "plan", "home", "upsert", {"tax_rate_bp": "1600", "grace_days": 3}),
                    ]
                },
            ],
            "expect": {
                "subscriber": {
                    "alice": {
                        "paid_until": S0 + 30 * 86400.0,
                        "phone": "+254712345678",
                        "manual_suspend": 0,
                        "name": "Alice Wanjiru",
                        "sms_consent": 1,
                        "plan": "home",
                    }
                },
                "plan": {"home": {"price_minor": 150000, "tax_rate_bp": 0}},
            },
        },
        {
            "name": "secrets never reach the state",
            "steps": [
                {
                    "events": [
                        *_base(50),
                        _ev(
                            52,
                            1,
                            POP_A,
                            "router",
                            "r1",
                            "upsert",
                            {
                                "coa_port": 3799,
                                "driver": "mikrotik",
                                "host": "10.0.0.1",
                                "name": "r1",
                                "nas_ip": "10.0.0.1",
                                "options": {"pool": "pppoe"},
                                "password": "router-admin-pw",
                                "pop": "nairobi-1",
                                "port": None,
                                "radius_secret": "s3cret-radius-9",
                                "require_message_authenticator": True,
                                "username": "admin",
                            },
                        ),
                    ]
                }
            ],
            "expect": {
                "router": {
                    "r1": {
                        "host": "10.0.0.1",
                        "pop": "nairobi-1",
                        "require_message_authenticator": 1,
                        "options": {"pool": "pppoe"},
                    }
                },
                "subscriber": {"alice": {"phone": "+254712345678"}},
            },
            "absent": {
                "router": {"r1": ["password", "radius_secret", "password_enc", "radius_secret_enc"]},
                "subscriber": {"alice": ["password", "password_enc"]},
            },
            "secrets": ["alice-pw-1", "router-admin-pw", "s3cret-radius-9"],
        },
        {
            "name": "a subscriber waits for its plan",
            "steps": [
                {"events": [_base(60)[1]], "expect": {"subscriber": {"alice": None}}},
                {"events": [_base(60)[0]]},
            ],
            "expect": {"subscriber": {"alice": {"plan": "home", "status": "active"}}},
        },
        {
            "name": "a subscriber with money cannot be deleted from under it",
            "steps": [
                {
                    "events": [
                        *_base(70),
                        _ev(
                            72,
                            1,
                            POP_A,
                            "payment",
                            "QK7KEEP",
                            "append",
                            _pay("alice", "QK7KEEP", 50000, S0 + 60, "cash"),
                        ),
                    ]
                },
                {"events": [_ev(73, 5, POP_B, "subscriber", "alice", "delete", {})]},
            ],
            "expect": {
                "subscriber": {"alice": {"status": "active"}},
                "payment": {"QK7KEEP": {"method": "cash"}},
            },
        },
        {
            "name": "a voucher's first use: the earliest is kept",
            "steps": [
                {
                    "events": [
                        _ev(
                            80,
                            5,
                            POP_B,
                            "voucher_use",
                            "ABCD2345",
                            "append",
                            {"started_at": S0 + 300, "mac": "AA:BB:CC:00:00:02", "pop": "pop-b"},
                        )
                    ]
                },
                {
                    "events": [
                        _ev(
                            81,
                            3,
                            POP_A,
                            "voucher_use",
                            "ABCD2345",
                            "append",
                            {"started_at": S0 + 180, "mac": "AA:BB:CC:00:00:01", "pop": "pop-a"},
                        )
                    ]
                },
            ],
            "expect": {"voucher_use": {"ABCD2345": {"pop": "pop-a", "started_at": S0 + 180}}},
            "count": {"voucher_use": 1},
        },
        _dashboard_case(),
        _rotation_case(),
        _erasure_case(),
    ]
