"""The larger fold cases of the shared vectors (:mod:`.vectorfold` lists them all): the
dashboard's requests and unmatched payments, a tenant key rotation with tampered and moved
envelopes, an erasure."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jasiyo.sync.envelope import b64e
from jasiyo.sync.vectorfold import PLAN_HOME, S0, _entry, _pay, _sub
from jasiyo.sync.vectors import (
    KEY_1,
    KEY_2,
    KID_1,
    KID_2,
    POP_A,
    POP_B,
    _ev,
    _id,
    _nonce,
    _plain_of,
    _recovery,
    _seal,
)

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


def _invalid_write_cases() -> list[dict[str, Any]]:
    """A badly typed write is ignored as if never made: the last valid writer wins per field
    (a required column cannot be taken from a row, deleting it), and an appended record
    holding one is ignored whole, never half kept nor put before a valid record."""
    plan = _ev(1000, 0, POP_A, "plan", "home", "upsert", PLAN_HOME)
    bad_price = _ev(1001, 2, POP_B, "plan", "home", "upsert", {"price_minor": 12.5, "rate": "20M/20M"})
    sub = _ev(1002, 0.5, POP_A, "subscriber", "alice", "upsert", _sub("alice"))
    bad_sub = _ev(
        1003, 3, POP_B, "subscriber", "alice", "upsert", {"service": 7, "plan": 12, "name": "Alice W"}
    )
    pay = _ev(1004, 4, POP_A, "payment", "QK7VALID", "append", _pay("alice", "QK7VALID", 150000, S0 + 240))
    early = {**_pay("alice", "QK7VALID", 150000, S0 + 10), "amount_minor": 12.5}
    bad_pay = _ev(1005, 1, POP_B, "payment", "QK7VALID", "append", early)
    only_bad = _ev(
        1006, 4, POP_B, "payment", "QK7BAD", "append", {**_pay("alice", "QK7BAD", 1, S0), "username": 5}
    )
    kept_plan = {"price_minor": 150000, "rate": "20M/20M"}
    return [
        {
            "name": "a later badly typed price keeps a plan nobody references, with its earlier price",
            "steps": [
                {"events": [bad_price], "expect": {"plan": {"home": None}}},
                {"events": [plan], "expect": {"plan": {"home": kept_plan}}},
                {"events": [bad_price, plan]},
            ],
            "expect": {"plan": {"home": kept_plan}},
            "count": {"plan": 1},
        },
        {
            "name": "a badly typed write of a subscriber's required fields keeps the subscriber",
            "steps": [{"events": [bad_sub, sub]}, {"events": [plan]}],
            "expect": {
                "plan": {"home": {"price_minor": 150000}},
                "subscriber": {"alice": {"service": "pppoe", "plan": "home", "name": "Alice W"}},
            },
        },
        {
            "name": "a badly typed appended record is ignored whole",
            "steps": [
                {"events": [plan, sub, pay], "expect": {"payment": {"QK7VALID": {"amount_minor": 150000}}}},
                {"events": [bad_pay, only_bad]},
            ],
            "expect": {
                "payment": {"QK7VALID": {"amount_minor": 150000, "received_at": S0 + 240}, "QK7BAD": None}
            },
            "count": {"payment": 1},
        },
    ]
