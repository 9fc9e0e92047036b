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

from typing import Any

from jasiyo.sync.vectors import (
    POP_A,
    POP_B,
    T0,
    _ev,
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


def fold_vectors() -> list[dict[str, Any]]:
    from jasiyo.sync.vectorcases import _dashboard_case, _erasure_case, _invalid_write_cases, _rotation_case

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
        *_invalid_write_cases(),
    ]
