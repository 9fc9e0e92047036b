"""`jasiyo router update`, `router remove` with live sessions, the `[radius] coa_port`
default for `router add`, and enforcement jobs whose NAS IP no router has (wait, then give up).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pyrad.packet import DisconnectRequest

from jasiyo.agent import audit as audit_log
from jasiyo.agent import enforce, routers
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ValidationError
from tests.agent.agentproc import jasiyo
from tests.agent.billing_support import (
    DAY,
    T0,
    Clock,
    NasListener,
    start_session,
)
from tests.support.config import make_config

SECRET = "first-secret-1"


@pytest.fixture
def pop1(cfg: Config) -> Config:
    jasiyo(cfg, "router", "add", "pop1", "--driver", "mikrotik", "--host", "127.0.0.1",
           "--port", "8728", "--username", "api", "--password", "api-pass-1",
           "--radius-secret", SECRET)
    return cfg


@contextmanager
def opened(cfg: Config) -> Iterator[Store]:
    s = Store.open(cfg)
    try:
        yield s
    finally:
        s.close()


def show(cfg: Config, name: str = "pop1") -> dict:
    return json.loads(jasiyo(cfg, "--json", "router", "show", name).stdout)


def router_events(cfg: Config) -> list[dict]:
    with opened(cfg) as s:
        return [s.event_data(r) for r in s.all(
            "SELECT * FROM events WHERE entity = 'router' ORDER BY hlc")]


def audit(cfg: Config, action: str) -> list[str]:
    with opened(cfg) as s:
        return [json.dumps(line.detail, sort_keys=True)
                for line in reversed(audit_log.list_(s, action=action))]


# ------------------------------------------------------------------ router update


def test_update_changes_only_what_is_given(pop1: Config) -> None:
    before = show(pop1)
    out = jasiyo(pop1, "router", "update", "pop1", "--host", "10.9.9.9", "--coa-port", "3800",
                 "--radius-secret", "second-secret-2", "--tls", "--fingerprint", "ab:cd")
    assert "router pop1 updated" in out.stdout
    after = show(pop1)
    assert after["host"] == "10.9.9.9" and after["coa_port"] == 3800
    assert after["options"] == {"tls": True, "fingerprint": "ab:cd"}
    # --nas-ip was not given: RADIUS still comes from the old address; the rest is untouched.
    assert after["nas_ip"] == "127.0.0.1"
    assert {k: after[k] for k in ("port", "username", "driver", "has_password",
                                  "require_message_authenticator")} == \
        {k: before[k] for k in ("port", "username", "driver", "has_password",
                                "require_message_authenticator")}
    with opened(pop1) as s:
        assert routers.radius_secret(s, "pop1") == "second-secret-2"
        assert routers.credentials(s, "pop1") == ("api", "api-pass-1")
    # One event carrying just the changed fields; the audit line never holds the secret.
    last = router_events(pop1)[-1]
    assert last == {"host": "10.9.9.9", "coa_port": 3800, "radius_secret": "second-secret-2",
                    "options": {"tls": True, "fingerprint": "ab:cd"}}
    (line,) = audit(pop1, "router.update")
    assert "radius_secret" in line and "second-secret-2" not in line and "10.9.9.9" in line

    jasiyo(pop1, "router", "update", "pop1", "--no-tls", "--fingerprint", "",
           "--username", "api2", "--password", "api-pass-2", "--nas-ip", "127.0.0.9")
    after = show(pop1)
    assert after["options"] == {} and after["nas_ip"] == "127.0.0.9"
    with opened(pop1) as s:
        assert routers.credentials(s, "pop1") == ("api2", "api-pass-2")
    assert "api-pass-2" not in audit(pop1, "router.update")[-1]


def test_update_relaxing_message_authenticator_warns(pop1: Config) -> None:
    out = jasiyo(pop1, "router", "update", "pop1", "--no-require-message-authenticator")
    assert "WARNING" in out.stdout and "BlastRADIUS" in out.stdout
    assert show(pop1)["require_message_authenticator"] is False
    jasiyo(pop1, "router", "update", "pop1", "--require-message-authenticator")
    assert show(pop1)["require_message_authenticator"] is True


def test_update_with_the_same_values_records_nothing(pop1: Config) -> None:
    events = len(router_events(pop1))
    jasiyo(pop1, "router", "update", "pop1", "--host", "127.0.0.1", "--radius-secret", SECRET)
    assert len(router_events(pop1)) == events and audit(pop1, "router.update") == []


@pytest.mark.parametrize(("args", "message"), [
    ((), "nothing to update"),
    (("--port", "70000"), "bad port 70000"),
    (("--coa-port", "0"), "bad port 0"),
    (("--radius-secret", "short"), "at least 8 characters"),
    (("--nas-ip", "not-an-ip"), "bad NAS IP"),
    (("--nas-ip", "127.0.0.2"), "already belongs to router 'pop2'"),
    (("--username", "someone"), "both --username and --password"),
    (("--host", "bad host"), "bad host"),
])
def test_bad_update_is_refused_and_changes_nothing(pop1: Config, args: tuple[str, ...],
                                                   message: str) -> None:
    jasiyo(pop1, "router", "add", "pop2", "--driver", "mikrotik", "--host", "127.0.0.2",
           "--radius-secret", "pop2-secret")
    before, events = show(pop1), len(router_events(pop1))
    proc = jasiyo(pop1, "router", "update", "pop1", *args, check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert show(pop1) == before and len(router_events(pop1)) == events
    with opened(pop1) as s:
        assert routers.radius_secret(s, "pop1") == SECRET


def test_update_of_an_unknown_router_names_it(cfg: Config) -> None:
    proc = jasiyo(cfg, "router", "update", "ghost", "--host", "10.0.0.1", check=False)
    assert proc.returncode == 1 and "no router named 'ghost'" in proc.stderr


# ------------------------------------------------------------------ router remove


def test_remove_refuses_while_sessions_are_active_unless_forced(pop1: Config) -> None:
    with opened(pop1) as s:
        start_session(s, "alice", "s-1")
        start_session(s, "bob", "s-2", framed_ip="100.64.0.8")
        start_session(s, "carol", "s-3", nas_ip="127.0.0.5")  # another NAS: untouched
    proc = jasiyo(pop1, "router", "remove", "pop1", check=False)
    assert proc.returncode == 1
    assert "2 active RADIUS session(s)" in proc.stderr and "--force" in proc.stderr
    assert show(pop1)["name"] == "pop1"

    out = json.loads(jasiyo(pop1, "--json", "router", "remove", "pop1", "--force").stdout)
    assert out["closed_sessions"] == 2
    assert jasiyo(pop1, "router", "show", "pop1", check=False).returncode == 1
    with opened(pop1) as s:
        rows = s.all("SELECT username, status, terminate_cause, stopped_at "
                     "FROM radius_sessions ORDER BY username")
    assert [(r["username"], r["status"], r["terminate_cause"]) for r in rows] == [
        ("alice", "closed", "NAS-Removed"), ("bob", "closed", "NAS-Removed"),
        ("carol", "active", None)]
    assert all(r["stopped_at"] for r in rows[:2])


def test_remove_without_sessions_needs_no_force(pop1: Config) -> None:
    out = jasiyo(pop1, "router", "remove", "pop1")
    assert "router pop1 removed" in out.stdout and "session" not in out.stdout
    assert jasiyo(pop1, "router", "list").stdout.count("pop1") == 0


# ------------------------------------------------------------------ [radius] coa_port default


def test_router_add_takes_the_coa_port_from_the_config(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, coa_port=3899)
    jasiyo(cfg, "router", "add", "a", "--driver", "mikrotik", "--host", "127.0.0.1",
           "--radius-secret", SECRET)
    jasiyo(cfg, "router", "add", "b", "--driver", "mikrotik", "--host", "127.0.0.2",
           "--radius-secret", SECRET, "--coa-port", "1700")
    assert show(cfg, "a")["coa_port"] == 3899  # the config's default
    assert show(cfg, "b")["coa_port"] == 1700  # the flag wins


def test_router_add_without_config_coa_port_uses_3799(cfg: Config) -> None:
    jasiyo(cfg, "router", "add", "a", "--driver", "mikrotik", "--host", "127.0.0.1",
           "--radius-secret", SECRET)
    assert show(cfg, "a")["coa_port"] == 3799


# ------------------------------------------------------------------ jobs with no router


def run(db: Store, cfg: Config) -> int:
    return asyncio.run(enforce.process_pending(db, cfg))


def job(db: Store) -> dict:
    return db.one("SELECT status, result, attempts, next_attempt_at, last_error "
                  "FROM enforce_jobs WHERE action = 'disconnect'")


def test_job_waits_for_a_router_with_its_nas_ip_then_is_sent(
    db: Store, bcfg: Config, clock: Clock, nas: NasListener,
) -> None:
    # The router's NAS IP is changed (or it is removed and re-added) while a suspension's
    # Disconnect is queued for a session it carried.
    routers.update(db, "core-1", "noc", nas_ip="127.0.0.2")
    subs.suspend(db, "alice", "noc", "unpaid")
    assert run(db, bcfg) == 0
    j = job(db)
    assert j["status"] == "pending" and j["attempts"] == 1
    assert j["next_attempt_at"] > clock() and "no router has NAS IP 127.0.0.1" in j["last_error"]
    assert run(db, bcfg) == 0 and job(db)["attempts"] == 1  # backing off: not retried at once
    for hours in (1, 2, 3):  # still nobody: keeps waiting, not failed
        clock.set(T0 + hours * 3600)
        run(db, bcfg)
        assert job(db)["status"] == "pending"
    assert nas.received == []
    routers.update(db, "core-1", "noc", nas_ip="127.0.0.1")  # the router is back
    clock.set(T0 + 4 * 3600)
    assert run(db, bcfg) == 1
    assert job(db)["status"] == "done" and job(db)["result"] == "ack"
    assert [p.code for p in nas.received] == [DisconnectRequest]


def test_job_with_no_router_gives_up_after_a_day(
    db: Store, bcfg: Config, clock: Clock, nas: NasListener,
) -> None:
    routers.update(db, "core-1", "noc", nas_ip="127.0.0.2")
    subs.suspend(db, "alice", "noc", "unpaid")
    run(db, bcfg)
    clock.set(T0 + 23 * 3600)
    run(db, bcfg)
    assert job(db)["status"] == "pending"
    clock.set(T0 + DAY + 60)
    assert run(db, bcfg) == 1
    j = job(db)
    assert j["status"] == "failed" and j["result"] == "no-router"
    assert "no router had NAS IP 127.0.0.1" in j["last_error"] and "gave up" in j["last_error"]
    assert "jasiyo session disconnect alice" in j["last_error"]
    assert nas.received == []


def test_library_update_refuses_fields_it_cannot_change(db: Store) -> None:
    before = routers.get(db, "core-1")
    with pytest.raises(ValidationError, match="cannot change driver, options of a router"):
        routers.update(db, "core-1", "noc", driver="edgeos", options={})
    with pytest.raises(ValidationError, match="both --username and --password"):
        routers.update(db, "core-1", "noc", username="api", password="")
    assert routers.get(db, "core-1") == before
    after = routers.update(db, "core-1", "noc", port=8729, username="api", password="pw-2")
    assert (after.port, after.username, after.has_password) == (8729, "api", True)


def test_the_edgeos_driver_is_edgeos_whatever_it_was_called(db: Store) -> None:
    """``ubiquiti`` (the old name) is taken on input and read back from older rows as
    ``edgeos``: one name in every listing."""
    added = routers.add(db, "er1", driver="ubiquiti", host="127.0.0.1",
                        radius_secret="testing123", actor="noc", nas_ip="10.9.9.9")
    assert added.driver == "edgeos"
    with db.transaction():  # a row as an older version (or a sync event from one) left it
        db.conn.execute("UPDATE routers SET driver = 'ubiquiti' WHERE name = 'er1'")
    assert routers.get(db, "er1").driver == "edgeos"
    with pytest.raises(ValidationError, match="unknown driver 'cisco': use mikrotik, edgeos or generic"):
        routers.add(db, "r2", driver="cisco", host="127.0.0.1", radius_secret="testing123",
                    actor="noc")
