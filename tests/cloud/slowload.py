"""Hostile and heavy load on a `jasiyo cloud serve` process, for the slowloris test and bench.

The cloud runs as a real subprocess with ``ulimit -n`` 1024 (systemd's default soft
limit). The load comes from other loopback addresses, as it would from other hosts: the
slow connections from 127.0.0.2 (one attacker), the long-polls from 127.0.1.1-10 (agents
behind ten addresses), the health probes from 127.0.0.1 (a monitor).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jasiyo.cloud import admin
from jasiyo.cloud.server import new_operator_token
from jasiyo.sync.envelope import new_kid
from jasiyo.sync.ids import uuid7
from jasiyo.sync.signing import public_key_text, sign_headers

ATTACKER = "127.0.0.2"
#: Seconds before a closed slow connection is opened again (slowloris.py's default sleep).
RECONNECT = 15.0
AGENT_HOSTS = [f"127.0.1.{i}" for i in range(1, 11)]


@dataclass
class Target:
    proc: subprocess.Popen
    url: str
    port: int
    tenant: str
    agent: str
    key: Ed25519PrivateKey
    kid: str


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_own_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


@contextmanager
def cloud_process(tmp: Path, nofile: int = 1024) -> Iterator[Target]:
    """`jasiyo cloud serve` with ``ulimit -n nofile``, a tenant and one enrolled agent."""
    port = _port()
    op = new_operator_token()

    def limit() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

    log = (tmp / "cloud.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jasiyo.cli",
            "cloud",
            "serve",
            "--db",
            str(tmp / "cloud.db"),
            "--port",
            str(port),
            "--rate",
            "100000",
        ],
        env={**os.environ, "JASIYO_OPERATOR_TOKEN": op},
        stdout=subprocess.DEVNULL,
        stderr=log,
        preexec_fn=limit,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/v1/health", timeout=2)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the cloud did not start") from None
                time.sleep(0.1)
        t = admin.create_tenant(url, op, "load")
        enrol = admin.issue_enrolment(url, t["admin_token"])["token"]
        key, agent = Ed25519PrivateKey.generate(), uuid7()
        r = httpx.post(
            url + "/v1/agents/enroll",
            json={"token": enrol, "agent_id": agent, "name": "load", "public_key": public_key_text(key)},
        )
        r.raise_for_status()
        target = Target(proc, url, port, t["tenant_id"], agent, key, new_kid())
        path = f"/v1/tenants/{target.tenant}/keys"
        body = json.dumps({"kid": target.kid}).encode()
        httpx.post(
            url + path,
            content=body,
            headers={
                "content-type": "application/json",
                **sign_headers(key, target.tenant, agent, "POST", path, body),
            },
        ).raise_for_status()
        yield target
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class LoadResult:
    slow_open: int = 0  # slow connections open now
    slow_peak: int = 0  # most slow connections open at once
    slow_during_probes: int = 0  # ... open (as the attacker sees it) when probing began
    slow_refused: int = 0  # slow connections answered 503 (cap) or closed (timeout)
    polls_started: int = 0
    polls_answered: int = 0  # long-polls answered 200 with the pushed event
    wake_ms: float = 0.0  # push -> last long-poll answered
    health_ms: list[float] = field(default_factory=list)
    health_failed: int = 0
    health_trace: list[tuple[float, float]] = field(default_factory=list)  # (time, ms)
    poll_status: dict[str, int] = field(default_factory=dict)
    push_error: str = ""  # the push that wakes the long-polls failed (how)


async def _slow(port: int, hold: asyncio.Event, state: LoadResult) -> None:
    """One slowloris attacker connection: a request's headers a byte a second, never
    finished; reconnects ``RECONNECT`` seconds after the cloud closes it (as slowloris.py
    does), until ``hold`` is set."""
    while not hold.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(ATTACKER, 0))
        except OSError:
            state.slow_refused += 1
            await asyncio.sleep(RECONNECT)
            continue
        opened = False
        try:
            writer.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            await writer.drain()
            state.slow_open += 1
            state.slow_peak = max(state.slow_peak, state.slow_open)
            opened = True
            while not hold.is_set():
                try:
                    await asyncio.wait_for(reader.read(1), 1.0)
                except TimeoutError:
                    writer.write(b"X")
                    await writer.drain()
                    continue
                break  # answered (503 over the cap) or closed (the header timeout)
        except OSError:
            pass
        finally:
            if opened:
                state.slow_open -= 1
            writer.close()
        if not hold.is_set():
            state.slow_refused += 1
            await asyncio.sleep(RECONNECT)


async def _poll(t: Target, host: str, state: LoadResult, done: list[float]) -> None:
    path = f"/v1/tenants/{t.tenant}/events?after=0&limit=10&wait=25"
    headers = sign_headers(t.key, t.tenant, t.agent, "GET", path, b"")
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=host), timeout=60) as http:
        state.polls_started += 1
        try:
            r = await http.get(t.url + path, headers=headers)
        except httpx.HTTPError as exc:
            name = type(exc).__name__
            state.poll_status[name] = state.poll_status.get(name, 0) + 1
            return
    code = str(r.status_code)
    state.poll_status[code] = state.poll_status.get(code, 0) + 1
    if r.status_code == 200 and r.json()["events"]:
        state.polls_answered += 1
        done.append(time.monotonic())


#: The health monitor, in a process of its own (a monitor is another host: timed in the
#: load's event loop, a probe also waits for the attacker's 1,700 tasks to be scheduled).
_PROBE = """
import json, socket, sys, time
port, probes = int(sys.argv[1]), int(sys.argv[2])
out = []
for _ in range(probes):
    began = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /v1/health HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        ok = answer.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in answer
        out.append([ok, (time.monotonic() - began) * 1000, time.time()])
    except OSError:
        out.append([False, (time.monotonic() - began) * 1000, time.time()])
    time.sleep(0.2)
print(json.dumps(out))
"""


async def _health_process(port: int, state: LoadResult, probes: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PROBE, str(port), str(probes), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    for ok, ms, at in json.loads(out or b"[]"):
        state.health_trace.append((at, ms))
        if ok:
            state.health_ms.append(ms)
        else:
            state.health_failed += 1
    state.health_failed += max(0, probes - len(state.health_ms) - state.health_failed)


async def _health(port: int, state: LoadResult, probes: int) -> None:
    """GET /v1/health on a fresh connection each time (a monitor), timed connect to answer."""
    for _ in range(probes):
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            writer.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            if answer.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in answer:
                state.health_ms.append((time.monotonic() - started) * 1000)
            else:
                state.health_failed += 1
        except (OSError, TimeoutError):
            state.health_failed += 1
        await asyncio.sleep(0.2)


async def _push(t: Target) -> None:
    path = f"/v1/tenants/{t.tenant}/events"
    ev = uuid7()
    body = json.dumps(
        {"events": [{"id": ev, "origin": t.agent, "envelope": f"v1.{t.kid}.{'A' * 44}"}]}
    ).encode()
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(
            t.url + path,
            content=body,
            headers={
                "content-type": "application/json",
                **sign_headers(t.key, t.tenant, t.agent, "POST", path, body),
            },
        )
        r.raise_for_status()


async def run_load(
    t: Target, slow: int = 1100, polls: int = 600, probes: int = 20, probe_in_loop: bool = False
) -> LoadResult:
    """Open ``slow`` slow connections and ``polls`` long-polls, probe health (from a process
    of its own unless ``probe_in_loop``), then push one event and time how long the
    long-polls take to all answer."""
    state = LoadResult()
    hold = asyncio.Event()
    slow_tasks = [asyncio.create_task(_slow(t.port, hold, state)) for _ in range(slow)]
    await asyncio.sleep(1.0)
    done: list[float] = []
    poll_tasks = [
        asyncio.create_task(_poll(t, AGENT_HOSTS[i % len(AGENT_HOSTS)], state, done)) for i in range(polls)
    ]
    deadline = time.monotonic() + 20
    while state.polls_started < polls and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)  # let every long-poll reach the server and start waiting
    state.slow_during_probes = state.slow_open
    await (_health if probe_in_loop else _health_process)(t.port, state, probes)
    pushed = time.monotonic()
    try:
        await _push(t)
    except httpx.HTTPError as exc:
        state.push_error = type(exc).__name__
    if poll_tasks:
        await asyncio.wait(poll_tasks, timeout=40)
    if done:
        state.wake_ms = (max(done) - pushed) * 1000
    hold.set()
    if slow_tasks:
        await asyncio.wait(slow_tasks, timeout=10)
    for task in slow_tasks + poll_tasks:
        task.cancel()
    return state
