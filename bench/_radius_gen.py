"""A RADIUS load generator for bench/radius_auth.py (stdlib only: socket, hashlib, hmac).

Closed loop: a window of ``window`` outstanding requests, refilled as replies arrive.

* Access-Request (PAP): Message-Authenticator first, User-Name, User-Password hidden as in
  RFC 2865 section 5.2 under a fresh random Request Authenticator per request,
  NAS-IP-Address, NAS-Port-Type=Ethernet, Service-Type=Framed-User, Framed-Protocol=PPP,
  Calling-Station-Id.
* Accounting: per session Start, then Interim-Update, then Stop, each sent only after the
  previous one was acknowledged (in order per session); octet counters above 2**32 so the
  Gigawords attributes are exercised.

Every reply is checked: Response Authenticator always, Message-Authenticator when the reply
carries one; a reply that fails either counts as ``bad``. A request without a reply after
``timeout`` seconds counts as a timeout (no retransmission). Latency runs from just before
``send()`` to the moment the reply is read, so it includes this client's own overhead.

One thread, non-blocking UDP sockets and an epoll selector: an asyncio callback per
datagram costs more than the server work being measured. At most 64 requests are in flight
per socket and freed IDs are reused in FIFO order, so an ID comes back only after 192
others: a late reply cannot be mistaken for the answer to a newer request, and the server
has long finished the old one. More outstanding requests use more sockets.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import os
import random
import selectors
import socket
import struct
import time
from array import array
from collections import deque
from dataclasses import dataclass

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT = 1, 2, 3
ACCOUNTING_REQUEST, ACCOUNTING_RESPONSE, STATUS_SERVER = 4, 5, 12
MA_TYPE = 80
PER_SOCKET = 64
CLK_TCK = os.sysconf("SC_CLK_TCK")
_md5 = hashlib.md5


@dataclass(frozen=True)
class Target:
    """Where to send: a server on loopback, its secret, and its PID for CPU accounting."""

    label: str
    host: str
    auth_port: int
    acct_port: int
    secret: str
    pid: int | None = None


@dataclass
class Result:
    """One run's figures. CPU percentages are of one core (user + sys, all threads)."""

    label: str
    workload: str
    window: int
    duration: float
    rps: float
    p50_ms: float
    p99_ms: float
    accept: int = 0
    reject: int = 0
    acct: int = 0
    timeout: int = 0
    bad: int = 0  # replies that failed verification
    late: int = 0  # replies that came after their request had timed out
    other: int = 0
    ma_missing: int = 0  # replies (auth) without a Message-Authenticator
    sent_total: int = 0  # including warm-up
    answered_total: int = 0  # including warm-up: every acknowledged request
    client_cpu_pct: float = 0.0
    server_cpu_pct: float | None = None
    server_us_per_req: float | None = None
    box_busy_pct: float = 0.0
    session_prefix: str = ""
    #: CPU % of one core of each server process (the first is the one started; the others
    #: its children, e.g. authentication workers): shows whether the load is spread
    server_proc_pct: tuple[float, ...] = ()

    def line(self) -> str:
        srv = "-" if self.server_cpu_pct is None else f"{self.server_cpu_pct:.0f}%"
        us = "-" if self.server_us_per_req is None else f"{self.server_us_per_req:.0f}"
        answered = self.acct if self.workload == "acct" else f"{self.accept}/{self.reject}"
        return (
            f"{self.label:<18} {self.workload:<5} w={self.window:<4} {self.rps:>8.0f} req/s "
            f"p50={self.p50_ms:7.3f}ms p99={self.p99_ms:8.3f}ms "
            f"{'acked' if self.workload == 'acct' else 'acc/rej'}={answered} "
            f"timeout={self.timeout} late={self.late} bad={self.bad} server_cpu={srv} server_us/req={us} "
            f"client_cpu={self.client_cpu_pct:.0f}% box_busy={self.box_busy_pct:.0f}%"
            + (
                f" per_process={'/'.join(f'{p:.0f}' for p in self.server_proc_pct)}%"
                if len(self.server_proc_pct) > 1
                else ""
            )
        )


# ------------------------------------------------------------------ packet coding


def attr(t: int, value: bytes) -> bytes:
    return bytes((t, len(value) + 2)) + value


def vsa(vendor: int, t: int, value: bytes) -> bytes:
    return attr(26, struct.pack("!I", vendor) + bytes((t, len(value) + 2)) + value)


def u32(t: int, v: int) -> bytes:
    return attr(t, struct.pack("!I", v & 0xFFFFFFFF))


class HmacMd5:
    """HMAC-MD5 under one key, from precomputed inner/outer MD5 states: about 2 us a call
    against 5 for ``hmac.digest`` (OpenSSL 3 looks the digest up by name on every call)."""

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = _md5(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = _md5(bytes(b ^ 0x36 for b in key))
        self._outer = _md5(bytes(b ^ 0x5C for b in key))

    def __call__(self, msg: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def hide_password(pw: bytes, secret: bytes, ra: bytes) -> bytes:
    """RFC 2865 section 5.2."""
    pw += b"\0" * (-len(pw) % 16 or (16 if not pw else 0))
    out, prev = bytearray(), ra
    for i in range(0, len(pw), 16):
        b = _md5(secret + prev).digest()
        block = bytes(x ^ y for x, y in zip(pw[i : i + 16], b, strict=True))
        out += block
        prev = block
    return bytes(out)


def iter_attrs(body: bytes) -> list[tuple[int, bytes]]:
    """The attributes of a packet body; ValueError if they do not parse."""
    out, i = [], 0
    while i < len(body):
        if i + 2 > len(body) or body[i + 1] < 2 or i + body[i + 1] > len(body):
            raise ValueError("bad attribute length")
        out.append((body[i], body[i + 2 : i + body[i + 1]]))
        i += body[i + 1]
    return out


def check_reply(
    data: bytes, ra: bytes, secret: bytes, mac: HmacMd5 | None = None
) -> tuple[bool, bool | None]:
    """(Response Authenticator ok, Message-Authenticator ok / None when absent)."""
    if _md5(data[:4] + ra + data[20:] + secret).digest() != data[4:20]:
        return False, None
    # Message-Authenticator is usually first or last; find it without decoding everything.
    i, n = 20, len(data)
    while i + 2 <= n:
        t, ln = data[i], data[i + 1]
        if ln < 2:
            return True, False
        if t == MA_TYPE and ln == 18:
            zeroed = data[:4] + ra + data[20 : i + 2] + b"\0" * 16 + data[i + 18 :]
            expect = mac(zeroed) if mac else hmac.digest(secret, zeroed, "md5")
            return True, expect == data[i + 2 : i + 18]
        i += ln
    return True, None


class Codec:
    """Builds requests for users ``user{n:05d}`` / ``pw-{n}``, n = 1..users."""

    def __init__(self, secret: str, users: int, nas_ip: str = "127.0.0.1") -> None:
        self.secret = secret.encode()
        self.users = users
        nas = socket.inet_aton(nas_ip)
        self._common = attr(4, nas) + u32(61, 15) + u32(6, 2) + u32(7, 1)
        self._names = [f"user{n:05d}".encode() for n in range(1, users + 1)]
        self._name_attrs = [attr(1, name) for name in self._names]
        self._pws = [f"pw-{n}".encode() for n in range(1, users + 1)]
        self._macs = [
            attr(31, f"02:00:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}".encode())
            for n in range(1, users + 1)
        ]
        self._rand = random.Random().randbytes
        self._md5_secret = _md5(self.secret)
        self.mac = HmacMd5(self.secret)
        # passwords of up to 16 bytes, padded, as integers: hiding is then one XOR
        self._pw_ints = [
            int.from_bytes(p.ljust(16, b"\0"), "big") if len(p) <= 16 else None for p in self._pws
        ]

    def _hide(self, i: int, ra: bytes) -> bytes:
        p = self._pw_ints[i]
        if p is None:
            return hide_password(self._pws[i], self.secret, ra)
        h = self._md5_secret.copy()
        h.update(ra)
        return (p ^ int.from_bytes(h.digest(), "big")).to_bytes(16, "big")

    def user(self, i: int) -> tuple[str, str]:
        return self._names[i].decode(), self._pws[i].decode()

    def access_request(self, rid: int, i: int, password: bytes | None = None) -> tuple[bytes, bytes]:
        """(packet, Request Authenticator) for user index ``i`` (0-based)."""
        ra = self._rand(16)
        pw = self._hide(i, ra) if password is None else hide_password(password, self.secret, ra)
        body = (
            b"\x50\x12"
            + b"\0" * 16
            + self._name_attrs[i]
            + bytes((2, len(pw) + 2))
            + pw
            + self._common
            + self._macs[i]
        )
        head = bytes((ACCESS_REQUEST, rid)) + struct.pack("!H", 20 + len(body))
        ma = self.mac(head + ra + body)
        return head + ra + b"\x50\x12" + ma + body[18:], ra

    def status_server(self, rid: int) -> tuple[bytes, bytes]:
        ra = self._rand(16)
        body = b"\x50\x12" + b"\0" * 16
        head = bytes((STATUS_SERVER, rid)) + struct.pack("!H", 20 + len(body))
        ma = hmac.digest(self.secret, head + ra + body, "md5")
        return head + ra + b"\x50\x12" + ma, ra

    def accounting_request(self, rid: int, i: int, session: bytes, step: int) -> tuple[bytes, bytes]:
        """Step 0 Start, 1 Interim-Update, 2 Stop. Counters grow with the step."""
        status = (1, 3, 2)[step]
        body = (
            u32(40, status)
            + attr(44, session)
            + attr(1, self._names[i])
            + self._common
            + attr(8, struct.pack("!I", 0x0A000000 | (i + 1)))
            + self._macs[i]
            + u32(41, 0)
            + u32(55, int(time.time()))
        )
        if step:
            octets_in = step * (5 << 30) + 12345  # > 4 GiB by the Stop: Gigawords non-zero
            octets_out = step * (1 << 30) + 999
            body += (
                u32(46, 60 * step)
                + u32(42, octets_in)
                + u32(52, octets_in >> 32)
                + u32(43, octets_out)
                + u32(53, octets_out >> 32)
                + u32(47, 1000 * step)
                + u32(48, 2000 * step)
            )
        if step == 2:
            body += u32(49, 1)  # User-Request
        head = bytes((ACCOUNTING_REQUEST, rid)) + struct.pack("!H", 20 + len(body))
        ra = _md5(head + b"\0" * 16 + body + self.secret).digest()
        return head + ra + body, ra


# ------------------------------------------------------------------ probe


def probe(
    target: Target,
    codec: Codec,
    user: int = 0,
    *,
    status: bool = False,
    password: bytes | None = None,
    timeout: float = 1.0,
) -> tuple[int, dict[str, object]]:
    """One request (Access-Request for user index ``user``, or Status-Server); returns
    (reply code, details) or (0, {}) on no reply / a reply that fails verification."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        rid = random.randrange(256)
        pkt, ra = codec.status_server(rid) if status else codec.access_request(rid, user, password)
        try:
            s.sendto(pkt, (target.host, target.auth_port))
            data = s.recv(4096)
        except OSError:
            return 0, {}
    ok, ma = check_reply(data, ra, codec.secret)
    if not ok or ma is False or data[1] != rid:
        return 0, {"error": "reply failed verification"}
    info: dict[str, object] = {"message_authenticator": ma is True}
    for t, v in iter_attrs(data[20:]):
        if t == 26 and len(v) > 6 and v[:4] == struct.pack("!I", 14988) and v[4] == 8:
            info["Mikrotik-Rate-Limit"] = v[6:].decode()
        elif t == 18:
            info["Reply-Message"] = v.decode(errors="replace")
    return data[0], info


# ------------------------------------------------------------------ CPU accounting


def proc_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (all its threads), or None if it is gone."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int | None) -> list[int]:
    """PIDs whose parent is ``pid`` (an agent's authentication workers)."""
    if pid is None:
        return []
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def family_cpu(pids: list[int]) -> float | None:
    """CPU seconds of the server and its worker processes (None if the server is gone)."""
    if not pids:
        return None
    first = proc_cpu(pids[0])
    if first is None:
        return None
    return first + sum(proc_cpu(p) or 0.0 for p in pids[1:])


def each_cpu(pids: list[int]) -> list[float]:
    """CPU seconds of each of ``pids`` (0.0 for one that is gone)."""
    return [proc_cpu(p) or 0.0 for p in pids]


def box_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


# ------------------------------------------------------------------ the engine


class _Socket:
    __slots__ = ("sock", "free", "slots", "inflight")

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            self.sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
        self.sock.connect((host, port))
        self.sock.setblocking(False)
        ids = list(range(256))
        random.shuffle(ids)
        self.free: deque[int] = deque(ids)
        # per ID: (t_sent, request authenticator, user index, session or None, step) or None
        self.slots: list[tuple[float, bytes, int, bytes | None, int] | None] = [None] * 256
        self.inflight = 0


def run_load(
    target: Target,
    codec: Codec,
    workload: str,
    window: int,
    duration: float,
    warmup: float = 1.0,
    timeout: float = 2.0,
    sockets: int = 1,
) -> Result:
    """Run ``workload`` ("auth" or "acct") at ``window`` outstanding requests for
    ``warmup`` + ``duration`` seconds; figures cover the ``duration`` part only.

    ``sockets``: at least this many source ports (as several NASes would be), so that a
    server spreading NASes over processes (SO_REUSEPORT) can use them. Server CPU counts
    the server's child processes too."""
    if workload not in ("auth", "acct"):
        raise ValueError(f"unknown workload {workload!r}")
    auth = workload == "auth"
    port = target.auth_port if auth else target.acct_port
    nsock = max(1, min(sockets, window), -(-window // PER_SOCKET))
    server_pids = [target.pid, *children(target.pid)] if target.pid else []
    socks = [_Socket(target.host, port) for _ in range(nsock)]
    sel = selectors.EpollSelector()
    for s in socks:
        sel.register(s.sock, selectors.EVENT_READ, s)
    secret, mac = codec.secret, codec.mac
    users = codec.users
    tag = f"b{os.getpid():x}{random.randrange(1 << 24):06x}"
    chain: deque[tuple[int, bytes, int]] = deque()  # (user, session, next step) ready to send
    timeq: deque[tuple[float, _Socket, int, float]] = deque()
    lat = array("d")
    counts = {
        "accept": 0,
        "reject": 0,
        "acct": 0,
        "other": 0,
        "bad": 0,
        "timeout": 0,
        "late": 0,
        "ma_missing": 0,
    }
    sent_total = answered_total = 0
    next_user = random.randrange(users)
    session_seq = 0
    outstanding = 0
    rr = 0

    gc.collect()
    gc_was = gc.isenabled()
    gc.disable()  # nothing here makes cycles; collector passes would only add latency spikes
    t_begin = time.perf_counter()
    t_measure = t_begin + warmup
    t_stop = t_measure + duration
    measuring = False
    sending = True
    cpu0 = srv0 = None
    each0: list[float] = []
    each1: list[float] = []
    box0 = (0.0, 0.0)

    def send_one(now: float) -> bool:
        nonlocal next_user, session_seq, outstanding, rr, sent_total
        for _ in range(nsock):
            s = socks[rr]
            rr = (rr + 1) % nsock
            if s.inflight < PER_SOCKET:
                break
        else:
            return False
        rid = s.free.popleft()
        if auth:
            i = next_user
            next_user = (i + 1) % users
            pkt, ra = codec.access_request(rid, i)
            session, step = None, 0
        else:
            if chain:
                i, session, step = chain.popleft()
            else:
                i = next_user
                next_user = (i + 1) % users
                session_seq += 1
                session, step = f"{tag}-{session_seq:08x}".encode(), 0
            pkt, ra = codec.accounting_request(rid, i, session, step)
        t0 = time.perf_counter()
        try:
            s.sock.send(pkt)
        except OSError:
            pass  # counted as a timeout if it never gets an answer
        s.slots[rid] = (t0, ra, i, session, step)
        s.inflight += 1
        outstanding += 1
        sent_total += 1
        timeq.append((t0 + timeout, s, rid, t0))
        return True

    while True:
        now = time.perf_counter()
        if not measuring and now >= t_measure and sending:
            measuring = True
            cpu0, srv0, box0 = os.times(), family_cpu(server_pids), box_cpu()
            each0 = each_cpu(server_pids)
            for k in counts:
                counts[k] = 0
            del lat[:]
        if sending and now >= t_stop:
            sending = False
            cpu1, srv1, box1 = os.times(), family_cpu(server_pids), box_cpu()
            each1 = each_cpu(server_pids)
            final = dict(counts)
            final_lat = lat.tobytes()
        if sending:
            while outstanding < window and send_one(now):
                pass
        elif outstanding == 0:
            break
        for key, _ in sel.select(0.01):
            s = key.data
            recv = s.sock.recv
            while True:
                try:
                    data = recv(4096)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # ICMP port unreachable and the like
                    break
                t1 = time.perf_counter()
                if len(data) < 20:
                    counts["bad"] += 1
                    continue
                rid = data[1]
                slot = s.slots[rid]
                if slot is None:
                    counts["late"] += 1  # for nothing outstanding: after its timeout
                    continue
                t0, ra, i, session, step = slot
                ok, ma = check_reply(data, ra, secret, mac)
                if not ok or ma is False:
                    counts["bad"] += 1
                    continue
                s.slots[rid] = None
                s.free.append(rid)
                s.inflight -= 1
                outstanding -= 1
                answered_total += 1
                code = data[0]
                if measuring:
                    lat.append(t1 - t0)
                if code == ACCESS_ACCEPT:
                    counts["accept"] += 1
                elif code == ACCESS_REJECT:
                    counts["reject"] += 1
                elif code == ACCOUNTING_RESPONSE:
                    counts["acct"] += 1
                    if step < 2 and session is not None:
                        chain.append((i, session, step + 1))
                else:
                    counts["other"] += 1
                if auth and ma is None:
                    counts["ma_missing"] += 1
                if sending:
                    while outstanding < window and send_one(t1):
                        pass
        now = time.perf_counter()
        while timeq and timeq[0][0] <= now:
            _, s, rid, t0 = timeq.popleft()
            slot = s.slots[rid]
            if slot is not None and slot[0] == t0:
                s.slots[rid] = None
                s.free.append(rid)
                s.inflight -= 1
                outstanding -= 1
                counts["timeout"] += 1
    if gc_was:
        gc.enable()
    for s in socks:
        sel.unregister(s.sock)
        s.sock.close()
    sel.close()

    # Timeouts of requests sent inside the window show up after it: count them too.
    final["timeout"] = counts["timeout"]
    final["bad"] = counts["bad"]
    final["late"] = counts["late"]
    lats = sorted(array("d", final_lat))
    done = final["accept"] + final["reject"] + final["acct"] + final["other"]
    assert cpu0 is not None
    client = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / duration * 100
    srv_s = None if srv0 is None or srv1 is None else srv1 - srv0
    busy = (box1[0] - box0[0]) / max(1.0, box1[1] - box0[1]) * 100
    return Result(
        label=target.label,
        workload=workload,
        window=window,
        duration=duration,
        rps=done / duration,
        p50_ms=_pct(lats, 50) * 1000,
        p99_ms=_pct(lats, 99) * 1000,
        accept=final["accept"],
        reject=final["reject"],
        acct=final["acct"],
        timeout=final["timeout"],
        bad=final["bad"],
        late=final["late"],
        other=final["other"],
        ma_missing=final["ma_missing"],
        sent_total=sent_total,
        answered_total=answered_total,
        client_cpu_pct=client,
        server_cpu_pct=None if srv_s is None else srv_s / duration * 100,
        server_us_per_req=None if srv_s is None or not done else srv_s / done * 1e6,
        box_busy_pct=busy,
        session_prefix="" if auth else tag + "-",
        server_proc_pct=tuple((b - a) / duration * 100 for a, b in zip(each0, each1, strict=True)),
    )


def _pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, round(p / 100 * len(sorted_vals) + 0.5) - 1))
    return sorted_vals[k]
