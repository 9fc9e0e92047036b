"""Authentication workers sharing the auth port, and the metrics summed over all processes.

Real processes (spawned), real sockets, FreeRADIUS's radclient; the metrics are read back
with prometheus_client's own text parser.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pyrad.packet import AccessAccept

from jasiyo.radius.memory import MemoryBackend
from jasiyo.radius.metrics import RadiusCollector, snapshot
from jasiyo.radius.workers import AuthWorkers

from .conftest import ServerThread, auth_request, decode_reply, make_backend, radclient


def worker_backend() -> MemoryBackend:
    """What each worker process serves from (top level: spawn pickles it by name)."""
    return make_backend()


class Pool:
    def __init__(self, workers: int) -> None:
        self.main = ServerThread(make_backend(), reuse_port=True)
        self.workers = AuthWorkers(worker_backend, "127.0.0.1", workers, log_level="warning")
        self.main.call(self.workers.start(self.main.server.auth_port))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            RadiusCollector(  # type: ignore[arg-type]
                lambda: [snapshot(self.main.server), *self.workers.snapshots()]
            )
        )

    def close(self) -> None:
        try:
            self.main.call(self.workers.stop())
        finally:
            self.main.close()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = generate_latest(self.registry).decode()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def worker_accepts(self) -> int:
        return sum(s["stats"]["access_accepts"] for s in self.workers.snapshots())


@pytest.fixture
def pool() -> Iterator[Pool]:
    p = Pool(1)
    try:
        yield p
    finally:
        p.close()


def login_from_new_ports(port: int, n: int) -> int:
    """``n`` Access-Requests, each from its own source port; how many were accepted."""
    accepted = 0
    for _ in range(n):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            req = auth_request(User_Name="alice", User_Password="alice-pw")
            s.sendto(req.RequestPacket(), ("127.0.0.1", port))
            try:
                accepted += decode_reply(req, s.recv(4096)).code == AccessAccept
            except TimeoutError:
                pass
    return accepted


def wait_for(condition: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.slow
def test_both_processes_answer_on_one_port(pool: Pool) -> None:
    assert login_from_new_ports(pool.main.server.auth_port, 40) == 40
    # the kernel spread the 40 source ports over both sockets
    assert pool.main.stats.access_accepts > 0
    assert wait_for(lambda: pool.worker_accepts() > 0)
    assert wait_for(lambda: pool.main.stats.access_accepts + pool.worker_accepts() == 40)


@pytest.mark.slow
def test_dead_worker_restarted_counters_kept(pool: Pool) -> None:
    login_from_new_ports(pool.main.server.auth_port, 20)
    assert wait_for(lambda: pool.main.stats.access_accepts + pool.worker_accepts() == 20)
    (pid,) = pool.workers.pids()
    os.kill(pid, signal.SIGKILL)
    assert wait_for(
        lambda: pool.workers.restarts == 1 and pool.workers.pids() and pool.workers.pids() != [pid], 60
    ), "worker not restarted"
    assert login_from_new_ports(pool.main.server.auth_port, 20) == 20
    assert wait_for(lambda: pool.main.stats.access_accepts + pool.worker_accepts() == 40)


@pytest.mark.slow
def test_stop_ends_every_worker(pool: Pool) -> None:
    pids = pool.workers.pids()
    pool.main.call(pool.workers.stop())
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # the main process still serves alone
    assert login_from_new_ports(pool.main.server.auth_port, 3) == 3


@pytest.mark.slow
@pytest.mark.radclient
def test_metrics_move_after_radclient_requests(pool: Pool) -> None:
    before = pool.metrics()
    port = pool.main.server.auth_port
    for user, pw in (("alice", "alice-pw"), ("alice", "wrong"), ("bob", "bob-pw")):
        r = radclient(
            port, "auth", f'User-Name = "{user}"\nUser-Password = "{pw}"\nMessage-Authenticator = 0x00\n'
        )
        assert r.code in ("Access-Accept", "Access-Reject")
    r = radclient(
        pool.main.server.acct_port,
        "acct",
        'User-Name = "alice"\nAcct-Status-Type = Start\nAcct-Session-Id = "m-1"\n',
    )
    assert r.code == "Accounting-Response"
    # a wrong secret: dropped, counted against the NAS by name
    assert (
        radclient(
            port,
            "auth",
            'User-Name = "alice"\nUser-Password = "x"\nMessage-Authenticator = 0x00\n',
            secret=b"wrong-secret",
            timeout=1,
        ).code
        is None
    )

    def moved() -> bool:
        m = pool.metrics()
        return (
            m.get(("jasiyo_radius_requests_total", (("decision", "accept"), ("type", "access")))) == 1
            and m.get(("jasiyo_radius_requests_total", (("decision", "reject"), ("type", "access")))) == 2
            and m.get(("jasiyo_radius_dropped_total", (("nas", "core-1"), ("reason", "bad_authenticator"))))
            == 1
            and m.get(("jasiyo_radius_requests_total", (("decision", "stored"), ("type", "accounting")))) == 1
        )

    assert wait_for(moved), pool.metrics()
    m = pool.metrics()
    assert m[("jasiyo_radius_auth_latency_seconds_count", ())] >= 3
    assert m[("jasiyo_radius_auth_latency_seconds_count", ())] > before.get(
        ("jasiyo_radius_auth_latency_seconds_count", ()), 0
    )
    assert m[("jasiyo_radius_accounting_commit_seconds_count", ())] >= 1
    assert ("jasiyo_radius_accounting_queue", ()) in m
    labels = {k for key in m for k, _ in key[1]}
    assert labels <= {"type", "decision", "reason", "nas", "outcome", "le"}  # no usernames
    assert not any("alice" in v for key in m for _, v in key[1])
