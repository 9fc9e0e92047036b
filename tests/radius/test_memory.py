"""MemoryBackend keeps the RadiusBackend promises: idempotent, Accounting-On closes sessions."""

from __future__ import annotations

from jasiyo.radius.backend import AcctRecord
from jasiyo.radius.memory import MemoryBackend


def test_memory_backend_idempotent_but_sees_each_reboot() -> None:
    b = MemoryBackend()
    start = AcctRecord("10.0.0.1", "Start", 1000.0, acct_session_id="s1", username="a")
    b.record_accounting([start, start])
    b.record_accounting([AcctRecord("10.0.0.1", "Start", 1003.0, acct_session_id="s1",
                                    username="a", delay_time=3)])  # fmt: skip
    assert len(b.records) == 1 and len(b.open_sessions()) == 1
    b.record_accounting([AcctRecord("10.0.0.1", "Accounting-On", 2000.0)])
    assert b.open_sessions() == []
    b.record_accounting([AcctRecord("10.0.0.1", "Start", 2100.0, acct_session_id="s2")])
    # the next reboot, a day later, is a new event and closes s2
    b.record_accounting([AcctRecord("10.0.0.1", "Accounting-On", 88400.0)])
    assert b.open_sessions() == []
    assert [r.status_type for r in b.records].count("Accounting-On") == 2
