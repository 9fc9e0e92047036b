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
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pyrad.packet import AccessAccept

from jasiyo.radius.memory import MemoryBackend
from jasiyo.radius.metrics import RadiusCollector, snapshot
from jasiyo.radius.workers import AuthWorkers, resolve_count

from .conftest import ServerThread, auth_request, decode_reply, make_backend, radclient


def worker_backend() -> MemoryBackend:
    """What each worker process serves from (top level: spawn pickles it by name)."""
    return make_backend()


class Pool:
    """The agent's side (accounting, the auth socket bound) in a thread, and ``workers``
    worker processes reading that socket."""

    def __init__(self, workers: int) -> None:
        self.main = ServerThread(make_backend(), auth_in_workers=True)
        self.workers = AuthWorkers(worker_backend, workers, log_level="warning")
        assert self.main.server.auth_socket is not None
        self.main.call(self.workers.start(self.main.server.auth_socket))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            RadiusCollector(  # type: ignore[arg-type]
                lambda: [snapshot(self.main.server), *self.workers.snapshots()]
            )
        )

    @property
    def port(self) -> int:
        return self.main.server.auth_port

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

    def worker_accepts(self) -> list[int]:
        """Access-Accepts per live worker, from their latest snapshots."""
        with self.workers._lock:
            return [w.latest["stats"]["access_accepts"] if w.latest else 0 for w in self.workers._workers]


@pytest.fixture
def pool() -> Iterator[Pool]:
    p = Pool(2)
    try:
        yield p
    finally:
        p.close()


def login_from_new_ports(port: int, n: int) -> int:
    """``n`` Access-Requests at once, each from its own source port; how many were accepted."""
    socks, reqs = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            req = auth_request(User_Name="alice", User_Password="alice-pw")
            reqs.append(req)
            s.sendto(req.RequestPacket(), ("127.0.0.1", port))
        accepted = 0
        for s, req in zip(socks, reqs, strict=True):
            s.settimeout(10)
            try:
                accepted += decode_reply(req, s.recv(4096)).code == AccessAccept
            except TimeoutError:
                pass
        return accepted
    finally:
        for s in socks:
            s.close()


def wait_for(condition: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """The process stopped (SIGSTOP) meanwhile: it reads nothing."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.slow
def test_any_worker_answers_any_nas(pool: Pool) -> None:
    """The workers read one socket: whichever is free takes the next request, so a worker
    that is busy (here: stopped) holds nothing up, whatever the NAS's address and port."""
    first, second = pool.workers.pids()
    with paused(first):  # more at once than a worker holds replies for: all still answered
        assert login_from_new_ports(pool.port, 100) == 100
    with paused(second):
        assert login_from_new_ports(pool.port, 30) == 30
    assert wait_for(lambda: pool.worker_accepts() == [30, 100]), pool.worker_accepts()
    # the agent's process answers no UDP authentication itself
    assert pool.main.stats.access_requests == 0


@pytest.mark.slow
def test_retransmission_to_another_worker_gets_the_same_reply(pool: Pool) -> None:
    """RFC 5080: a NAS's retransmission (the same bytes) is answered with the same bytes,
    also when the other worker takes it (it has no cache entry, so it answers afresh)."""
    first, second = pool.workers.pids()
    req = auth_request(User_Name="alice", User_Password="alice-pw")
    raw = req.RequestPacket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        replies = []
        for busy in (first, second, first):
            with paused(busy):
                s.sendto(raw, ("127.0.0.1", pool.port))
                replies.append(s.recv(4096))
    assert decode_reply(req, replies[0]).code == AccessAccept
    assert replies[0] == replies[1] == replies[2]

    def counted() -> bool:
        snaps = [snap["stats"] for snap in pool.workers.snapshots()]
        return (
            sum(st["access_accepts"] for st in snaps) == 2
            and sum(st["duplicates_resent"] for st in snaps) == 1
        )

    # each worker answered once afresh; the third copy reached the second worker again,
    # which answered from its cache
    assert wait_for(counted), pool.workers.snapshots()


@pytest.mark.slow
def test_dead_worker_restarted_counters_kept(pool: Pool) -> None:
    assert login_from_new_ports(pool.port, 20) == 20
    assert wait_for(lambda: sum(pool.worker_accepts()) == 20)
    pid, other = pool.workers.pids()
    os.kill(pid, signal.SIGKILL)
    with paused(other):  # only the new worker can answer these
        assert wait_for(
            lambda: (
                pool.workers.restarts == 1
                and len(pool.workers.pids()) == 2
                and pid not in pool.workers.pids()
            ),
            60,
        ), "worker not restarted"
        assert login_from_new_ports(pool.port, 20) == 20
    m = pool.metrics()
    assert wait_for(
        lambda: (
            pool.metrics().get(("jasiyo_radius_requests_total", (("decision", "accept"), ("type", "access"))))
            == 40
        )
    ), m


@pytest.mark.slow
def test_stop_ends_every_worker_cleanly(pool: Pool) -> None:
    assert login_from_new_ports(pool.port, 10) == 10
    processes = [w.process for w in pool.workers._workers]
    pool.main.call(pool.workers.stop())
    assert [p.exitcode for p in processes] == [0, 0]  # SIGTERM: they stopped reading and exited
    for p in processes:
        with pytest.raises(ProcessLookupError):
            os.kill(p.pid, 0)
    # their last counters were kept
    assert sum(snap["stats"]["access_accepts"] for snap in pool.workers.snapshots()) == 10


@pytest.mark.slow
@pytest.mark.radclient
def test_metrics_move_after_radclient_requests(pool: Pool) -> None:
    before = pool.metrics()
    port = pool.port
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


def test_default_worker_count_leaves_the_agent_a_core() -> None:
    cores = len(os.sched_getaffinity(0))
    assert resolve_count(0) == max(1, cores - 1)
    assert resolve_count(3) == 3
